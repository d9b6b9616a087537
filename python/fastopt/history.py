"""Training history: per-step learning rates, losses, gradient and update norms.

>>> history = fastopt.History().attach(opt)      # doctest: +SKIP
>>> for batch in batches:                         # doctest: +SKIP
...     loss, grads = loss_and_grads(batch)
...     opt.step(grads)                           # the hook records lr and grad norm
...     history.log_loss(loss)                    # attached to the step just taken
>>> history.to_csv("history.csv"); history.plot().savefig("history.png")  # doctest: +SKIP

One row per optimizer update, keyed by ``step``: the optimizer's 0-based step counter of
that update (the value its schedules were evaluated at).  Columns:

* ``lr`` (one group) or ``lr_0``, ``lr_1``, ... (several groups): the rate each group used;
* ``grad_norm``: the global L2 norm of the gradients passed to ``step``
  (``track_grad_norm=True``, the default);
* ``update_norm``: the global L2 norm of the change of the parameters made by the step
  (``track_update_norm=True``; off by default because it copies the parameters before
  every step);
* ``param_norm``: the global L2 norm of the parameters after the step
  (``track_param_norm=True``);
* ``loss`` and any other scalar you report with :meth:`History.log_loss` /
  :meth:`History.record`.

:class:`TensorBoardLogger` is a History that also writes every value to TensorBoard event
files (``pip install fastopt[tensorboard]``); :func:`read_tensorboard_scalars` reads such
files back without TensorBoard.
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import struct
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._validation import as_scalar

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .optim import Optimizer

__all__ = ["History", "TensorBoardLogger", "read_tensorboard_scalars"]


def _flat(grads: Any) -> list[Any]:
    if isinstance(grads, dict):
        return list(grads.values())
    if isinstance(grads, np.ndarray):
        return [grads]
    return list(grads)


def _global_norm(arrays: Iterable[Any]) -> float:
    total = 0.0
    for a in arrays:
        a = np.asarray(a)
        if a.size:
            a = a.ravel() if a.dtype.kind == "f" else a.ravel().astype(np.float64)
            total += float(np.dot(a, a))
    return math.sqrt(total)


def _scalar(name: str, value: Any) -> float:
    return as_scalar(value, f"History: {name!r}")


class History:
    """Records one row of scalars per optimizer step; exports CSV/JSON; plots.

    Use it as an optimizer callback with :meth:`attach` (it registers step hooks), or on
    its own with ``record(step=..., **scalars)``.

    Parameters: ``track_grad_norm`` (default True), ``track_update_norm`` (default False:
    costs one copy of the parameters per step), ``track_param_norm`` (default False).
    """

    def __init__(
        self,
        *,
        track_grad_norm: bool = True,
        track_update_norm: bool = False,
        track_param_norm: bool = False,
    ) -> None:
        self.track_grad_norm = bool(track_grad_norm)
        self.track_update_norm = bool(track_update_norm)
        self.track_param_norm = bool(track_param_norm)
        self._rows: dict[int, dict[str, float]] = {}  # step -> {column: value}
        self._columns: list[str] = ["step"]
        self._handles: list[Any] = []
        self._optimizer: Optimizer | None = None
        self._before: list[np.ndarray] | None = None  # parameter copies for the update norm
        self._pending: dict[str, float] = {}  # values reported before the first step

    # ------------------------------------------------------------------ recording
    def attach(self, optimizer: Optimizer) -> History:
        """Record every step of ``optimizer`` (a fastopt optimizer); returns ``self``.

        Registers a post-step hook (learning rates, gradient norm) and, with
        ``track_update_norm``, a pre-step hook that snapshots the parameters."""
        if self._optimizer is not None:
            raise RuntimeError(
                "this History is already attached to an optimizer; call "
                "detach() first (or use one History per optimizer)"
            )
        self._optimizer = optimizer
        if self.track_update_norm:
            self._handles.append(optimizer.register_step_pre_hook(self._pre_hook))
        self._handles.append(optimizer.register_step_post_hook(self._post_hook))
        return self

    def detach(self) -> None:
        """Remove the hooks from the optimizer (the recorded rows stay)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._optimizer = None
        self._before = None

    def _arrays(self, opt: Optimizer) -> list[np.ndarray]:
        return [p for g in opt.param_groups for p in g["params"]]

    def _pre_hook(self, opt: Optimizer, grads: Any) -> None:
        arrays = self._arrays(opt)
        if (
            self._before is None
            or len(self._before) != len(arrays)
            or any(b.shape != p.shape or b.dtype != p.dtype for b, p in zip(self._before, arrays))
        ):
            self._before = [p.copy() for p in arrays]
        else:
            for b, p in zip(self._before, arrays):
                np.copyto(b, p)

    def _post_hook(self, opt: Optimizer, grads: Any) -> None:
        step = opt.step_count - 1
        values: dict[str, float] = {}
        lrs = list(opt.last_lr)
        if len(lrs) == 1:
            values["lr"] = lrs[0]
        else:
            values.update({f"lr_{i}": v for i, v in enumerate(lrs)})
        if self.track_grad_norm:
            values["grad_norm"] = _global_norm(_flat(grads))
        if self.track_update_norm and self._before is not None:
            total = 0.0
            for b, p in zip(self._before, self._arrays(opt)):
                d = (p - b).ravel()
                total += float(np.dot(d, d))
            values["update_norm"] = math.sqrt(total)
        if self.track_param_norm:
            values["param_norm"] = _global_norm(self._arrays(opt))
        if self._pending:
            values.update(self._pending)
            self._pending = {}
        self._set(step, values)

    def _current_step(self) -> int:
        if self._optimizer is not None:
            return self._optimizer.step_count - 1
        return max(self._rows) if self._rows else -1

    def record(self, step: int | None = None, **scalars: Any) -> None:
        """Record scalars (``loss=0.3, accuracy=0.9, ...``) for a step.

        ``step=None``: attached to an optimizer, the values belong to the step it has just
        taken (call ``record`` after ``opt.step``; values reported before the first step
        go to step 0); not attached, a new row after the last one is started."""
        if not scalars:
            return
        values = {k: _scalar(k, v) for k, v in scalars.items()}
        if step is None:
            if self._optimizer is not None:
                step = self._optimizer.step_count - 1
                if step < 0:
                    self._pending.update(values)
                    return
            else:
                step = (max(self._rows) + 1) if self._rows else 0
        self._set(int(step), values)

    def log_loss(self, loss: Any, step: int | None = None) -> None:
        """Record the training loss (a float, NumPy scalar or 0-d array) for a step; see
        :meth:`record` for which step ``step=None`` means."""
        self.record(step=step, loss=loss)

    def _set(self, step: int, values: dict[str, float]) -> None:
        row = self._rows.setdefault(step, {"step": step})
        for key, value in values.items():
            if key not in self._columns:
                self._columns.append(key)
            row[key] = value
            self._on_scalar(step, key, value)

    def _on_scalar(self, step: int, key: str, value: float) -> None:
        """Called for every recorded value; subclasses (TensorBoardLogger) forward it."""

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self._rows)

    @property
    def columns(self) -> list[str]:
        """Column names, ``"step"`` first, in the order they first appeared."""
        return list(self._columns)

    @property
    def rows(self) -> list[dict[str, float]]:
        """The rows as a list of dicts, ordered by step (missing values are absent)."""
        return [dict(self._rows[k]) for k in sorted(self._rows)]

    @property
    def steps(self) -> npt.NDArray[np.int64]:
        """The recorded steps as an int array."""
        return np.array(sorted(self._rows), dtype=np.int64)

    def __getitem__(self, column: str) -> np.ndarray:
        """One column as a float array over :attr:`steps` (NaN where not recorded)."""
        if column not in self._columns:
            raise KeyError(f"History has no column {column!r}; columns: {self._columns}")
        return np.array(
            [self._rows[k].get(column, math.nan) for k in sorted(self._rows)],
            dtype=np.int64 if column == "step" else np.float64,
        )

    def __contains__(self, column: object) -> bool:
        return column in self._columns

    def __repr__(self) -> str:
        return f"History({len(self)} steps, columns={self._columns})"

    # ------------------------------------------------------------------ export / import
    def to_dict(self) -> dict[str, Any]:
        """``{"columns": [...], "rows": [{...}, ...]}`` (plain Python data)."""
        return {"columns": self.columns, "rows": self.rows}

    def to_csv(self, path: str | os.PathLike[str]) -> str | os.PathLike[str]:
        """Write one line per step, one column per value (empty where not recorded)."""
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self._columns)
            for row in self.rows:
                w.writerow(
                    [
                        "" if c not in row else (row[c] if c == "step" else repr(row[c]))
                        for c in self._columns
                    ]
                )
        return path

    def to_json(self, path: str | os.PathLike[str]) -> str | os.PathLike[str]:
        """Write :meth:`to_dict` as JSON (NaN/inf as JSON's non-standard NaN/Infinity)."""
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        return path

    @classmethod
    def _from_rows(cls, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> History:
        h = cls()
        for c in columns:
            if c not in h._columns:
                h._columns.append(c)
        for row in rows:
            step = int(row["step"])
            h._rows[step] = {"step": step, **{k: float(v) for k, v in row.items() if k != "step"}}
        return h

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> History:
        """Read a file written by :meth:`to_csv`."""
        with open(path, newline="") as f:
            r = csv.reader(f)
            columns = next(r)
            rows = [{c: v for c, v in zip(columns, line) if v != ""} for line in r]
        return cls._from_rows(columns, rows)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> History:
        """Read a file written by :meth:`to_json`."""
        with open(path) as f:
            d = json.load(f)
        return cls._from_rows(d["columns"], d["rows"])

    # ------------------------------------------------------------------ plotting
    def _panel_columns(self, metric: str) -> list[str]:
        """The columns drawn in the panel of ``metric``: ``"lr"`` means every group's rate."""
        if metric == "lr":
            cols = [c for c in self._columns if c == "lr" or c.startswith("lr_")]
            if cols:
                return cols
        if metric not in self._columns or metric == "step":
            raise KeyError(
                f"History has no column {metric!r} to plot; columns: "
                f"{[c for c in self._columns if c != 'step']}"
            )
        return [metric]

    def plot(
        self,
        metrics: str | Sequence[str] | None = None,
        axes: Axes | Sequence[Axes] | None = None,
        *,
        label: str | None = None,
        smooth: float = 0.0,
        log: bool | None = None,
        log_loss: bool | None = None,
        title: str | None = None,
    ) -> Figure:
        """Draw recorded columns against the step, one panel per metric; returns the
        matplotlib Figure.

        ``metrics``: a column name (``"val_loss"``) or a list of them (``["loss",
        "grad_norm"]``); default ``["loss", "lr"]`` (``"loss"`` only when some loss was
        recorded).  ``"lr"`` draws the rate of every parameter group.  ``axes``: Axes to
        draw into, one per metric (e.g. to overlay several runs, with ``label``).
        ``smooth``: beta of a debiased exponential average applied to every metric but the
        learning rates, for display (0 = raw).  ``log``: log y-axes (default: for a panel
        whose values are all positive and span more than a factor 20); ``log_loss``
        overrides it for the ``"loss"`` panel.  Non-finite values are left out.
        """
        from .plotting import new_axes

        if metrics is None:
            names = (["loss"] if "loss" in self else []) + ["lr"]
        elif isinstance(metrics, str):
            names = [metrics]
        else:
            names = list(metrics)
        if not names:
            raise ValueError("metrics must name at least one column")
        panels = [(m, self._panel_columns(m)) for m in names]
        own = axes is None
        given: list[Axes] | None = None
        if isinstance(axes, (Sequence, np.ndarray)):
            given = list(axes)
        elif axes is not None:
            given = [axes]
        fig, ax_list = new_axes(
            given,
            nrows=len(names),
            ncols=1,
            figsize=(7, 1.2 + 2.0 * len(names)),
            sharex=True,
            squeeze=False,
        )
        ax_flat = list(np.ravel(np.asarray(ax_list, dtype=object)))
        if len(ax_flat) != len(names):
            raise ValueError(f"axes: {len(ax_flat)} given for {len(names)} metrics")
        steps = self.steps
        for ax, (metric, cols) in zip(ax_flat, panels):
            drawn = []
            for c in cols:
                y = self[c]
                ok = np.isfinite(y)
                y = y[ok]
                if smooth and metric != "lr":
                    y = _ema(y, smooth)
                if c == metric or len(cols) == 1:
                    lab = label
                else:
                    lab = f"{label + ' ' if label else ''}group {c[3:]}"
                ax.plot(steps[ok], y, label=lab)
                drawn.append(y)
            use_log = log_loss if metric == "loss" and log_loss is not None else log
            if use_log is None:
                vals = np.concatenate(drawn) if drawn else np.empty(0)
                use_log = bool(vals.size and np.all(vals > 0) and vals.max() > 20 * vals.min())
            if use_log:
                ax.set_yscale("log")
            ax.set_ylabel("learning rate" if metric == "lr" else metric.replace("_", " "))
            ax.grid(True, alpha=0.3)
            if label or len(cols) > 1:
                handles, _ = ax.get_legend_handles_labels()
                if handles:
                    ax.legend(fontsize="small")
        ax_flat[-1].set_xlabel("step")
        if title:
            ax_flat[0].set_title(title)
        if own:
            fig.tight_layout()
        return fig


def _ema(values: npt.ArrayLike, beta: float) -> npt.NDArray[np.float64]:
    values = np.asarray(values, dtype=np.float64)
    out = np.empty(len(values))
    avg = 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out[i] = avg / (1 - beta ** (i + 1))
    return out


class TensorBoardLogger(History):
    """A :class:`History` that also writes every recorded scalar to TensorBoard.

    >>> tb = fastopt.TensorBoardLogger("runs/adam").attach(opt)   # doctest: +SKIP
    >>> ... opt.step(grads); tb.log_loss(loss) ...                 # doctest: +SKIP
    >>> tb.close()                                                 # doctest: +SKIP

    Tags are ``prefix + column`` (``loss``, ``lr``, ``grad_norm``, ...), the TensorBoard
    step is the optimizer step.  Needs tensorboardX (``pip install fastopt[tensorboard]``).
    ``writer``: an existing ``tensorboardX.SummaryWriter`` to use instead of ``logdir``.
    Usable as a context manager (closes the writer).
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str] | None = None,
        *,
        prefix: str = "",
        writer: Any = None,
        flush_secs: int = 10,
        **history_kwargs: bool,
    ) -> None:
        super().__init__(**history_kwargs)
        if writer is None:
            from .plotting import _require

            tbx = _require("tensorboardX", "tensorboard", "TensorBoardLogger")
            writer = tbx.SummaryWriter(logdir=logdir, flush_secs=flush_secs)
        self.writer = writer
        self.prefix = prefix
        self.logdir = getattr(writer, "logdir", logdir)

    def _on_scalar(self, step: int, key: str, value: float) -> None:
        self.writer.add_scalar(self.prefix + key, value, step)

    def flush(self) -> None:
        """Write pending events to disk."""
        self.writer.flush()

    def close(self) -> None:
        """Detach from the optimizer and flush and close the event file."""
        self.detach()
        self.writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_tensorboard_scalars(
    logdir: str | os.PathLike[str],
) -> dict[str, list[tuple[int, float]]]:
    """Read the scalars of the TensorBoard event files in ``logdir`` (recursively):
    ``{tag: [(step, value), ...]}`` sorted by step.  Needs tensorboardX's protobufs only,
    not TensorBoard."""
    from .plotting import _require

    event_pb2 = _require("tensorboardX.proto.event_pb2", "tensorboard", "read_tensorboard_scalars")
    out: dict[str, list[tuple[int, float]]] = {}
    files = sorted(glob.glob(os.path.join(os.fspath(logdir), "**", "*tfevents*"), recursive=True))
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            start = pos + 12
            record = data[start : start + length]
            pos = start + length + 4
            if len(record) < length:
                break  # truncated write in progress
            ev = event_pb2.Event()
            ev.ParseFromString(record)
            if not ev.HasField("summary"):
                continue
            for v in ev.summary.value:
                if v.HasField("simple_value"):
                    out.setdefault(v.tag, []).append((int(ev.step), float(v.simple_value)))
    return {k: sorted(v) for k, v in out.items()}
