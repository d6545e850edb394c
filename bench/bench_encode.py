"""Encoding a large batch (throughput) with each standard configuration, per contestant."""

from fastae.benchmark import runner
from fastae.benchmark.configs import ENCODE_BATCH
from fastae.benchmark.contestants import FLOOR


def bench_encode(cfg, contestant, refs, error, timed):
    x, want = refs.encode(cfg.name, ENCODE_BATCH)
    case = contestant.encode(cfg, refs.weights(cfg.name), x)
    case.run()
    err = None
    if contestant.kind != FLOOR:
        err = error(case.result(), want)
        assert err <= runner.ENCODE_TOL, f"{contestant.name} on {cfg.name}: code error {err:.3g}"
    timed(
        case.run,
        group=f"encode {cfg.name} x{ENCODE_BATCH}",
        rounds=5,
        round_s=0.0,
        config=cfg.name,
        contestant=contestant.name,
        kind=contestant.kind,
        rows=ENCODE_BATCH,
        flops=cfg.encode_flops(ENCODE_BATCH),
        error=err,
    )
