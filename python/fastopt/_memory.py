"""Where the optimizer's own arrays (state, float32 masters) are placed in memory.

An element-wise kernel streams the parameter, the gradient and the state arrays side by side.
When their addresses are equal modulo the 4 KiB page, which is what NumPy gives every large
array by default (each is a fresh ``mmap``, so every one starts 16 bytes into a page), the
loads and stores of the different streams fall on the same cache sets and the CPU's
memory-disambiguation logic sees false store-to-load dependencies ("4K aliasing").  Measured
on the development VM (AMD EPYC, AVX-512, 1 thread, native Adam, float32): 40.3 us per step at
1e5 elements and 381 us at 1e6 when all four arrays share their page offset, 30.5 us and
320 us when the two state arrays sit 1 and 2 KiB further (``benchmarks/placement.py``).

So each state array of a parameter of at least :data:`MIN_BYTES` starts ``slot`` KiB past the
parameter's own page offset (same alignment within a cache line as the parameter, so the
kernel's vector loops see all streams alike).  The padding costs at most one page of address
space per array; untouched pages of a ``np.zeros`` buffer take no memory.
"""

from __future__ import annotations

import math

import numpy as np

PAGE = 4096
STRIDE = 1024
#: Arrays smaller than this are allocated as NumPy does (the padding would not pay off).
MIN_BYTES = 1 << 16


def zeros_beside(
    shape: tuple[int, ...], dtype: np.dtype | type, beside: np.ndarray, slot: int
) -> np.ndarray:
    """A C-contiguous zero array of ``shape`` and ``dtype`` whose address is
    ``slot * STRIDE`` bytes past ``beside``'s modulo :data:`PAGE` (``slot`` >= 1; the slots
    of one parameter's arrays should differ), or a plain ``np.zeros`` when it is smaller
    than :data:`MIN_BYTES`."""
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize
    if nbytes < MIN_BYTES:
        return np.zeros(shape, dt)
    buf = np.zeros(nbytes + PAGE, np.uint8)
    want = (beside.ctypes.data + slot * STRIDE) % PAGE
    off = (want - buf.ctypes.data) % PAGE
    return buf[off : off + nbytes].view(dt).reshape(shape)
