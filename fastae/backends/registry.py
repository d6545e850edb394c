"""Which backend runs: an explicit table, a capability check, and an ``"auto"`` that says what it chose.

A backend is a module implementing every op in :data:`OPS` with the signatures of
:mod:`fastae.backends.numpy_ref`, and listing the dtypes it supports in ``DTYPES``. Nothing falls back
silently: asking for a backend that cannot run raises, and ``"auto"`` records its choice on the model
(``model.backend_``) so a benchmark can never time the wrong engine.
"""

from __future__ import annotations

import importlib
from types import ModuleType

OPS = (
    "dense_forward",
    "dense_backward",
    "activation_backward",
    "output_activation",
    "output_loss_grad",
    "output_row_loss",
    "l1_penalty",
    "kl_sparsity",
    "contractive_penalty",
    "weight_decay",
    "mask_noise",
    "gaussian_noise",
    "clamp_logvar",
    "gaussian_latent",
    "gaussian_latent_backward",
    "gaussian_kl_rows",
    "sgd_update",
    "momentum_update",
    "adam_update",
    "session",
)

# name -> module path. Later backends register here; the order of AUTO_ORDER is the preference of "auto".
_MODULES = {
    "numba": "fastae.backends.numba_cpu",
    "numpy": "fastae.backends.numpy_ref",
}
AUTO_ORDER = ("numba", "numpy")
DTYPES = ("float32", "float64")

_loaded: dict[str, ModuleType] = {}


def _load(name: str) -> ModuleType:
    if name not in _loaded:
        _loaded[name] = importlib.import_module(_MODULES[name])
    return _loaded[name]


def missing_ops(module: ModuleType) -> list[str]:
    """The ops of :data:`OPS` that ``module`` does not implement (empty for a complete backend)."""
    return [op for op in OPS if not callable(getattr(module, op, None))]


def supports(name: str, dtype: str) -> bool:
    """Whether backend ``name`` imports here, implements every op and supports ``dtype``."""
    if name not in _MODULES:
        return False
    try:
        module = _load(name)
    except ImportError:
        return False
    return dtype in module.DTYPES and not missing_ops(module)


def available_backends() -> list[str]:
    """Names of the backends that import on this machine."""
    return [name for name in _MODULES if supports(name, "float32") or supports(name, "float64")]


def get_backend(name: str, dtype: str) -> ModuleType:
    """The backend module ``name`` for ``dtype``; raises ``ValueError`` if it is unknown, cannot run ``dtype`` or
    lacks an op, and ``ImportError`` (with the reason) if it does not import."""
    if name not in _MODULES:
        raise ValueError(f"backend must be 'auto' or one of {sorted(_MODULES)}, got {name!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    try:
        module = _load(name)
    except ImportError as exc:
        raise ImportError(f"backend {name!r} is not available here: {exc}") from exc
    if dtype not in module.DTYPES:
        raise ValueError(f"backend {name!r} supports dtypes {list(module.DTYPES)}, not {dtype!r}")
    missing = missing_ops(module)
    if missing:
        raise ValueError(f"backend {name!r} does not implement ops {missing}")
    return module


def resolve_backend(name: str, dtype: str) -> ModuleType:
    """Like :func:`get_backend`, and ``"auto"`` picks the first backend of :data:`AUTO_ORDER` that supports
    ``dtype``. The chosen module's ``NAME`` says what ran."""
    if name != "auto":
        return get_backend(name, dtype)
    for candidate in AUTO_ORDER:
        if supports(candidate, dtype):
            return _load(candidate)
    raise ValueError(f"no backend supports dtype {dtype!r}; tried {list(AUTO_ORDER)}")
