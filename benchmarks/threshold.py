#!/usr/bin/env python3
"""Measure the serial/parallel threshold of the compiled kernels (bindings.cpp,
g_parallel_min_bytes): Adam float32, one thread vs all threads with the threshold forced
to 0, medians of 7 repetitions.  Usage: python benchmarks/threshold.py

Result on the 2-core EPYC (AVX-512) of benchmarks/README.md, workers spinning between
back-to-back steps: 2 threads lose below ~3e3 elements (84 KB moved), win x1.36 at 1e4
(280 KB), x1.5-1.7 at 2e4-5e4; hence the default threshold of 256 KB moved per call.
"""

import time

import numpy as np

from fastopt import _native as n
from fastopt._contract import ADAM


def bench(size, nt):
    n.set_num_threads(nt)
    p = np.ones(size, np.float32)
    g = np.full(size, 0.1, np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    scalars = ADAM.scalars(ADAM.defaults, 1)
    reps = max(20, int(3e7 / size))
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            n.step("adam", [p], [g], {"exp_avg": [m], "exp_avg_sq": [v]}, scalars)
        ts.append((time.perf_counter() - t0) / reps)
    return float(np.median(ts))


def main():
    before, nt = n._get_parallel_min_bytes(), n.get_num_threads()
    n._set_parallel_min_bytes(0)
    try:
        for size in [1000, 3000, 10000, 20000, 50000, 100000, 300000, 1000000]:
            t1, t2 = bench(size, 1), bench(size, nt)
            print(
                f"{size:>9}  1 thread {t1 * 1e6:8.2f} us  {nt} threads {t2 * 1e6:8.2f} us"
                f"  speed-up {t1 / t2:.2f}"
            )
    finally:
        n._set_parallel_min_bytes(before)
        n.set_num_threads(nt)


if __name__ == "__main__":
    main()
