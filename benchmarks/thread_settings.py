"""Adam step time (float32, one array of n elements, native, ``nonfinite="ignore"``) for
several ``fastopt.set_num_threads`` settings, interleaved in one process (the setting changes
between rounds, as it may in a program), medians.  Settings above the CPU count show what
oversubscription costs, and a small setting right after a large one shows whether the idle
workers of the large one get in the way::

    python benchmarks/thread_settings.py [n] [settings]    # default: 1e6 1,2,4,16
"""

from __future__ import annotations

import statistics
import sys

import numpy as np

import fastopt
from _harness import timer


def main() -> None:
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 10**6
    settings = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "1,2,4,16").split(",")]
    w = np.zeros(n, np.float32)
    g = [np.full(n, 0.01, np.float32)]
    opt = fastopt.Adam([w], nonfinite="ignore")
    reps = max(3, int(2e7 / n))
    times: dict[int, list[float]] = {s: [] for s in settings}
    for _ in range(9):
        for s in settings:
            fastopt.set_num_threads(s)
            opt.step(g)
            times[s].append(timer(lambda: opt.step(g), reps))
    cells = "  ".join(f"{s} threads {statistics.median(t) * 1e6:8.1f} us" for s, t in times.items())
    print(f"n {n}: {cells}")


if __name__ == "__main__":
    main()
