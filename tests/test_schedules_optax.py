"""The schedules that close the gap with Optax: piecewise_interpolate, linear_onecycle and
cosine(exponent=).  The references below are Optax's algorithms written out with NumPy
(indicator vectors and a dot product, as optax/schedules/_schedule.py computes them), so
they check the closed forms here against an independent formulation."""

import math
import pickle

import numpy as np
import pytest

import fastopt
from fastopt import schedules as S

STEPS = np.arange(0, 260)


def optax_piecewise_interpolate(kind, init, boundaries_and_scales, count):
    """Optax's piecewise_interpolate_schedule evaluated at one count."""
    if boundaries_and_scales:
        boundaries, scales = zip(*sorted(boundaries_and_scales.items()))
    else:
        boundaries, scales = (), ()
    bounds = np.array((0,) + boundaries)
    values = np.cumprod(np.array((init,) + scales, dtype=np.float64))
    sizes = bounds[1:] - bounds[:-1]
    indicator = (bounds[:-1] <= count) & (count < bounds[1:])
    pct = (count - bounds[:-1]) / sizes
    start, end = values[:-1], values[1:]
    if kind == "linear":
        interp = (end - start) * pct + start
    else:
        interp = end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1)
    return indicator.dot(interp) + (bounds[-1] <= count) * values[-1]


def optax_linear_onecycle(T, peak, pct_start, pct_final, div, final_div, count):
    return optax_piecewise_interpolate(
        "linear",
        peak / div,
        {int(pct_start * T): div, int(pct_final * T): 1.0 / div, T: 1.0 / final_div},
        count,
    )


def optax_cosine(init, decay_steps, alpha, exponent, count):
    count = min(count, decay_steps)
    c = 0.5 * (1 + math.cos(math.pi * count / decay_steps))
    return init * ((1 - alpha) * c**exponent + alpha)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize(
    "table",
    [
        {},
        {50: 0.1},
        {20: 3.0, 100: 0.5, 180: 0.0},
        {7: 2.0, 8: 0.25, 200: 4.0},
    ],
)
def test_piecewise_interpolate_equals_optax(kind, table):
    s = S.piecewise_interpolate(kind, 0.3, table)
    want = np.array([optax_piecewise_interpolate(kind, 0.3, table, int(k)) for k in STEPS])
    np.testing.assert_array_equal(s(STEPS), want)  # the same arithmetic: the same bits
    assert s(int(STEPS[-1])) == want[-1]


@pytest.mark.parametrize(
    "args",
    [
        (100, 1.0, 0.3, 0.85, 25.0, 1e4),
        (250, 0.02, 0.1, 0.9, 10.0, 100.0),
        (37, 3.0, 0.5, 0.5, 4.0, 1e3),
    ],
)
def test_linear_onecycle_equals_optax(args):
    s = S.linear_onecycle(*args)
    want = np.array([optax_linear_onecycle(*args, int(k)) for k in STEPS])
    np.testing.assert_array_equal(s(STEPS), want)
    T, peak, pct_start, pct_final = args[:4]
    if int(pct_start * T) != int(pct_final * T):  # else Optax's dict keeps the later entry
        assert s(int(pct_start * T)) == pytest.approx(peak, rel=1e-15)


@pytest.mark.parametrize("exponent", [0.5, 1.0, 2.0, 3.7])
def test_cosine_exponent_equals_optax(exponent):
    init, T, final = 0.8, 120, 0.05
    s = S.cosine(init, T, final=final, exponent=exponent)
    want = np.array([optax_cosine(init, T, final / init, exponent, int(k)) for k in STEPS])
    np.testing.assert_allclose(s(STEPS), want, rtol=1e-14, atol=1e-16)


def test_cosine_exponent_one_keeps_the_torch_bits():
    a, b = S.cosine(0.1, 77, final=0.001), S.cosine(0.1, 77, final=0.001, exponent=1.0)
    np.testing.assert_array_equal(a(STEPS), b(STEPS))
    assert a == b


def test_empty_pieces_jump_instead_of_nan():
    # Optax gives NaN here (0/0 times a zero indicator); fastopt skips the empty piece.
    s = S.piecewise_interpolate("linear", 1.0, {0: 2.0, 10: 3.0})
    assert s(0) == 2.0 and s(5) == pytest.approx(4.0) and s(10) == 6.0
    tiny = S.linear_onecycle(1, 1.0, pct_start=0.25, pct_final=0.75)
    vals = tiny(np.arange(4))
    assert np.isfinite(vals).all()
    # Optax's dict {0: 25, 0: 1/25, 1: 1e-4} keeps 1/25 at step 0
    assert vals[0] == pytest.approx(0.04 * 0.04) and vals[1] == pytest.approx(0.04 * 0.04 * 1e-4)


@pytest.mark.parametrize(
    "s",
    [
        S.piecewise_interpolate("cosine", 0.1, {10: 0.5, 40: 2.0}),
        S.linear_onecycle(90, 0.5),
        S.cosine(1.0, 30, exponent=2.5),
    ],
)
def test_repr_pickle_and_arrays(s):
    assert pickle.loads(pickle.dumps(s)) == s
    rebuilt = eval(repr(s), vars(S))
    np.testing.assert_array_equal(rebuilt(STEPS), s(STEPS))
    np.testing.assert_array_equal(s(STEPS), np.array([s(int(k)) for k in STEPS]))


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (lambda: S.piecewise_interpolate("cos", 1.0), ValueError, "interpolate must be one of"),
        (lambda: S.piecewise_interpolate("linear", 1.0, {5: -1.0}), ValueError, ">= 0.0"),
        (lambda: S.piecewise_interpolate("linear", 1.0, {-1: 1.0}), ValueError, "integer >= 0"),
        (lambda: S.piecewise_interpolate("linear", 1.0, [(5, 1.0)]), TypeError, "must be a dict"),
        (lambda: S.linear_onecycle(0, 1.0), ValueError, "total_steps"),
        (lambda: S.linear_onecycle(10, 1.0, pct_start=0.9, pct_final=0.5), ValueError, "pct_final"),
        (lambda: S.cosine(1.0, 10, exponent=0.0), ValueError, "exponent"),
        (lambda: S.linear(1.0, 0.0, 0), ValueError, "total_steps"),
        (lambda: S.polynomial(1.0, 0), ValueError, "total_steps"),
    ],
)
def test_bad_arguments(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_degenerate_cases_are_documented():
    # fastopt raises where Optax silently returns a constant; the docstrings say so.
    for fn in (S.linear, S.polynomial, S.warmup_cosine):
        assert "Optax" in fn.__doc__ and "raises" in fn.__doc__


def test_new_schedules_drive_an_optimizer():
    w = np.zeros(4)
    opt = fastopt.SGD([w], lr=S.linear_onecycle(10, 1.0), momentum=S.cosine(0.9, 10, exponent=2.0))
    for _ in range(12):
        opt.step([np.ones(4)])
    assert np.isfinite(w).all() and opt.last_lr[0] == pytest.approx(1.0 / 25 / 1e4)
