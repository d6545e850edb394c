"""Which backend runs: an explicit table, the contract checked on load, and an ``"auto"`` that says what it chose.

A backend is a module that meets :mod:`fastae.backends.contract`; :func:`register` adds one (a later backend,
or a test's). Nothing falls back silently: asking for a backend that cannot run raises, and ``"auto"`` records
its choice on the model (``model.backend_``) so a benchmark can never time the wrong engine.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

from . import contract

# name -> module path (or module). AUTO_ORDER is the preference of "auto"; a backend outside it runs only when
# asked for by name.
_MODULES: dict[str, str | ModuleType] = {
    "numba": "fastae.backends.numba_cpu",
    "numba-pool": "fastae.backends.numba_pool",
    "numpy": "fastae.backends.numpy_ref",
    "cupy": "fastae.backends.cupy_gpu",
}
AUTO_ORDER = ["numba", "numpy", "cupy"]
# backends for device arrays: "auto" considers them only for input with __cuda_array_interface__ (a CuPy array), so
# resolving "auto" for NumPy input never imports CuPy
_DEVICE = {"cupy"}
DTYPES = contract.KNOWN_DTYPES

_loaded: dict[str, ModuleType] = {}


def register(name: str, module: str | ModuleType, auto: bool = False) -> None:
    """Add backend ``name`` (a module, or its import path, loaded on first use); with ``auto``, ``"auto"`` may
    choose it, after the backends registered before it. Its contract is checked when it is first loaded."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a backend name must be a non-empty string, got {name!r}")
    _MODULES[name] = module
    _loaded.pop(name, None)
    if auto and name not in AUTO_ORDER:
        AUTO_ORDER.append(name)


def unregister(name: str) -> None:
    """Remove backend ``name`` (a test's, typically)."""
    _MODULES.pop(name, None)
    _loaded.pop(name, None)
    if name in AUTO_ORDER:
        AUTO_ORDER.remove(name)


def _load(name: str) -> ModuleType:
    if name not in _loaded:
        target = _MODULES[name]
        module = importlib.import_module(target) if isinstance(target, str) else target
        found = contract.problems(module)
        if found:
            raise TypeError(f"backend {name!r} ({module.__name__}) breaks the backend contract: " + "; ".join(found))
        _loaded[name] = module
    return _loaded[name]


def unavailable(name: str, dtype: str | None = None) -> str | None:
    """Why backend ``name`` cannot run here (for ``dtype``, if given), or ``None`` if it can."""
    if name not in _MODULES:
        return f"backend {name!r} is unknown; known: {sorted(_MODULES)}"
    try:
        module = _load(name)
    except ImportError as exc:
        return f"backend {name!r} does not import here: {exc}"
    except TypeError as exc:  # it breaks the contract
        return str(exc)
    if dtype is not None and dtype not in module.DTYPES:
        return f"backend {name!r} supports dtypes {list(module.DTYPES)}, not {dtype!r}"
    return module.unavailable()


def can_run(name: str, dtype: str) -> bool:
    """Whether backend ``name`` imports here, meets the contract, can run and supports ``dtype``."""
    return unavailable(name, dtype) is None


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine.

    Returns
    -------
    list of str
        In registration order; each is a valid ``backend=`` of the estimators.
    """
    return [name for name in _MODULES if any(can_run(name, d) for d in DTYPES)]


def get_backend(name: str, dtype: str) -> ModuleType:
    """The backend module ``name`` for ``dtype``; raises ``ValueError`` if it is unknown, cannot run ``dtype``
    or cannot run here, and ``ImportError`` (with the reason) if it does not import."""
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
    reason = module.unavailable()
    if reason is not None:
        raise ValueError(f"backend {name!r} cannot run here: {reason}")
    return module


def resolve_backend(name: str, dtype: str, like=None) -> ModuleType:
    """Like :func:`get_backend`, and ``"auto"`` picks the first backend of :data:`AUTO_ORDER` that runs ``dtype``
    and takes ``like``'s array type natively (a host backend for anything else, which is converted to NumPy).
    The chosen module's ``NAME`` says what ran."""
    if name != "auto":
        return get_backend(name, dtype)
    on_device = like is not None and hasattr(like, "__cuda_array_interface__")
    candidates = [n for n in AUTO_ORDER if on_device or n not in _DEVICE]
    runnable = [_load(n) for n in candidates if can_run(n, dtype)]
    kind = type(like) if like is not None and any(isinstance(like, m.ARRAY_TYPES) for m in runnable) else np.ndarray
    for module in runnable:
        if issubclass(kind, module.ARRAY_TYPES):
            return module
    raise ValueError(f"no backend runs dtype {dtype!r} on {kind.__name__} input; tried {list(AUTO_ORDER)}")
