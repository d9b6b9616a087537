"""Cost of 4K aliasing: a native Adam step (float32, one array of n elements, 1 thread) with
the parameter, gradient and both state arrays at the same offset within the 4 KiB page (what
plain ``np.zeros`` gives every large array), against the state arrays placed as fastopt
places them (``fastopt._memory.zeros_beside``: 1 and 2 KiB past the parameter's offset).
Interleaved rounds, medians::

    python benchmarks/placement.py [n ...]          # default: 1e5 1e6

``--dtypes [n]``: ``fastopt.Adam(...).step`` (native, ``nonfinite="ignore"``, the thread
setting as it is; default 16M elements) with float32, float16 and bfloat16 parameters, each
with fastopt's placement of its state and with NumPy's (``zeros_beside`` replaced by
``np.zeros``), all interleaved, 30 rounds::

    python benchmarks/placement.py --dtypes [n]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

import fastopt
from _harness import half_dtypes
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


def dtypes_main(n: int) -> None:
    placed = _memory.zeros_beside
    runs: dict[tuple[str, str], tuple[fastopt.Adam, list[np.ndarray], list[float]]] = {}
    rng = np.random.default_rng(0)
    dtypes = {"float32": np.dtype(np.float32), **half_dtypes()}
    for where in ("fastopt", "numpy"):
        if where == "numpy":
            _memory.zeros_beside = lambda shape, dtype, beside, slot: np.zeros(shape, dtype)
        try:
            for name, dt in dtypes.items():
                w = rng.standard_normal(n).astype(dt)
                g = (0.01 * rng.standard_normal(n)).astype(dt)
                opt = fastopt.Adam([w], nonfinite="ignore")
                for _ in range(3):  # state allocated, pages touched
                    opt.step([g])
                runs[(where, name)] = (opt, [g], [])
        finally:
            _memory.zeros_beside = placed
    for _ in range(30):
        for opt, grads, times in runs.values():
            t0 = time.perf_counter()
            opt.step(grads)
            times.append(time.perf_counter() - t0)
    print(
        f"Adam, {n} elements, {fastopt.get_num_threads()} threads, median of 30 interleaved steps"
    )
    for where in ("fastopt", "numpy"):
        base = statistics.median(runs[(where, "float32")][2])
        cells = "  ".join(
            f"{name} {statistics.median(runs[(where, name)][2]) * 1e3:7.3f} ms "
            f"({base / statistics.median(runs[(where, name)][2]):4.2f}x float32)"
            for name in dtypes
        )
        print(f"  {where:8s} placement: {cells}")


def main() -> None:
    if sys.argv[1:2] == ["--dtypes"]:
        dtypes_main(int(float(sys.argv[2])) if len(sys.argv) > 2 else 16 * 1024 * 1024)
        return
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
