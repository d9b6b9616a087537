"""Cost of the default finiteness check: ``opt.step`` time of Adam (float32, one array of
n elements) with ``nonfinite="raise"`` over ``nonfinite="ignore"``, for 1 and 2 threads,
interleaved rounds, medians.  Also times the pieces (the bare kernel call and
``_native.nonfinite_rows`` where it exists).  Usage::

    python benchmarks/check_cost.py [sizes...] [--threads 1,2]   # default: 1e5 1e6 16e6
"""

import statistics
import sys

import numpy as np

import fastopt
from _harness import timer
from fastopt import _native
from fastopt._contract import ADAM


def cases(n):
    rng = np.random.default_rng(0)
    g = rng.standard_normal(n).astype(np.float32)
    opts = {m: fastopt.Adam([np.zeros(n, np.float32)], nonfinite=m) for m in ("raise", "ignore")}
    p, m, v = (np.zeros(n, np.float32) for _ in range(3))
    sc = ADAM.scalars(ADAM.defaults, 1)
    state = {"exp_avg": [m], "exp_avg_sq": [v]}
    out = {
        "raise": lambda: opts["raise"].step([g]),
        "ignore": lambda: opts["ignore"].step([g]),
        "kernel": lambda: _native.step("adam", [p], [g], state, sc),
    }
    if hasattr(_native, "nonfinite_rows"):
        out["check"] = lambda: _native.nonfinite_rows([g])
    return out


def main():
    args = sys.argv[1:]
    threads = [1, 2]
    if "--threads" in args:
        k = args.index("--threads")
        threads = [int(t) for t in args[k + 1].split(",")]
        del args[k : k + 2]
    sizes = [int(float(s)) for s in args] or [10**5, 10**6, 16 * 10**6]
    rounds = 15
    for nt in threads:
        _native.set_num_threads(nt)
        for n in sizes:
            cs = cases(n)
            reps = max(3, int(2e7 / n))
            for f in cs.values():
                f()
            t = {k: [] for k in cs}
            for _ in range(rounds):
                for k, f in cs.items():
                    t[k].append(timer(f, reps))
            med = {k: statistics.median(v) for k, v in t.items()}
            ratio = statistics.median(a / b for a, b in zip(t["raise"], t["ignore"]))
            pieces = " ".join(f"{k} {v * 1e6:9.1f}us" for k, v in med.items())
            print(f"threads {nt} n {n:>9}: raise/ignore {ratio:5.3f}  {pieces}", flush=True)


if __name__ == "__main__":
    main()
