"""The compiled backend: thin re-export of the pybind11 module ``fastopt._native``.

The C++ entry points check every array (same rules and messages as ``_checks.collect``)
before writing any, then release the GIL and run the fused kernels of
``cpp/include/fastopt/kernels.hpp``: one pass over memory, SIMD for the best instruction
set of the CPU (chosen at import; ``FASTOPT_ISA=generic|avx2|avx512`` or ``set_isa``
override it) and the thread pool above a size threshold (``fastopt.set_num_threads``).
Every array of a call (every parameter of a group) is updated by that one native call;
``step(kind, params, grads, state, scalars, names)`` is the interface of ``fastopt._contract``
(plus ``check_finite``: the finiteness check of ``nonfinite="raise"`` in the same call).
"""

from .._native import (  # noqa: F401
    get_num_threads,
    isa,
    nonfinite_rows,
    probe,
    probe_many,
    set_isa,
    set_num_threads,
    step,
    supported_isas,
)
