"""nonfinite="raise" | "skip" | "ignore": a NaN in one batch must not poison the weights."""

import tracemalloc

import numpy as np
import pytest

import fastopt
from fastopt.optim import NonFiniteGradientError

BACKENDS = fastopt.available_backends()
KINDS = [
    (fastopt.SGD, dict(momentum=0.9)),
    (fastopt.Adagrad, {}),
    (fastopt.RMSprop, dict(centered=True, momentum=0.5)),
    (fastopt.Adam, dict(amsgrad=True)),
    (fastopt.AdamW, {}),
]
IDS = [c.__name__ for c, _ in KINDS]


def _setup(cls, kw, backend, nonfinite=None):
    rng = np.random.default_rng(1)
    params = {"a": rng.standard_normal((4, 5)).astype(np.float32), "b": rng.standard_normal(9)}
    extra = {} if nonfinite is None else {"nonfinite": nonfinite}
    opt = cls(params, backend=backend, **kw, **extra)
    return opt, params


def _grads(k=0):
    return {"a": np.full((4, 5), 0.25 + k, np.float32), "b": np.linspace(-1, 1, 9) * (k + 1)}


def _snap(opt, params):
    out = {n: p.tobytes() for n, p in params.items()}
    for n, st in opt.state.items():
        out.update({f"{n}/{k}": a.tobytes() for k, a in st.items()})
    out["counters"] = (opt.step_count, opt.skipped_steps, [dict(g) for g in opt._group_state])
    return out


def test_default_is_raise():
    opt = fastopt.SGD([np.zeros(2)])
    assert opt.nonfinite == "raise"
    with pytest.raises(ValueError, match="nonfinite must be one of"):
        fastopt.SGD([np.zeros(2)], nonfinite="warn")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls,kw", KINDS, ids=IDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_raise_names_array_and_index_and_changes_nothing(cls, kw, backend, bad):
    opt, params = _setup(cls, kw, backend)
    opt.step(_grads(0))
    before = _snap(opt, params)
    g = _grads(1)
    g["a"][2, 3] = bad
    g["a"][3, 0] = np.nan  # a later bad element: the first one is reported
    with pytest.raises(NonFiniteGradientError, match=r"grads\['a'\].*at index \(2, 3\)"):
        opt.step(g)
    assert _snap(opt, params) == before
    g = _grads(1)
    g["b"][6] = bad
    with pytest.raises(ValueError, match=r"grads\['b'\].*at index 6 "):
        opt.step(g)
    assert _snap(opt, params) == before


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls,kw", KINDS, ids=IDS)
def test_skip_leaves_everything_and_counts(cls, kw, backend):
    opt, params = _setup(cls, kw, backend, "skip")
    ref, ref_params = _setup(cls, kw, backend, "skip")
    post = []
    opt.register_step_post_hook(lambda o, g: post.append(o.step_count))
    opt.step(_grads(0))
    ref.step(_grads(0))
    before = _snap(opt, params)
    g = _grads(1)
    g["b"][0] = np.inf
    opt.step(g)
    assert opt.last_step_skipped and opt.skipped_steps == 1 and opt.step_count == 1
    after = _snap(opt, params)
    assert after.pop("counters")[1] == 1
    before.pop("counters")
    assert after == before
    assert post == [1]  # no post-hook call on a skipped step
    for k in (1, 2):  # the run continues as if the bad batch never happened
        opt.step(_grads(k))
        ref.step(_grads(k))
    assert not opt.last_step_skipped
    assert {n: p.tobytes() for n, p in params.items()} == {
        n: p.tobytes() for n, p in ref_params.items()
    }
    assert opt.step_count == ref.step_count == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_ignore_propagates_like_pytorch(backend):
    w = np.ones(4, np.float32)
    opt = fastopt.SGD([w], lr=0.1, backend=backend, nonfinite="ignore")
    opt.step([np.array([1, np.nan, np.inf, 0], np.float32)])
    assert np.isnan(w[1]) and np.isneginf(w[2]) and w[0] == np.float32(0.9) and w[3] == 1
    assert opt.step_count == 1 and opt.skipped_steps == 0


def test_large_finite_float32_gradients_are_not_flagged():
    # The sum of these finite values overflows float32: the exact check must clear them.
    w = np.zeros(1000, np.float32)
    opt = fastopt.SGD([w], lr=1e-38)
    g = np.full(1000, 3e38, np.float32)
    opt.step([g])
    assert opt.step_count == 1 and np.all(np.isfinite(w)) and w[0] < 0


def test_malformed_gradient_is_reported_before_the_bad_value():
    opt = fastopt.SGD({"a": np.zeros(3), "b": np.zeros(2)}, nonfinite="skip")
    with pytest.raises(ValueError, match="shape"):
        opt.step({"a": np.array([np.nan, 0, 0]), "b": np.zeros(5)})
    with pytest.raises(TypeError, match="dtype"):
        opt.step({"a": np.array([np.nan, 0, 0]), "b": np.zeros(2, np.float32)})
    assert opt.skipped_steps == 0


def test_check_is_one_read_without_large_temporaries():
    be = "native" if "native" in BACKENDS else pytest.skip("needs the compiled backend")
    n = 1 << 20
    w = np.zeros(n, np.float32)
    opt = fastopt.Adam([w], backend=be)
    g = np.full(n, 0.5, np.float32)
    opt.step([g])
    tracemalloc.start()
    try:
        opt.step([g])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * 4 // 8, peak  # far less than one gradient-sized temporary


def test_empty_and_zero_sized_gradients():
    opt = fastopt.Adam([np.zeros(0, np.float32), np.zeros((2, 0))])
    opt.step([np.zeros(0, np.float32), np.zeros((2, 0))])
    assert opt.step_count == 1
