"""Optimiser kernels (kernels/cpu/optim.py) against fastae.backends.numpy_ref, and their finite flag.

Both dtypes are compared with the float64 reference from the same inputs within tests/tolerances.py's error model:
every update is elementwise, but ``p − lr·s``, ``μ v + g`` and ``β m + (1−β) g`` can cancel, so each is bounded by
the magnitudes of its terms, and the state's bounds are propagated into the parameters (for Adam through
``m / (√v r + ε)`` to first order). Serial and parallel kernels agree bit for bit (outputs and optimiser state)
with 1 and with all threads, across several parallel blocks.
The kernels write the new parameters over the gradient; a test's ``g`` is copied first, so every case reads the
same inputs. The returned flag is True iff every new parameter is finite: an inf or NaN anywhere (gradient,
parameter, state, or an overflow of the step itself), in any block, must give False. State that decays below the
smallest normal number is stored as 0, by the kernels and the reference alike, without moving a parameter.
"""

import numpy as np
import pytest

from fastae.backends import numpy_ref as ref
from fastae.kernels.cpu import optim

from ..tolerances import close, update_err
from .helpers import each_thread_count, same_bits

B = optim.OPT_BLOCK
NO16 = np.empty(0, np.uint16)  # no bfloat16 copy asked for
SIZES = [1, 7, 33 * 17, 1025 * 9, 5 * 1025, B + 1, 3 * B + 5]
DTYPES = [np.float32, np.float64]
KINDS = ["sgd", "momentum", "nesterov", "adam"]
LR, MU, B1, B2, EPS = 0.05, 0.9, 0.9, 0.999, 1e-8


def ref_err(kind, p, g, buf, m, v, dtype, t_step=1, err_p=0.0, err_m=0.0, err_v=0.0):
    """Bounds on the outputs of :func:`ref_step` (tests/tolerances.py ``update_err``), given bounds on ``p`` and the
    state, which the multi-step test carries from step to step; the gradient is exact."""
    state = (buf,) if kind in ("momentum", "nesterov") else (m, v)
    return update_err(kind, p, g, state, dtype, LR, MU, B1, B2, EPS, t_step, err_p, 0.0, (err_m, err_v))


def arrays(n, dtype, seed=0):
    r = np.random.default_rng(seed)
    p, g = (r.standard_normal(n).astype(dtype) for _ in range(2))
    buf = (r.standard_normal(n) * 0.1).astype(dtype)
    m = (r.standard_normal(n) * 0.1).astype(dtype)
    v = r.uniform(0, 0.1, n).astype(dtype)
    return p, g, buf, m, v


def step(kind, p, g, buf, m, v, t_step=1, par=False):
    """One kernel step on copies of the gradient and the state (the kernel writes the new parameters over its
    gradient); returns ``(flag, new parameters, state...)``."""
    out, buf, m, v = g.copy(), buf.copy(), m.copy(), v.copy()
    sfx = "_par" if par else ""
    # Python floats, as the training step passes them and as the reference receives them: the kernel casts them
    # to the dtype, forming Adam's 1 − β in float64 first, as the reference does.
    if kind == "sgd":
        ok = getattr(optim, "sgd" + sfx)(p, out, LR, NO16)
        return ok, out
    if kind in ("momentum", "nesterov"):
        ok = getattr(optim, "momentum" + sfx)(p, out, buf, LR, MU, kind == "nesterov", NO16)
        return ok, out, buf
    s, rs = ref.adam_scalars(LR, B1, B2, t_step)
    ok = getattr(optim, "adam" + sfx)(p, out, m, v, s, rs, B1, B2, EPS, NO16)
    return ok, out, m, v


def ref_step(kind, p, g, buf, m, v, t_step=1):
    p, g, buf, m, v = (a.astype(np.float64) for a in (p, g, buf, m, v))
    out = np.empty_like(p)
    if kind == "sgd":
        return ref.sgd_update(p, g, out, LR), out
    if kind in ("momentum", "nesterov"):
        return ref.momentum_update(p, g, buf, out, LR, MU, kind == "nesterov"), out, buf
    return ref.adam_update(p, g, m, v, out, LR, B1, B2, EPS, t_step), out, m, v


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_step_matches_reference(dtype, n, kind):
    p, g, buf, m, v = arrays(n, dtype)
    got = step(kind, p, g, buf, m, v)
    want = ref_step(kind, p, g, buf, m, v)
    assert got[0] is True and want[0] is True
    errs = ref_err(kind, p, g, buf, m, v, dtype)
    assert len(errs) == len(want) - 1
    for k, (a, b, e) in enumerate(zip(got[1:], want[1:], errs)):
        close(a, b, dtype, err=e, what=f"{kind} output {k}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_over_several_steps(dtype):
    p, g, _, m, v = arrays(1025, dtype, seed=4)
    m[:] = 0
    v[:] = 0
    pr, mr, vr = p.astype(np.float64), m.astype(np.float64), v.astype(np.float64)
    r = np.random.default_rng(5)
    err_p = err_m = err_v = 0.0  # the kernel's state drifts from the reference's: its bounds are carried along
    for t_step in range(1, 6):
        g = r.standard_normal(p.size).astype(dtype)
        ok, out, m, v = step("adam", p, g, np.empty(0, dtype), m, v, t_step)
        err_p, err_m, err_v = ref_err("adam", pr, g, np.empty(0), mr, vr, dtype, t_step, err_p, err_m, err_v)
        outr = np.empty_like(pr)
        assert ok and ref.adam_update(pr, g.astype(np.float64), mr, vr, outr, LR, B1, B2, EPS, t_step)
        close(out, outr, dtype, err=err_p, what=f"step {t_step}")
        close(m, mr, dtype, err=err_m, what=f"m at step {t_step}")
        close(v, vr, dtype, err=err_v, what=f"v at step {t_step}")
        p, pr = out, outr


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["momentum", "nesterov", "adam"])
@pytest.mark.parametrize("par", [False, True])
def test_state_of_a_dead_unit_decays_to_zero_not_to_subnormals(dtype, kind, par):
    """A zero gradient decays the momentum by β each step. Without the flush it would enter the subnormal range
    and stay there (0.9·k·2⁻¹⁴⁹ rounds back to k·2⁻¹⁴⁹), slowing every later step; the kernels and the
    reference both store 0 instead, and the parameters are the same as with the subnormals kept."""
    n = 3 * B + 5
    fi = np.finfo(dtype)
    p, _, buf, m, v = arrays(n, dtype, seed=6)
    start = fi.tiny * 64  # a few steps above the subnormal range: m and buf cross it within ~40 steps
    buf[:], m[:], v[:] = start, start, start
    g = np.zeros(n, dtype)
    pr, bufr, mr, vr = (a.astype(dtype) for a in (p, buf, m, v))
    for t_step in range(1, 120):
        got = step(kind, p, g, buf, m, v, t_step, par=par)
        assert got[0] is True
        state = got[2:]
        outr = np.empty_like(pr)
        if kind == "adam":
            ref.adam_update(pr, g, mr, vr, outr, LR, B1, B2, EPS, t_step)
            want_state = (mr, vr)
        else:
            ref.momentum_update(pr, g, bufr, outr, LR, MU, kind == "nesterov")
            want_state = (bufr,)
        for s, w in zip(state, want_state):
            assert not np.any((s != 0) & (np.abs(s) < fi.tiny)), f"subnormal state at step {t_step}"
            assert same_bits(s, w)
        assert same_bits(got[1], p) and same_bits(outr, pr), "a state this small must not move a parameter"
        if kind == "adam":
            m, v = state
        else:
            buf = state[0]
    assert not np.any(state[0]), "the decayed momentum ends at exactly 0"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_serial_and_parallel_agree_bit_for_bit(dtype, n, kind):
    p, g, buf, m, v = arrays(n, dtype, seed=1)
    want = step(kind, p, g, buf, m, v, t_step=3)
    for _ in each_thread_count():
        got = step(kind, p, g, buf, m, v, t_step=3, par=True)
        assert got[0] is want[0]
        for a, b in zip(got[1:], want[1:]):
            assert same_bits(a, b)


def _poison(kind, where, what, n, dtype):
    p, g, buf, m, v = arrays(n, dtype, seed=2)
    arr = {"g": g, "p": p, "state": buf if kind in ("momentum", "nesterov") else m}[where]
    arr[what[0]] = what[1]
    return p, g, buf, m, v


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kind, where", [(k, w) for k in KINDS for w in ("g", "p", "state") if (k, w) != ("sgd", "state")]
)  # sgd has no state
@pytest.mark.parametrize("par", [False, True])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_input_gives_false(dtype, kind, where, par, value):
    n = 3 * B + 5
    for idx in (0, B - 1, 2 * B + 7, n - 1):  # first, end of a block, middle block, the tail element
        p, g, buf, m, v = _poison(kind, where, (idx, value), n, dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            ok = step(kind, p, g, buf, m, v, par=par)[0]
        assert ok is False, (kind, where, idx, value)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("par", [False, True])
def test_overflowing_step_gives_false(dtype, par):
    # All inputs finite, but p − lr·g overflows.
    big = np.finfo(dtype).max
    for kind in ("sgd", "momentum", "nesterov"):  # Adam's step is bounded by ~lr: finite inputs cannot overflow
        p, g, buf, m, v = arrays(2 * B + 3, dtype, seed=3)
        p[B + 1] = big
        g[B + 1] = -big
        with np.errstate(over="ignore"):
            assert step(kind, p, g, buf, m, v, par=par)[0] is False, kind
        p[B + 1] = g[B + 1] = 1.0
        assert step(kind, p, g, buf, m, v, par=par)[0] is True, kind


def test_python_float_hyperparameters_are_cast_to_the_dtype():
    p, g, _, _, _ = arrays(100, np.float32, seed=6)
    out1, out2 = g.copy(), g.copy()
    optim.sgd(p, out1, np.float32(LR), NO16)
    optim.sgd(p, out2, LR, NO16)
    assert same_bits(out1, out2)
    # For Adam, (1 − β) is formed in float64 before the cast, as the reference's t(1 − β) does: with m = 0 and
    # g = 1, the new m is exactly that coefficient. (A float32 β gives 1 − float32(β) instead, 2 ulps away.)
    m0, v0, ones = np.zeros(3, np.float32), np.zeros(3, np.float32), np.ones(3, np.float32)
    optim.adam(ones, ones.copy(), m0, v0, LR, 1.0, B1, B2, EPS, NO16)
    assert (m0 == np.float32(1 - B1)).all() and (v0 == np.float32(1 - B2)).all()
    m0[:], v0[:] = 0, 0
    t = np.float32
    optim.adam(ones, ones.copy(), m0, v0, t(LR), t(1.0), t(B1), t(B2), t(EPS), NO16)
    assert (m0 == t(1) - t(B1)).all() and (v0 == t(1) - t(B2)).all()
