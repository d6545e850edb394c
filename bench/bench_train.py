"""One full training step (forward, backward, Adam update) of each standard configuration, per contestant."""

from fastae.benchmark import runner
from fastae.benchmark.contestants import FLOOR


def bench_train_step(cfg, contestant, refs, timed):
    x, eps, want = refs.train(cfg.name)
    case = contestant.train(cfg, refs.weights(cfg.name), x, eps)
    case.step()
    err = None
    if contestant.kind != FLOOR:  # the floor is not a model: nothing to check
        err = abs(case.loss() - want) / abs(want)
        assert err <= runner.TRAIN_TOL, f"{contestant.name} on {cfg.name}: loss error {err:.3g} after one step"
    # One timed call makes case.steps training steps (an epoch of them, for fastae): per step is time / steps.
    timed(
        case.run,
        group=f"train {cfg.name}",
        config=cfg.name,
        contestant=contestant.name,
        kind=contestant.kind,
        batch=cfg.batch,
        steps_per_call=case.steps,
        flops=cfg.train_flops() * case.steps,
        error=err,
    )
