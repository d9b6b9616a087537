"""History, TensorBoardLogger and plot_schedule: read back what was written."""

import math

import numpy as np
import pytest

import fastopt
from fastopt.history import History, read_tensorboard_scalars


def _problem(n_steps=12, groups=False, **hist_kwargs):
    a, b = np.ones(4, np.float32), np.full(3, 2.0)
    if groups:
        opt = fastopt.SGD(
            [{"params": [a]}, {"params": [b], "lr": lambda k: 0.1 / (k + 1)}], lr=0.05, momentum=0.9
        )
    else:
        opt = fastopt.Adam({"a": a, "b": b}, lr=lambda k: 0.01 * (k + 1))
    h = History(**hist_kwargs).attach(opt)
    losses, gnorms = [], []
    for _k in range(n_steps):
        ga, gb = 2 * a, 2 * b
        loss = float(np.sum(a.astype(np.float64) ** 2) + np.sum(b**2))
        gnorms.append(math.sqrt(float(np.sum(ga.astype(np.float64) ** 2) + np.sum(gb**2))))
        opt.step([ga, gb] if groups else {"a": ga, "b": gb})
        h.log_loss(loss)
        losses.append(loss)
    return opt, h, losses, gnorms


def test_records_lr_loss_and_norms():
    _opt, h, losses, gnorms = _problem(track_update_norm=True, track_param_norm=True)
    assert len(h) == 12
    np.testing.assert_array_equal(h.steps, np.arange(12))
    np.testing.assert_allclose(h["lr"], 0.01 * (np.arange(12) + 1))
    np.testing.assert_allclose(h["loss"], losses)
    np.testing.assert_allclose(h["grad_norm"], gnorms, rtol=1e-6)
    assert np.all(h["update_norm"] > 0)
    # Adam's first update moves every coordinate by ~lr
    assert h["update_norm"][0] == pytest.approx(0.01 * math.sqrt(7), rel=1e-3)
    assert h.columns[:2] == ["step", "lr"]
    assert {"loss", "grad_norm", "update_norm", "param_norm"} <= set(h.columns)


def test_groups_detach_and_pending_values():
    a = np.ones(2)
    opt = fastopt.SGD([a], lr=0.1)
    h = History(track_grad_norm=False).attach(opt)
    h.record(loss=5.0)  # before the first step: belongs to step 0
    opt.step([np.ones_like(a)])
    assert h.rows == [{"step": 0, "loss": 5.0, "lr": 0.1}]
    h.detach()
    opt.step([np.ones_like(a)])
    assert len(h) == 1
    _, hg, _, _ = _problem(groups=True, n_steps=4)
    np.testing.assert_allclose(hg["lr_0"], 0.05)
    np.testing.assert_allclose(hg["lr_1"], 0.1 / (np.arange(4) + 1))


def test_standalone_record_and_errors():
    h = History()
    h.record(loss=1.0, acc=0.5)
    h.record(loss=0.5)
    h.record(step=10, loss=0.25)
    np.testing.assert_array_equal(h.steps, [0, 1, 10])
    assert math.isnan(h["acc"][1])
    with pytest.raises(KeyError):
        h["nope"]
    with pytest.raises(ValueError, match="scalar"):
        h.record(loss=np.ones(3))
    opt = fastopt.SGD([np.ones(1)], lr=0.1)
    h.attach(opt)
    with pytest.raises(RuntimeError, match="already attached"):
        h.attach(opt)


def test_csv_and_json_round_trip(tmp_path):
    _, h, _losses, _ = _problem(track_update_norm=True)
    h.record(step=11, test_accuracy=0.75)
    h.to_csv(tmp_path / "h.csv")
    h.to_json(tmp_path / "h.json")
    text = (tmp_path / "h.csv").read_text().splitlines()
    assert text[0].split(",") == h.columns and len(text) == 13
    for back in (History.from_csv(tmp_path / "h.csv"), History.from_json(tmp_path / "h.json")):
        assert back.columns == h.columns
        np.testing.assert_array_equal(back.steps, h.steps)
        for c in h.columns:
            np.testing.assert_array_equal(back[c], h[c])  # exact (repr round-trips floats)
    assert back["test_accuracy"][-1] == 0.75 and math.isnan(back["test_accuracy"][0])


def test_tensorboard_event_file_read_back(tmp_path):
    pytest.importorskip("tensorboardX")
    a = np.ones(3)
    opt = fastopt.SGD([a], lr=lambda k: 0.1 * 0.5**k)
    with fastopt.TensorBoardLogger(str(tmp_path / "run"), prefix="train/") as tb:
        tb.attach(opt)
        for _k in range(5):
            opt.step([np.ones_like(a)])
            tb.log_loss(float(np.sum(a**2)))
    scalars = read_tensorboard_scalars(str(tmp_path / "run"))
    assert {"train/lr", "train/loss", "train/grad_norm"} <= set(scalars)
    steps, lrs = zip(*scalars["train/lr"])
    assert list(steps) == list(range(5))
    np.testing.assert_allclose(lrs, 0.1 * 0.5 ** np.arange(5), rtol=1e-6)  # float32 in events
    np.testing.assert_allclose([v for _, v in scalars["train/loss"]], tb["loss"], rtol=1e-6)


def test_plots_return_figures_and_save_png(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    _, h, _, _ = _problem()
    fig = h.plot(smooth=0.5, label="adam")
    assert len(fig.axes) == 2
    fig.savefig(tmp_path / "history.png")
    plt.close(fig)
    fig = fastopt.plot_schedule(lambda k: 0.1 * 0.5 ** (k // 10), 50, label="halving")
    fig.savefig(tmp_path / "schedule.png")
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), 0.1 * 0.5 ** (np.arange(50) // 10))
    plt.close(fig)
    fig = fastopt.plot_schedule({"a": lambda k: 1.0, "b": 0.5}, np.arange(0, 20, 2), log=True)
    assert len(fig.axes[0].get_lines()) == 2 and fig.axes[0].get_yscale() == "log"
    plt.close(fig)
    for name in ("history.png", "schedule.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_plot_schedule_uses_vectorised_schedules():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from fastopt import schedules as S

    sched = S.warmup_cosine(0.1, warmup_steps=10, decay_steps=90)
    fig = fastopt.plot_schedule(sched, 100)
    y = fig.axes[0].get_lines()[0].get_ydata()
    np.testing.assert_allclose(y, [sched(k) for k in range(100)])
    plt.close(fig)


def test_plot_any_recorded_metric():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    _, h, _, gnorms = _problem()
    for k in range(0, 12, 3):
        h.record(step=k, val_loss=1.0 / (k + 1))
    fig = h.plot("val_loss")
    (ax,) = fig.axes
    (line,) = ax.get_lines()  # only the steps where val_loss was recorded
    np.testing.assert_array_equal(line.get_xdata(), [0, 3, 6, 9])
    np.testing.assert_allclose(line.get_ydata(), [1.0, 1 / 4, 1 / 7, 1 / 10])
    assert ax.get_ylabel() == "val loss"
    plt.close(fig)
    fig = h.plot(["loss", "grad_norm"], smooth=0.0)
    assert [a.get_ylabel() for a in fig.axes] == ["loss", "grad norm"]
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_ydata(), gnorms, rtol=1e-6)
    plt.close(fig)
    fig = h.plot()  # the default: loss and learning rate
    assert [a.get_ylabel() for a in fig.axes] == ["loss", "learning rate"]
    plt.close(fig)
    _, hg, _, _ = _problem(groups=True)
    fig = hg.plot("lr")  # one line per parameter group
    assert len(fig.axes[0].get_lines()) == 2
    plt.close(fig)
    with pytest.raises(KeyError, match="no column 'accuracy'"):
        h.plot("accuracy")
