"""Cost of 4K aliasing: a native Adam step (float32, one array of n elements, 1 thread) with
the parameter, gradient and both state arrays at the same offset within the 4 KiB page (what
plain ``np.zeros`` gives every large array), against the state arrays placed as fastopt
places them (``fastopt._memory.zeros_beside``: 1 and 2 KiB past the parameter's offset).
Interleaved rounds, medians::

    python benchmarks/placement.py [n ...]          # default: 1e5 1e6
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from fastopt import _memory, _native
from fastopt._contract import ADAM


def at_offset(n: int, off: int) -> np.ndarray:
    """n float32 zeros starting `off` bytes into a page."""
    buf = np.zeros(n * 4 + _memory.PAGE, np.uint8)
    o = (off - buf.ctypes.data) % _memory.PAGE
    return buf[o : o + n * 4].view(np.float32)


def case(n: int, placed: bool) -> Callable[[], object]:
    p, g = at_offset(n, 16), at_offset(n, 16)
    g[:] = np.random.default_rng(0).standard_normal(n)
    if placed:
        m, v = (_memory.zeros_beside((n,), np.float32, p, s) for s in (1, 2))
    else:
        m, v = at_offset(n, 16), at_offset(n, 16)
    sc = ADAM.scalars(ADAM.defaults, 1)
    state = {"exp_avg": [m], "exp_avg_sq": [v]}
    return lambda: _native.step("adam", [p], [g], state, sc)


def main() -> None:
    sizes = [int(float(s)) for s in sys.argv[1:]] or [10**5, 10**6]
    _native.set_num_threads(1)
    for n in sizes:
        cases = {"same page offset": case(n, False), "fastopt placement": case(n, True)}
        reps = max(3, int(2e7 / n))
        t: dict[str, list[float]] = {k: [] for k in cases}
        for f in cases.values():
            f()
        for _ in range(15):
            for k, f in cases.items():
                t0 = time.perf_counter()
                for _ in range(reps):
                    f()
                t[k].append((time.perf_counter() - t0) / reps)
        med = {k: statistics.median(v) * 1e6 for k, v in t.items()}
        a, b = med.values()
        print(
            f"n {n:>9}: "
            + "  ".join(f"{k} {v:8.1f} us" for k, v in med.items())
            + f"  ratio {a / b:.2f}"
        )


if __name__ == "__main__":
    main()
