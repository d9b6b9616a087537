"""fastopt: fast, PyTorch-exact optimizers and learning-rate schedules for NumPy arrays.

>>> import numpy as np, fastopt
>>> w = np.zeros(3, np.float32)
>>> opt = fastopt.Adam([w], lr=0.1)
>>> opt.step([np.ones(3, np.float32)])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import kernels
from ._paths import get_cmake_dir, get_include
from ._version import __version__
from .backends import available_backends
from .backends import check_native_at_import as _check_native
from .errors import NonFiniteGradientError
from .optim import (
    ASGD,
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Muon,
    NAdam,
    Optimizer,
    RAdam,
    RMSprop,
    Rprop,
)

if TYPE_CHECKING:  # the lazy names below, spelled out for type checkers
    from . import schedules
    from .checkpoint import load, save
    from .clip import clip_grad_norm, clip_grad_value
    from .history import History, TensorBoardLogger
    from .lr_finder import LRFinderResult, lr_find
    from .parallel import flatten, get_num_threads, set_num_threads
    from .plotting import plot_schedule

_check_native()

__all__ = [
    "ASGD",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "Adamax",
    "AdamW",
    "History",
    "LRFinderResult",
    "Muon",
    "NAdam",
    "NonFiniteGradientError",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "TensorBoardLogger",
    "__version__",
    "available_backends",
    "clip_grad_norm",
    "clip_grad_value",
    "flatten",
    "get_cmake_dir",
    "get_include",
    "get_num_threads",
    "kernels",
    "load",
    "lr_find",
    "plot_schedule",
    "save",
    "schedules",
    "set_num_threads",
]


# Names served lazily from their modules, so that `import fastopt` stays light (plotting,
# TensorBoard and progress bars are optional extras): module -> the names it serves.
_LAZY_FROM: dict[str, tuple[str, ...]] = {
    "lr_finder": ("lr_find", "LRFinderResult"),
    "history": ("History", "TensorBoardLogger"),
    "plotting": ("plot_schedule",),
    "parallel": ("set_num_threads", "get_num_threads", "flatten"),
    "checkpoint": ("save", "load"),
    "clip": ("clip_grad_norm", "clip_grad_value"),
}
# name -> (module, attribute); None: the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    "schedules": ("fastopt.schedules", None),
    **{name: (f"fastopt.{module}", name) for module, names in _LAZY_FROM.items() for name in names},
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'fastopt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
