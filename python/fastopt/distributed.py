"""Scale-out over MPI: gradient averaging, data-parallel and ZeRO-1 sharded optimizers.

Built on mpi4py collectives only (``pip install 'fastopt[mpi]'``: mpi4py plus the ``mpich``
wheel); run the program with ``mpiexec -n 4 python train.py``.  ``import fastopt`` does not
import this module (nor mpi4py); ``import fastopt.distributed`` does, and initialises MPI.

* :func:`allreduce_gradients` -- sum (or average) gradient arrays across ranks in place,
  bucketed: the arrays of one dtype are packed into buckets of at most ``bucket_bytes``
  (default :data:`BUCKET_BYTES` = 25 MiB, PyTorch DDP's default) and each bucket is one
  reduce-scatter plus one all-gather.
* :class:`DistributedOptimizer` -- wraps any fastopt optimizer (data parallel: every rank
  holds all parameters and all optimizer state); ``step(grads)`` averages the gradients
  across ranks, then steps the wrapped optimizer with the average.
* :class:`ShardedOptimizer` -- ZeRO stage 1: every rank holds all parameters but optimizer
  state only for its shard (``1/size`` of the elements, balanced by elements: an array may
  be split between ranks); ``step(grads)`` reduce-scatters the gradients, steps the shard
  with the ordinary optimizer (the native kernels, over 1-D views of the parameters) and
  all-gathers the parameters.

Semantics (``p`` ranks, ``g_r`` the gradient passed on rank ``r``):

* The averaged gradient is ``(g_0 + g_1 + ... + g_{p-1}) / p``, the sum rounded in the
  parameter's dtype, then divided (``np.divide`` by ``dtype(p)``, exactly rounded).
* Summation order, the ``order`` option.  ``"mpi"`` (default): MPI's ``Reduce_scatter_block``
  sums, in the order the MPI library chooses (for 2 ranks the order does not matter:
  ``a + b == b + a`` in IEEE arithmetic, so the result is bit-identical to
  ``(g_0 + g_1) / 2``; for more ranks it may differ from a left-to-right sum in the last
  bits: float32/float64 rounding of a ``p``-term sum).  ``"rank"``: every rank receives the
  ``p`` contributions to its block (``Alltoall``) and adds them in rank order
  ``((g_0 + g_1) + g_2) + ...``, so the average is bit-identical to that NumPy expression and
  reproducible across MPI libraries and algorithms.  It moves the same number of bytes as a
  reduce-scatter (``(p-1)/p`` of the data per rank) at ``p-1`` message latencies instead of
  ``log2 p`` and one extra buffer of the bucket's size.
* Every element is reduced on exactly one rank and then all-gathered (reduce-scatter +
  all-gather, the bandwidth-optimal allreduce), so every rank holds the same bits whatever
  the MPI library does: parameters stay bit-identical on every rank.
* Errors agree: before any collective that moves data, every rank checks its own input and
  one ``Allreduce`` (MAX) of an error flag tells all ranks; if any rank failed, every rank
  raises the exception type of the first failing rank (the type a single process would
  raise: ``TypeError``/``ValueError``/``NonFiniteGradientError``/``CheckpointError``), with
  that rank's message, and nothing is modified.  A non-finite gradient on one rank makes the
  average non-finite on every rank (NaN and infinities survive summation), so
  ``nonfinite="skip"`` skips and ``"raise"`` raises on every rank alike.

Checkpoints: ``fastopt.save(path, opt)`` and ``fastopt.load(path, opt)`` are collective for
both optimizers (call them on every rank) and use the single-process file format, so a run
saved on any number of ranks resumes on any other number, or in a single process, and the
reverse.  Rank 0 writes (through ``fastopt.save``: temporary file, fsync, rename) and reads
(the other ranks receive the arrays by ``Bcast``: no shared file system is needed to load).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import (
    Any,
    Literal,
    TypeVar,
)

import numpy as np
import numpy.typing as npt

try:
    from mpi4py import MPI
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fastopt.distributed needs mpi4py and an MPI library: "
        "pip install 'fastopt[mpi]' (mpi4py and the mpich wheel)"
    ) from _exc

from .backends import _checks
from .optim import NonFiniteGradientError, Optimizer, grads_in_order, parse_params, split_group

__all__ = [
    "allreduce_gradients",
    "broadcast_parameters",
    "DistributedOptimizer",
    "ShardedOptimizer",
    "BUCKET_BYTES",
]

#: Default bucket size of :func:`allreduce_gradients` and :class:`DistributedOptimizer`
#: in bytes (25 MiB, as PyTorch DDP's ``bucket_cap_mb``): small arrays of one dtype are
#: packed together up to this size and reduced as one message; larger arrays are split.
BUCKET_BYTES: int = 25 * 2**20

Array = npt.NDArray[Any]
Grads = Sequence[Array] | Mapping[str, Array] | Array
Order = Literal["mpi", "rank"]
G = TypeVar("G", bound=Grads)

_MPI_TYPES: dict[str, Any] = {"float32": MPI.FLOAT, "float64": MPI.DOUBLE}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- helpers
def _comm(comm: MPI.Comm | None) -> MPI.Comm:
    if comm is None:
        return MPI.COMM_WORLD
    if not isinstance(comm, MPI.Comm):
        raise TypeError(
            f"comm must be an mpi4py communicator (MPI.Comm), got {type(comm).__name__}"
        )
    return comm


def _check_order(order: str) -> Order:
    if order not in ("mpi", "rank"):
        raise ValueError(
            f"order must be 'mpi' (MPI's reduction order) or 'rank' (sum in "
            f"rank order, reproducible), got {order!r}"
        )
    return "mpi" if order == "mpi" else "rank"


def _check_bucket(bucket_bytes: int | None) -> int:
    if bucket_bytes is None:
        return BUCKET_BYTES
    if (
        isinstance(bucket_bytes, bool)
        or not isinstance(bucket_bytes, (int, np.integer))
        or bucket_bytes < 1
    ):
        raise ValueError(f"bucket_bytes must be a positive integer (bytes), got {bucket_bytes!r}")
    return int(bucket_bytes)


def _agree(comm: MPI.Comm, exc: BaseException | None, extra: Sequence[int] = ()) -> list[int]:
    """Collective: raise on every rank if ``exc`` is set on any rank.

    One ``Allreduce`` (MAX) of a flag (and of the ``extra`` integers, whose maxima are
    returned) on the success path; on failure the ranks exchange the exception type and
    message (``allgather``) and every rank raises the first failing rank's type with its
    message (the original is chained on that rank)."""
    flag = np.array([0 if exc is None else 1, *extra], dtype=np.int64)
    if comm.size > 1:
        comm.Allreduce(MPI.IN_PLACE, flag, op=MPI.MAX)
    if not flag[0]:
        return [int(x) for x in flag[1:]]
    info: tuple[Any, str] | None = None
    if exc is not None:
        info = (type(exc), str(exc))
    if comm.size > 1:
        try:
            infos = comm.allgather(info)
        except Exception:
            infos = comm.allgather(None if exc is None else (RuntimeError, str(exc)))
    else:
        infos = [info]
    rank, (cls, msg) = next((r, x) for r, x in enumerate(infos) if x is not None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = RuntimeError
    where = "" if comm.size == 1 else f"[rank {rank} of {comm.size}] "
    try:
        err = cls(where + msg)
    except Exception:
        err = RuntimeError(where + msg)
    if exc is not None and comm.rank == rank:
        raise err from exc
    raise err


def _blocks(n: int, p: int) -> tuple[int, list[int]]:
    """Equal blocks of ``m = ceil(n/p)`` elements (the last ones shorter or empty): ``m``
    and the number of real elements in each rank's block.  Buffers are padded to ``m*p``
    so that the regular collectives (``Reduce_scatter_block``, ``Allgather``,
    ``Alltoall``) apply: MPICH's ``Allgatherv`` measured ~100x slower than ``Allgather``
    for 16 MB on this machine."""
    m = -(-n // p) if n else 0
    return m, [max(0, min(m, n - r * m)) for r in range(p)]


def _fingerprint(items: Iterable[Any]) -> int:
    return zlib.crc32(repr(list(items)).encode()) & 0x7FFFFFFF


def _agree_layout(
    comm: MPI.Comm, exc: BaseException | None, layout: Iterable[Any], what: str
) -> None:
    """Collective: ``_agree`` plus a check that every rank has the same ``layout`` (the
    maximum and minimum of a CRC of it, in the same ``Allreduce``)."""
    fp = _fingerprint(layout)
    v = _agree(comm, exc, (fp, -fp))
    if v[0] != -v[1]:
        raise ValueError(
            f"{what} differ between ranks (names, shapes or dtypes); every rank "
            "must pass the same structure"
        )


class _Agreed:
    """``with _Agreed(comm) as agreed:`` runs its body (checks, or work that can fail on
    some ranks only), then, collectively, raises on every rank if the body raised on any
    (``_agree``: the first failing rank's type and message, the original chained on that
    rank); with ``what``, also if ``agreed.layout`` (set by the body: names, shapes,
    dtypes) differs between ranks (``_agree_layout``).  Only an ``Exception`` is shared: a
    ``KeyboardInterrupt`` or ``SystemExit`` leaves its rank alone, as it would anyway."""

    def __init__(self, comm: MPI.Comm, what: str | None = None) -> None:
        self.comm, self.what = comm, what
        self.layout: list[Any] = []

    def __enter__(self) -> _Agreed:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, Exception):
            return
        if self.what is None:
            _agree(self.comm, exc)
        else:
            _agree_layout(self.comm, exc, self.layout, self.what)


def _reduce_block(
    comm: MPI.Comm,
    buf: Array,
    order: Order,
    average: bool,
    out: Array | None = None,
    scratch: dict[tuple[str, int], Array] | None = None,
) -> Array:
    """Reduce-scatter ``buf`` (1-D, contiguous, ``size * m`` elements on every rank):
    returns this rank's block ``buf[rank*m:(rank+1)*m]`` of the sum (or average) (``out``
    if given, else a new array); ``buf`` is not modified.  ``scratch`` caches the
    ``order="rank"`` receive buffer between calls."""
    p = comm.size
    m = buf.size // p
    mt = _MPI_TYPES[buf.dtype.name]
    block = np.empty(m, dtype=buf.dtype) if out is None else out
    if p == 1:
        np.copyto(block, buf)
    elif order == "mpi":
        comm.Reduce_scatter_block([buf, mt], [block, mt], op=MPI.SUM)
    else:
        key = (buf.dtype.name, p * m)
        parts = scratch.get(key) if scratch is not None else None
        if parts is None:
            parts = np.empty(p * m, dtype=buf.dtype)
            if scratch is not None:
                scratch[key] = parts
        comm.Alltoall([buf, mt], [parts, mt])
        np.add(parts[0:m], parts[m : 2 * m], out=block)
        for s in range(2, p):
            np.add(block, parts[s * m : (s + 1) * m], out=block)
    if average and p > 1:
        np.divide(block, buf.dtype.type(p), out=block)
    return block


def _allreduce_flat(
    comm: MPI.Comm,
    buf: Array,
    order: Order,
    average: bool,
    scratch: dict[tuple[str, int], Array] | None = None,
) -> None:
    """Sum (or average) the 1-D contiguous ``buf`` (a multiple of ``size`` elements)
    across ranks in place: reduce-scatter, then ``Allgather`` in place, so that every rank
    ends with the same bits."""
    p, r = comm.size, comm.rank
    if p == 1:
        return
    m = buf.size // p
    out = None
    if scratch is not None:
        key = ("block:" + buf.dtype.name, m)
        out = scratch.get(key)
        if out is None:
            out = scratch[key] = np.empty(m, dtype=buf.dtype)
    block = _reduce_block(comm, buf, order, average, out=out, scratch=scratch)
    buf[r * m : (r + 1) * m] = block
    comm.Allgather(MPI.IN_PLACE, [buf, _MPI_TYPES[buf.dtype.name]])


def _buckets(sizes: Sequence[int], limit: int) -> list[list[tuple[int, int, int, int]]]:
    """Cut the concatenation of arrays of ``sizes`` elements into buckets of at most
    ``limit`` elements: each bucket a list of ``(array index, start, stop, offset in
    bucket)`` pieces."""
    out: list[list[tuple[int, int, int, int]]] = []
    cur: list[tuple[int, int, int, int]] = []
    fill = 0
    for i, n in enumerate(sizes):
        start = 0
        while start < n:
            take = min(n - start, limit - fill)
            cur.append((i, start, start + take, fill))
            fill += take
            start += take
            if fill == limit:
                out.append(cur)
                cur, fill = [], 0
    if cur:
        out.append(cur)
    return out


def _ordered_items(grads: Any) -> list[tuple[str, Any]]:
    """``[(label, array)]`` of one array, a sequence or a dict (sorted by key, so that the
    ranks agree whatever the insertion order)."""
    if isinstance(grads, np.ndarray):
        return [("grads", grads)]
    if isinstance(grads, Mapping):
        return [(f"grads[{k!r}]", grads[k]) for k in sorted(grads, key=str)]
    if isinstance(grads, (str, bytes)) or not hasattr(grads, "__iter__"):
        raise TypeError(
            f"grads must be an array, a list of arrays or a dict of arrays, got "
            f"{type(grads).__name__}"
        )
    return [(f"grads[{i}]", g) for i, g in enumerate(grads)]


def _refuse_none(items: Iterable[tuple[str, Any]]) -> None:
    """Refuse a None gradient: a frozen parameter (``Optimizer.step`` accepts None) would
    have to be frozen on every rank alike, which the collectives do not check."""
    for label, g in items:
        if g is None:
            raise TypeError(
                f"{label} is None: fastopt.distributed needs a gradient for every parameter "
                "at every step (None, a frozen parameter, is not supported across ranks); "
                "pass zeros, or leave frozen parameters out of the optimizer"
            )


def _uniform_counters(entry: Mapping[str, Any], keys: Iterable[str], n: int) -> dict[str, Any]:
    """A group entry of a state_dict with each per-parameter counter (``step``, ...) given
    as ``n`` values.  The sharded optimizer's pieces are not the caller's parameters, so it
    keeps one value per group: counters that differ between parameters are refused."""
    out = dict(entry)
    for key in keys:
        v = entry[key]
        values = list(v) if isinstance(v, (list, tuple)) else [v]
        if any(x != values[0] for x in values):
            raise ValueError(
                f"the state_dict's counter {key!r} differs between the parameters of a group "
                f"({values[:6]}): ShardedOptimizer keeps one value per group (it refuses "
                "None gradients, so its own runs never have such counters)"
            )
        out[key] = values[:1] * n
    return out


# --------------------------------------------------------------------------- public functions
def allreduce_gradients(
    grads: G,
    comm: MPI.Comm | None = None,
    average: bool = True,
    *,
    bucket_bytes: int | None = None,
    order: Order = "mpi",
) -> G:
    """Sum (``average=False``) or average (``average=True``, the default) ``grads`` across
    the ranks of ``comm`` (default ``MPI.COMM_WORLD``), **in place**.  Collective.

    ``grads`` is one array, a list of arrays or a dict of name -> array (the structure
    ``opt.step`` takes; a dict is reduced in sorted key order, so insertion order need not
    match between ranks).  Arrays must be float32 or float64, writeable and not share
    memory; any shape or strides.  After the call every rank holds the same bits::

        g  <-  (g_0 + g_1 + ... + g_{p-1}) / p        (the sum in g's dtype; see ``order``)

    The arrays of each dtype are packed (in order) into buckets of at most ``bucket_bytes``
    (default :data:`BUCKET_BYTES`, 25 MiB), so many small arrays cost a few large messages;
    an array larger than a bucket is split over several.  Each bucket is one reduce-scatter
    and one all-gather.  ``order="rank"`` adds in rank order (bit-reproducible; see the
    module docstring).

    Every rank checks its arrays, and that all ranks passed the same names, shapes and
    dtypes, before anything moves: bad input on any rank raises ``TypeError`` or
    ``ValueError`` on every rank, with no array modified.  Returns ``grads`` (the same
    object, reduced in place).
    """
    comm = _comm(comm)
    with _Agreed(comm, "the gradients passed to allreduce_gradients") as agreed:
        order = _check_order(order)
        limit_bytes = _check_bucket(bucket_bytes)
        items = _ordered_items(grads)
        _refuse_none(items)
        from . import clip

        checks: Any = clip._as_arrays  # the checks (and messages) of clip_grad_norm
        if isinstance(grads, Mapping):
            arrays = checks({k: grads[k] for k in sorted(grads, key=str)})
        else:
            arrays = checks(grads if isinstance(grads, np.ndarray) else list(grads))
        for label, g in items:
            if g.dtype not in _FLOATS:
                raise TypeError(
                    f"{label} has dtype {g.dtype}; allreduce_gradients reduces "
                    "float32 or float64 arrays"
                )
        agreed.layout = [(label, g.shape, g.dtype.str) for label, g in items]
    if comm.size == 1:
        return grads
    for dt in _FLOATS:
        sel = [g for g in arrays if g.dtype == dt and g.size]
        if not sel:
            continue
        work = [g if g.flags.c_contiguous else np.ascontiguousarray(g) for g in sel]
        flats = [w.reshape(-1) for w in work]
        p = comm.size
        limit = max(p, (limit_bytes // dt.itemsize) // p * p)  # a multiple of size
        scratch: dict[tuple[str, int], Array] = {}
        staging: Array | None = None
        for bucket in _buckets([f.size for f in flats], limit):
            n = bucket[-1][3] + bucket[-1][2] - bucket[-1][1]
            if len(bucket) == 1 and n % p == 0:  # one piece of one array: reduce it in place
                i, a, b, _ = bucket[0]
                _allreduce_flat(comm, flats[i][a:b], order, average, scratch)
                continue
            if staging is None:
                total = sum(f.size for f in flats)
                staging = np.zeros(min(limit, -(-total // p) * p), dtype=dt)
            buf = staging[: -(-n // p) * p]  # padded to a multiple of size
            buf[n:] = 0
            for i, a, b, off in bucket:
                buf[off : off + b - a] = flats[i][a:b]
            _allreduce_flat(comm, buf, order, average, scratch)
            for i, a, b, off in bucket:
                flats[i][a:b] = buf[off : off + b - a]
        for g, w in zip(sel, work):
            if w is not g:
                np.copyto(g, w)
    return grads


def broadcast_parameters(params: Grads, comm: MPI.Comm | None = None, root: int = 0) -> None:
    """Copy ``root``'s arrays into every rank's ``params`` in place (``Bcast``), so that all
    ranks start from the same parameters.  Collective; the structure, shapes and dtypes
    must agree between ranks (checked first: ``ValueError``/``TypeError`` on every rank)."""
    comm = _comm(comm)
    with _Agreed(comm, "the arrays passed to broadcast_parameters") as agreed:
        items = _ordered_items(params)
        for label, a in items:
            if not isinstance(a, np.ndarray):
                raise TypeError(f"{label} must be a numpy array, got {type(a).__name__}")
            if not (a.flags.c_contiguous and a.flags.writeable):
                raise ValueError(f"{label} must be C-contiguous and writeable")
        arrays = [a for _, a in items]
        agreed.layout = [(label, a.shape, a.dtype.str) for label, a in items]
        if not (isinstance(root, int) and 0 <= root < comm.size):
            raise ValueError(f"root must be a rank in [0, {comm.size}), got {root!r}")
    if comm.size == 1:
        return
    for a in arrays:
        if a.size:
            comm.Bcast(a.reshape(-1).view(np.uint8), root=root)


def _flat_grads(grads: Any, names: Sequence[Any], params: Sequence[Array]) -> list[Array]:
    """The gradients in parameter order, checked as ``Optimizer.step`` checks them (the same
    functions, so the same exception types and messages): structure, then each array
    against its parameter (dtype, shape, subclass, alignment, shared memory)."""
    by_name = bool(names) and all(isinstance(n, str) for n in names)
    flat = grads_in_order(grads, names, by_name)
    _refuse_none((f"grads[{n!r}]", g) for n, g in zip(names, flat))
    rows = _checks.collect([("params", list(params), True), ("grads", flat, False)], names)
    return [row[1] for row in rows]


def _restructure(grads: Any, names: Sequence[Any], views: Sequence[Array]) -> Any:
    """``views`` in the structure of the caller's ``grads`` (dict, single array or list)."""
    if isinstance(grads, Mapping):
        return dict(zip(names, views))
    if isinstance(grads, np.ndarray):
        return views[0]
    return list(views)


def _checkpoint_module() -> Any:
    from . import checkpoint

    return checkpoint


def _exact_pow_sum(g: Array, p: float) -> float:
    from . import clip

    pow_sum: Any = clip._array_norm_pow  # clip_grad_norm's float64 accumulation
    return float(pow_sum(g, p))


def _is_stand_in(x: Any) -> bool:
    """Whether ``x`` is ``_tree_bcast``'s stand-in for an array."""
    return isinstance(x, tuple) and len(x) == 4 and x[0] == "__ndarray__"


def _tree_map(fn: Callable[[Any], Any], x: Any) -> Any:
    """``x`` rebuilt with ``fn(leaf)`` for each leaf: what is not a dict, list or tuple
    (nested to any depth), or is an array's stand-in."""
    if isinstance(x, dict):
        return {k: _tree_map(fn, v) for k, v in x.items()}
    if isinstance(x, list):
        return [_tree_map(fn, v) for v in x]
    if isinstance(x, tuple) and not _is_stand_in(x):
        return tuple(_tree_map(fn, v) for v in x)
    return fn(x)


def _tree_bcast(comm: MPI.Comm, obj: Any, root: int) -> Any:
    """Broadcast a structure of dicts/lists/tuples/scalars/ndarrays from ``root``: the
    skeleton by pickle, the arrays by ``Bcast`` (no size limit of a pickled message)."""
    arrays: list[Array] = []

    def strip(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            arrays.append(np.ascontiguousarray(x))
            return ("__ndarray__", len(arrays) - 1, x.shape, x.dtype.str)
        return x

    def fill(x: Any) -> Any:
        if not _is_stand_in(x):
            return x
        a = arrays[x[1]] if comm.rank == root else np.empty(x[2], dtype=np.dtype(x[3]))
        if a.size:
            comm.Bcast(a.reshape(-1).view(np.uint8), root=root)
        return a

    skeleton = _tree_map(strip, obj) if comm.rank == root else None
    return _tree_map(fill, comm.bcast(skeleton, root=root))


# --------------------------------------------------------------------------- data parallel
class DistributedOptimizer:
    """Data parallel: wrap any fastopt optimizer; ``step(grads)`` averages the gradients
    across the ranks of ``comm`` and steps the wrapped optimizer with the average.

    ``optimizer`` is constructed as usual on every rank (same parameters, names, shapes,
    dtypes and options on every rank: checked here, collectively).  Unless
    ``broadcast=False``, rank 0's parameter values are copied to every rank first, so the
    ranks start (and, since every rank then applies the same update to the same values,
    stay) bit-identical.

    ``step(grads)``, collective:

    1. every rank checks its ``grads`` (structure, arrays, dtypes, shapes, as
       ``Optimizer.step`` does); one ``Allreduce`` of an error flag: bad input on any rank
       raises the same exception type on every rank, nothing modified;
    2. the gradients are copied into one internal buffer per dtype (the caller's arrays
       are not modified) and averaged, bucket by bucket (``bucket_bytes``, default
       :data:`BUCKET_BYTES`): ``avg = (g_0 + ... + g_{p-1}) / p`` (summation order: see
       ``order`` in the module docstring);
    3. the wrapped optimizer steps with views of the average, in the caller's structure:
       its ``nonfinite`` policy, clipping (of the averaged gradients: the global norm) and
       hooks apply as in a single process and, the average being the same bits on every
       rank, every rank makes the same decision (skip, raise, clip).

    Everything else -- ``param_groups``, ``state``, ``state_dict()``/``load_state_dict()``
    (local), ``last_lr``, ``step_count``, ``skipped_steps``, hook registration, schedules --
    is the wrapped optimizer's (attribute access is delegated).  ``fastopt.save`` /
    ``fastopt.load`` are collective: rank 0 writes / reads the single-process format.
    Memory: one extra copy of the gradients (the internal buffers) on every rank.
    """

    _own = frozenset({"optimizer", "comm", "order", "bucket_bytes"})

    def __init__(
        self,
        optimizer: Optimizer,
        comm: MPI.Comm | None = None,
        *,
        bucket_bytes: int | None = None,
        order: Order = "mpi",
        broadcast: bool = True,
    ) -> None:
        comm = _comm(comm)
        with _Agreed(comm):
            if not isinstance(optimizer, Optimizer):
                raise TypeError(
                    f"optimizer must be a fastopt optimizer (fastopt.Adam(...), "
                    f"...), got {type(optimizer).__name__}"
                )
            order = _check_order(order)
            bucket_bytes = _check_bucket(bucket_bytes)
        object.__setattr__(self, "optimizer", optimizer)
        object.__setattr__(self, "comm", comm)
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "bucket_bytes", bucket_bytes)
        self._build(broadcast, range(len(optimizer.param_groups)))

    def _build(self, broadcast: bool, groups: Iterable[int]) -> None:
        """(Re)build the flat gradient buffers from the wrapped optimizer's groups, after
        checking that every rank has the same layout; broadcast rank 0's values of the
        parameters of ``groups``."""
        names: list[Any] = []
        params: list[Array] = []
        with _Agreed(self.comm, "the optimizers' parameters") as agreed:
            for g in self.optimizer.param_groups:
                names.extend(g["names"])
                params.extend(g["params"])
            agreed.layout = [type(self.optimizer).__name__] + [
                (str(n), p.shape, p.dtype.str) for n, p in zip(names, params)
            ]
        self._names = names
        self._params = params
        # per dtype: (indices of its parameters, offsets in the flat buffer, the buffer)
        self._flat: dict[str, tuple[list[int], list[int], Array]] = {}
        self._views: list[Array] = [np.empty(0)] * len(params)
        self._scratch: dict[tuple[str, int], Array] = {}
        for dt in _FLOATS:
            idx = [i for i, p in enumerate(params) if p.dtype == dt]
            if not idx:
                continue
            offs = list(np.cumsum([0] + [params[i].size for i in idx]))
            m, _ = _blocks(int(offs[-1]), self.comm.size)
            buf = np.zeros(m * self.comm.size, dtype=dt)  # padded to a multiple of size
            for k, i in enumerate(idx):
                self._views[i] = buf[offs[k] : offs[k + 1]].reshape(params[i].shape)
            self._flat[dt.name] = (idx, [int(o) for o in offs], buf)
        if broadcast:
            sel = set(groups)
            broadcast_parameters(
                [
                    p
                    for gi, g in enumerate(self.optimizer.param_groups)
                    if gi in sel
                    for p in g["params"]
                ],
                self.comm,
            )

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Collective: add a group to the wrapped optimizer on every rank (rank 0's values
        of its parameters are broadcast); the same checks and errors on every rank."""
        # Refused on some ranks only (different arguments per rank): every rank raises, and
        # the ranks that accepted it keep the group: rebuild the optimizers in that case.
        with _Agreed(self.comm):
            self.optimizer.add_param_group(group)
        self._build(True, [len(self.optimizer.param_groups) - 1])

    # delegation ------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in DistributedOptimizer._own:
            raise AttributeError(name)
        return getattr(object.__getattribute__(self, "optimizer"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            name.startswith("_")
            or name in DistributedOptimizer._own
            or not hasattr(self.optimizer, name)
        ):
            object.__setattr__(self, name, value)
        else:
            setattr(self.optimizer, name, value)

    def __repr__(self) -> str:
        return (
            f"DistributedOptimizer(rank {self.comm.rank} of {self.comm.size}, "
            f"order={self.order!r}, {self.optimizer!r})"
        )

    # stepping --------------------------------------------------------------------------
    def step(self, grads: Grads) -> None:
        """Average ``grads`` across ranks and step the wrapped optimizer with the average
        (collective; see the class docstring).  ``grads`` is not modified."""
        with _Agreed(self.comm):
            flat = _flat_grads(grads, self._names, self._params)
        limit_bytes = self.bucket_bytes
        for idx, _offs, buf in self._flat.values():
            for i in idx:
                np.copyto(self._views[i], flat[i])
            p = self.comm.size
            if p == 1 or buf.size == 0:
                continue
            limit = max(p, (limit_bytes // buf.dtype.itemsize) // p * p)
            for a in range(0, buf.size, limit):  # buf.size and limit: multiples of size
                _allreduce_flat(self.comm, buf[a : a + limit], self.order, True, self._scratch)
        self.optimizer.step(_restructure(grads, self._names, self._views))

    # checkpoints (called by fastopt.save / fastopt.load) ---------------------------------
    def _fastopt_collective_save(self, path: Any) -> None:
        checkpoint: Any = _checkpoint_module()
        with _Agreed(self.comm):
            if self.comm.rank == 0:
                checkpoint.save(path, self.optimizer)

    def _fastopt_collective_load(self, path: Any) -> None:
        checkpoint: Any = _checkpoint_module()
        payload: Any = None
        with _Agreed(self.comm):
            if self.comm.rank == 0:
                checkpoint.load(path, self.optimizer)
                payload = {"sd": self.optimizer.state_dict(), "params": list(self._params)}
        if self.comm.size == 1:
            return
        got = _tree_bcast(self.comm, payload, 0)
        with _Agreed(self.comm):
            if self.comm.rank != 0:
                self.optimizer.load_state_dict(got["sd"])
                for p, a in zip(self._params, got["params"]):
                    np.copyto(p, a)


# --------------------------------------------------------------------------- ZeRO-1
_CLIP_OPTIONS = ("nonfinite", "max_grad_norm", "norm_type", "clip_value", "clip_scope")


def _parse_groups(params: Any) -> list[dict[str, Any]]:
    """Normalise ``params`` (list of arrays, dict of name -> array, list of group dicts) into
    a list of group dicts, raising as the optimizers' constructors do (the same parser)."""
    out = []
    for g in parse_params(params):
        if "params" not in g:
            raise TypeError("a parameter group must be a dict with a 'params' entry")
        if isinstance(g["params"], np.ndarray):
            raise TypeError(
                "a group's 'params' must be a list or dict of arrays; wrap a single array in a list"
            )
        if not isinstance(g["params"], dict):
            g["params"] = list(g["params"])
        out.append(g)
    return out


class _Handle:
    """A registered hook; ``remove()`` unregisters it."""

    _ids = iter(range(1 << 62))

    def __init__(self, table: dict[int, Callable[..., Any]]) -> None:
        self._table = table
        self.id = next(self._ids)

    def remove(self) -> None:
        self._table.pop(self.id, None)


class _Piece:
    """This rank's part of one parameter: flat elements ``[lo, hi)`` of parameter ``index``,
    at ``pos`` in the rank's shard buffer of the parameter's dtype."""

    __slots__ = ("dtype", "group", "hi", "index", "lo", "pos")

    def __init__(self, index: int, lo: int, hi: int, pos: int, dtype: str, group: int) -> None:
        self.index, self.lo, self.hi, self.pos = index, lo, hi, pos
        self.dtype, self.group = dtype, group


class ShardedOptimizer:
    """ZeRO stage 1: optimizer state sharded across the ranks of ``comm``; parameters and
    gradients replicated.  ``ShardedOptimizer(fastopt.Adam, params, lr=1e-3, ...)`` takes
    the arguments of ``optimizer_class(params, **options)`` (every optimizer, parameter
    groups, schedules, ``backend``, ``nonfinite``, ``max_grad_norm``/``norm_type``/
    ``clip_value``/``clip_scope``) and behaves as that optimizer stepped with the averaged
    gradients, on every rank.

    Sharding: the parameters of each dtype, flattened and concatenated in order (``N``
    elements), are cut into ``size`` contiguous blocks of ``m = ceil(N/size)`` elements
    (``r*m .. min((r+1)*m, N)``; the last blocks may be shorter or empty); rank ``r`` owns
    block ``r`` (so an array may be split between ranks; the
    optimizers are elementwise).  The shard is a list of 1-D slices of flattened parameters
    (``shard``); an ordinary ``optimizer_class`` over 1-D views of those slices holds the
    shard's state (``opt.state`` on a rank holds about ``1/size`` of the whole).

    ``step(grads)``, collective, per dtype:

    1. check ``grads`` on every rank; one ``Allreduce`` of an error flag (bad input on one
       rank raises the same exception type on every rank, nothing modified);
    2. copy the gradients into a flat buffer and reduce-scatter it
       (``Reduce_scatter_block``, or ``Alltoall`` + sum in rank order with
       ``order="rank"``); divide by ``size``;
    3. on the shard: non-finite check, ``clip_value`` (elementwise), then the partial sums
       of the norm (``sum |g|**norm_type`` in float64, per group for ``clip_scope="group"``);
       one ``Allreduce`` of ``[non-finite flag, partial sums]`` gives every rank the same
       decision and the global norm; ``coef = max_grad_norm / (norm + 1e-6)`` is applied if
       below 1 (PyTorch's formula), the gradient scaled by ``dtype(coef)``;
    4. the inner optimizer steps the shard (same kernels, same hyperparameters, same step
       counters as a single process);
    5. ``Allgather`` of the updated parameters into every rank's arrays.

    ``param_groups`` (full groups: the caller's arrays and names, and the options; edit
    options there, e.g. ``opt.param_groups[0]["lr"] = 0.01``), ``last_lr``, ``step_count``,
    ``skipped_steps``, ``last_step_skipped``, hooks (called with the caller's ``grads``)
    behave as a single optimizer's.  ``state_dict()`` and ``load_state_dict()`` are
    collective and use the single-process format (the full state, resharded on load);
    ``fastopt.save``/``fastopt.load`` too, rank 0 writing/reading the file (rank 0 then holds
    the full state for the duration of the call).  Memory per rank: the parameters, one
    flat gradient buffer per dtype (plus one more with ``order="rank"``), ``1/size`` of the
    state.
    """

    def __init__(
        self,
        optimizer_class: type[Optimizer],
        params: Any,
        comm: MPI.Comm | None = None,
        *,
        order: Order = "mpi",
        broadcast: bool = True,
        **options: Any,
    ) -> None:
        self.comm = comm = _comm(comm)
        with _Agreed(comm, "the parameters") as agreed:
            self._setup(optimizer_class, params, order, options)
            agreed.layout = [optimizer_class.__name__] + [
                (gi, str(n), p.shape, p.dtype.str)
                for gi, g in enumerate(self.param_groups)
                for n, p in zip(g["names"], g["params"])
            ]
        if broadcast:
            broadcast_parameters(self._params, comm)
        self._pre_hooks: dict[int, Callable[..., Any]] = {}
        self._post_hooks: dict[int, Callable[..., Any]] = {}

    def _setup(self, cls: Any, params: Any, order: str, options: dict[str, Any]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
            raise TypeError(
                f"optimizer_class must be a fastopt optimizer class (fastopt.Adam, "
                f"...), got {cls!r}"
            )
        self.order: Order = _check_order(order)
        self.optimizer_class = cls
        self._options = dict(options)
        groups = _parse_groups(params)
        self._ctor_groups = groups
        names: list[Any] = []
        arrays: list[Array] = []
        group_of: list[int] = []
        for gi, g in enumerate(groups):
            gn, ga = split_group(g["params"], names)
            names.extend(gn)
            arrays.extend(ga)
            group_of.extend([gi] * len(ga))
        from .backends import _checks

        collect: Any = _checks.collect  # the optimizers' array checks and messages
        collect([("params", arrays, True)], names)
        self._names, self._params, self._group_of = names, arrays, group_of
        p, r = self.comm.size, self.comm.rank
        # per dtype: parameter indices, their offsets in the flat vector, the number of real
        # elements in each rank's block, the block size m = ceil(N / size)
        self._layout: dict[str, tuple[list[int], list[int], list[int], int]] = {}
        pieces: list[_Piece] = []
        for dt in _FLOATS:
            idx = [i for i, a in enumerate(arrays) if a.dtype == dt]
            if not idx:
                continue
            offs = [int(x) for x in np.cumsum([0] + [arrays[i].size for i in idx])]
            m, counts = _blocks(offs[-1], p)
            self._layout[dt.name] = (idx, offs, counts, m)
            a0, a1 = r * m, r * m + counts[r]
            for k, i in enumerate(idx):
                lo, hi = max(a0, offs[k]), min(a1, offs[k + 1])
                if lo < hi:
                    pieces.append(
                        _Piece(i, lo - offs[k], hi - offs[k], lo - a0, dt.name, group_of[i])
                    )
        pieces.sort(key=lambda q: q.index)
        self._pieces = pieces
        self.shard: list[tuple[Any, int, int]] = [(names[q.index], q.lo, q.hi) for q in pieces]
        """This rank's shard: ``(parameter name, start, stop)`` of flat elements."""
        # shard buffers (reduce-scattered gradients) and flat buffers, per dtype
        # (padded to m and m*size elements: the regular collectives need equal blocks)
        self._grad_shard = {
            name: np.zeros(lay[3], dtype=name) for name, lay in self._layout.items()
        }
        self._flat = {name: np.zeros(lay[3] * p, dtype=name) for name, lay in self._layout.items()}
        if p == 1:  # the reduce-scatter is the identity: the shard's gradient is the buffer
            self._grad_shard = self._flat
        self._scratch: dict[tuple[str, int], Array] = {}
        inner_opts = {k: v for k, v in options.items() if k not in _CLIP_OPTIONS}
        inner_groups = []
        self._inner_map: list[_Piece | None] = []  # inner parameter -> piece (None: dummy)
        self._inner_grads: list[Array] = []
        for gi, g in enumerate(groups):
            views: list[Array] = []
            for q in pieces:
                if q.group == gi:
                    views.append(arrays[q.index].reshape(-1)[q.lo : q.hi])
                    self._inner_map.append(q)
                    self._inner_grads.append(self._grad_shard[q.dtype][q.pos : q.pos + q.hi - q.lo])
            if not views:  # no element of this group here: a 0-size stand-in keeps the groups
                first = arrays[group_of.index(gi)]
                views.append(np.zeros(0, dtype=first.dtype))
                self._inner_map.append(None)
                self._inner_grads.append(np.zeros(0, dtype=first.dtype))
            opts = {k: v for k, v in g.items() if k != "params"}
            inner_groups.append({"params": views, **opts})
        self.optimizer: Any = cls(inner_groups, nonfinite="ignore", **inner_opts)
        """The optimizer over this rank's shard (1-D views of the caller's arrays)."""
        # the checks of the clipping options, as the optimizers do them
        probe_opts = {k: v for k, v in options.items() if k in _CLIP_OPTIONS}
        from . import optim

        sgd: Any = optim.SGD
        probe = sgd([np.zeros(1)], **probe_opts)
        self.nonfinite: str = probe.nonfinite
        self.max_grad_norm: float | None = probe.max_grad_norm
        self.norm_type: float = probe.norm_type
        self.clip_value: float | None = probe.clip_value
        self.clip_scope: str = probe.clip_scope
        self.param_groups: list[dict[str, Any]] = []
        for gi, ig in enumerate(self.optimizer.param_groups):
            full = {k: v for k, v in ig.items() if k not in ("params", "names")}
            full["params"] = [a for a, o in zip(arrays, group_of) if o == gi]
            full["names"] = [n for n, o in zip(names, group_of) if o == gi]
            self.param_groups.append(full)
        self.defaults: dict[str, Any] = dict(self.optimizer.defaults)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Not supported: the shards are cut over all groups at construction; construct a
        new ``ShardedOptimizer`` with every group."""
        raise NotImplementedError(
            "ShardedOptimizer.add_param_group: the shards are cut at "
            "construction; construct a new ShardedOptimizer with all "
            "the groups"
        )

    # delegated counters ------------------------------------------------------------------
    @property
    def step_count(self) -> int:
        """Updates applied (skipped steps not counted), as ``Optimizer.step_count``."""
        return int(self.optimizer.step_count)

    @property
    def skipped_steps(self) -> int:
        """Steps skipped because a gradient was non-finite (``nonfinite="skip"``)."""
        return int(self.optimizer.skipped_steps)

    @skipped_steps.setter
    def skipped_steps(self, value: int) -> None:
        self.optimizer.skipped_steps = value

    @property
    def last_step_skipped(self) -> bool:
        """Whether the last ``step`` was skipped (non-finite gradient, ``nonfinite="skip"``)."""
        return bool(self.optimizer.last_step_skipped)

    @property
    def last_lr(self) -> list[float]:
        """Each group's learning rate at the last update."""
        return list(self.optimizer.last_lr)

    @property
    def state(self) -> dict[Any, dict[str, Array]]:
        """This rank's state: ``{name: {state name: 1-D array}}`` for the parameters with
        elements in ``shard`` (live arrays; the elements ``shard`` lists)."""
        inner = self.optimizer.state
        out: dict[Any, dict[str, Array]] = {}
        for j, q in enumerate(self._inner_map):
            if q is not None:
                out[self._names[q.index]] = dict(inner[j])  # inner names are 0, 1, ...
        return out

    def state_nbytes(self) -> int:
        """Bytes of optimizer state held by this rank."""
        return int(sum(a.nbytes for st in self.optimizer.state.values() for a in st.values()))

    def register_step_pre_hook(self, hook: Callable[..., Any]) -> Any:
        """Call ``hook(optimizer, grads)`` before every step; returns a handle with
        ``remove()``."""
        h = _Handle(self._pre_hooks)
        self._pre_hooks[h.id] = hook
        return h

    def register_step_post_hook(self, hook: Callable[..., Any]) -> Any:
        """Call ``hook(optimizer, grads)`` after every applied step; returns a handle with
        ``remove()``."""
        h = _Handle(self._post_hooks)
        self._post_hooks[h.id] = hook
        return h

    def __repr__(self) -> str:
        n = sum(q.hi - q.lo for q in self._pieces)
        return (
            f"ShardedOptimizer({self.optimizer_class.__name__}, rank {self.comm.rank} of "
            f"{self.comm.size}, {n} of {sum(p.size for p in self._params)} elements here)"
        )

    def _sync_options(self) -> None:
        for full, inner in zip(self.param_groups, self.optimizer.param_groups):
            for key in self.defaults:
                inner[key] = full[key]

    def _sync_back(self) -> None:
        for full, inner in zip(self.param_groups, self.optimizer.param_groups):
            for key in self.defaults:
                full[key] = inner[key]

    # stepping --------------------------------------------------------------------------
    def step(self, grads: Grads) -> None:
        """One update with the average of every rank's ``grads`` (collective; see the class
        docstring).  ``grads`` is not modified."""
        comm, size = self.comm, self.comm.size
        with _Agreed(comm):
            for hook in list(self._pre_hooks.values()):
                hook(self, grads)
            flat = _flat_grads(grads, self._names, self._params)
        # 1. reduce-scatter: this rank's block of the average, per dtype
        for name, (idx, offs, _counts, _m) in self._layout.items():
            buf = self._flat[name]
            for k, i in enumerate(idx):
                np.copyto(buf[offs[k] : offs[k + 1]].reshape(flat[i].shape), flat[i])
            if size > 1:
                _reduce_block(
                    comm, buf, self.order, True, out=self._grad_shard[name], scratch=self._scratch
                )
        # 2. non-finite flag, clip_value, partial norms: one Allreduce
        check = self.nonfinite != "ignore"
        bad = 0.0
        if check:
            with np.errstate(over="ignore", invalid="ignore"):
                for g in self._grad_shard.values():
                    if g.size and not np.isfinite(g.sum()) and not np.isfinite(g).all():
                        bad = 1.0
        if self.clip_value is not None:
            c = self.clip_value
            for g in self._grad_shard.values():
                np.clip(g, -c, c, out=g)
        ngroups = len(self.param_groups)
        sums = [0.0] * ngroups
        pnorm = self.norm_type
        if self.max_grad_norm is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                for j, q in enumerate(self._inner_map):
                    if q is None:
                        continue
                    v = _exact_pow_sum(self._inner_grads[j], pnorm)
                    if math.isinf(pnorm):
                        sums[q.group] = max(sums[q.group], v) if not math.isnan(v) else math.nan
                    else:
                        sums[q.group] += v
        if check or self.max_grad_norm is not None:
            vec = np.array([bad] + sums, dtype=np.float64)
            if size > 1:
                if math.isinf(pnorm):
                    # MAX of a NaN is not defined by MPI: send NaN flags alongside
                    nan = np.isnan(vec)
                    vec = np.concatenate([np.where(nan, 0.0, vec), nan.astype(np.float64)])
                    comm.Allreduce(MPI.IN_PLACE, vec, op=MPI.MAX)
                    n = vec.size // 2
                    vec = np.where(vec[n:] > 0, math.nan, vec[:n])
                else:
                    comm.Allreduce(MPI.IN_PLACE, vec, op=MPI.SUM)
            if check and vec[0] > 0:
                if self.nonfinite == "skip":
                    self.optimizer.skipped_steps += 1
                    self.optimizer.last_step_skipped = True
                    return
                self._raise_nonfinite()
            if self.max_grad_norm is not None:
                self._scale(vec[1:].tolist(), pnorm)
        # 3. the shard's update, by the ordinary optimizer
        self._sync_options()
        self.optimizer.step(self._inner_grads)
        # 4. all-gather the parameters
        self._gather_params()
        for hook in list(self._post_hooks.values()):
            hook(self, grads)

    def _scale(self, sums: list[float], pnorm: float) -> None:
        def norm(s: float) -> float:
            if math.isinf(pnorm) or pnorm == 1.0:
                return s
            if pnorm == 2.0:
                return math.sqrt(s)
            return float(s ** (1.0 / pnorm))

        if self.clip_scope == "all":
            if math.isinf(pnorm):
                total = math.nan if any(math.isnan(s) for s in sums) else max(sums, default=0.0)
            else:
                total = sum(sums)
            norms = [norm(total)] * len(sums)
        else:
            norms = [norm(s) for s in sums]
        assert self.max_grad_norm is not None
        coefs = [self.max_grad_norm / (n + 1e-6) for n in norms]  # PyTorch's clip_grad_norm_
        for j, q in enumerate(self._inner_map):
            if q is not None and coefs[q.group] < 1.0:
                g = self._inner_grads[j]
                np.multiply(g, g.dtype.type(coefs[q.group]), out=g)

    def _raise_nonfinite(self) -> None:
        """Every rank raises ``NonFiniteGradientError`` naming the first non-finite element
        (in parameter order) of the averaged gradient, as a single process would."""
        found: tuple[int, int, str] | None = None
        for j, q in enumerate(self._inner_map):
            if q is None:
                continue
            g = self._inner_grads[j]
            bad = np.flatnonzero(~np.isfinite(g))
            if bad.size:
                found = (q.index, q.lo + int(bad[0]), str(g[int(bad[0])]))
                break
        everything = [x for x in self.comm.allgather(found) if x is not None]
        i, flat_index, value = min(everything)
        shape = self._params[i].shape
        idx = tuple(int(x) for x in np.unravel_index(flat_index, shape))
        raise NonFiniteGradientError(
            f"grads[{self._names[i]!r}] has a non-finite value ({value}) at index "
            f"{idx if len(shape) != 1 else idx[0]} (step {self.step_count}) of the gradient "
            "averaged over the ranks; nothing was updated.  Fix the loss/gradient, or "
            "construct the optimizer with nonfinite='skip' to skip such steps (counted in "
            "skipped_steps)"
        )

    def _gather_params(self) -> None:
        r = self.comm.rank
        for name, (idx, offs, _counts, m) in self._layout.items():
            buf = self._flat[name]
            if self.comm.size > 1:
                base = r * m
                for q in self._pieces:
                    if q.dtype == name:
                        buf[base + q.pos : base + q.pos + q.hi - q.lo] = self._params[
                            q.index
                        ].reshape(-1)[q.lo : q.hi]
                self.comm.Allgather(MPI.IN_PLACE, [buf, _MPI_TYPES[name]])
                for k, i in enumerate(idx):
                    np.copyto(self._params[i].reshape(-1), buf[offs[k] : offs[k + 1]])

    # state: the single-process format, collectively ----------------------------------------
    def _counter_keys(self) -> tuple[str, ...]:
        return ("step", *self.optimizer._spec.group_state)

    def _group_keys(self, inner_sd: dict[str, Any]) -> list[list[str]]:
        return [sorted(inner_sd["state"][g["names"][0]]) for g in self.optimizer.param_groups]

    def _full_state_dict(self, root: int | None) -> dict[str, Any] | None:
        """The single-process ``state_dict()`` of the whole optimizer, assembled from the
        shards (``Gather`` to ``root``, or ``Allgather`` to all if ``root`` is None)."""
        comm, r = self.comm, self.comm.rank
        self._sync_options()
        inner_sd = self.optimizer.state_dict()
        gkeys = self._group_keys(inner_sd)
        all_keys = sorted({k for ks in gkeys for k in ks})
        mine = root is None or r == root
        state: dict[Any, dict[str, Array]] = {n: {} for n in self._names} if mine else {}
        for name, (idx, offs, _counts, m) in self._layout.items():
            mt = _MPI_TYPES[name]
            for key in all_keys:
                shard = np.zeros(m, dtype=name)
                for j, q in enumerate(self._inner_map):
                    if q is not None and q.dtype == name and key in inner_sd["state"][j]:
                        shard[q.pos : q.pos + q.hi - q.lo] = inner_sd["state"][j][key]
                full = np.empty(m * comm.size, dtype=name) if mine else None
                if comm.size == 1:
                    assert full is not None
                    full[:] = shard
                elif root is None:
                    comm.Allgather([shard, mt], [full, mt])
                else:
                    comm.Gather([shard, mt], [full, mt] if mine else None, root=root)
                if not mine:
                    continue
                assert full is not None
                for k, i in enumerate(idx):
                    if key in gkeys[self._group_of[i]]:
                        state[self._names[i]][key] = full[offs[k] : offs[k + 1]].reshape(
                            self._params[i].shape
                        )
        if not mine:
            return None
        groups = []
        keys = self._counter_keys()
        for entry, full_group in zip(inner_sd["param_groups"], self.param_groups):
            entry = _uniform_counters(entry, keys, len(full_group["names"]))
            entry["names"] = list(full_group["names"])
            entry["shapes"] = [p.shape for p in full_group["params"]]
            entry["dtypes"] = [p.dtype.str for p in full_group["params"]]
            groups.append(entry)
        out = dict(inner_sd)
        out["param_groups"] = groups
        out["state"] = state
        return out

    def state_dict(self) -> dict[str, Any]:
        """Collective: the whole optimizer's state in the single-process format (what
        ``optimizer_class(params, **options).state_dict()`` returns), on every rank, so that
        a single-process optimizer can ``load_state_dict`` it.  Holds the full state on
        every rank for the time being; ``fastopt.save`` gathers to rank 0 only."""
        sd = self._full_state_dict(None)
        assert sd is not None
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Collective: restore a single-process-format ``state_dict`` (from
        ``state_dict()`` here or of a single-process optimizer, any number of ranks);
        rank 0's argument is used, checked by the single-process ``load_state_dict`` before
        anything changes (errors raised on every rank), then each rank keeps its shard."""
        self._load_from_root(lambda full: full.load_state_dict(state_dict), False)

    def _full_optimizer(self) -> Any:
        return self.optimizer_class(self._ctor_groups, **self._options)

    def _load_from_root(self, action: Callable[[Any], None], with_params: bool) -> None:
        comm, root = self.comm, 0
        sd: dict[str, Any] | None = None
        with _Agreed(comm):
            if comm.rank == root:
                full = self._full_optimizer()
                action(full)
                sd = full.state_dict()
                del full
                for entry in sd["param_groups"]:
                    _uniform_counters(entry, self._counter_keys(), 1)  # refused before any change
        skeleton: Any = None
        if comm.rank == root:
            assert sd is not None
            specs = []
            for n in self._names:
                specs.append(
                    [
                        (k, a.shape, np.asarray(a).dtype.str)
                        for k, a in sorted(sd["state"][n].items())
                    ]
                )
            skeleton = ({k: v for k, v in sd.items() if k != "state"}, specs)
        head, specs = comm.bcast(skeleton, root=root) if comm.size > 1 else skeleton
        piece_of = {q.index: j for j, q in enumerate(self._inner_map) if q is not None}
        inner_state: dict[int, dict[str, Array]] = {}
        for i, n in enumerate(self._names):
            for key, shape, dt in specs[i]:
                if comm.rank == root:
                    assert sd is not None
                    a = np.ascontiguousarray(sd["state"][n][key])
                else:
                    a = np.empty(shape, dtype=np.dtype(dt))
                if comm.size > 1 and a.size:
                    comm.Bcast(a.reshape(-1).view(np.uint8), root=root)
                j = piece_of.get(i)
                if j is not None:
                    q = self._inner_map[j]
                    assert q is not None
                    inner_state.setdefault(j, {})[key] = a.reshape(-1)[q.lo : q.hi].copy()
            if with_params and comm.size > 1 and self._params[i].size:
                comm.Bcast(self._params[i].reshape(-1).view(np.uint8), root=root)
        del sd
        with _Agreed(comm):
            groups = []
            for gi, (entry, ig) in enumerate(
                zip(head["param_groups"], self.optimizer.param_groups)
            ):
                entry = _uniform_counters(entry, self._counter_keys(), len(ig["names"]))
                entry["names"] = list(ig["names"])
                entry["shapes"] = [p.shape for p in ig["params"]]
                entry["dtypes"] = [p.dtype.str for p in ig["params"]]
                groups.append(entry)
                first = self._group_of.index(gi)
                for j, p in zip(ig["names"], ig["params"]):
                    if self._inner_map[j] is None:  # the 0-size stand-in
                        inner_state[j] = {k: np.zeros(0, dtype=p.dtype) for k, _, _ in specs[first]}
            inner_sd = dict(head)
            inner_sd["param_groups"] = groups
            inner_sd["state"] = inner_state
            self.optimizer.load_state_dict(inner_sd)
            self._sync_back()

    # checkpoints (called by fastopt.save / fastopt.load) ---------------------------------
    def _fastopt_collective_save(self, path: Any) -> None:
        checkpoint: Any = _checkpoint_module()
        sd = self._full_state_dict(0)
        with _Agreed(self.comm):
            if self.comm.rank == 0:
                full = self._full_optimizer()
                full.load_state_dict(sd)
                checkpoint.save(path, full)

    def _fastopt_collective_load(self, path: Any) -> None:
        checkpoint: Any = _checkpoint_module()
        self._load_from_root(lambda full: checkpoint.load(path, full), True)
