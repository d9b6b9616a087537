"""Gradient clipping: functions (in place, as torch.nn.utils) and optimizer options."""

import math

import numpy as np
import pytest

import fastopt

try:
    import torch
except ImportError:  # the hand-computed tests below still run
    torch = None

BACKENDS = fastopt.available_backends()
needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")


def _grads(dtype, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in [(5, 3), (7,), (1,), (2, 2, 2)]]


def test_clip_grad_norm_by_hand():
    g = [np.array([3.0, 0.0]), np.array([[4.0]], np.float32)]
    total = fastopt.clip_grad_norm(g, 1.0)
    assert total == 5.0 and isinstance(total, float)
    coef = 1.0 / (5.0 + 1e-6)
    np.testing.assert_array_equal(g[0], [3.0 * coef, 0.0])
    assert g[1].dtype == np.float32 and g[1][0, 0] == np.float32(4.0) * np.float32(coef)
    # below the limit: untouched
    h = [np.array([0.3, 0.4])]
    assert fastopt.clip_grad_norm(h, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(h[0], [0.3, 0.4])
    # other norms
    assert fastopt.clip_grad_norm([np.array([-3.0, 4.0])], 100, norm_type=1) == 7.0
    assert fastopt.clip_grad_norm([np.array([-3.0, 4.0])], 100, norm_type=math.inf) == 4.0
    assert fastopt.clip_grad_norm([np.array([-3.0, 4.0])], 100, norm_type=3) == pytest.approx(
        (27 + 64) ** (1 / 3)
    )
    assert fastopt.clip_grad_norm([], 1.0) == 0.0
    d = {"x": np.array([6.0, 8.0])}
    assert fastopt.clip_grad_norm(d, 5.0) == 10.0
    np.testing.assert_allclose(d["x"], [3.0, 4.0], rtol=1e-6)
    one = np.array([0.0, 2.0])
    fastopt.clip_grad_norm(one, 1.0)
    np.testing.assert_allclose(one, [0.0, 1.0], rtol=1e-6)


def test_norm_is_accumulated_in_float64():
    g = np.full(1 << 20, 0.1, np.float32)  # float32 accumulation would drift
    exact = math.sqrt((1 << 20) * float(np.float32(0.1)) ** 2)
    assert fastopt.clip_grad_norm([g], 1e9) == pytest.approx(exact, rel=1e-12)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    g = _grads(dtype)
    tg = [torch.tensor(x) for x in g]
    for t in tg:
        t.grad = t.clone()
    expected = torch.nn.utils.clip_grad_norm_(tg, max_norm, norm_type=norm_type)
    total = fastopt.clip_grad_norm(g, max_norm, norm_type=norm_type)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    assert total == pytest.approx(float(expected), rel=rtol)
    for a, t in zip(g, tg):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=rtol, atol=0)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_matches_torch(dtype):
    g = _grads(dtype)
    g[1][2] = np.nan
    tg = [torch.tensor(x) for x in g]
    for t in tg:
        t.grad = t.clone()
    torch.nn.utils.clip_grad_value_(tg, 0.7)
    assert fastopt.clip_grad_value(g, 0.7) is None
    for a, t in zip(g, tg):
        np.testing.assert_array_equal(a, t.grad.numpy())


def test_clip_grad_value_by_hand():
    g = np.array([-2.0, -0.5, 0.5, 2.0, np.nan, np.inf])
    fastopt.clip_grad_value([g], 1.0)
    np.testing.assert_array_equal(g, [-1.0, -0.5, 0.5, 1.0, np.nan, 1.0])


def test_error_if_nonfinite():
    g = [np.array([1.0, np.inf])]
    with pytest.raises(ValueError, match="inf"):
        fastopt.clip_grad_norm(g, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(g[0], [1.0, np.inf])


@pytest.mark.parametrize(
    "call,exc",
    [
        (lambda g: fastopt.clip_grad_norm(g, float("nan")), ValueError),
        (lambda g: fastopt.clip_grad_norm(g, -1.0), ValueError),
        (lambda g: fastopt.clip_grad_norm(g, "1"), TypeError),
        (lambda g: fastopt.clip_grad_norm(g, 1.0, norm_type=0), ValueError),
        (lambda g: fastopt.clip_grad_norm(g, 1.0, norm_type=-2), ValueError),
        (lambda g: fastopt.clip_grad_norm(g + [g[0]], 0.1), ValueError),  # same array twice
        (lambda g: fastopt.clip_grad_norm(g + [np.ones(3, int)], 0.1), TypeError),
        (lambda g: fastopt.clip_grad_norm(g + [[1.0, 2.0]], 0.1), TypeError),
        (lambda g: fastopt.clip_grad_norm("abc", 0.1), TypeError),
        (lambda g: fastopt.clip_grad_value(g, float("nan")), ValueError),
        (lambda g: fastopt.clip_grad_value(g, -0.1), ValueError),
        (lambda g: fastopt.clip_grad_value(g + [g[1][::2]], 0.1), ValueError),  # overlapping view
    ],
)
def test_invalid_clip_arguments_change_nothing(call, exc):
    g = _grads(np.float64)
    ro = np.ones(3)
    ro.setflags(write=False)
    before = [a.tobytes() for a in g]
    with pytest.raises(exc):
        call(g)
    with pytest.raises(ValueError, match="read-only"):
        fastopt.clip_grad_norm(g + [ro], 0.1)
    assert [a.tobytes() for a in g] == before


def _pair(cls, backend, **kw):
    rng = np.random.default_rng(3)
    base = [rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal(10)]
    a = [x.copy() for x in base]
    b = [x.copy() for x in base]
    return a, b, cls(a, backend=backend, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [fastopt.SGD, fastopt.Adam, fastopt.RMSprop])
def test_optimizer_options_equal_manual_clipping(cls, backend):
    a, b, clipped = _pair(cls, backend, max_grad_norm=1.0, clip_value=2.5)
    plain = cls(b, backend=backend)
    rng = np.random.default_rng(4)
    for _ in range(5):
        grads = [(rng.standard_normal(x.shape) * 3).astype(x.dtype) for x in a]
        keep = [g.tobytes() for g in grads]
        clipped.step(grads)
        assert [g.tobytes() for g in grads] == keep  # the caller's gradients are not modified
        manual = [g.copy() for g in grads]
        fastopt.clip_grad_value(manual, 2.5)
        fastopt.clip_grad_norm(manual, 1.0)
        plain.step(manual)
        for x, y in zip(a, b):
            assert x.tobytes() == y.tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_scope_group(backend):
    rng = np.random.default_rng(5)
    g1 = {"w": rng.standard_normal(8)}
    g2 = {"v": rng.standard_normal(3) * 0.01}
    p = {"w": np.zeros(8), "v": np.zeros(3)}
    opt = fastopt.SGD(
        [{"params": {"w": p["w"]}}, {"params": {"v": p["v"]}}],
        lr=1.0,
        max_grad_norm=0.5,
        clip_scope="group",
        backend=backend,
    )
    opt.step({**g1, **g2})
    w = g1["w"].copy()
    fastopt.clip_grad_norm([w], 0.5)
    np.testing.assert_array_equal(p["w"], -w)
    np.testing.assert_array_equal(p["v"], -g2["v"])  # its group's norm is below the limit


def test_invalid_clip_options():
    for kw, exc in [
        (dict(max_grad_norm=-1), ValueError),
        (dict(max_grad_norm=float("nan")), ValueError),
        (dict(clip_value=-1), ValueError),
        (dict(norm_type=0), ValueError),
        (dict(clip_scope="layer"), ValueError),
        (dict(max_grad_norm="1"), TypeError),
    ]:
        with pytest.raises(exc):
            fastopt.Adam([np.zeros(2)], **kw)


@needs_torch
def test_optimizer_with_clipping_matches_torch_loop():
    rng = np.random.default_rng(6)
    w = rng.standard_normal(20)
    tw = torch.tensor(w.copy(), requires_grad=True)
    opt = fastopt.Adam([w], lr=0.05, max_grad_norm=0.3)
    topt = torch.optim.Adam([tw], lr=0.05)
    for _ in range(20):
        g = rng.standard_normal(20) * 2
        opt.step([g])
        tw.grad = torch.tensor(g.copy())
        torch.nn.utils.clip_grad_norm_([tw], 0.3)
        topt.step()
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-10, atol=1e-12)
