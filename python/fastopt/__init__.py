"""fastopt: fast, PyTorch-exact optimizers and learning-rate schedules for NumPy arrays.

>>> import numpy as np, fastopt
>>> w = np.zeros(3, np.float32)
>>> opt = fastopt.Adam([w], lr=0.1)
>>> opt.step([np.ones(3, np.float32)])
"""
from . import kernels
from ._paths import get_cmake_dir, get_include
from .backends import available_backends, check_native_at_import as _check_native
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

__version__ = "0.1.0"

_check_native()

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Optimizer", "kernels",
           "available_backends", "get_include", "get_cmake_dir", "__version__"]


# Names served lazily from their modules, so that `import fastopt` stays light (plotting,
# TensorBoard and progress bars are optional extras).
_LAZY = {
    "schedules": ("fastopt.schedules", None),
    "lr_find": ("fastopt.lr_finder", "lr_find"),
    "LRFinderResult": ("fastopt.lr_finder", "LRFinderResult"),
    "History": ("fastopt.history", "History"),
    "TensorBoardLogger": ("fastopt.history", "TensorBoardLogger"),
    "plot_schedule": ("fastopt.plotting", "plot_schedule"),
    "set_num_threads": ("fastopt.parallel", "set_num_threads"),
    "get_num_threads": ("fastopt.parallel", "get_num_threads"),
    "flatten": ("fastopt.parallel", "flatten"),
    "save": ("fastopt.checkpoint", "save"),
    "load": ("fastopt.checkpoint", "load"),
    "clip_grad_norm": ("fastopt.clip", "clip_grad_norm"),
    "clip_grad_value": ("fastopt.clip", "clip_grad_value"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'fastopt' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
