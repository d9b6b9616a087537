"""The compiled backend: thin re-export of the pybind11 module ``fastopt._native``.

The C++ entry points check every array (same rules and messages as ``_checks.collect``)
before writing any, then release the GIL and run the fused kernels of
``cpp/include/fastopt/kernels.hpp``: one pass over memory, SIMD for the best instruction
set of the CPU (chosen at import; ``FASTOPT_ISA=generic|avx2|avx512|avx512bf16`` or
``set_isa`` override it) and the thread pool above a size threshold (``fastopt.set_num_threads``).
Every array of a call (every parameter of a group) is updated by that one native call;
``step(kind, params, grads, state, scalars, names)`` is the interface of ``fastopt._contract``
(plus ``check_finite``: the finiteness check of ``nonfinite="raise"`` in the same call, and
``masters``: see ``FUSED_MASTERS``).
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

#: ``step(..., masters=[float32 array or None per row])``: the float32 master copies of half
#: parameters (``master_weights=True``) are updated in place of the parameters, from the half
#: gradients widened block by block, and each half parameter is written as its master rounded
#: to nearest even, in the same pass (no float32 copy of the gradient, no second pass to copy
#: the masters back).  The optimizers use it when their backend has this flag.
FUSED_MASTERS = True
