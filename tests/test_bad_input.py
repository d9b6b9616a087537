"""Bad input raises a clear error before any array is modified, on every backend."""

import math

import numpy as np
import pytest

import fastopt
from conftest import IDS, OPTIMIZERS, snapshot


def make(cls, kw, backend, dtype=np.float32, named=False):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(7,), (3, 5), (1,)]]
    params = dict(zip(["a", "b", "c"], arrays)) if named else arrays
    opt = cls(params, backend=backend, **kw)
    good = [np.full(a.shape, 0.5, dtype) for a in arrays]
    opt.step(dict(zip(["a", "b", "c"], good)) if named else good)  # a real step first
    return opt, arrays, good


def everything(opt, arrays):
    return arrays + [a for st in opt.state.values() for a in st.values()]


def bad_grads(arrays, good):
    """(name, grads, exception type, message fragment) for list-structured grads."""
    p0 = arrays[0]
    wrong_dtype = [g.astype(np.float64) if i == 1 else g for i, g in enumerate(good)]
    wrong_shape = [g.reshape(-1) if i == 1 else g for i, g in enumerate(good)]
    return [
        ("missing", good[:2], ValueError, "has 2 arrays but the optimizer has 3"),
        ("extra", good + [good[0].copy()], ValueError, "has 4 arrays"),
        ("dtype", wrong_dtype, TypeError, "dtype float64"),
        ("shape", wrong_shape, ValueError, "shape"),
        # None freezes parameter 0; the bad array next to it is still refused
        ("none-and-dtype", [None, wrong_dtype[1], good[2]], TypeError, "dtype float64"),
        ("list-not-array", [good[0], good[1].tolist(), good[2]], TypeError, "numpy array"),
        ("grad-is-param", [p0, good[1], good[2]], ValueError, "shares memory"),
        (
            "grad-view-of-other-param",
            [good[0], good[1], arrays[0][:1]],
            ValueError,
            "shares memory",
        ),
        ("int-grads", [g.astype(np.int64) for g in good], TypeError, "dtype int64"),
        ("not-a-list", 3.0, TypeError, "grads must be a list"),
    ]


@pytest.mark.parametrize("case", range(10), ids=lambda i: f"case{i}")
@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=IDS)
def test_bad_grads_change_nothing(opt_case, case, backend):
    cls, kw = opt_case
    opt, arrays, good = make(cls, kw, backend)
    name, grads, exc, fragment = bad_grads(arrays, good)[case]
    before = snapshot(everything(opt, arrays))
    steps = opt.step_count
    with pytest.raises(exc, match=fragment):
        opt.step(grads)
    assert snapshot(everything(opt, arrays)) == before, name
    assert opt.step_count == steps


@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=IDS)
def test_bad_dict_grads(opt_case, backend):
    cls, kw = opt_case
    opt, arrays, good = make(cls, kw, backend, named=True)
    before = snapshot(everything(opt, arrays))
    with pytest.raises(ValueError, match=r"missing gradients for \['c'\]"):
        opt.step({"a": good[0], "b": good[1]})
    with pytest.raises(ValueError, match=r"unknown parameters \['z'\]"):
        opt.step({"a": good[0], "b": good[1], "c": good[2], "z": good[2]})
    with pytest.raises(TypeError, match=r"grads\['b'\] has dtype float64"):
        opt.step({"a": good[0], "b": good[1].astype(np.float64), "c": good[2]})
    assert snapshot(everything(opt, arrays)) == before


def test_error_in_a_later_group_leaves_earlier_groups_untouched(backend):
    a, b = np.ones(4, np.float32), np.ones(6, np.float32)
    opt = fastopt.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, backend=backend)
    before = snapshot([a, b])
    with pytest.raises(ValueError, match="shape"):
        opt.step([np.ones(4, np.float32), np.ones(5, np.float32)])
    assert snapshot([a, b]) == before


def test_scheduled_value_that_turns_nan_changes_nothing(backend):
    p = np.ones(3)
    opt = fastopt.Adam([p], lr=lambda k: 0.1 if k < 2 else math.nan, backend=backend)
    opt.step([np.ones(3)])
    opt.step([np.ones(3)])
    before = snapshot(everything(opt, [p]))
    with pytest.raises(ValueError, match="lr must be a number, got NaN"):
        opt.step([np.ones(3)])
    assert snapshot(everything(opt, [p])) == before
    assert opt.step_count == 2


def test_param_made_read_only_after_construction(backend):
    p = np.ones(3)
    opt = fastopt.SGD([p], lr=0.1, backend=backend)
    p.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        opt.step([np.ones(3)])
    assert np.array_equal(p, np.ones(3))


def test_non_contiguous_grad_is_read_correctly(backend):
    """Gradients are inputs: a strided gradient is read through a contiguous copy."""
    p1, p2 = np.ones(5), np.ones(5)
    g = np.arange(10.0)[::2]
    fastopt.SGD([p1], lr=0.1, backend=backend).step([g])
    fastopt.SGD([p2], lr=0.1, backend=backend).step([np.ascontiguousarray(g)])
    assert np.array_equal(p1, p2) and not np.array_equal(p1, np.ones(5))


# ---------------------------------------------------------------- construction
GOOD = np.ones(4, np.float32)


@pytest.mark.parametrize(
    "build, exc, fragment",
    [
        (lambda: fastopt.SGD([np.ones(3, np.int64)]), TypeError, "dtype int64"),
        (lambda: fastopt.SGD([np.ones((4, 4))[:, 0]]), ValueError, "not C-contiguous"),
        (
            lambda: fastopt.SGD([np.broadcast_to(np.ones(1), (4,))]),
            ValueError,
            "not C-contiguous|read-only",
        ),
        (
            lambda: fastopt.SGD([GOOD.copy()], lr=math.nan),
            ValueError,
            "lr must be a number, got NaN",
        ),
        (lambda: fastopt.SGD([GOOD.copy()], lr=-0.1), ValueError, "lr must be >= 0.0, got -0.1"),
        (lambda: fastopt.SGD([GOOD.copy()], lr="0.1"), TypeError, "lr must be a real number"),
        (
            lambda: fastopt.SGD([GOOD.copy()], nesterov=True),
            ValueError,
            "nesterov=True requires momentum > 0",
        ),
        (
            lambda: fastopt.SGD([GOOD.copy()], momentum=0.9, dampening=0.1, nesterov=True),
            ValueError,
            "dampening == 0",
        ),
        (lambda: fastopt.SGD([GOOD.copy()], momentum=-0.9), ValueError, "momentum must be >= 0.0"),
        (
            lambda: fastopt.Adam([GOOD.copy()], betas=(1.0, 0.999)),
            ValueError,
            r"beta1 must be in \[0, 1\), got 1.0",
        ),
        (
            lambda: fastopt.Adam([GOOD.copy()], betas=(0.9, 1.2)),
            ValueError,
            r"beta2 must be in \[0, 1\), got 1.2",
        ),
        (
            lambda: fastopt.Adam([GOOD.copy()], betas=(-0.1, 0.9)),
            ValueError,
            r"beta1 must be in \[0, 1\)",
        ),
        (lambda: fastopt.Adam([GOOD.copy()], betas=0.9), TypeError, "betas must be a pair"),
        (lambda: fastopt.Adam([GOOD.copy()], eps=-1e-8), ValueError, "eps must be >= 0.0"),
        (
            lambda: fastopt.AdamW([GOOD.copy()], weight_decay=-0.01),
            ValueError,
            "weight_decay must be >= 0.0",
        ),
        (
            lambda: fastopt.Adam([GOOD.copy()], amsgrad="yes"),
            TypeError,
            "amsgrad must be True or False",
        ),
        (
            lambda: fastopt.Adagrad([GOOD.copy()], lr_decay=-1),
            ValueError,
            "lr_decay must be >= 0.0",
        ),
        (
            lambda: fastopt.Adagrad([GOOD.copy()], initial_accumulator_value=-1),
            ValueError,
            "initial_accumulator_value must be >= 0.0",
        ),
        (lambda: fastopt.RMSprop([GOOD.copy()], alpha=-0.5), ValueError, "alpha must be >= 0.0"),
        (
            lambda: fastopt.Adamax([GOOD.copy()], betas=(0.9, 1.0)),
            ValueError,
            r"beta2 must be in \[0, 1\), got 1.0",
        ),
        (lambda: fastopt.Adamax([GOOD.copy()], eps=-1.0), ValueError, "eps must be >= 0.0"),
        (
            lambda: fastopt.NAdam([GOOD.copy()], momentum_decay=-1e-3),
            ValueError,
            "momentum_decay must be >= 0.0",
        ),
        (
            lambda: fastopt.NAdam([GOOD.copy()], betas=(1.5, 0.9)),
            ValueError,
            r"beta1 must be in \[0, 1\)",
        ),
        (
            lambda: fastopt.RAdam([GOOD.copy()], decoupled_weight_decay=1),
            TypeError,
            "decoupled_weight_decay must be True or False",
        ),
        (
            lambda: fastopt.RAdam([GOOD.copy()], weight_decay=-0.1),
            ValueError,
            "weight_decay must be >= 0.0",
        ),
        (lambda: fastopt.Adadelta([GOOD.copy()], rho=1.5), ValueError, "rho must be <= 1.0"),
        (lambda: fastopt.Adadelta([GOOD.copy()], rho=-0.1), ValueError, "rho must be >= 0.0"),
        (lambda: fastopt.Adadelta([GOOD.copy()], lr=math.inf), ValueError, "lr must be"),
        (
            lambda: fastopt.Rprop([GOOD.copy()], etas=(1.0, 1.2)),
            ValueError,
            r"etaminus must be in \(0.0, 1.0\), got 1.0",
        ),
        (lambda: fastopt.Rprop([GOOD.copy()], etas=(0.0, 1.2)), ValueError, "etaminus must be >"),
        (lambda: fastopt.Rprop([GOOD.copy()], etas=(0.5, 1.0)), ValueError, "etaplus must be > 1"),
        (lambda: fastopt.Rprop([GOOD.copy()], etas=0.5), TypeError, "etas must be a pair"),
        (
            lambda: fastopt.Rprop([GOOD.copy()], step_sizes=(1.0, 0.5)),
            ValueError,
            r"step_sizes must be \(min, max\) with min <= max",
        ),
        (
            lambda: fastopt.Rprop([GOOD.copy()], step_sizes=(-1e-6, 50)),
            ValueError,
            "step_size_min must be >= 0.0",
        ),
        (lambda: fastopt.ASGD([GOOD.copy()], lambd=-1e-4), ValueError, "lambd must be >= 0.0"),
        (lambda: fastopt.ASGD([GOOD.copy()], alpha=-0.75), ValueError, "alpha must be >= 0.0"),
        (lambda: fastopt.ASGD([GOOD.copy()], t0=math.nan), ValueError, "t0 must be a number"),
        (lambda: fastopt.ASGD([GOOD.copy()], t0="1e6"), TypeError, "t0 must be a real number"),
        (lambda: fastopt.SGD([]), ValueError, "params is empty"),
        (lambda: fastopt.SGD(GOOD.copy()), TypeError, "single ndarray"),
        (lambda: fastopt.SGD([GOOD, GOOD]), ValueError, "shares memory"),
        (lambda: fastopt.SGD([GOOD[:3], GOOD[2:]]), ValueError, "shares memory"),
        (lambda: fastopt.SGD([GOOD.copy()], backend="cuda"), ValueError, "backend must be one of"),
        (
            lambda: fastopt.SGD([{"params": [GOOD.copy()], "lrr": 0.1}]),
            ValueError,
            "unknown option 'lrr'",
        ),
        (lambda: fastopt.SGD([GOOD.copy(), {"params": [GOOD.copy()]}]), TypeError, "mixes arrays"),
        (lambda: fastopt.SGD([[1.0, 2.0]]), TypeError, "must be a numpy array"),
    ],
)
def test_bad_construction(build, exc, fragment):
    with pytest.raises(exc, match=fragment):
        build()


def test_read_only_param_rejected_at_construction():
    p = np.ones(3)
    p.setflags(write=False)
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        fastopt.Adam([p])


# ---------------------------------------------------------------- functional kernels
def test_functional_kernels_check_state_arrays(backend):
    p, g = np.ones(5), np.ones(5)
    m, v = np.zeros(5), np.zeros(5)
    before = snapshot([p, m, v])
    with pytest.raises(ValueError, match=r"exp_avg_sqs\[0\] has shape \(4,\)"):
        fastopt.kernels.adam(p, g, m, np.zeros(4), step=1, backend=backend)
    with pytest.raises(TypeError, match=r"exp_avgs\[0\] has dtype float32"):
        fastopt.kernels.adam(p, g, m.astype(np.float32), v, step=1, backend=backend)
    with pytest.raises(ValueError, match=r"exp_avgs\[0\] is not C-contiguous"):
        fastopt.kernels.adam(p, g, np.zeros(10)[::2], v, step=1, backend=backend)
    with pytest.raises(ValueError, match="shares memory"):
        fastopt.kernels.adam(p, g, m, m, step=1, backend=backend)
    with pytest.raises(ValueError, match="step must be >= 1"):
        fastopt.kernels.adam(p, g, m, v, step=0, backend=backend)
    with pytest.raises(TypeError, match="step must be an integer"):
        fastopt.kernels.adam(p, g, m, v, step=1.5, backend=backend)
    with pytest.raises(ValueError, match="amsgrad=True needs max_exp_avg_sqs"):
        fastopt.kernels.adam(p, g, m, v, step=1, amsgrad=True, backend=backend)
    with pytest.raises(ValueError, match="needs momentum_buffers"):
        fastopt.kernels.sgd(p, g, step=1, momentum=0.9, backend=backend)
    with pytest.raises(ValueError, match="exp_avgs has 2 arrays but params has 1"):
        fastopt.kernels.adam([p], [g], [m, v], [v], step=1, backend=backend)
    assert snapshot([p, m, v]) == before


@pytest.mark.parametrize("fn", ["adamax", "nadam", "radam", "adadelta"])
def test_new_functional_kernels_check_state_arrays(fn, backend):
    p, g = np.ones(5), np.ones(5)
    s1, s2 = np.zeros(5), np.zeros(5)
    kernel = getattr(fastopt.kernels, fn)
    arg1, arg2 = {
        "adamax": ("exp_avgs", "exp_infs"),
        "nadam": ("exp_avgs", "exp_avg_sqs"),
        "radam": ("exp_avgs", "exp_avg_sqs"),
        "adadelta": ("square_avgs", "acc_deltas"),
    }[fn]
    before = snapshot([p, s1, s2])
    with pytest.raises(ValueError, match=rf"{arg2}\[0\] has shape \(4,\)"):
        kernel(p, g, s1, np.zeros(4), step=1, backend=backend)
    with pytest.raises(TypeError, match=rf"{arg1}\[0\] has dtype float32"):
        kernel(p, g, s1.astype(np.float32), s2, step=1, backend=backend)
    with pytest.raises(ValueError, match="shares memory"):
        kernel(p, g, s1, s1, step=1, backend=backend)
    with pytest.raises(ValueError, match="step must be >= 1"):
        kernel(p, g, s1, s2, step=0, backend=backend)
    with pytest.raises(ValueError, match=r"lr must be >= 0\.0"):
        kernel(p, g, s1, s2, step=1, lr=-1.0, backend=backend)
    assert snapshot([p, s1, s2]) == before


def test_nadam_mu_product_checked_and_unchanged_on_error(backend):
    p, g, m, v = np.ones(5), np.ones(5), np.zeros(5), np.zeros(5)
    before = snapshot([p, m, v])
    for bad in (1.5, -0.1, math.nan):
        with pytest.raises(ValueError, match="mu_product"):
            fastopt.kernels.nadam(p, g, m, v, step=1, mu_product=bad, backend=backend)
    with pytest.raises(TypeError, match="mu_product"):
        fastopt.kernels.nadam(p, g, m, v, step=1, mu_product="1", backend=backend)
    assert snapshot([p, m, v]) == before
    # A failing step leaves the optimizer's running product as it was.
    opt = fastopt.NAdam([p], backend=backend)
    opt.step([g])
    mu = opt.state_dict()["param_groups"][0]["mu_product"]
    with pytest.raises(TypeError):
        opt.step([g.astype(np.float32)])
    assert opt.state_dict()["param_groups"][0]["mu_product"] == mu
    sd = opt.state_dict()
    sd["param_groups"][0]["mu_product"] = 2.0
    with pytest.raises(ValueError, match="mu_product"):
        opt.load_state_dict(sd)


def test_rprop_asgd_functional_kernels_check_everything_first(backend):
    p, g, s1, s2 = np.ones(5), np.ones(5), np.zeros(5), np.zeros(5)
    before = snapshot([p, s1, s2])
    with pytest.raises(ValueError, match=r"step_size_buffers\[0\] has shape \(4,\)"):
        fastopt.kernels.rprop(p, g, s1, np.zeros(4), step=1, backend=backend)
    with pytest.raises(ValueError, match="shares memory"):
        fastopt.kernels.rprop(p, g, s1, s1, step=1, backend=backend)
    with pytest.raises(ValueError, match="etaplus must be > 1"):
        fastopt.kernels.rprop(p, g, s1, s2, step=1, etas=(0.5, 0.9), backend=backend)
    with pytest.raises(ValueError, match=r"axs\[0\] has shape \(4,\)"):
        fastopt.kernels.asgd(p, g, np.zeros(4), step=1, backend=backend)
    for bad, exc in (
        (1.5, ValueError),
        (-0.1, ValueError),
        (math.nan, ValueError),
        ("1", TypeError),
    ):
        with pytest.raises(exc, match="mu"):
            fastopt.kernels.asgd(p, g, s1, step=2, eta=0.01, mu=bad, backend=backend)
    with pytest.raises(ValueError, match=r"eta must be >= 0\.0"):
        fastopt.kernels.asgd(p, g, s1, step=2, eta=-0.01, backend=backend)
    with pytest.raises(ValueError, match="t0 must be finite"):
        fastopt.kernels.asgd(p, g, s1, step=2, eta=0.01, t0=math.inf, backend=backend)
    assert snapshot([p, s1, s2]) == before


def test_asgd_carried_state_unchanged_on_error_and_checked_on_load(backend):
    p, g = np.ones(5), np.full(5, 0.5)
    opt = fastopt.ASGD([p], t0=0, backend=backend)
    opt.step([g])
    opt.step([g])
    group = dict(opt.state_dict()["param_groups"][0])
    assert group["mu"][0] != 1.0 and group["eta"][0] > 0  # the values the checks below guard
    with pytest.raises(TypeError):
        opt.step([g.astype(np.float32)])
    with pytest.raises(ValueError):
        opt.step([np.full(5, math.nan)])
    assert {k: opt.state_dict()["param_groups"][0][k] for k in ("eta", "mu", "step")} == {
        k: group[k] for k in ("eta", "mu", "step")
    }
    for key, bad in (("eta", -1.0), ("mu", 2.0), ("mu", math.nan)):
        sd = opt.state_dict()
        sd["param_groups"][0][key] = bad
        before = snapshot([p, opt.state[0]["ax"]])
        with pytest.raises(ValueError, match=key):
            opt.load_state_dict(sd)
        assert snapshot([p, opt.state[0]["ax"]]) == before
        assert opt.state_dict()["param_groups"][0][key] == group[key]
