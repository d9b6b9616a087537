"""Timing helpers shared by the interleaved benchmark scripts (run as
``python benchmarks/<script>.py``, which puts this folder on ``sys.path``).

Contenders are timed in interleaved rounds, so that a change of load or memory bandwidth on
the machine hits all of them alike.  Between two contenders the scripts call :func:`settle`:
a thread pool that spins after its job (PyTorch's OpenMP workers keep a core busy for several
milliseconds after a step; fastopt's pool up to 300 us) would otherwise take a core from
whichever contender runs next.  Measured on the 2-core VM (Adam 1e6, 2 threads, order fastopt
ignore, fastopt raise, torch fused, probe; a copy of ``scaling.py``'s loop with the settle
switched on and off, not in the tree): without it fastopt "ignore", timed right after
torch, took 281 us and the probe 188 us; with a 5 ms settle, 165 and 126 us, their times when
torch is left out.  The settle busy-waits instead of sleeping: after a sleep of 20 ms or more
every contender ran slower on that VM (its vCPUs idle)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

SETTLE_S = 0.01


def settle(seconds: float = SETTLE_S) -> None:
    """Busy-wait ``seconds`` on the calling thread, while other threads' spin-waits expire."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def timer(fn: Callable[[], object], reps: int) -> float:
    """Seconds per call of ``fn``, over ``reps`` back-to-back calls, after a settle."""
    settle()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def half_dtypes() -> dict[str, np.dtype]:
    """float16, and bfloat16 when ml_dtypes is installed (else a note is printed)."""
    out: dict[str, np.dtype] = {"float16": np.dtype(np.float16)}
    try:
        import ml_dtypes

        out["bfloat16"] = np.dtype(ml_dtypes.bfloat16)
    except ImportError:
        print("ml_dtypes is not installed: no bfloat16 row")
    return out
