"""The fastopt demo: a NumPy MLP on scikit-learn's bundled digits images.

``python -m fastopt demo`` (``make demo``) runs, for each optimizer, the LR range test
(:func:`fastopt.lr_find`) to pick the learning rate, then trains the MLP with that rate
under several schedules (constant, step decay, cosine with warmup, one-cycle), prints a
table and writes PNG plots (loss curves, lr curves, range tests) to an output folder.
Forward and backward passes are plain NumPy; the data ship with scikit-learn (no
download; ``pip install fastopt[demo]``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .history import History, TensorBoardLogger
    from .lr_finder import LRFinderResult
    from .optim import Optimizer
    from .schedules import Schedule

# (X_train, y_train, X_test, y_test)
Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

__all__ = [
    "load_digits_data",
    "MLP",
    "OPTIMIZERS",
    "SCHEDULES",
    "range_test",
    "train",
    "run_demo",
    "format_table",
]


# ---------------------------------------------------------------------- data and model
def load_digits_data(
    test_fraction: float = 0.2, seed: int = 0, dtype: npt.DTypeLike = np.float32
) -> Data:
    """The 8x8 digits (1797 images, 10 classes) scaled to [0, 1], split into
    ``(X_train, y_train, X_test, y_test)`` with a fixed seed."""
    from .plotting import _require

    datasets = _require("sklearn.datasets", "demo", "the demo's digits data")
    digits = datasets.load_digits()
    X = (digits.data / 16.0).astype(dtype)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = round(test_fraction * len(X))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]


class MLP:
    """A two-layer perceptron ``x -> relu(x W1 + b1) W2 + b2`` with softmax cross-entropy;
    parameters in a dict of float32 arrays (the optimizer updates them in place)."""

    def __init__(
        self,
        n_in: int = 64,
        n_hidden: int = 64,
        n_out: int = 10,
        seed: int = 0,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": (rng.standard_normal((n_in, n_hidden)) * math.sqrt(2.0 / n_in)).astype(dtype),
            "b1": np.zeros(n_hidden, dtype),
            "W2": (rng.standard_normal((n_hidden, n_out)) * math.sqrt(1.0 / n_hidden)).astype(
                dtype
            ),
            "b2": np.zeros(n_out, dtype),
        }

    def logits(self, X: np.ndarray) -> np.ndarray:
        p = self.params
        h = np.maximum(X @ p["W1"] + p["b1"], 0)
        z: np.ndarray = h @ p["W2"] + p["b2"]
        return z

    def loss(self, X: np.ndarray, y: np.ndarray) -> float:
        z = self.logits(X).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        return float((self.logits(X).argmax(axis=1) == y).mean())

    def loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy on ``(X, y)`` and its gradients (a dict like ``params``)."""
        p = self.params
        a = X @ p["W1"] + p["b1"]
        h = np.maximum(a, 0)
        z = h @ p["W2"] + p["b2"]
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        n = len(y)
        rows = np.arange(n)
        loss = float(np.mean(np.log(s[:, 0]) - z[rows, y]))
        dz = e / s
        dz[rows, y] -= 1
        dz /= n
        dh = dz @ p["W2"].T
        dh *= a > 0
        return loss, {"W1": X.T @ dh, "b1": dh.sum(axis=0), "W2": h.T @ dz, "b2": dz.sum(axis=0)}


def batches(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Endless mini-batch indices, reshuffled every epoch."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for i in range(0, n - batch_size + 1, batch_size):
            yield order[i : i + batch_size]


# ---------------------------------------------------------------------- optimizers, schedules
def _optimizers() -> dict[str, Callable[[Any, Any, str], Optimizer]]:
    import fastopt

    return {
        "SGD": lambda p, lr, backend: fastopt.SGD(p, lr=lr, momentum=0.9, backend=backend),
        "Adagrad": lambda p, lr, backend: fastopt.Adagrad(p, lr=lr, backend=backend),
        "RMSprop": lambda p, lr, backend: fastopt.RMSprop(p, lr=lr, backend=backend),
        "Adam": lambda p, lr, backend: fastopt.Adam(p, lr=lr, backend=backend),
        "AdamW": lambda p, lr, backend: fastopt.AdamW(p, lr=lr, weight_decay=1e-2, backend=backend),
    }


OPTIMIZERS = ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW")
SCHEDULES = ("constant", "step decay", "cosine+warmup", "one-cycle")


def make_schedule(name: str, lr: float, steps: int) -> Schedule:
    """The schedule ``name`` (one of ``SCHEDULES``) peaking at ``lr`` over ``steps``."""
    import fastopt.schedules as S

    steps = max(int(steps), 2)
    if name == "constant":
        return S.constant(lr)
    if name == "step decay":
        return S.step_decay(lr, step_size=max(1, steps // 3), gamma=0.1)
    if name == "cosine+warmup":
        warm = max(1, steps // 10)
        return S.warmup_cosine(lr, warmup_steps=warm, decay_steps=steps - warm)
    if name == "one-cycle":
        return S.one_cycle(lr, total_steps=steps)
    raise ValueError(f"unknown schedule {name!r}; choose from {SCHEDULES}")


# ---------------------------------------------------------------------- experiments
def range_test(
    data: Data,
    optimizer: str = "Adam",
    *,
    num_steps: int = 100,
    batch_size: int = 64,
    hidden: int = 64,
    seed: int = 0,
    backend: str = "auto",
    progress: bool | None = None,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
) -> tuple[LRFinderResult, bool]:
    """Run :func:`fastopt.lr_find` for ``optimizer`` on a fresh MLP; returns
    ``(result, restored)``, ``restored`` telling whether the parameters came back
    bit-identical."""
    import fastopt

    X, y = data[0], data[1]
    model = MLP(X.shape[1], hidden, 10, seed=seed)
    before = {k: v.copy() for k, v in model.params.items()}
    it = batches(len(X), batch_size, seed + 1)
    factory = _optimizers()[optimizer]

    def loss_and_grads(step: int) -> tuple[float, dict[str, np.ndarray]]:
        idx = next(it)
        return model.loss_and_grads(X[idx], y[idx])

    result = fastopt.lr_find(
        model.params,
        lambda p: factory(p, 1e-3, backend),
        loss_and_grads,
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
        progress=progress,
    )
    restored = all(
        np.array_equal(before[k].view(np.uint8), v.view(np.uint8)) for k, v in model.params.items()
    )
    return result, restored


def train(
    data: Data,
    optimizer: str,
    schedule: str,
    lr: float,
    steps: int,
    *,
    batch_size: int = 64,
    hidden: int = 64,
    seed: int = 0,
    backend: str = "auto",
    history: History | None = None,
    bar: Any = None,
) -> tuple[dict[str, Any], History]:
    """Train a fresh MLP; returns a dict with the final train loss, test accuracy, time."""
    X, y, Xt, yt = data
    model = MLP(X.shape[1], hidden, 10, seed=seed)
    sched = make_schedule(schedule, lr, steps)
    opt = _optimizers()[optimizer](model.params, sched, backend)
    from .history import History

    history = history if history is not None else History()
    history.attach(opt)
    it = batches(len(X), batch_size, seed + 1)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = next(it)
        loss, grads = model.loss_and_grads(X[idx], y[idx])
        if not math.isfinite(loss):
            break
        opt.step(grads)
        history.log_loss(loss)
        if bar is not None:
            bar.update(1)
    seconds = time.perf_counter() - t0
    history.detach()
    done = opt.step_count
    if bar is not None and done < steps:
        bar.update(steps - done)
    out = {
        "optimizer": optimizer,
        "schedule": schedule,
        "lr": lr,
        "steps": done,
        "train_loss": model.loss(X, y),
        "test_accuracy": model.accuracy(Xt, yt),
        "seconds": seconds,
        "steps_per_s": done / seconds if seconds > 0 else math.nan,
    }
    history.record(step=max(done - 1, 0), test_accuracy=out["test_accuracy"])
    return out, history


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The results as an aligned text table."""
    head = ["optimizer", "schedule", "suggested lr", "train loss", "test acc", "seconds", "steps/s"]
    lines = [
        [
            r["optimizer"],
            r["schedule"],
            f"{r['lr']:.3g}",
            f"{r['train_loss']:.4f}",
            f"{100 * r['test_accuracy']:.1f}%",
            f"{r['seconds']:.2f}",
            f"{r['steps_per_s']:,.0f}",
        ]
        for r in rows
    ]
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
        for i, h in enumerate(head)
    ]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(head), sep] + [fmt(line) for line in lines])


def _grid(n: int) -> tuple[int, int]:
    ncols = min(n, 3)
    return (n + ncols - 1) // ncols, ncols


def _finish(
    fig: Any,
    axes: Any,
    used: int,
    out: str,
    name: str,
    title: str,
    rect: tuple[float, float, float, float] | None = None,
) -> str:
    """Hide the unused panels of a grid, title, lay out and save ``fig`` as ``out/name``
    (then close it); returns the path."""
    for ax in list(axes.flat)[used:]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout(rect=rect)
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    from .plotting import pyplot

    pyplot().close(fig)
    return path


def _save_plots(
    out: str,
    results: Sequence[dict[str, Any]],
    finders: dict[str, LRFinderResult],
    histories: dict[tuple[str, str], History],
    optimizers: Sequence[str],
    schedules: Sequence[str],
) -> dict[str, str]:
    from .plotting import pyplot

    plt = pyplot()
    paths: dict[str, str] = {}
    nrows, ncols = _grid(len(optimizers))

    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, optimizers):
        for sched in schedules:
            h = histories[name, sched]
            loss = h["loss"]
            from .history import _ema

            ok = np.isfinite(loss)
            ax.plot(h.steps[ok], _ema(loss[ok], 0.9), label=sched, lw=1.2)
        ax.set_yscale("log")
        ax.set_title(f"{name} (lr {finders[name].suggestion:.2g})")
        ax.set_xlabel("step")
        ax.set_ylabel("train loss (smoothed)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="x-small")
    paths["loss"] = _finish(
        fig,
        axes,
        len(optimizers),
        out,
        "loss_curves.png",
        "NumPy MLP on digits: training loss per optimizer and schedule",
    )

    # Log y-axis: the schedules span several decades (step decay by 10x twice, cosine and
    # one-cycle annealing towards 0), which a linear axis flattens into the x-axis.  Values
    # <= 0 cannot be drawn on it (cosine ends at 0) and are left out; the axis starts 1e4
    # below the peak.  One legend for the figure, below the panels, so it hides no curve.
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows + 0.5), squeeze=False)
    for ax, name in zip(axes.flat, optimizers):
        peak = 0.0
        for sched in schedules:
            h = histories[name, sched]
            lr = h["lr"]
            peak = max(peak, float(np.nanmax(lr, initial=0.0)))
            ax.plot(h.steps, np.where(lr > 0, lr, np.nan), label=sched, lw=1.2)
        ax.set_yscale("log")
        if peak > 0:
            ax.set_ylim(peak * 1e-4, peak * 2)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_ylabel("learning rate")
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=len(labels), fontsize="small", frameon=False
    )
    paths["lr"] = _finish(
        fig,
        axes,
        len(optimizers),
        out,
        "lr_curves.png",
        "Learning-rate schedules (peak = range-test suggestion)",
        rect=(0, 0.06, 1, 1),
    )

    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, optimizers):
        finders[name].plot(ax=ax, title=f"{name}: suggestion {finders[name].suggestion:.2g}")
        ax.legend(fontsize="xx-small")
    paths["lr_find"] = _finish(
        fig, axes, len(optimizers), out, "lr_find.png", "LR range tests (fastopt.lr_find)"
    )
    return paths


def run_demo(
    out: str = "fastopt-demo-output",
    *,
    steps: int | None = None,
    quick: bool = False,
    tensorboard: str | None = None,
    backend: str = "auto",
    optimizers: Sequence[str] = OPTIMIZERS,
    schedules: Sequence[str] = SCHEDULES,
    progress: bool | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the demo; returns ``{"rows": [...], "plots": {...}, "out": path}``.

    ``quick``: a reduced run (few steps, a short range test) for tests and smoke checks.
    ``steps``: training steps per run (default 600, quick 40).  ``tensorboard``: a folder
    for TensorBoard logs (one sub-folder per run)."""
    from .lr_finder import _progress_bar

    steps = int(steps) if steps else (40 if quick else 600)
    find_steps = 30 if quick else 100
    optimizers, schedules = list(optimizers), list(schedules)
    unknown = [o for o in optimizers if o not in OPTIMIZERS]
    unknown += [s for s in schedules if s not in SCHEDULES]
    if unknown:
        raise ValueError(
            f"unknown optimizer/schedule {unknown}; choose from {OPTIMIZERS} and {SCHEDULES}"
        )
    os.makedirs(out, exist_ok=True)
    t_start = time.perf_counter()
    data = load_digits_data(seed=seed)
    total = len(optimizers) * (find_steps + len(schedules) * steps)
    bar = _progress_bar(progress, total, "demo")
    rows: list[dict[str, Any]] = []
    finders: dict[str, LRFinderResult] = {}
    histories: dict[tuple[str, str], History] = {}
    try:
        for name in optimizers:
            if bar is not None:
                bar.set_description(f"lr_find {name}")
            result, restored = range_test(
                data, name, num_steps=find_steps, seed=seed, backend=backend, progress=False
            )
            if not restored:  # lr_find promises this; the demo shows it holds
                raise AssertionError("lr_find did not restore the parameters")
            finders[name] = result
            if bar is not None:
                bar.update(find_steps)
            lr = result.suggestion
            for sched in schedules:
                if bar is not None:
                    bar.set_description(f"{name} {sched}")
                tb: TensorBoardLogger | None = None
                if tensorboard:
                    from .history import TensorBoardLogger

                    tag = f"{name}-{sched}".replace(" ", "_").replace("+", "_")
                    tb = TensorBoardLogger(os.path.join(tensorboard, tag))
                row, hist = train(
                    data, name, sched, lr, steps, seed=seed, backend=backend, history=tb, bar=bar
                )
                if tb is not None:
                    tb.close()
                row["lr_find_restored"] = restored
                rows.append(row)
                histories[name, sched] = hist
    finally:
        if bar is not None:
            bar.close()
    plots = _save_plots(out, rows, finders, histories, optimizers, schedules)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(
            {
                "rows": rows,
                "lr_find": {k: v.to_dict() for k, v in finders.items()},
                "steps": steps,
                "backend": backend,
            },
            f,
            indent=1,
        )
    elapsed = time.perf_counter() - t_start
    if verbose:
        print(
            f"NumPy MLP (64-64-10) on scikit-learn digits: {len(data[0])} train / "
            f"{len(data[2])} test images, batch 64, {steps} steps per run, "
            f"backend {backend!r}"
        )
        print(
            "lr = the LR range test's suggestion (fastopt.lr_find, valley), used as the "
            "peak of every schedule\n"
        )
        print(format_table(rows))
        print(
            f"\nTotal {elapsed:.1f} s.  Plots and results.json written to {os.path.abspath(out)}:"
        )
        for p in plots.values():
            print(f"  {os.path.abspath(p)}")
        if tensorboard:
            print(
                f"TensorBoard logs in {os.path.abspath(tensorboard)} "
                f"(tensorboard --logdir {tensorboard})"
            )
    return {
        "rows": rows,
        "plots": plots,
        "out": os.path.abspath(out),
        "seconds": elapsed,
        "lr_find": finders,
    }


def run_lr_find(
    optimizer: str = "Adam",
    *,
    num_steps: int = 100,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    out: str | None = None,
    backend: str = "auto",
    seed: int = 0,
    progress: bool | None = None,
) -> LRFinderResult:
    """The range test alone on the demo data; prints the suggestions, optionally saves the
    plot to ``out`` (a PNG path)."""
    data = load_digits_data(seed=seed)
    result, restored = range_test(
        data,
        optimizer,
        num_steps=num_steps,
        seed=seed,
        backend=backend,
        progress=progress,
        start_lr=start_lr,
        end_lr=end_lr,
    )
    print(
        f"LR range test, {optimizer} on the digits MLP: {len(result.lrs)} steps "
        f"({result.stop_reason})"
    )
    for key, value in result.suggestions.items():
        label = "minimum/10" if key == "minimum" else key
        print(f"  {label:<11} {value:.3g}")
    print(f"  suggestion  {result.suggestion:.3g} ({result.method})")
    print(f"  parameters restored bit-identically: {'yes' if restored else 'NO'}")
    if out:
        from .plotting import pyplot

        d = os.path.dirname(os.path.abspath(out))
        os.makedirs(d, exist_ok=True)
        fig = result.plot()
        fig.savefig(out, dpi=110)
        pyplot().close(fig)
        print(f"  plot written to {os.path.abspath(out)}")
    return result
