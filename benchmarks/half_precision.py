"""Step time with float32 vs bfloat16 vs float16 parameters (float32 state either way).

Bytes moved per element (docs/design.md, memory traffic), Adam: float32 28 (p, g, m, v
read; p, m, v written), half 22 (p and g are 2 bytes); other optimizers likewise from their
state arrays.  One array of ``n`` elements (default 16M,
DRAM-bound), the native backend, ``nonfinite="ignore"``.  The dtypes are timed interleaved
(one step of each in turn, ``rounds`` times) so that a load change on the machine hits all
of them alike; the median step time and the speed-up over float32 are printed::

    .venv/bin/python benchmarks/half_precision.py            # 16M elements, 30 rounds
    .venv/bin/python benchmarks/half_precision.py 1e6 200
    FASTOPT_ISA=avx512 .venv/bin/python benchmarks/half_precision.py 1e5 300 --threads 1
    .venv/bin/python benchmarks/half_precision.py --optimizer RMSprop

``--optimizer NAME`` times another fastopt optimizer class (default ``Adam``, default
hyperparameters but ``lr=1e-3``).  ``--threads N`` sets fastopt's thread count (default: fastopt's default); at 1e5 elements on
one thread the arrays stay in cache and the step time is the kernel's arithmetic.

bfloat16 needs ml_dtypes (``pip install 'fastopt[half]'``); without it that row is left out.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import fastopt
from _harness import half_dtypes


def main() -> None:
    args = sys.argv[1:]
    if "--threads" in args:
        k = args.index("--threads")
        fastopt.set_num_threads(int(args[k + 1]))
        del args[k : k + 2]
    cls = fastopt.Adam
    if "--optimizer" in args:
        k = args.index("--optimizer")
        cls = getattr(fastopt, args[k + 1])
        del args[k : k + 2]
    n = int(float(args[0])) if args else 16 * 1024 * 1024
    rounds = int(args[1]) if len(args) > 1 else 30
    dtypes = {"float32": np.dtype(np.float32), **half_dtypes()}
    rng = np.random.default_rng(0)
    runs = {}
    for name, dt in dtypes.items():
        w = rng.standard_normal(n).astype(dt)
        g = (0.01 * rng.standard_normal(n)).astype(dt)
        opt = cls([w], lr=1e-3, backend="native", nonfinite="ignore")
        for _ in range(3):  # state allocated, pages touched
            opt.step([g])
        runs[name] = (opt, [g], [])
    for _ in range(rounds):
        for opt, grads, times in runs.values():
            t0 = time.perf_counter()
            opt.step(grads)
            times.append(time.perf_counter() - t0)
    base = statistics.median(runs["float32"][2])
    nstate = len(runs["float32"][0].state_dict()["state"][0])  # float32 arrays of n
    print(
        f"{cls.__name__}, {n} elements, native ISA {fastopt.backends.resolve('native')[1].isa()}, "
    )
    print(f"{fastopt.get_num_threads()} threads, median of {rounds} interleaved steps")
    for name, (_, _, times) in runs.items():
        t = statistics.median(times)
        nbytes = 8 * nstate + (12 if name == "float32" else 6)  # state r+w; p r+w, g r
        print(
            f"  {name:9s} {t * 1e6:10.1f} us  {nbytes * n / t / 1e9:6.1f} GB/s  "
            f"speed-up vs float32 {base / t:5.2f}x"
        )


if __name__ == "__main__":
    main()
