"""Backend selection.

Three implementations of the same kernels, each importable on its own:

=========  ==========================================  =============================
name       what                                        when
=========  ==========================================  =============================
native     C++ (pybind11), fused, GIL released          the extension was built
numba      ``@njit(cache=True)`` loops                  no compiled extension
numpy      plain NumPy, the readable reference          always; the spec as code
=========  ==========================================  =============================

``backend="auto"`` (the default everywhere) picks the first available in that order;
the environment variable ``FASTOPT_BACKEND`` overrides what "auto" means.  Numba is an
optional dependency (``pip install 'fastopt[numba]'``); without it the numba backend is
simply not available.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

_ORDER = ("native", "numba", "numpy")
_modules: dict[str, ModuleType] = {}
_errors: dict[str, ImportError] = {}
_warned = False

_HINTS = {
    "native": "install fastopt from source with a C++17 compiler present: `pip install "
    "--force-reinstall --no-cache-dir fastopt` (or `make install` in a checkout)",
    "numba": "install Numba: `pip install 'fastopt[numba]'`",
}


def _load(name: str) -> ModuleType | None:
    if name in _modules:
        return _modules[name]
    if name in _errors:
        return None
    try:
        mod = importlib.import_module(f"fastopt.backends.{name}")
    except ImportError as exc:  # missing extension or missing numba
        _errors[name] = exc
        return None
    _modules[name] = mod
    return mod


def available_backends() -> list[str]:
    """The backends that import on this machine, fastest first."""
    return [name for name in _ORDER if _load(name) is not None]


def _warn_fallback(chosen: str) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    also = ""
    if chosen == "numpy" and "numba" in _errors:
        also = f" (Numba, the faster fallback, is not installed either: {_HINTS['numba']})"
    warnings.warn(
        f"fastopt's compiled kernels (fastopt._native) are not available "
        f"({_errors.get('native')}); using the {chosen!r} backend instead{also}. "
        f"To get the compiled kernels, {_HINTS['native']}.",
        RuntimeWarning,
        stacklevel=4,
    )


def check_native_at_import() -> None:
    """Warn once, at ``import fastopt``, if the compiled kernels are missing and the user has
    not chosen another backend explicitly with FASTOPT_BACKEND."""
    env = os.environ.get("FASTOPT_BACKEND", "").strip().lower()
    if env in ("numba", "numpy"):
        return
    if _load("native") is None:
        fallback = next((n for n in _ORDER if _load(n) is not None), "numpy")
        _warn_fallback(fallback)


def resolve(backend: str | None = "auto") -> tuple[str, ModuleType]:
    """Return ``(name, module)`` for a backend name ("auto", "native", "numba", "numpy")."""
    if backend is None:
        backend = "auto"
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string, one of {('auto',) + _ORDER}, got {backend!r}")
    if backend == "auto":
        env = os.environ.get("FASTOPT_BACKEND", "").strip().lower()
        if env and env != "auto":
            if env not in _ORDER:
                raise ValueError(
                    f"FASTOPT_BACKEND={env!r} is not a backend; use one of {('auto',) + _ORDER}"
                )
            backend = env
        else:
            for name in _ORDER:
                mod = _load(name)
                if mod is not None:
                    if name != "native":
                        _warn_fallback(name)
                    return name, mod
    if backend not in _ORDER:
        raise ValueError(f"backend must be one of {('auto',) + _ORDER}, got {backend!r}")
    mod = _load(backend)
    if mod is None:
        hint = f"; to get it, {_HINTS[backend]}" if backend in _HINTS else ""
        raise ImportError(
            f"the {backend!r} backend is not available here: {_errors[backend]}{hint}. "
            f"Available: {available_backends()}"
        )
    return backend, mod
