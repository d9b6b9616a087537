"""A step allocates nothing proportional to the arrays (native and numba backends).

NumPy reports its data allocations to tracemalloc, so a temporary of a 1e6-element array
(4 MB) would show up as a multi-megabyte peak.  A fused step may allocate only small
Python objects (argument lists, views): the peak must stay below a few KB.
"""

import tracemalloc

import numpy as np
import pytest

import fastopt

N = 1_000_000
LIMIT = 16 * 1024  # bytes: small objects only, 4 MB would be one temporary
BACKENDS = [b for b in fastopt.available_backends() if b != "numpy"]
CASES = [
    (fastopt.SGD, dict(lr=0.01)),
    (fastopt.SGD, dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (fastopt.Adagrad, dict(weight_decay=0.1)),
    (fastopt.RMSprop, dict(centered=True, momentum=0.5)),
    (fastopt.Adam, dict(amsgrad=True, weight_decay=0.1)),
    (fastopt.AdamW, {}),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "cls,kw", CASES, ids=[f"{c.__name__}{i}" for i, (c, _) in enumerate(CASES)]
)
def test_step_allocates_nothing_proportional(backend, threads, cls, kw, monkeypatch):
    if backend == "numba" and threads > 1:  # take the prange path at this size too
        monkeypatch.setattr("fastopt.backends.numba.PARALLEL_MIN_SIZE", 1)
    before = fastopt.get_num_threads()
    fastopt.set_num_threads(threads)
    try:
        w = np.random.default_rng(0).standard_normal(N).astype(np.float32)
        g = np.full(N, 0.5, np.float32)
        opt = cls([w], backend=backend, **kw)
        opt.step([g])  # state creation and JIT warm-up happen here
        opt.step([g])
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            opt.step([g])
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    finally:
        fastopt.set_num_threads(before)
    assert peak < LIMIT, f"{cls.__name__} step on {backend} allocated {peak} bytes at peak"
