"""Checkpoints: the parameters and the optimizer's state in one ``.npz`` file.

``fastopt.save(path, optimizer)`` writes everything a run needs to resume exactly: every
parameter array (by name), every state array, the step counters, the group options and
the state of stateful schedules (``ReduceOnPlateau``).  ``fastopt.load(path, optimizer)``
checks the file against the optimizer (kind, group layout, names, shapes, dtypes) and
only then copies the values into the optimizer's existing arrays (``np.copyto``).

Format (version 1), plain NumPy, no pickled objects: the file loads with
``np.load(path, allow_pickle=False)``, so a checkpoint from elsewhere cannot run code.

* ``__fastopt__``: a 0-d unicode array holding JSON metadata: format name and version,
  optimizer kind, ``step_count``, ``skipped_steps``, ``last_lr``, and per group the
  parameter names (strings, or ints for list-given params), shapes, dtypes, the group's
  step counters and options (``"<schedule>"`` for scheduled ones), and the schedules'
  ``state_dict()``.
* ``param/<i>`` and ``state/<i>/<state name>``: the arrays, ``i`` being the parameter's
  position in the optimizer (names are in the metadata, so any name is safe).

Saving is atomic: the file is written to a temporary file in the same directory, flushed
and fsync'ed, then renamed over ``path`` with ``os.replace``.  A crash or an exception
during a save leaves the previous checkpoint at ``path`` intact (and no temporary file
behind, except after a hard kill).  The file is written to exactly ``path`` (no ``.npz``
suffix is added).
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import zipfile
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

import numpy as np

if TYPE_CHECKING:
    from .optim import Optimizer

__all__ = ["save", "load", "CheckpointError"]

FORMAT = "fastopt-checkpoint"
VERSION = 1
_META = "__fastopt__"


class CheckpointError(ValueError):
    """The file is not a fastopt checkpoint, is damaged, or does not match the optimizer."""


def _jsonable(x: object) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"cannot store {x!r} ({type(x).__name__}) in a checkpoint")


def _flat_params(optimizer: Optimizer) -> list[tuple[Any, np.ndarray]]:
    return [(nm, p) for g in optimizer.param_groups for nm, p in zip(g["names"], g["params"])]


def _write_npz(fileobj: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (dict name -> ndarray) as an uncompressed .npz to ``fileobj``."""
    np.savez(fileobj, **arrays)  # type: ignore[arg-type]  # names are never "allow_pickle"


def _stale_temp_files(directory: str, base: str) -> list[str]:
    """Temporary files of earlier saves of ``base`` in ``directory`` whose writer is gone.

    A save names its temporary file ``<base>.<host>-<pid>-<random>.tmp``; a save killed
    before its rename leaves it behind.  One whose host is this machine and whose process
    no longer exists is stale; files of live processes (a concurrent save) or of other
    hosts (a shared file system) are left alone."""
    host = _host()
    prefix = base + "."
    stale: list[str] = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return stale
    for name in entries:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        tag = name[len(prefix) : -len(".tmp")]
        parts = tag.rsplit("-", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid() or _alive(pid):
            continue
        stale.append(os.path.join(directory, name))
    return stale


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but is not ours (EPERM)
        return True
    return True


def _target(path: str | os.PathLike[str]) -> str:
    """The file a save to ``path`` replaces: the final target of a symbolic link (the link
    stays a link), else ``path`` itself."""
    path = os.fspath(path)
    if os.path.islink(path):
        return os.path.realpath(path)
    return path


def _collective(optimizer: Any, what: str, path: str | os.PathLike[str]) -> bool:
    """Run the collective ``save``/``load`` of a ``fastopt.distributed`` optimizer (same
    file format; rank 0 reads or writes through this module) and return True; return
    False for a plain optimizer; raise TypeError for anything else."""
    collective = getattr(type(optimizer), f"_fastopt_collective_{what}", None)
    if collective is not None:
        collective(optimizer, path)
        return True
    from .optim import Optimizer

    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a fastopt optimizer, got {type(optimizer).__name__}")
    return False


def save(path: str | os.PathLike[str], optimizer: Optimizer) -> None:
    """Save ``optimizer``'s parameters and state to ``path`` (one ``.npz``), atomically.

    The snapshot is taken under the optimizer's lock (a concurrent ``step`` from another
    thread raises RuntimeError instead of tearing the checkpoint).  If ``path`` is a
    symbolic link, the file it points to is replaced and the link is kept.  Temporary
    files left by earlier saves that were killed are removed.  Raises TypeError if a group
    option cannot be stored as JSON (nothing is written).
    """
    if _collective(optimizer, "save", path):
        return
    optimizer._acquire("save")
    try:
        _save_locked(path, optimizer)
    finally:
        optimizer._lock.release()


def _save_locked(path: str | os.PathLike[str], optimizer: Optimizer) -> None:
    sd = optimizer._state_dict()
    flat = _flat_params(optimizer)
    index = {nm: i for i, (nm, _) in enumerate(flat)}
    arrays = {}
    for i, (nm, p) in enumerate(flat):
        # bfloat16 as its bits (np.save would write an anonymous 'V2'); the metadata's
        # dtypes say "bfloat16"
        arrays[f"param/{i}"] = p.view(np.uint16) if p.dtype.kind == "V" else p
        for key, a in sd["state"][nm].items():
            arrays[f"state/{i}/{key}"] = a
    groups = []
    for entry in sd["param_groups"]:
        entry = dict(entry)
        entry["shapes"] = [list(s) for s in entry["shapes"]]
        entry["indices"] = [index[nm] for nm in entry["names"]]
        groups.append(entry)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "kind": sd["kind"],
        "step_count": int(sd["step_count"]),
        "skipped_steps": int(sd.get("skipped_steps", 0)),
        "last_lr": [float(x) for x in sd["last_lr"]],
        "param_groups": groups,
        "state_keys": {str(index[nm]): sorted(st) for nm, st in sd["state"].items()},
        "schedules": sd["schedules"],
    }
    text = json.dumps(meta, default=_jsonable)  # Infinity/NaN allowed (plateau's best)
    arrays[_META] = np.array(text)  # a '<U' array: no pickle

    path = _target(path)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    for stale in _stale_temp_files(directory, base):
        try:
            os.unlink(stale)
        except OSError:
            pass
    fd, tmp = tempfile.mkstemp(
        prefix=f"{base}.{_host()}-{os.getpid()}-", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


# Room for a .npy member's header (magic, version, length, dict with dtype/shape/order).
_NPY_HEADER_MAX = 4096
# At most this many state arrays per parameter are read from a file.
_STATE_PER_PARAM_MAX = 16


def _limits(optimizer: Optimizer) -> tuple[int, int, int]:
    """Upper bounds on what a checkpoint for ``optimizer`` can hold: (number of parameters,
    bytes of the largest parameter member, bytes of the metadata member)."""
    flat = _flat_params(optimizer)
    largest = max((p.nbytes for _, p in flat), default=0)
    # JSON per parameter: name, shape, dtype, index, state keys; per group: options.
    meta = 1 << 20
    for _, p in flat:
        meta += 512 + 32 * p.ndim
    return len(flat), largest, meta


def _check_sizes(path: str | os.PathLike[str], zf: zipfile.ZipFile, optimizer: Optimizer) -> None:
    """Refuse a file whose members are larger than the optimizer can need, before reading
    any of them (a small file can hold a huge compressed member)."""
    nparams, largest, meta_max = _limits(optimizer)
    budget = 0
    count = 0
    for info in zf.infolist():
        name = info.filename
        if name.endswith(".npy"):
            name = name[:-4]
        if name == _META:
            limit = 4 * meta_max + _NPY_HEADER_MAX  # '<U' stores 4 bytes per character
        elif name.startswith(("param/", "state/")):
            limit = 2 * largest + _NPY_HEADER_MAX  # a state may be wider than its parameter
            count += 1
        else:
            raise CheckpointError(
                f"{path} is not a fastopt checkpoint for this optimizer: "
                f"unexpected entry {info.filename!r}"
            )
        if info.file_size > limit:
            raise CheckpointError(
                f"checkpoint {path} does not match the optimizer: entry {info.filename!r} "
                f"holds {info.file_size} bytes, more than any array of this optimizer "
                f"({limit} bytes); refusing to read it"
            )
        budget += info.file_size
    if count > nparams * (1 + _STATE_PER_PARAM_MAX):
        raise CheckpointError(
            f"checkpoint {path} does not match the optimizer: it holds "
            f"{count} arrays for {nparams} parameters"
        )


def _read(
    path: str | os.PathLike[str], optimizer: Optimizer | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata dict and every array, fully read into memory.  With ``optimizer``, the
    sizes of the members are checked against it before any member is read."""
    try:
        # The file is opened here, not by np.load: np.load leaks its file handle when the
        # archive is damaged (ResourceWarning).
        with open(os.fspath(path), "rb") as fh, np.load(fh, allow_pickle=False) as z:
            if optimizer is not None and getattr(z, "zip", None) is not None:
                _check_sizes(path, z.zip, optimizer)
            files = list(z.files)
            if _META not in files:
                raise CheckpointError(
                    f"{path} is not a fastopt checkpoint (no {_META!r} entry; entries: {files[:5]})"
                )
            meta = json.loads(str(z[_META][()]))
            arrays = {k: z[k] for k in files if k != _META}
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise
    except Exception as exc:  # BadZipFile, truncated members, bad JSON, pickled objects
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a fastopt checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {meta.get('version')}; "
            f"this fastopt reads version {VERSION}"
        )
    return meta, arrays


def _describe(nm: object, a: np.ndarray) -> str:
    return f"{nm!r}: {a.dtype}{tuple(a.shape)}"


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_meta(path: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Structural checks of the JSON metadata (a crafted file gets CheckpointError, not a
    KeyError or AttributeError from deep inside the loader)."""

    def bad(what: str) -> NoReturn:
        raise CheckpointError(f"checkpoint {path} has malformed metadata: {what}")

    for key in ("kind", "step_count", "param_groups", "last_lr"):
        if key not in meta:
            bad(f"no {key!r}")
    if not isinstance(meta["kind"], str):
        bad(f"kind is {meta['kind']!r}")
    for key in ("step_count", "skipped_steps"):
        v = meta.get(key, 0)
        if not _is_int(v) or v < 0:
            bad(f"{key} must be a non-negative integer, got {v!r}")
    if not isinstance(meta["last_lr"], list) or not all(
        x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))
        for x in meta["last_lr"]
    ):
        bad(f"last_lr must be a list of numbers, got {meta['last_lr']!r}")
    if not isinstance(meta.get("schedules", {}), dict):
        bad("schedules must be a dict")
    groups = meta["param_groups"]
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        bad("param_groups must be a list of dicts")
    for gi, g in enumerate(groups):
        names, indices, shapes = g.get("names"), g.get("indices"), g.get("shapes")
        if not isinstance(names, list) or not all(
            isinstance(n, (str, int)) and not isinstance(n, bool) for n in names
        ):
            bad(f"group {gi}: names must be a list of strings or integers")
        if (
            not isinstance(indices, list)
            or len(indices) != len(names)
            or not all(_is_int(i) and i >= 0 for i in indices)
        ):
            bad(f"group {gi}: indices must be one non-negative integer per name")
        if shapes is not None and (
            not isinstance(shapes, list)
            or not all(
                isinstance(s, list) and all(_is_int(d) and d >= 0 for d in s) for s in shapes
            )
        ):
            bad(f"group {gi}: shapes must be lists of non-negative integers")


def load(path: str | os.PathLike[str], optimizer: Optimizer) -> None:
    """Restore parameters and optimizer state saved by :func:`save` into ``optimizer``.

    Everything is checked before anything is modified: the sizes of the file's entries
    against the optimizer (before they are read), the metadata's structure, optimizer
    kind, number of groups, parameter names per group, every parameter's and state
    array's shape and dtype, every option.  A mismatch raises ``CheckpointError`` (a
    ValueError) listing what differs; a damaged file raises ``CheckpointError``; a missing
    one ``FileNotFoundError``.  Then, under the optimizer's lock (a concurrent ``step``
    raises RuntimeError), the values are copied into the optimizer's existing parameter
    and state arrays, and the step counters, options and schedule states are restored.
    """
    if _collective(optimizer, "load", path):
        return
    meta, arrays = _read(path, optimizer)
    _check_meta(path, meta)
    optimizer._acquire("load")
    try:
        _load_locked(path, optimizer, meta, arrays)
    finally:
        optimizer._lock.release()


def _load_locked(
    path: str | os.PathLike[str],
    optimizer: Optimizer,
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> None:
    problems = []
    kind = type(optimizer).__name__
    if meta["kind"] != kind:
        problems.append(f"the checkpoint is for a {meta['kind']} optimizer, this is a {kind}")
    groups = meta["param_groups"]
    if len(groups) != len(optimizer.param_groups):
        problems.append(
            f"the checkpoint has {len(groups)} parameter groups, the optimizer has "
            f"{len(optimizer.param_groups)}"
        )
    state = {}
    pairs = []  # (destination param, saved array)
    for gi, (entry, group) in enumerate(zip(groups, optimizer.param_groups)):
        names = entry["names"]
        if [str(n) for n in names] != [str(n) for n in group["names"]]:
            problems.append(
                f"group {gi}: the checkpoint has parameters {names[:6]}, the "
                f"optimizer has {group['names'][:6]}"
            )
            continue
        for nm, p, idx in zip(group["names"], group["params"], entry["indices"]):
            a = arrays.get(f"param/{idx}")
            if a is None:
                problems.append(f"parameter {nm!r} is missing from the file")
                continue
            if p.dtype.kind == "V" and a.dtype == np.uint16:  # bfloat16, saved as its bits
                a = a.view(p.dtype)
            if a.shape != p.shape or a.dtype != p.dtype:
                problems.append(
                    f"parameter {_describe(nm, a)} in the checkpoint, "
                    f"{p.dtype}{p.shape} in the optimizer"
                )
            pairs.append((p, a))
            prefix = f"state/{idx}/"
            state[nm] = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not match the optimizer: "
            + "; ".join(problems[:10])
            + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
        )
    for entry in groups:
        if isinstance(entry.get("betas"), list):
            entry["betas"] = tuple(entry["betas"])
        if entry.get("shapes") is not None:
            entry["shapes"] = [tuple(s) for s in entry["shapes"]]
    sd = {
        "kind": meta["kind"],
        "step_count": meta["step_count"],
        "skipped_steps": meta.get("skipped_steps", 0),
        "last_lr": [float(x) if x is not None else math.nan for x in meta["last_lr"]],
        "param_groups": groups,
        "state": state,
        "schedules": meta.get("schedules", {}),
    }
    # The optimizer checks the state arrays and every option before it changes anything;
    # the parameters were checked above, so copying them cannot fail.
    try:
        optimizer._load_state_dict(sd)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path} does not match the optimizer: {exc}") from exc
    for p, a in pairs:
        np.copyto(p, a)
