"""The one comparison for "this backend gives the NumPy reference's result": bit identity.

Every backend (the C++ kernels on each ISA and thread count, the Numba loops, serial or
``prange``) evaluates the same operations, in the same order, in the array's own dtype, on
the same float64-derived scalars cast once to that dtype (``docs/design.md``).  IEEE 754
makes each of ``+ - * / sqrt`` correctly rounded, so the same sequence of operations gives
the same bits; the C++ is built with ``-ffp-contract=off`` so that the compiler cannot fuse
``a*b + c`` into one FMA (one rounding instead of two) on one path and not another.  So
there is no tolerance to choose: a backend that differs from the reference in one bit of
one element has a different formula or order, which is a bug, however small the number.

The tests used to allow ``rtol=1e-12`` (float64) and ``2e-5`` or ``2e-6`` (float32) here.
Those are the tolerances of a *different* property, agreement with PyTorch's own numbers
(``tests/test_torch_parity.py``: PyTorch computes some scalars in another order, and
float32 PyTorch kernels may use FMA), and they would hide a reordered formula on a backend.

NaN compares equal to NaN at the same position (a NaN gradient under ``nonfinite="ignore"``
must propagate identically); ``-0.0`` and ``0.0`` are different bits and compare unequal.
"""

from __future__ import annotations

import numpy as np

__all__ = ["assert_same_bits"]


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def assert_same_bits(got: np.ndarray, ref: np.ndarray, what: str = "") -> None:
    """Assert that ``got`` and ``ref`` have the same dtype, shape and bits (NaNs of any
    payload compare equal to each other).  On failure, say how many elements differ, the
    first one, and by how many units in the last place."""
    got, ref = np.asarray(got), np.asarray(ref)
    prefix = f"{what}: " if what else ""
    assert got.dtype == ref.dtype, f"{prefix}dtype {got.dtype} != reference {ref.dtype}"
    assert got.shape == ref.shape, f"{prefix}shape {got.shape} != reference {ref.shape}"
    if got.dtype.kind != "f":
        np.testing.assert_array_equal(got, ref, err_msg=what)
        return
    differ = _bits(got) != _bits(ref)
    differ &= ~(np.isnan(got) & np.isnan(ref))
    if not differ.any():
        return
    idx = np.unravel_index(int(np.argmax(differ)), got.shape)
    ulps = np.abs(_bits(got).astype(np.int64) - _bits(ref).astype(np.int64))[idx]
    raise AssertionError(
        f"{prefix}{int(differ.sum())} of {got.size} elements differ from the reference "
        f"(they must be bit-identical); first at index {tuple(map(int, idx))}: "
        f"{got[idx]!r} vs {ref[idx]!r} ({int(ulps)} ulp apart)"
    )
