#!/usr/bin/env python3
"""Thread scaling of one Adam step (float32, one array): fastopt native with
``nonfinite="ignore"`` and with the default ``"raise"``, torch fused
(``torch.optim.Adam(fused=True)``) and the bandwidth probe (``fastopt._native.probe_many``:
the same bytes as Adam, 4 arrays read and 3 written, no arithmetic, same ISA, threads and
chunking), at 1..N threads, in interleaved rounds (medians).  Usage::

    python benchmarks/scaling.py [--threads 1,2,4,8,16] [--sizes 1e6,1.6e7] [--rounds 9]

Prints a Markdown table: the median time of each contender, fastopt's speed-up over torch
fused (torch time / fastopt time) and its fraction of the probe (probe time / fastopt time;
1.0 = at the memory limit).  torch and fastopt get the same thread count
(``torch.set_num_threads``, ``fastopt.set_num_threads``).  torch is optional.
"""

import argparse
import os
import platform
import statistics

import numpy as np

import fastopt
from _harness import timer
from fastopt import _native

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None


def contenders(n):
    rng = np.random.default_rng(0)
    g = rng.standard_normal(n).astype(np.float32) * 1e-2
    out = {}
    for mode in ("ignore", "raise"):
        w = rng.standard_normal(n).astype(np.float32)
        opt = fastopt.Adam([w], lr=1e-3, nonfinite=mode)
        out[f"fastopt {mode}"] = lambda opt=opt: opt.step([g])
    if torch is not None:
        tw = torch.nn.Parameter(torch.from_numpy(rng.standard_normal(n).astype(np.float32)))
        tw.grad = torch.from_numpy(g.copy())
        topt = torch.optim.Adam([tw], lr=1e-3, fused=True)
        out["torch fused"] = topt.step
    slots = [[np.zeros(n, np.float32)] for _ in range(3)] + [[g]]
    out["probe"] = lambda: _native.probe_many(slots, 3)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ncpu = _native.default_num_threads()
    default = ",".join(str(t) for t in (1, 2, 4, 8, 16, 32, 64) if t < ncpu) + f",{ncpu}"
    ap.add_argument("--threads", default=default)
    ap.add_argument("--sizes", default="1e6,1.6e7")
    ap.add_argument("--rounds", type=int, default=9)
    a = ap.parse_args()
    threads = sorted({int(t) for t in a.threads.split(",")})
    sizes = [int(float(s)) for s in a.sizes.split(",")]
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}, fastopt ISA {_native.isa()}, "
        f"torch {torch.__version__ if torch else '-'}; Adam float32, one array; median of "
        f"{a.rounds} interleaved rounds.\n"
    )
    cols = None
    for n in sizes:
        reps = max(3, int(3e7 / n))
        for nt in threads:
            _native.set_num_threads(nt)
            if torch is not None:
                torch.set_num_threads(nt)
            cs = contenders(n)
            if cols is None:
                cols = list(cs)
                head = " | ".join(f"{c} (us)" for c in cols)
                print(f"| size | threads | {head} | ignore vs torch fused | ignore/probe |")
                print("|---" * (len(cols) + 4) + "|")
            for f in cs.values():
                f()
            t = {k: [] for k in cs}
            for _ in range(a.rounds):
                for k, f in cs.items():
                    t[k].append(timer(f, reps))
            med = {k: statistics.median(v) for k, v in t.items()}
            ign = med["fastopt ignore"]
            vs_torch = f"{med['torch fused'] / ign:.2f}" if "torch fused" in med else "-"
            cells = " | ".join(f"{med[c] * 1e6:.0f}" for c in cols)
            print(
                f"| {n:.2g} | {nt} | {cells} | {vs_torch} | {med['probe'] / ign:.2f} |", flush=True
            )


if __name__ == "__main__":
    main()
