"""Learning-rate range test (Leslie Smith's "LR range test", fastai's ``lr_find``).

>>> result = fastopt.lr_find(params, fastopt.Adam, loss_and_grads)   # doctest: +SKIP
>>> result.suggestion, result.valley, result.steepest, result.minimum  # doctest: +SKIP
>>> result.plot().savefig("lr_find.png")                             # doctest: +SKIP

The test trains for up to ``num_steps`` updates while the learning rate grows
exponentially (or linearly) from ``start_lr`` to ``end_lr``, records the loss at every
step, smooths it with a debiased exponential moving average and stops early once the
smoothed loss exceeds ``diverge_factor`` times the best one seen.  Afterwards the
parameters (restored in place with ``np.copyto``) and the optimizer (step counter, state
buffers, group options, schedule objects) are exactly as before: bit-identical, also when
the loss function raises or returns NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._validation import as_scalar

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .optim import Optimizer

__all__ = ["lr_find", "LRFinderResult"]

SUGGESTIONS = ("valley", "steepest", "minimum")


def _progress_bar(progress: bool | None, total: int, desc: str) -> Any:
    """A tqdm bar, or None.  ``progress=None``: a bar if tqdm is installed; ``True``: tqdm
    is required; ``False``: no bar."""
    if progress is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress is None:
            return None
        raise ImportError(
            "progress=True needs the optional dependency 'tqdm', which is not "
            "installed; install it with: pip install 'fastopt[progress]' (or "
            "pass progress=False)"
        ) from None
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def _sweep_lrs(
    start_lr: float, end_lr: float, num_steps: int, mode: str
) -> npt.NDArray[np.float64]:
    if mode in ("exp", "exponential", "log"):
        if num_steps == 1:
            return np.array([float(start_lr)])
        return np.asarray(
            start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))
        )
    if mode == "linear":
        return np.linspace(start_lr, end_lr, num_steps)
    raise ValueError(f"mode must be 'exp' or 'linear', got {mode!r}")


def _arrays_of(opt: Optimizer) -> list[np.ndarray]:
    return [p for g in opt.param_groups for p in g["params"]]


# ---------------------------------------------------------------------- suggestions
def _steepest(lrs: npt.NDArray[np.float64], losses: npt.NDArray[np.float64]) -> int | None:
    """Index of the largest negative slope of ``losses`` against ``log(lrs)``."""
    n = len(losses)
    if n < 3:
        return None
    x = np.log(lrs)
    slope = np.gradient(losses, x)
    if not np.isfinite(slope).any():
        return None
    i = int(np.nanargmin(slope))
    return i if slope[i] < 0 else None


def _descent_start(
    raw: npt.NDArray[np.float64], smoothed: npt.NDArray[np.float64], imin: int
) -> int:
    """First index of the sustained descent that ends at the lowest loss ``imin``.

    At the start of a sweep the rates are too small to change the loss, so the smoothed
    curve only shows batch noise -- amplified, because the debiased average of the first
    points is made of one or two batches.  Its slopes there can be steeper than the real
    descent (with small batches the first point often won).  A slope counts only once the
    loss has really begun to fall: from the point after which the smoothed loss stays below
    the starting level minus 5% of the total drop, up to the minimum.  The starting level
    is the median of the raw losses over the first tenth of the sweep (at least 5 points),
    robust to one unlucky batch.  torch-lr-finder's answer to the same problem is a fixed
    ``skip_start=10``; this rule reads the skip off the curve instead."""
    n0 = max(5, len(raw) // 10)
    start = float(np.median(raw[:n0]))
    drop = start - float(smoothed[imin])
    if not drop > 0:
        return 0
    above = np.flatnonzero(smoothed[: imin + 1] >= start - 0.05 * drop)
    return int(above[-1]) + 1 if len(above) else 0


def _valley(losses: npt.NDArray[np.float64]) -> int | None:
    """fastai's "valley": the middle-to-late point of the longest decreasing stretch.

    Find the longest (not necessarily contiguous) decreasing subsequence of the losses; the
    suggestion lies 1/2 of the way into its middle third (fastai's rule)."""
    n = len(losses)
    if n < 3:
        return None
    lds = np.ones(n, dtype=np.int64)
    max_start = max_end = 0
    for i in range(1, n):
        smaller = losses[:i] > losses[i]
        if smaller.any():
            lds[i] = max(lds[i], int(lds[:i][smaller].max()) + 1)
        if lds[max_end] < lds[i]:
            max_end = i
            max_start = max_end - int(lds[max_end])
    max_start = max(max_start, 0)
    sections = (max_end - max_start) / 3
    return min(max_start + int(sections) + int(sections / 2), n - 1)


@dataclass
class LRFinderResult:
    """The outcome of :func:`lr_find`.

    Attributes: ``lrs`` (the rate of every step run), ``losses`` (the raw losses the loss
    function returned), ``smoothed_losses`` (debiased exponential average), and the
    suggestions, each a learning rate (or NaN when the sweep was too short to tell):

    * ``valley``: fastai's default rule, a point in the middle of the longest descending
      stretch of the smoothed loss curve (searched from where the loss has begun to fall,
      so that a long flat start at useless tiny rates does not count as valley);
    * ``steepest``: where the smoothed loss falls fastest against ``log(lr)``, searched
      over the sustained descent that ends at the lowest loss (slopes in the flat, noisy
      start of the sweep are batch noise, not descent; see ``_descent_start``);
    * ``minimum``: the rate of the lowest smoothed loss divided by 10;

    ``suggestion`` is the one named by ``method`` (``"valley"`` unless chosen otherwise).
    ``diverged`` tells whether the sweep stopped early (divergence or a NaN/inf loss),
    ``stop_reason`` says why it ended.
    """

    lrs: npt.NDArray[np.float64]
    losses: npt.NDArray[np.float64]
    smoothed_losses: npt.NDArray[np.float64]
    method: str = "valley"
    diverged: bool = False
    stop_reason: str = "completed"
    mode: str = "exp"
    start_lr: float = 1e-7
    end_lr: float = 10.0
    num_steps: int = 100
    indices: dict[str, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lrs = np.asarray(self.lrs, dtype=np.float64)
        self.losses = np.asarray(self.losses, dtype=np.float64)
        self.smoothed_losses = np.asarray(self.smoothed_losses, dtype=np.float64)
        if self.method not in SUGGESTIONS:
            raise ValueError(f"method must be one of {SUGGESTIONS}, got {self.method!r}")
        if not self.indices:
            self.indices = self._compute_indices()

    def _compute_indices(self) -> dict[str, int | None]:
        lrs, sm = self.lrs, self.smoothed_losses
        ok = np.isfinite(sm)
        # Drop the final stretch where the loss blew up; it would only confuse the slopes.
        end = len(sm)
        if self.diverged and end > 10:
            end -= max(1, min(5, end // 10))
        idx = np.flatnonzero(ok[:end])
        out: dict[str, int | None] = {"steepest": None, "valley": None, "minimum": None}
        if len(idx) == 0:
            return out
        lrs_v, sm_v = lrs[idx], sm[idx]
        # The steepest descent is looked for up to the lowest loss: after it, a blown-up loss
        # that falls back would show spurious steep slopes.
        imin = int(np.argmin(sm_v))
        d0 = _descent_start(self.losses[idx], sm_v, imin)
        i = _steepest(lrs_v[d0 : imin + 1], sm_v[d0 : imin + 1])
        out["steepest"] = None if i is None else int(idx[d0 + i])
        # The valley is searched from where the loss has started to fall (by 5% of the total
        # drop): a long flat start, at rates too small to move anything, is no valley.
        drop = sm_v[0] - sm_v.min()
        j0 = int(np.argmax(sm_v < sm_v[0] - 0.05 * drop)) if drop > 0 else 0
        j0 = max(0, min(j0, len(sm_v) - 3))
        i = _valley(sm_v[j0:])
        out["valley"] = None if i is None else int(idx[j0 + i])
        out["minimum"] = int(idx[imin])
        return out

    def _lr_at(self, key: str) -> float:
        i = self.indices.get(key)
        return math.nan if i is None else float(self.lrs[i])

    @property
    def steepest(self) -> float:
        """The rate with the largest negative slope of smoothed loss vs. log lr."""
        return self._lr_at("steepest")

    @property
    def valley(self) -> float:
        """fastai's valley suggestion (the middle of the longest descending stretch)."""
        return self._lr_at("valley")

    @property
    def minimum(self) -> float:
        """The rate of the lowest smoothed loss, divided by 10."""
        return self._lr_at("minimum") / 10.0

    @property
    def best_loss(self) -> float:
        """The lowest smoothed loss of the sweep."""
        sm = self.smoothed_losses[np.isfinite(self.smoothed_losses)]
        return float(sm.min()) if len(sm) else math.nan

    @property
    def suggestions(self) -> dict[str, float]:
        """``{"valley": lr, "steepest": lr, "minimum": lr}`` (``minimum`` is already / 10)."""
        return {"valley": self.valley, "steepest": self.steepest, "minimum": self.minimum}

    @property
    def suggestion(self) -> float:
        """The suggested learning rate by ``method``; falls back to the other rules (in the
        order valley, steepest, minimum) if that one is undefined (a very short sweep)."""
        sug = self.suggestions
        for key in (self.method,) + SUGGESTIONS:
            if math.isfinite(sug[key]):
                return sug[key]
        return math.nan

    def to_dict(self) -> dict[str, Any]:
        """Plain Python data (lists and floats), e.g. for ``json.dump``."""
        return {
            "lrs": self.lrs.tolist(),
            "losses": self.losses.tolist(),
            "smoothed_losses": self.smoothed_losses.tolist(),
            "method": self.method,
            "suggestion": self.suggestion,
            **self.suggestions,
            "diverged": self.diverged,
            "stop_reason": self.stop_reason,
            "mode": self.mode,
        }

    def __repr__(self) -> str:
        s = self.suggestions
        return (
            f"LRFinderResult(steps={len(self.lrs)}, stop_reason={self.stop_reason!r}, "
            f"suggestion={self.suggestion:.3g} ({self.method}), valley={s['valley']:.3g}, "
            f"steepest={s['steepest']:.3g}, minimum/10={s['minimum']:.3g})"
        )

    def _ylim(self) -> tuple[float, float] | None:
        """The y-range of the plot: the smoothed loss from its start to its minimum (the
        part that decides the suggestions) plus a 10% margin; None if nothing is finite."""
        sm = self.smoothed_losses
        finite = np.flatnonzero(np.isfinite(sm))
        if not len(finite):
            return None
        imin = int(finite[np.argmin(sm[finite])])
        head = sm[: imin + 1]
        lo, hi = float(sm[imin]), float(np.nanmax(head))
        pad = 0.1 * (hi - lo) if hi > lo else 0.05 * abs(lo) + 1e-12
        return lo - pad, hi + pad

    def plot(
        self,
        ax: Axes | None = None,
        *,
        show_raw: bool = True,
        mark: str | None = "all",
        title: str | None = None,
    ) -> Figure:
        """Draw the loss against the learning rate (log x-axis for the exponential sweep)
        with the suggestion(s) marked; returns the matplotlib Figure.

        ``ax``: an Axes to draw into.  ``show_raw``: also draw the raw losses, faintly.
        ``mark``: ``"all"`` marks every suggestion, ``"suggestion"`` only the chosen one,
        ``None`` none.  The y-range is the smoothed curve's (from the start of the sweep to
        its minimum, plus a margin); raw losses outside it (noise, the final blow-up) are
        drawn at its edge, so the raw curve stays inside the axes.
        """
        from .plotting import new_axes

        own = ax is None
        fig, ax = new_axes(ax, figsize=(6, 4))
        ylim = self._ylim()
        if show_raw:
            raw = self.losses if ylim is None else np.clip(self.losses, *ylim)
            ax.plot(self.lrs, raw, color="0.7", lw=0.8, label="loss")
        ax.plot(self.lrs, self.smoothed_losses, color="C0", lw=1.6, label="smoothed loss")
        if self.mode != "linear":
            ax.set_xscale("log")
        styles = {"valley": ("C3", "o"), "steepest": ("C2", "v"), "minimum": ("C1", "s")}
        keys = (
            [] if mark is None else ([self.method] if mark == "suggestion" else list(SUGGESTIONS))
        )
        for key in keys:
            i = self.indices.get(key)
            if i is None:
                continue
            lr = self.suggestions[key]
            color, marker = styles[key]
            chosen = key == self.method
            label = "minimum/10" if key == "minimum" else key
            label += f" {lr:.2g}" + (" (suggestion)" if chosen else "")
            if key == "minimum":
                y = (
                    float(np.interp(np.log(lr), np.log(self.lrs), self.smoothed_losses))
                    if self.mode != "linear"
                    else float(np.interp(lr, self.lrs, self.smoothed_losses))
                )
            else:
                y = self.smoothed_losses[i]
            ax.plot(
                [lr],
                [y],
                marker=marker,
                color=color,
                ms=9 if chosen else 7,
                ls="none",
                label=label,
                zorder=5,
            )
            if chosen:
                ax.axvline(lr, color=color, ls="--", lw=1, alpha=0.7)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title(title or f"LR range test: suggestion {self.suggestion:.3g} ({self.method})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
        if own:
            fig.tight_layout()
        return fig


def _resolve_optimizer(params: Any, optimizer: Any) -> Optimizer:
    from .optim import Optimizer

    if isinstance(optimizer, Optimizer):
        return optimizer
    if callable(optimizer):
        if params is None:
            raise TypeError(
                "lr_find: params is None but optimizer is a factory; pass the "
                "parameters (or an existing optimizer)"
            )
        opt = optimizer(params)
        if not isinstance(opt, Optimizer):
            raise TypeError(
                f"lr_find: the optimizer factory returned {type(opt).__name__}, "
                "not a fastopt optimizer"
            )
        return opt
    raise TypeError(
        "lr_find: optimizer must be a fastopt optimizer, an optimizer class such as "
        "fastopt.Adam, or a factory params -> optimizer; got "
        f"{type(optimizer).__name__}"
    )


def _as_float_loss(loss: Any, step: int) -> float:
    return as_scalar(loss, "lr_find: the loss", f" at step {step}")


def lr_find(
    params: Any,
    optimizer: Optimizer | Callable[[Any], Optimizer],
    loss_and_grads: Callable[[int], tuple[Any, Any]],
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exp",
    smoothing: float = 0.98,
    diverge_factor: float | None = 4.0,
    method: str = "valley",
    progress: bool | None = None,
    restore: bool = True,
) -> LRFinderResult:
    """Run a learning-rate range test and return an :class:`LRFinderResult`.

    Parameters
    ----------
    params:
        The parameters (as given to the optimizer).  Used only with an optimizer factory;
        may be ``None`` when ``optimizer`` is an existing optimizer.
    optimizer:
        A fastopt optimizer, or a factory ``params -> optimizer`` such as ``fastopt.Adam`` or
        ``lambda p: fastopt.SGD(p, momentum=0.9)``.  Its ``lr`` entries (numbers or
        schedules) are replaced by the sweep value during the test and put back afterwards.
    loss_and_grads:
        ``loss_and_grads(step) -> (loss, grads)``: the loss and gradients on the next batch
        at the current parameter values, ``grads`` in the structure of ``params``.
        ``step`` counts the sweep from 0.
    start_lr, end_lr, num_steps, mode:
        Sweep from ``start_lr`` to ``end_lr`` in ``num_steps`` steps, exponentially
        (``mode="exp"``, the default) or linearly (``mode="linear"``).
    smoothing:
        The factor ``beta`` of the debiased exponential moving average of the loss:
        ``avg = beta * avg + (1 - beta) * loss``, ``smoothed = avg / (1 - beta**(i+1))``.
    diverge_factor:
        Stop once the smoothed loss exceeds ``diverge_factor * best smoothed loss``
        (``None`` or ``inf`` never stops early).  A NaN or infinite loss also stops it.
    method:
        Which suggestion ``result.suggestion`` returns: ``"valley"`` (default),
        ``"steepest"`` or ``"minimum"`` (the rate of the lowest loss / 10).
    progress:
        Show a tqdm progress bar: ``None`` (default) if tqdm is installed, ``True``
        (requires tqdm, ``pip install fastopt[progress]``), ``False`` never.
    restore:
        Put the parameters and the optimizer back exactly as they were (default).  With
        ``restore=False`` they are left as at the end of the sweep (a NaN loss or an
        exception still restores).

    Optimizer hooks (``register_step_pre_hook`` / ``post_hook``) run during the sweep as in
    training, so gradient clipping hooks apply; attach a ``History`` after the test if it
    should not record the sweep.
    """
    start_lr, end_lr = float(start_lr), float(end_lr)
    num_steps = int(num_steps)
    if not (start_lr > 0 and math.isfinite(start_lr)):
        raise ValueError(f"start_lr must be a positive number, got {start_lr}")
    if not (end_lr > start_lr and math.isfinite(end_lr)):
        raise ValueError(
            f"end_lr must be a finite number larger than start_lr={start_lr}, got {end_lr}"
        )
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    if diverge_factor is None:
        diverge_factor = math.inf
    if not diverge_factor > 1.0:
        raise ValueError(f"diverge_factor must be > 1, got {diverge_factor}")
    if method not in SUGGESTIONS:
        raise ValueError(f"method must be one of {SUGGESTIONS}, got {method!r}")
    mode = "exp" if mode in ("exp", "exponential", "log") else mode
    sweep = _sweep_lrs(start_lr, end_lr, num_steps, mode)

    opt = _resolve_optimizer(params, optimizer)
    arrays = _arrays_of(opt)
    saved_params = [p.copy() for p in arrays]
    saved_state = opt.state_dict()
    saved_lrs = [g["lr"] for g in opt.param_groups]

    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    stop_reason, diverged = "completed", False
    bar = _progress_bar(progress, num_steps, "lr_find")
    clean_exit = False
    try:
        avg, best = 0.0, math.inf
        for i, lr in enumerate(sweep):
            loss, grads = loss_and_grads(i)
            loss = _as_float_loss(loss, i)
            lrs.append(float(lr))
            losses.append(loss)
            if not math.isfinite(loss):
                smoothed.append(math.nan)
                stop_reason, diverged = "non-finite loss", True
                break
            avg = smoothing * avg + (1.0 - smoothing) * loss
            sm = avg / (1.0 - smoothing ** (i + 1))
            smoothed.append(sm)
            if sm < best:
                best = sm
            if i > 0 and sm > diverge_factor * best:
                stop_reason, diverged = "diverged", True
                break
            for g in opt.param_groups:
                g["lr"] = float(lr)
            opt.step(grads)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(lr=f"{lr:.2e}", loss=f"{sm:.4g}", refresh=False)
        clean_exit = True
    finally:
        if bar is not None:
            bar.close()
        for g, v in zip(opt.param_groups, saved_lrs):
            g["lr"] = v
        if restore or not clean_exit or stop_reason == "non-finite loss":
            for p, s in zip(arrays, saved_params):
                np.copyto(p, s)
            opt.load_state_dict(saved_state)
            for g, v in zip(opt.param_groups, saved_lrs):
                g["lr"] = v  # load_state_dict keeps the group entries; put the originals back
    return LRFinderResult(
        np.asarray(lrs, dtype=np.float64),
        np.asarray(losses, dtype=np.float64),
        np.asarray(smoothed, dtype=np.float64),
        method=method,
        diverged=diverged,
        stop_reason=stop_reason,
        mode=mode,
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
    )
