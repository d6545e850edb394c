"""What a backend is: the ops it implements and their signatures, the attributes it declares, the lifecycle
functions it brings and the optional capabilities it may offer.

A backend is a module. :class:`Backend` states its contract as a typed Protocol (the math of every op is in
:mod:`fastae.backends.numpy_ref`, the reference); :func:`problems` checks a module against it, and the registry
refuses any backend with a problem. Models never probe a backend's attributes: they ask :func:`supports` about a
capability the backend declared in ``CAPABILITIES``, each of which names the functions it adds
(:data:`CAPABILITIES`).

Arrays are the backend's own type (``ARRAY_TYPES``, created through ``xp``); ``to_numpy`` brings one to the
host. An op may reuse the memory of a gradient it consumes (see the reference's conventions).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any, Protocol

Array = Any  # the backend's array type: np.ndarray on the CPU backends
Key = tuple[int, int]  # a Philox key (fastae.rng.key_from_seed)


class Ops(Protocol):
    """The ops a model calls, with the reference's signatures (:mod:`fastae.backends.numpy_ref` defines them)."""

    def dense_forward(
        self, x: Array, W: Array, b: Array, activation: str, transpose: bool = False, out: Array | None = None
    ) -> Array: ...

    def dense_backward(
        self, delta: Array, x: Array, W: Array, transpose: bool = False, need_dx: bool = True
    ) -> tuple[Array, Array, Array | None]: ...

    def activation_backward(self, dh: Array, h: Array, activation: str) -> Array: ...

    def output_loss_grad(
        self, h: Array, W: Array, c: Array, x: Array, loss: str, transpose: bool = False
    ) -> tuple[Any, Array]: ...

    def output_row_loss(self, h: Array, W: Array, c: Array, x: Array, loss: str, transpose: bool = False) -> Array: ...

    def l1_penalty(self, h: Array, lam: float) -> tuple[Any, Array]: ...

    def kl_sparsity(self, h: Array, rho: float, beta: float) -> tuple[Any, Array]: ...

    def contractive_penalty(self, h: Array, W: Array, activation: str, lam: float) -> tuple[Any, Array, Array]: ...

    def weight_decay(self, W: Array, grad: Array, wd: float) -> Any: ...

    def mask_noise(self, x: Array, p: float, key: Key, step: int, row0: int = 0) -> Array: ...

    def gaussian_noise(self, x: Array, sigma: float, key: Key, step: int, row0: int = 0) -> Array: ...

    def gaussian_latent(
        self, mu: Array, logvar: Array, beta: float, key: Key, step: int, row0: int = 0, stream: int = ...
    ) -> tuple[Array, Any]: ...

    def gaussian_latent_backward(
        self, dz: Array, z: Array, mu: Array, logvar: Array, beta: float
    ) -> tuple[Array, Array]: ...

    def gaussian_kl_rows(self, mu: Array, logvar: Array) -> Array: ...

    def permutation(self, key: Key, stream: int, step: int, n: int) -> Any: ...

    def sgd_update(self, p: Array, g: Array, out: Array, lr: float) -> bool: ...

    def momentum_update(
        self, p: Array, g: Array, buf: Array, out: Array, lr: float, momentum: float, nesterov: bool
    ) -> bool: ...

    def adam_update(
        self,
        p: Array,
        g: Array,
        m: Array,
        v: Array,
        out: Array,
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        t_step: int,
    ) -> bool: ...


class Lifecycle(Protocol):
    """What every backend brings besides its ops."""

    def unavailable(self) -> str | None:
        """Why the backend cannot run here (a missing library, no device, an unsafe threading layer), or
        ``None``. Only looks: it changes nothing."""
        ...

    def warmup(self, dtypes: tuple[str, ...]) -> None:
        """Compile (or load from a cache) every kernel the backend's ops can reach for ``dtypes``."""
        ...

    def session(self) -> AbstractContextManager[Any]:
        """A context held around a whole fit or encode (threads, streams); it may do nothing."""
        ...

    def to_numpy(self, a: Array) -> Any:
        """``a`` as a NumPy array on the host (the array itself where it already is one)."""
        ...


class Backend(Ops, Lifecycle, Protocol):
    """A complete backend: every op, the lifecycle functions and these attributes."""

    NAME: str  # what ``model.backend_`` records
    DTYPES: tuple[str, ...]  # of "float32", "float64"
    ARRAY_TYPES: tuple[type, ...]  # the array types its ops take and return; "auto" picks a backend by these
    CAPABILITIES: frozenset[str]  # of CAPABILITIES below
    xp: ModuleType  # the array namespace (numpy, cupy)


class FusedAE1Step(Protocol):
    """Capability ``"fused_ae1_step"``: a whole update of a one-hidden-layer autoencoder in one call."""

    def fused_ae1_fits(self, n: int, n_in: int, n_hid: int) -> bool: ...

    def ae1_workspace_size(self, n: int, n_in: int, n_hid: int) -> int: ...

    def ae1_stepper(
        self,
        tied: bool,
        activation: str,
        loss: str,
        optimizer: str,
        lr: float,
        momentum: float,
        beta1: float,
        beta2: float,
        eps: float,
    ) -> Callable[..., Any]: ...


class ValuesScan(Protocol):
    """Capability ``"values_scan"``: the input check's one-pass value scan (finite, and in [0, 1] if asked)."""

    def values_ok(self, x: Array, unit_interval: bool) -> bool: ...


class BF16Products(Protocol):
    """Capability ``"bf16_products"``: layers whose products take bfloat16 operands (``uint16`` patterns) and sum
    in float32 (``precision="bfloat16"``; the math is the reference's)."""

    def bf16_input(self, x: Array, unit_interval: bool) -> tuple[bool, Array]: ...

    def to_bf16(self, x: Array) -> Array: ...

    def bf16_weight(self, W: Array, bits: Array | None = None) -> Any: ...

    def dense_forward_bf16(
        self,
        x16: Array,
        Wb: Any,
        b: Array,
        activation: str,
        transpose: bool = False,
        out: Array | None = None,
        bf16_out: bool = False,
    ) -> Array: ...

    def dense_forward_bf16_pair(
        self, x16: Array, Wb: Any, b: Array, activation: str, transpose: bool = False
    ) -> tuple[Array, Array]: ...

    def output_loss_grad_bf16(
        self, h16: Array, Wb: Any, c: Array, x: Array, loss: str, transpose: bool = False
    ) -> tuple[Any, Array, Array]: ...

    def output_row_loss_bf16(
        self, h16: Array, Wb: Any, c: Array, x: Array, loss: str, transpose: bool = False
    ) -> Array: ...

    def activation_backward_bf16(self, dh: Array, h: Array, activation: str) -> tuple[Array, Array]: ...

    def dense_backward_bf16(
        self, delta: Array, d16: Array, x16: Array, Wb: Any, transpose: bool = False, need_dx: bool = True
    ) -> tuple[Array, Array, Array | None]: ...

    def sgd_update_bf16(self, p: Array, g: Array, out: Array, out16: Array, lr: float) -> bool: ...

    def momentum_update_bf16(
        self, p: Array, g: Array, buf: Array, out: Array, out16: Array, lr: float, momentum: float, nesterov: bool
    ) -> bool: ...

    def adam_update_bf16(
        self,
        p: Array,
        g: Array,
        m: Array,
        v: Array,
        out: Array,
        out16: Array,
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        t_step: int,
    ) -> bool: ...


class TF32Products(Protocol):
    """Capability ``"tf32_products"``: float32 products whose operands the GPU's tensor cores round to TF32 (10
    explicit mantissa bits) before summing in float32 (``precision="tf32"``)."""

    def tf32_ops(self) -> Any: ...


class MultiTensorUpdate(Protocol):
    """Capability ``"multi_tensor_update"``: one optimiser update of every parameter in one call (a GPU launches
    one kernel for all of them)."""

    def update_all(
        self,
        method: str,
        entries: list,
        lr: float,
        momentum: float,
        beta1: float,
        beta2: float,
        eps: float,
        t_step: int,
    ) -> int | None: ...


class HostStream(Protocol):
    """Capability ``"host_stream"``: inference over host (NumPy) rows on a device backend, chunk by chunk, each
    chunk's copy to the device overlapping the computation of the one before (so the device holds two chunks of
    the input, never all of it)."""

    def stream_rows(self, X: Any, fn: Callable[..., Any], dest: Array, chunk: int) -> None: ...


FUSED_AE1_STEP = "fused_ae1_step"
VALUES_SCAN = "values_scan"
BF16_PRODUCTS = "bf16_products"
TF32_PRODUCTS = "tf32_products"
MULTI_TENSOR_UPDATE = "multi_tensor_update"
HOST_STREAM = "host_stream"
# capability -> the Protocol of the functions it adds
CAPABILITIES: dict[str, type] = {
    FUSED_AE1_STEP: FusedAE1Step,
    VALUES_SCAN: ValuesScan,
    BF16_PRODUCTS: BF16Products,
    TF32_PRODUCTS: TF32Products,
    MULTI_TENSOR_UPDATE: MultiTensorUpdate,
    HOST_STREAM: HostStream,
}
KNOWN_DTYPES = ("float32", "float64")


def _methods(protocol: type) -> tuple[str, ...]:
    return tuple(n for n, v in vars(protocol).items() if not n.startswith("_") and callable(v))


OPS = _methods(Ops)
LIFECYCLE = _methods(Lifecycle)
ATTRIBUTES = tuple(Backend.__annotations__)


def _parameters(fn) -> list[tuple[str, object]] | None:
    """``[(name, default)]`` of ``fn`` without ``self`` (a Numba dispatcher's Python function's), or ``None`` if
    it has no inspectable signature."""
    fn = getattr(fn, "py_func", fn)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [(p.name, p.default) for p in sig.parameters.values() if p.name != "self"]


def _signature_problem(module: ModuleType, protocol: type, name: str) -> str | None:
    fn = getattr(module, name, None)
    if not callable(fn):
        return f"{name} is missing"
    got, want = _parameters(fn), _parameters(getattr(protocol, name))
    if got is None or want is None:
        return None
    got_names, want_names = [n for n, _ in got], [n for n, _ in want]
    if got_names != want_names:
        return f"{name}{tuple(got_names)} should take {tuple(want_names)}"
    optional = [n for n, d in want if d is not inspect.Parameter.empty]
    lacking = [n for n, d in got if n in optional and d is inspect.Parameter.empty]
    if lacking:
        return f"{name} gives no default to {lacking}"
    return None


def problems(module: ModuleType) -> list[str]:
    """Every way ``module`` breaks the contract (empty for a conforming backend): a missing or ill-typed
    attribute, a missing op or lifecycle function, a signature whose parameter names or defaults differ from
    :class:`Backend`'s, an unknown capability, or a declared capability without its functions."""
    found: list[str | None] = []
    name = getattr(module, "NAME", None)
    if not isinstance(name, str) or not name:
        found.append(f"NAME must be a non-empty string, got {name!r}")
    dtypes = getattr(module, "DTYPES", None)
    if not isinstance(dtypes, tuple) or not dtypes or not set(dtypes) <= set(KNOWN_DTYPES):
        found.append(f"DTYPES must be a non-empty tuple of {list(KNOWN_DTYPES)}, got {dtypes!r}")
    types = getattr(module, "ARRAY_TYPES", None)
    if not isinstance(types, tuple) or not types or not all(isinstance(t, type) for t in types):
        found.append(f"ARRAY_TYPES must be a non-empty tuple of types, got {types!r}")
    caps = getattr(module, "CAPABILITIES", None)
    if not isinstance(caps, frozenset):
        found.append(f"CAPABILITIES must be a frozenset, got {caps!r}")
        caps = frozenset()
    xp = getattr(module, "xp", None)
    if not all(callable(getattr(xp, f, None)) for f in ("asarray", "empty", "zeros_like", "concatenate")):
        found.append(f"xp must be an array namespace (asarray, empty, zeros_like, concatenate), got {xp!r}")
    for op in OPS:
        found.append(_signature_problem(module, Ops, op))
    for fn in LIFECYCLE:
        found.append(_signature_problem(module, Lifecycle, fn))
    for cap in sorted(caps):
        protocol = CAPABILITIES.get(cap)
        if protocol is None:
            found.append(f"capability {cap!r} is unknown; known: {sorted(CAPABILITIES)}")
            continue
        found.extend(
            f"capability {cap!r}: {p}"
            for p in (_signature_problem(module, protocol, fn) for fn in _methods(protocol))
            if p
        )
    return [p for p in found if p]


def supports(backend: ModuleType, capability: str) -> bool:
    """Whether ``backend`` declares ``capability`` (one of :data:`CAPABILITIES`); the registry has checked that
    a declared capability's functions are there."""
    if capability not in CAPABILITIES:
        raise ValueError(f"capability must be one of {sorted(CAPABILITIES)}, got {capability!r}")
    return capability in backend.CAPABILITIES


__all__ = [
    "Backend",
    "Ops",
    "Lifecycle",
    "FusedAE1Step",
    "ValuesScan",
    "OPS",
    "LIFECYCLE",
    "ATTRIBUTES",
    "CAPABILITIES",
    "FUSED_AE1_STEP",
    "VALUES_SCAN",
    "problems",
    "supports",
]
