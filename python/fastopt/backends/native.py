"""The compiled backend: thin re-export of the pybind11 module ``fastopt._native``.

The C++ entry points check every array (same rules and messages as ``_checks.collect``)
before writing any, then release the GIL and run the fused kernels of
``cpp/include/fastopt/kernels.hpp``.
"""
from .._native import adagrad, adam, rmsprop, sgd  # noqa: F401
