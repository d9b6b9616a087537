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
import tempfile
from typing import TYPE_CHECKING, Any, BinaryIO

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


def save(path: str | os.PathLike[str], optimizer: Optimizer) -> None:
    """Save ``optimizer``'s parameters and state to ``path`` (one ``.npz``), atomically.

    Raises TypeError if a group option cannot be stored as JSON (nothing is written).
    """
    from .optim import Optimizer

    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a fastopt optimizer, got {type(optimizer).__name__}")
    sd = optimizer.state_dict()
    flat = _flat_params(optimizer)
    index = {nm: i for i, (nm, _) in enumerate(flat)}
    arrays = {}
    for i, (nm, p) in enumerate(flat):
        arrays[f"param/{i}"] = p
        for key, a in sd["state"][nm].items():
            arrays[f"state/{i}/{key}"] = a
    groups = []
    for entry in sd["param_groups"]:
        entry = dict(entry)
        entry["shapes"] = [list(s) for s in entry["shapes"]]
        entry["indices"] = [index[nm] for nm in entry["names"]]
        groups.append(entry)
    meta = {"format": FORMAT, "version": VERSION, "kind": sd["kind"],
            "step_count": int(sd["step_count"]), "skipped_steps": int(sd.get("skipped_steps", 0)),
            "last_lr": [float(x) for x in sd["last_lr"]], "param_groups": groups,
            "state_keys": {str(index[nm]): sorted(st) for nm, st in sd["state"].items()},
            "schedules": sd["schedules"]}
    text = json.dumps(meta, default=_jsonable)  # Infinity/NaN allowed (plateau's best)
    arrays[_META] = np.array(text)  # a '<U' array: no pickle

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
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


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata dict and every array, fully read into memory."""
    try:
        # The file is opened here, not by np.load: np.load leaks its file handle when the
        # archive is damaged (ResourceWarning).
        with open(os.fspath(path), "rb") as fh, np.load(fh, allow_pickle=False) as z:
            files = list(z.files)
            if _META not in files:
                raise CheckpointError(f"{path} is not a fastopt checkpoint (no {_META!r} entry; "
                                      f"entries: {files[:5]})")
            meta = json.loads(str(z[_META][()]))
            arrays = {k: z[k] for k in files if k != _META}
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise
    except Exception as exc:  # BadZipFile, truncated members, bad JSON, pickled objects
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") \
            from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a fastopt checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {meta.get('version')}; "
                              f"this fastopt reads version {VERSION}")
    return meta, arrays


def _describe(nm: object, a: np.ndarray) -> str:
    return f"{nm!r}: {a.dtype}{tuple(a.shape)}"


def load(path: str | os.PathLike[str], optimizer: Optimizer) -> None:
    """Restore parameters and optimizer state saved by :func:`save` into ``optimizer``.

    Everything is checked before anything is modified: optimizer kind, number of groups,
    parameter names per group, every parameter's and state array's shape and dtype.  A
    mismatch raises ``CheckpointError`` (a ValueError) listing what differs; a damaged
    file raises ``CheckpointError``; a missing one ``FileNotFoundError``.  Then the values
    are copied into the optimizer's existing parameter and state arrays, and the step
    counters, options and schedule states are restored.
    """
    from .optim import Optimizer

    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a fastopt optimizer, got {type(optimizer).__name__}")
    meta, arrays = _read(path)
    problems = []
    kind = type(optimizer).__name__
    if meta.get("kind") != kind:
        problems.append(f"the checkpoint is for a {meta.get('kind')} optimizer, this is a {kind}")
    groups = meta.get("param_groups", [])
    if len(groups) != len(optimizer.param_groups):
        problems.append(f"the checkpoint has {len(groups)} parameter groups, the optimizer has "
                        f"{len(optimizer.param_groups)}")
    state = {}
    pairs = []  # (destination param, saved array)
    for gi, (entry, group) in enumerate(zip(groups, optimizer.param_groups)):
        names = entry.get("names", [])
        if [str(n) for n in names] != [str(n) for n in group["names"]]:
            problems.append(f"group {gi}: the checkpoint has parameters {names[:6]}, the "
                            f"optimizer has {group['names'][:6]}")
            continue
        for nm, p, idx in zip(group["names"], group["params"], entry["indices"]):
            a = arrays.get(f"param/{idx}")
            if a is None:
                problems.append(f"parameter {nm!r} is missing from the file")
                continue
            if a.shape != p.shape or a.dtype != p.dtype:
                problems.append(f"parameter {_describe(nm, a)} in the checkpoint, "
                                f"{p.dtype}{p.shape} in the optimizer")
            pairs.append((p, a))
            prefix = f"state/{idx}/"
            state[nm] = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        if problems:
            continue
        bufs = optimizer._buffers[gi]
        for i, nm in enumerate(group["names"]):
            saved = state[nm]
            for key, arrs in bufs.items():
                if key not in saved:
                    problems.append(f"state {key!r} of parameter {nm!r} is missing (saved "
                                    f"with other options? the file has {sorted(saved)})")
                elif saved[key].shape != arrs[i].shape or saved[key].dtype != arrs[i].dtype:
                    problems.append(f"state {key!r} of parameter {_describe(nm, saved[key])} in "
                                    f"the checkpoint, {arrs[i].dtype}{arrs[i].shape} in the "
                                    "optimizer")
        for key in optimizer.defaults:
            if key not in entry:
                problems.append(f"group {gi}: option {key!r} is missing from the checkpoint")
    if problems:
        raise CheckpointError(f"checkpoint {path} does not match the optimizer: " +
                              "; ".join(problems[:10]) +
                              (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""))
    for entry in groups:
        if "betas" in entry:
            entry["betas"] = tuple(entry["betas"])
        entry["shapes"] = [tuple(s) for s in entry["shapes"]]
    sd = {"kind": meta["kind"], "step_count": int(meta["step_count"]),
          "skipped_steps": int(meta.get("skipped_steps", 0)),
          "last_lr": [float(x) if x is not None else math.nan for x in meta["last_lr"]],
          "param_groups": groups, "state": state, "schedules": meta.get("schedules", {})}
    try:
        optimizer.load_state_dict(sd)
    except (TypeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} does not match the optimizer: {exc}") from exc
    for p, a in pairs:
        np.copyto(p, a)
