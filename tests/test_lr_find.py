"""LR range test: suggestions in the converging range, exact restoration, plotting."""

import math

import numpy as np
import pytest

import fastopt
from fastopt.lr_finder import LRFinderResult, lr_find

# ----------------------------------------------------------------------------- problems
N, D = 512, 10
_rng = np.random.default_rng(0)
X = _rng.normal(size=(N, D))
Y = (X @ _rng.normal(size=D) > 0).astype(np.float64)  # linearly separable


def logreg_params(dtype=np.float64):
    return {"w": np.zeros(D, dtype), "b": np.zeros(1, dtype)}


def logreg_loss_and_grads(params, seed=1, bs=64):
    rng = np.random.default_rng(seed)

    def f(step):
        idx = rng.integers(0, N, bs)
        xb, yb = X[idx], Y[idx]
        z = np.clip(xb @ params["w"] + params["b"][0], -50, 50)
        p = 1 / (1 + np.exp(-z))
        g = (p - yb) / bs
        return float(np.mean(np.logaddexp(0, z) - yb * z)), {
            "w": (xb.T @ g).astype(params["w"].dtype),
            "b": np.array([g.sum()], params["b"].dtype),
        }

    return f


def logreg_full_loss(params):
    z = X @ params["w"] + params["b"][0]
    return float(np.mean(np.logaddexp(0, z) - Y * z))


def train_logreg(factory, lr, steps=150):
    params = logreg_params()
    opt = factory(params, lr)
    f = logreg_loss_and_grads(params)
    for k in range(steps):
        opt.step(f(k)[1])
    return logreg_full_loss(params)


FACTORIES = {
    "sgd": lambda p, lr: fastopt.SGD(p, lr=lr),
    "sgd_momentum": lambda p, lr: fastopt.SGD(p, lr=lr, momentum=0.9),
    "adam": lambda p, lr: fastopt.Adam(p, lr=lr),
    "rmsprop": lambda p, lr: fastopt.RMSprop(p, lr=lr),
    "adagrad": lambda p, lr: fastopt.Adagrad(p, lr=lr),
}


def snapshot(arrays):
    return [a.copy() for a in arrays]


def bits_equal(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def assert_state_identical(sd1, sd2):
    assert sd1["step_count"] == sd2["step_count"]
    assert sd1["last_lr"] == sd2["last_lr"]
    assert sd1["param_groups"] == sd2["param_groups"]
    assert sd1["state"].keys() == sd2["state"].keys()
    for k in sd1["state"]:
        for name, arr in sd1["state"][k].items():
            assert bits_equal(arr, sd2["state"][k][name]), (k, name)


# ----------------------------------------------------------------------------- suggestions
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_logreg_suggestion_converges(name):
    factory = FACTORIES[name]
    params = logreg_params()
    res = lr_find(params, lambda p: factory(p, 1e-3), logreg_loss_and_grads(params), progress=False)
    initial = logreg_full_loss(logreg_params())
    for method in ("valley", "steepest", "minimum"):
        lr = res.suggestions[method]
        assert math.isfinite(lr), method
        final = train_logreg(factory, lr)
        # converges: the full-data loss falls well below log(2)
        assert final < 0.5 * initial, (method, lr, final)
    # and the suggestion lies where a 10x smaller rate trains clearly worse or no better:
    # it is not absurdly small
    assert res.suggestion > 1e-3


def _digits_setup(seed=0):
    pytest.importorskip("sklearn")
    from fastopt.demo import MLP, batches, load_digits_data

    data = load_digits_data()
    return data, MLP, batches


def test_digits_mlp_suggestion_converges():
    data, MLP, batches = _digits_setup()
    X, y, Xt, yt = data
    model = MLP(seed=0)
    it = batches(len(X), 64, 1)
    before = snapshot(model.params.values())

    def f(step):
        idx = next(it)
        return model.loss_and_grads(X[idx], y[idx])

    opt = fastopt.Adam(model.params, lr=1e-3)
    sd = opt.state_dict()
    res = lr_find(None, opt, f, start_lr=1e-6, num_steps=80, progress=False)
    assert all(bits_equal(a, b) for a, b in zip(before, model.params.values()))
    assert_state_identical(sd, opt.state_dict())
    assert res.diverged  # Adam at lr ~10 blows up: the sweep stops early

    def train(lr, steps=150):
        m = MLP(seed=0)
        o = fastopt.Adam(m.params, lr=lr)
        b = batches(len(X), 64, 2)
        for _ in range(steps):
            idx = next(b)
            o.step(m.loss_and_grads(X[idx], y[idx])[1])
        return m.loss(X, y), m.accuracy(Xt, yt)

    loss, acc = train(res.suggestion)
    assert loss < 0.3 and acc > 0.9, (res.suggestion, loss, acc)
    # the rate where the sweep diverged does not train: the suggestion is below it
    assert res.suggestion < res.lrs[-1]


# ----------------------------------------------------------------------------- restoration
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "rmsprop", "adagrad"])
def test_restores_params_and_state_bit_identical(name, dtype):
    params = logreg_params(dtype)
    params["w"][:] = np.linspace(-1, 1, D).astype(dtype)
    opt = FACTORIES[name](params, 0.01)
    f = logreg_loss_and_grads(params, seed=5)
    for k in range(7):  # some real state first
        opt.step(f(k)[1])
    ids = {k: id(v) for k, v in params.items()}
    before = {k: v.copy() for k, v in params.items()}
    sd = opt.state_dict()
    lr_entry = opt.param_groups[0]["lr"]
    res = lr_find(params, opt, logreg_loss_and_grads(params, seed=9), num_steps=60, progress=False)
    assert len(res.lrs) > 10
    assert {k: id(v) for k, v in params.items()} == ids  # same arrays, not rebound
    for k in params:
        assert bits_equal(params[k], before[k])
    assert_state_identical(sd, opt.state_dict())
    assert opt.param_groups[0]["lr"] is lr_entry
    # training continues exactly as without the range test
    twin_params = {k: v.copy() for k, v in before.items()}
    twin = FACTORIES[name](twin_params, 0.01)
    twin.load_state_dict(sd)
    g = logreg_loss_and_grads(params, seed=11)
    g2 = logreg_loss_and_grads(twin_params, seed=11)
    for k in range(3):
        opt.step(g(k)[1])
        twin.step(g2(k)[1])
    for k in params:
        assert bits_equal(params[k], twin_params[k])


def test_restores_when_loss_function_raises():
    params = logreg_params()
    opt = fastopt.Adam(params, lr=0.01)
    f = logreg_loss_and_grads(params)
    for k in range(3):
        opt.step(f(k)[1])
    before = snapshot(params.values())
    sd = opt.state_dict()

    def boom(step):
        if step == 20:
            raise RuntimeError("data loader broke")
        return f(step)

    with pytest.raises(RuntimeError, match="data loader broke"):
        lr_find(params, opt, boom, progress=False)
    assert all(bits_equal(a, b) for a, b in zip(before, params.values()))
    assert_state_identical(sd, opt.state_dict())
    assert opt.param_groups[0]["lr"] == 0.01


def test_restores_on_nan_loss_even_without_restore():
    params = logreg_params()
    opt = fastopt.SGD(params, lr=0.1, momentum=0.9)
    f = logreg_loss_and_grads(params)
    before = snapshot(params.values())
    sd = opt.state_dict()

    def nan_at_15(step):
        loss, g = f(step)
        return (math.nan if step == 15 else loss), g

    res = lr_find(params, opt, nan_at_15, progress=False, restore=False)
    assert res.stop_reason == "non-finite loss" and res.diverged
    assert len(res.lrs) == 16 and math.isnan(res.losses[-1])
    assert all(bits_equal(a, b) for a, b in zip(before, params.values()))
    assert_state_identical(sd, opt.state_dict())
    assert math.isfinite(res.suggestion)


def test_restore_false_keeps_the_trained_parameters():
    params = logreg_params()
    opt = fastopt.SGD(params, lr=0.1)
    lr_find(
        params,
        opt,
        logreg_loss_and_grads(params),
        num_steps=30,
        end_lr=1.0,
        progress=False,
        restore=False,
    )
    assert np.abs(params["w"]).sum() > 0
    assert opt.step_count == 30 and opt.param_groups[0]["lr"] == 0.1


def test_schedule_lr_and_groups_restored():
    params = [np.ones(3), np.ones(2)]
    sched = lambda k: 0.1 * 0.9**k  # noqa: E731
    opt = fastopt.SGD(
        [{"params": [params[0]], "lr": sched}, {"params": [params[1]]}], lr=0.05, momentum=0.5
    )
    seen = []

    def f(step):
        seen.append([g["lr"] for g in opt.param_groups])
        return float(np.sum(params[0] ** 2) + np.sum(params[1] ** 2)), [
            2 * params[0],
            2 * params[1],
        ]

    res = lr_find(params, opt, f, num_steps=20, start_lr=1e-4, end_lr=1e-2, progress=False)
    assert opt.param_groups[0]["lr"] is sched and opt.param_groups[1]["lr"] == 0.05
    assert opt.step_count == 0
    np.testing.assert_allclose(res.lrs, np.geomspace(1e-4, 1e-2, 20))
    assert seen[5] == [res.lrs[4], res.lrs[4]]  # every group got the sweep rate


def test_divergence_stops_early_and_linear_mode():
    params = {"x": np.array([3.0])}
    f = lambda step: (float(params["x"][0] ** 2), {"x": 2 * params["x"]})  # noqa: E731
    res = lr_find(params, fastopt.SGD, f, start_lr=1e-3, end_lr=10, num_steps=100, progress=False)
    assert res.diverged and res.stop_reason == "diverged" and len(res.lrs) < 100
    assert res.smoothed_losses[-1] > 4 * np.nanmin(res.smoothed_losses)
    assert res.suggestion < 1.0  # SGD on x^2 diverges above lr = 1
    lin = lr_find(
        params,
        fastopt.SGD,
        f,
        start_lr=1e-3,
        end_lr=0.5,
        num_steps=50,
        mode="linear",
        progress=False,
        diverge_factor=None,
    )
    np.testing.assert_allclose(lin.lrs, np.linspace(1e-3, 0.5, 50))
    assert not lin.diverged and lin.stop_reason == "completed"
    assert params["x"][0] == 3.0


def test_smoothing_is_debiased_ema():
    params = {"x": np.zeros(1)}
    losses = [1.0, 3.0, 2.0, 5.0]
    f = lambda step: (losses[step], {"x": np.zeros(1)})  # noqa: E731
    res = lr_find(
        params, fastopt.SGD, f, num_steps=4, smoothing=0.9, progress=False, diverge_factor=None
    )
    avg, expect = 0.0, []
    for i, v in enumerate(losses):
        avg = 0.9 * avg + 0.1 * v
        expect.append(avg / (1 - 0.9 ** (i + 1)))
    np.testing.assert_allclose(res.smoothed_losses, expect)
    np.testing.assert_array_equal(res.losses, losses)


def test_suggestion_rules_on_a_synthetic_curve():
    lrs = np.geomspace(1e-6, 1, 61)
    x = np.log10(lrs)
    loss = 2 - 1.5 / (1 + np.exp(-(x + 3) * 3)) + np.where(x > -1, (x + 1) ** 2 * 8, 0)
    res = LRFinderResult(lrs, loss, loss)
    assert 10**-3.3 < res.steepest < 10**-2.7  # inflection of the sigmoid at 1e-3
    assert res.minimum == pytest.approx(lrs[np.argmin(loss)] / 10)
    assert 1e-4 < res.valley < 1e-1
    assert res.suggestion == res.valley
    assert LRFinderResult(lrs, loss, loss, method="steepest").suggestion == res.steepest


def test_validation_errors():
    params = logreg_params()
    f = logreg_loss_and_grads(params)
    with pytest.raises(ValueError, match="end_lr"):
        lr_find(params, fastopt.SGD, f, start_lr=1, end_lr=0.1)
    with pytest.raises(ValueError, match="mode"):
        lr_find(params, fastopt.SGD, f, mode="cubic")
    with pytest.raises(ValueError, match="method"):
        lr_find(params, fastopt.SGD, f, method="best")
    with pytest.raises(TypeError, match="optimizer"):
        lr_find(params, "adam", f)
    with pytest.raises(ValueError, match="scalar"):
        lr_find(params, fastopt.SGD, lambda s: (np.ones(3), f(s)[1]), progress=False)


def test_progress_bar_runs(capsys):
    pytest.importorskip("tqdm")
    params = logreg_params()
    res = lr_find(params, fastopt.SGD, logreg_loss_and_grads(params), num_steps=10, progress=True)
    assert len(res.lrs) == 10


def test_plot_saves_png(tmp_path):
    pytest.importorskip("matplotlib")
    params = logreg_params()
    res = lr_find(params, fastopt.Adam, logreg_loss_and_grads(params), num_steps=40, progress=False)
    fig = res.plot()
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    # The y-range follows the smoothed curve; the raw losses are kept inside it.
    lo, hi = ax.get_ylim()
    raw = next(line for line in ax.get_lines() if line.get_label() == "loss").get_ydata()
    assert np.all((raw >= lo) & (raw <= hi))
    sm = res.smoothed_losses
    assert lo < np.nanmin(sm) and hi > sm[0]
    assert any("suggestion" in t.get_text() for t in ax.get_legend().get_texts())
    path = tmp_path / "lr_find.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib

    assert (
        matplotlib.get_backend().lower() in ("agg", "module://matplotlib_inline.backend_inline")
        or fig.canvas is not None
    )
    import matplotlib.pyplot as plt

    plt.close(fig)
    d = res.to_dict()
    assert d["suggestion"] == res.suggestion and len(d["lrs"]) == 40
    assert "suggestion=" in repr(res)


def test_missing_optional_dependencies_name_the_extra(monkeypatch):
    import sys

    params = logreg_params()
    f = logreg_loss_and_grads(params)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=r"fastopt\[progress\]"):
        lr_find(params, fastopt.SGD, f, num_steps=5, progress=True)
    res = lr_find(params, fastopt.SGD, f, num_steps=5)  # default: no bar, no error
    assert len(res.lrs) == 5
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"fastopt\[plot\]"):
        res.plot()
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"fastopt\[tensorboard\]"):
        fastopt.TensorBoardLogger("unused")
