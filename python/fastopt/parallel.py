"""Threads and flat buffers.

``set_num_threads(n)`` / ``get_num_threads()``
    How many threads one optimizer step may use.  The default is the number of CPUs this
    process may run on (``os.sched_getaffinity``; with the compiled backend, lowered to the
    CPU quota of its cgroup, as a container's ``--cpus`` or a Kubernetes CPU limit sets), or
    ``FASTOPT_NUM_THREADS`` if set.  The
    compiled backend splits the elements of all arrays of a parameter group into
    cache-line-aligned chunks and runs them on a small persistent pool; calls that move
    less than a measured threshold (about 256 KB) stay on the calling thread, where waking
    a second core costs more than it saves.  The Numba backend uses ``prange`` above its
    own threshold; Numba's threads are started only then (not by ``set_num_threads``, not
    by the native backend), see ``prange_threads`` and docs/threads.md.

``flatten(params)``
    One contiguous buffer and views of it shaped like ``params``, for code that wants one
    kernel launch over everything (and one array per state).

Example::

    import fastopt
    fastopt.set_num_threads(1)          # e.g. when the process runs one job per core
    buf, views = fastopt.flatten([w1, b1, w2])
    opt = fastopt.Adam([buf])           # the optimizer sees one array
    # ... write gradients into a buffer of the same layout: g_buf, g_views = flatten(grads)
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["set_num_threads", "get_num_threads", "flatten"]


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


_threads: int | None = None


def _native() -> ModuleType | None:
    try:
        from . import _native
    except ImportError:
        return None
    mod: ModuleType = _native
    return mod


# Numba's threads, configured lazily: nothing here imports Numba or starts its threading
# layer until the Numba backend runs its first prange kernel.  GNU OpenMP (Numba's default
# layer when TBB is missing) is not used: once the system libgomp is loaded, a later
# ``import torch`` binds to it instead of its own (torch's foreach Adam measured 24x
# slower), and a forked child of a process that used it is killed.  "forksafe" is Numba's
# name for TBB when installed, else its own workqueue pool: both fork-safe and harmless to
# torch.  The workqueue pool must not be entered by two threads at once (Numba aborts the
# process), so every fastopt prange call holds PRANGE_LOCK; a caller that finds it busy
# runs the serial kernel instead (the native pool's policy).
PRANGE_LOCK = threading.Lock()
_numba_started = False
_numba_init_lock = threading.Lock()


def _reset_after_fork() -> None:
    global PRANGE_LOCK, _numba_init_lock
    PRANGE_LOCK = threading.Lock()  # a thread of the parent may have held them at fork
    _numba_init_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _start_numba() -> bool:
    """Start Numba's threading layer ("forksafe" unless the user chose one); False if none."""
    global _numba_started
    with _numba_init_lock:
        if _numba_started:
            return True
        numba: Any = importlib.import_module("numba")  # untyped attributes

        try:
            numba.threading_layer()  # raises ValueError until some code started the layer
        except ValueError:
            if str(numba.config.THREADING_LAYER).lower() == "default":  # the user chose none
                numba.config.THREADING_LAYER = "forksafe"
        try:
            numba.get_num_threads()  # starts the layer
        except Exception:
            return False
        _numba_started = True
        return True


def prange_threads() -> int:
    """Threads for the Numba backend's next ``prange`` kernel (1: run the serial kernel).

    Called by the Numba backend right before a parallel kernel, never at import or by
    ``set_num_threads``: starts Numba's threading layer on first use and applies the
    requested count (``numba.set_num_threads`` is per thread, so it is applied on every
    call).  Hold ``PRANGE_LOCK`` around the kernel itself.
    """
    n = get_num_threads()
    if n <= 1 or not (_numba_started or _start_numba()):
        return 1
    numba: Any = importlib.import_module("numba")

    n = min(n, numba.config.NUMBA_NUM_THREADS)
    if n > 1 and numba.get_num_threads() != n:
        numba.set_num_threads(n)
    return int(n)


def set_num_threads(n: int) -> None:
    """Use up to ``n`` threads (n >= 1) in every optimizer step, on every backend that has
    threads.

    The native backend uses fewer in a call that moves little data (one thread per 256 KB
    moved) and never more than the CPUs this process may run on (``os.sched_getaffinity``,
    or its cgroup's CPU quota when lower): threads beyond those could not run at once and
    would only slow the step down.

    Raises ``ValueError`` for n < 1 and ``TypeError`` for a non-integer.
    """
    global _threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer >= 1, got {n!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}; use 1 for single-threaded steps")
    _threads = n
    nat = _native()
    if nat is not None:
        nat.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads an optimizer step may use (see ``set_num_threads``)."""
    nat = _native()
    if nat is not None:
        return int(nat.get_num_threads())
    if _threads is not None:
        return _threads
    env = os.environ.get("FASTOPT_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return _default_threads()


def flatten(
    params: np.ndarray | Iterable[npt.ArrayLike], dtype: npt.DTypeLike | None = None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Copy ``params`` into one contiguous 1-D buffer; return ``(buffer, views)``.

    ``views[i]`` is a view of ``buffer`` with the shape of ``params[i]`` and its values, so
    updating ``buffer`` in place (one optimizer over ``[buffer]``, one kernel launch) updates
    every view, and writing into a view writes into the buffer.  All arrays must share one
    floating dtype (float32 or float64) unless ``dtype`` is given.  The buffer
    is 64-byte aligned (a cache line, the widest SIMD load).

    >>> import numpy as np
    >>> buf, (a, b) = flatten([np.ones((2, 3), np.float32), np.zeros(4, np.float32)])
    >>> buf.shape, a.shape, b.shape
    ((10,), (2, 3), (4,))
    """
    if isinstance(params, np.ndarray):
        params = [params]
    arrays = [np.asarray(p) for p in params]
    if not arrays:
        raise ValueError("flatten needs at least one array")
    if dtype is None:
        dtypes = {a.dtype for a in arrays}
        if len(dtypes) != 1:
            raise TypeError(
                f"flatten: arrays have several dtypes {sorted(map(str, dtypes))}; "
                "pass dtype=np.float32 (or float64) to convert them"
            )
        dtype = arrays[0].dtype
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"flatten: dtype must be float32 or float64, got {dt}")
    total = sum(a.size for a in arrays)
    # 64-byte aligned buffer: over-allocate and slice
    raw = np.empty(total * dt.itemsize + 64, np.uint8)
    off = (-raw.ctypes.data) % 64
    buf = raw[off : off + total * dt.itemsize].view(dt)
    views: list[np.ndarray] = []
    i = 0
    for a in arrays:
        v = buf[i : i + a.size].reshape(a.shape)
        v[...] = a
        views.append(v)
        i += a.size
    return buf, views
