"""Adam with ``master_weights=True``: the float32 path vs the native backend's fused call.

The float32 path (what the numpy and numba backends do, and what the native backend did
before ``_native.step(..., masters=...)``): widen each half gradient into a float32 copy,
run the float32 step on the masters, copy the masters back into the half parameters.  The
fused call does it in one pass.  Both run in this process on the same build (the old path
by ``opt._fused_masters = False``), interleaved: one step of each in turn, the order
reversed every other round; the medians and the median of the per-round ratio.  A plain
float32 Adam step on the same number of elements runs in the same rounds: the fused step
moves as many bytes (28 per element), and its time over that step's is printed too::

    .venv/bin/python benchmarks/master_weights.py                 # 16M, 21 rounds, ignore
    FASTOPT_ISA=avx2 .venv/bin/python benchmarks/master_weights.py 16e6 21 raise

Needs ml_dtypes (``pip install 'fastopt[half]'``) for the bfloat16 rows.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import fastopt
from _harness import half_dtypes


def main() -> None:
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 16 * 1024 * 1024
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 21
    mode = sys.argv[3] if len(sys.argv) > 3 else "ignore"
    dtypes = half_dtypes()
    rng = np.random.default_rng(0)
    runs = {}
    w32 = rng.standard_normal(n).astype(np.float32)
    g32 = (0.01 * rng.standard_normal(n)).astype(np.float32)
    opt32 = fastopt.Adam([w32], lr=1e-3, backend="native", nonfinite=mode)
    for _ in range(3):
        opt32.step([g32])
    runs[("float32", None)] = (opt32, [g32], [])
    for name, dt in dtypes.items():
        g = (0.01 * rng.standard_normal(n)).astype(dt)
        for fused in (False, True):
            w = rng.standard_normal(n).astype(dt)
            opt = fastopt.Adam([w], lr=1e-3, backend="native", nonfinite=mode, master_weights=True)
            opt._fused_masters = fused
            for _ in range(3):  # state allocated, pages touched
                opt.step([g])
            runs[(name, fused)] = (opt, [g], [])
    keys = list(runs)
    for r in range(rounds):
        for key in keys if r % 2 == 0 else keys[::-1]:
            opt, grads, times = runs[key]
            t0 = time.perf_counter()
            opt.step(grads)
            times.append(time.perf_counter() - t0)
    isa = fastopt.backends.resolve("native")[1].isa()
    print(f"Adam master_weights=True, {n} elements, native ISA {isa}, nonfinite={mode!r},")
    print(f"{fastopt.get_num_threads()} threads, median of {rounds} interleaved steps")
    plain = runs[("float32", None)][2]
    print(f"  float32 Adam (no masters) {statistics.median(plain) * 1e6:10.1f} us")
    for name in dtypes:
        old, new = runs[(name, False)][2], runs[(name, True)][2]
        ratio = statistics.median(a / b for a, b in zip(old, new))
        vs32 = statistics.median(b / a for a, b in zip(plain, new))
        print(
            f"  {name:9s} float32 path {statistics.median(old) * 1e6:10.1f} us  "
            f"fused {statistics.median(new) * 1e6:10.1f} us  ratio {ratio:5.2f}x  "
            f"fused / float32 Adam {vs32:5.2f}"
        )


if __name__ == "__main__":
    main()
