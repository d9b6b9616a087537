"""fastopt: fast, PyTorch-exact optimizers and learning-rate schedules for NumPy arrays.

>>> import numpy as np, fastopt
>>> w = np.zeros(3, np.float32)
>>> opt = fastopt.Adam([w], lr=0.1)
>>> opt.step([np.ones(3, np.float32)])
"""
from . import kernels
from .backends import available_backends
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

__version__ = "0.1.0"

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Optimizer", "kernels",
           "available_backends", "__version__"]


def __getattr__(name):
    # Optional modules are imported lazily so that `import fastopt` stays light.
    if name == "schedules":
        import importlib
        return importlib.import_module("fastopt.schedules")
    raise AttributeError(f"module 'fastopt' has no attribute {name!r}")
