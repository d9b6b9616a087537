"""Plotting helpers (matplotlib is an optional extra: ``pip install fastopt[plot]``).

``plot_schedule(schedule, steps)`` draws any schedule (any callable ``step -> value``).
The plotting methods of :class:`fastopt.LRFinderResult` and :class:`fastopt.History` use
the helpers here.  Every function returns the matplotlib ``Figure`` so that callers can
``fig.savefig("x.png")``; when no display is available the Agg backend is selected, so
everything works on headless machines and in CI.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# What plot_schedule draws: a schedule or any callable step -> value, or a constant.
ScheduleLike = Callable[[int], float] | float

__all__ = ["plot_schedule"]


def _require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency or raise an ImportError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the optional dependency {module.split('.')[0]!r}, "
            f"which is not installed; install it with: pip install "
            f"'fastopt[{extra}]'"
        ) from exc


def _headless() -> bool:
    if sys.platform.startswith(("win", "darwin")):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pyplot() -> Any:
    """``matplotlib.pyplot``, selecting the Agg backend first when there is no display
    (and no backend was chosen explicitly through ``MPLBACKEND`` or ``matplotlib.use``)."""
    matplotlib = _require("matplotlib", "plot", "plotting")
    if "matplotlib.pyplot" not in sys.modules and _headless() and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def new_axes(
    ax: Any = None,
    nrows: int = 1,
    ncols: int = 1,
    figsize: tuple[float, float] | None = None,
    **kwargs: Any,
) -> tuple[Figure, Any]:
    """Return ``(fig, ax)``: the figure of ``ax`` if one is given, else a new figure
    (``ax`` as ``plt.subplots`` returns it: one Axes or an array of them)."""
    if ax is not None:
        fig = ax[0].figure if isinstance(ax, (list, tuple, np.ndarray)) else ax.figure
        return fig, ax
    plt = pyplot()
    fig, ax = plt.subplots(nrows, ncols, figsize=figsize, **kwargs)
    return fig, ax


def evaluate(schedule: ScheduleLike, steps: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Evaluate ``schedule`` at every entry of the integer array ``steps``.

    Schedules from ``fastopt.schedules`` accept an array and are evaluated in one call;
    any other callable ``step -> value`` is called step by step."""
    steps = np.asarray(steps)
    if not callable(schedule):
        return np.full(steps.shape, float(schedule))
    fn: Callable[[Any], Any] = schedule  # a schedule also takes an array of steps
    try:
        out = np.asarray(fn(steps), dtype=np.float64)
        if out.shape == steps.shape:
            return out
    except Exception:  # a plain scalar function: fall back to one call per step
        pass
    return np.array([float(schedule(int(k))) for k in steps.ravel()]).reshape(steps.shape)


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def plot_schedule(
    schedule: ScheduleLike | Sequence[ScheduleLike] | Mapping[str, ScheduleLike],
    steps: int | npt.ArrayLike = 100,
    *,
    ax: Axes | None = None,
    label: str | None = None,
    log: bool = False,
    title: str | None = None,
    xlabel: str = "step",
    ylabel: str = "learning rate",
) -> Figure:
    """Draw one or several schedules against the step and return the Figure.

    ``schedule``: a callable ``step -> value`` (e.g. a ``fastopt.schedules`` schedule), a
    number, a list of them, or a dict ``label -> schedule`` to draw several on one axes.
    ``steps``: the number of steps (draws steps ``0 .. steps-1``) or an array of steps.
    ``ax``: an existing matplotlib Axes to draw into.  ``log=True`` uses a log y-axis.

    >>> fig = plot_schedule(lambda k: 0.1 * 0.5 ** (k // 10), 50)
    >>> fig.savefig("schedule.png")                     # doctest: +SKIP
    """
    steps = np.arange(int(np.asarray(steps))) if np.ndim(steps) == 0 else np.asarray(steps)
    items: list[tuple[str | None, Any]]
    if isinstance(schedule, Mapping):
        items = [(str(k), s) for k, s in schedule.items()]
    elif isinstance(schedule, (list, tuple)):
        items = [(_short(repr(s)), s) for s in schedule]
    else:
        items = [(label, schedule)]
    own = ax is None
    fig, ax = new_axes(ax, figsize=(6, 3.5))
    for name, sched in items:
        ax.plot(steps, evaluate(sched, steps), label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if any(name for name, _ in items):
        ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    if own:
        fig.tight_layout()
    return fig
