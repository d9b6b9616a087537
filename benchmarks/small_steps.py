#!/usr/bin/env python3
"""Per-step overhead: ``opt.step`` of Adam (float32) at 1e3 elements and on 1000 arrays of
1e3, fastopt (``nonfinite="raise"``, the default, and ``"ignore"``) against torch fused
(``torch.optim.Adam(fused=True)``), interleaved rounds, medians; prints the speed-ups
(torch fused time / fastopt time).  Usage: ``python benchmarks/small_steps.py [rounds]``.
For a stable count of the Python work, run one case under callgrind (see step_overhead.py).
"""

import statistics
import sys

import numpy as np
import torch

import fastopt
from _harness import timer


def cases(n, k):
    rng = np.random.default_rng(0)
    gs = [rng.standard_normal(n).astype(np.float32) * 1e-2 for _ in range(k)]
    out = {}
    for mode in ("raise", "ignore"):
        opt = fastopt.Adam([np.ones(n, np.float32) for _ in range(k)], nonfinite=mode)
        out[mode] = lambda opt=opt: opt.step(gs)
    tp = [torch.nn.Parameter(torch.ones(n)) for _ in range(k)]
    for p, g in zip(tp, gs):
        p.grad = torch.from_numpy(g.copy())
    out["torch fused"] = torch.optim.Adam(tp, fused=True).step
    return out


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    torch.set_num_threads(fastopt.get_num_threads())
    for label, n, k, reps in (("1e3", 1000, 1, 2000), ("1000x1e3", 1000, 1000, 20)):
        cs = cases(n, k)
        for f in cs.values():
            for _ in range(10):
                f()
        t = {c: [] for c in cs}
        for _ in range(rounds):
            for c, f in cs.items():
                t[c].append(timer(f, reps))
        med = {c: statistics.median(v) for c, v in t.items()}
        tf = med["torch fused"]
        print(
            f"{label:>9}: raise {med['raise'] * 1e6:8.2f} us (x{tf / med['raise']:5.2f})  "
            f"ignore {med['ignore'] * 1e6:8.2f} us (x{tf / med['ignore']:5.2f})  "
            f"torch fused {tf * 1e6:8.2f} us",
            flush=True,
        )


if __name__ == "__main__":
    main()
