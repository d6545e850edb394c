"""The specialisations dispatch compiles: every kernel the Numba backend calls from Python, with the exact argument
types it passes, in one table.

``fastae.warmup()`` compiles (or loads from the cache) exactly these, so a program that warms up never compiles
on a hot path; ``tests/kernels/test_cpu_signatures.py`` runs every model variant in a fresh process after
compiling the table and fails if dispatch reaches a specialisation the table does not name.

Arrays are C-contiguous. Arguments that can be the caller's own data (a read-only or memory-mapped ``X`` is used
without a copy) appear both writable and read-only; everything else is an array fastae allocated. Scalars are
the types the backend passes: hyperparameters cast to the array dtype, Python floats (float64) where a kernel
casts on entry, ``np.uint32`` Philox words, ``np.int64`` row offsets, Python ints (int64) for activation codes.
"""

from numba import types

FLOATS = (types.float32, types.float64)
u4, i8, b1, f8 = types.uint32, types.int64, types.boolean, types.float64
U1 = types.Array(types.uint16, 1, "C")


def _a(t, ndim, readonly=False):
    return types.Array(t, ndim, "C", readonly=readonly)


def _per_dtype(make):
    """``make(t, A1, A2)`` → list of argument tuples, for float32 and float64; ``A1``/``A2`` build 1-D/2-D
    arrays of ``t`` (``readonly=True`` for a caller's data)."""
    out = []
    for t in FLOATS:
        out += make(t, lambda ro=False, t=t: _a(t, 1, ro), lambda ro=False, t=t: _a(t, 2, ro))
    return out


def _data(make):
    """``make`` called with the caller's-data flag ``ro`` both ways (writable, read-only)."""
    return lambda t, A1, A2: make(t, A1, A2, False) + make(t, A1, A2, True)


_TABLE = {
    "checks.values_ok": _data(lambda t, A1, A2, ro: [(A2(ro), b1)]),
    "dense.bias_act": lambda t, A1, A2: [(A2(), A1(), i8)],
    "dense.act_backward": lambda t, A1, A2: [(A2(), A2(), i8)],
    "dense.col_sum": lambda t, A1, A2: [(A2(), A1())],
    "loss.bce_output": _data(lambda t, A1, A2, ro: [(A2(), A1(), A2(ro), A2(), t, A1())]),
    "loss.mse_output": _data(lambda t, A1, A2, ro: [(A2(), A1(), A2(ro), A2(), t, A1())]),
    "loss.output_rows": _data(lambda t, A1, A2, ro: [(A2(), A1(), A2(ro), b1, A1())]),
    "noise.mask_noise": _data(lambda t, A1, A2, ro: [(A2(ro), t, u4, u4, u4, i8, A2())]),
    "noise.gaussian_noise": _data(lambda t, A1, A2, ro: [(A2(ro), t, u4, u4, u4, i8, A2())]),
    "latent.gaussian_latent": lambda t, A1, A2: [(A2(), A2(), t, t, u4, u4, u4, u4, i8, A2(), A1())],
    "latent.gaussian_latent_backward": lambda t, A1, A2: [(A2(), A2(), A2(), A2(), t, t, t, t, A2(), A2())],
    "latent.gaussian_kl_rows": lambda t, A1, A2: [(A2(), A2(), t, t, A1())],
    "penalties.l1_penalty": lambda t, A1, A2: [(A2(), t, t, A2(), A1())],
    "penalties.kl_sparsity": lambda t, A1, A2: [(A2(), t, t, t, f8, A2(), A1())],
    "penalties.contractive": lambda t, A1, A2: [(A2(), A2(), i8, t, t, A2(), A2(), A1())],
    "penalties.weight_decay": lambda t, A1, A2: [(A2(), A2(), t)],
    # The last argument: the bfloat16 copy of the new parameters, empty when none is asked for.
    "optim.sgd": lambda t, A1, A2: [(A1(), A1(), f8, U1)],
    "optim.momentum": lambda t, A1, A2: [(A1(), A1(), A1(), f8, f8, b1, U1)],
    "optim.adam": lambda t, A1, A2: [(A1(),) * 4 + (f8,) * 5 + (U1,)],
    # x and x̃: the caller's batch (read-only or not), and x̃ is x itself without noise, else a fresh array.
    "step.ae1_step": lambda t, A1, A2: [
        (A2(x_ro), A2(xin_ro)) + (A2(), A1(), A2(), A1()) * 4 + (A1(), b1, i8, b1, i8, f8, f8, b1) + (f8,) * 5
        for x_ro, xin_ro in ((False, False), (True, True), (True, False))
    ],
}

# Kernels with a parallel twin (``name + "_par"``) of the same signature, used by the numba-pool backend.
PARALLEL_TWINS = (
    "dense.bias_act",
    "dense.act_backward",
    "dense.col_sum",
    "loss.bce_output",
    "loss.mse_output",
    "loss.output_rows",
    "noise.mask_noise",
    "noise.gaussian_noise",
    "latent.gaussian_latent",
    "latent.gaussian_latent_backward",
    "latent.gaussian_kl_rows",
    "penalties.l1_penalty",
    "penalties.contractive",
    "penalties.weight_decay",
    "optim.sgd",
    "optim.momentum",
    "optim.adam",
    "bf16.to_bf16",
    "bf16.check_to_bf16",
    "bf16.bias_act_bf16",
    "bf16.act_backward_bf16",
)


# The one-pool ops (products.py), used by the numba-pool backend only: ``transposed``/``need_dx``/``bce`` are
# Python bools, the activation code and the number of parts Python ints; ``x`` can be the caller's data.
_POOL = {
    "products.linear_act": _data(lambda t, A1, A2, ro: [(A2(ro), A2(), b1, A1(), i8, A2(), i8)]),
    "products.linear_act_cols": _data(lambda t, A1, A2, ro: [(A2(ro), A2(), b1, A1(), i8, A2(), i8)]),
    "products.output_loss": _data(lambda t, A1, A2, ro: [(A2(), A2(), b1, A1(), A2(ro), b1, t, A2(), A1(), i8)]),
    "products.output_rows": _data(lambda t, A1, A2, ro: [(A2(), A2(), b1, A1(), A2(ro), b1, A2(), A1(), i8)]),
    "products.backward": _data(lambda t, A1, A2, ro: [(A2(), A2(ro), A2(), b1, b1, A2(), A1(), A2(), i8)]),
    "products.values_ok_par": _data(lambda t, A1, A2, ro: [(A2(ro), b1, i8)]),
}


# bfloat16 kernels: float32 in, bfloat16 patterns (uint16) out, for float32 models only. The input and the codes to
# decode can be the caller's data; weights and the patterns are fastae's.
_F4, _U2 = types.float32, types.uint16
_BF16 = {
    "bf16.to_bf16": [(_a(_F4, 2, ro), _a(_U2, 2)) for ro in (False, True)],
    "bf16.check_to_bf16": [(_a(_F4, 2, ro), b1, _a(_U2, 2)) for ro in (False, True)],
    "bf16.widen": [(_a(_U2, 2), _a(_F4, 2))],
    "bf16.bias_act_bf16": [(_a(_F4, 2), _a(_F4, 1), i8, _a(_U2, 2))],
    "bf16.act_backward_bf16": [(_a(_F4, 2), _a(_F4, 2), i8, _a(_U2, 2))],
}


def signatures(parallel=False):
    """``{"module.kernel": [argument-type tuples]}``; with ``parallel``, the ``_par`` twins and the one-pool ops
    as well."""
    table = {name: _per_dtype(make) for name, make in _TABLE.items()}
    table.update(_BF16)
    if parallel:
        table.update({name + "_par": table[name] for name in PARALLEL_TWINS})
        table.update({name: _per_dtype(make) for name, make in _POOL.items()})
    return table


def of(name):
    """The argument-type tuples of one kernel (``"noise.mask_noise"``; a ``_par`` twin has its serial twin's), for
    the kernels that declare them in their decorator: those compile eagerly and accept nothing else."""
    base = name.removesuffix("_par")
    return _per_dtype(_TABLE[base])


def dispatcher(name):
    """The kernel ``"module.kernel"`` of ``fastae.kernels.cpu``."""
    import importlib

    module, kernel = name.split(".")
    return getattr(importlib.import_module(f"fastae.kernels.cpu.{module}"), kernel)


def compile_all(parallel=False):
    """Compile (or load from Numba's cache) every specialisation in the table; returns how many."""
    n = 0
    for name, sigs in signatures(parallel).items():
        disp = dispatcher(name)
        for sig in sigs:
            if sig not in disp.signatures:  # the kernels that declare theirs compiled them on import
                disp.compile(sig)
            n += 1
    return n


__all__ = ["signatures", "of", "dispatcher", "compile_all", "PARALLEL_TWINS"]
