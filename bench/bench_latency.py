"""Encoding one row (latency: the per-call overhead) with each standard configuration, per contestant."""

from fastae.benchmark import runner
from fastae.benchmark.contestants import FLOOR


def bench_latency(cfg, contestant, refs, error, timed):
    x, want = refs.encode(cfg.name, 1)
    case = contestant.encode(cfg, refs.weights(cfg.name), x)
    case.run()
    err = None
    if contestant.kind != FLOOR:
        err = error(case.result(), want)
        assert err <= runner.ENCODE_TOL, f"{contestant.name} on {cfg.name}: code error {err:.3g}"
    timed(
        case.run,
        group=f"latency {cfg.name} x1",
        round_s=0.002,
        config=cfg.name,
        contestant=contestant.name,
        kind=contestant.kind,
        rows=1,
        flops=cfg.encode_flops(1),
        error=err,
    )
