"""The native finiteness check and the optimizer's cached hyperparameter plan."""

import math

import numpy as np
import pytest

import fastopt

native = pytest.importorskip("fastopt._native")


@pytest.mark.parametrize("isa", native.supported_isas())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 17, 1000, 4099, 300007])
def test_nonfinite_rows_finds_every_position(isa, dtype, n):
    old = native.isa()
    native.set_isa(isa)
    try:
        big = np.full(n, np.finfo(dtype).max, dtype)  # finite extremes are finite
        tiny = np.full(n, np.finfo(dtype).smallest_subnormal, dtype)
        for bad in (np.nan, np.inf, -np.inf):
            for pos in sorted({0, n // 2, n - 1}):
                a = np.ones(n, dtype)
                a[pos] = bad
                rows = native.nonfinite_rows([big, a, tiny, -big])
                assert list(rows) == [1], (bad, pos)
        assert list(native.nonfinite_rows([big, tiny])) == []
    finally:
        native.set_isa(old)


def test_nonfinite_rows_lists_what_it_cannot_check():
    ok = np.ones(5)
    rows = native.nonfinite_rows([ok, np.ones(10)[::2], np.ones(3, np.int32), [1.0], ok[:0]])
    assert list(rows) == [1, 2, 3]


def test_native_optimizer_reports_first_bad_index():
    p = np.ones((3, 4), np.float32)
    g = np.zeros((3, 4), np.float32)
    g[2, 1] = np.inf
    opt = fastopt.Adam({"w": p}, backend="native")
    with pytest.raises(
        ValueError, match=r"grads\['w'\] has a non-finite value \(inf\) at index \(2, 1\)"
    ):
        opt.step({"w": g})
    assert np.array_equal(p, np.ones((3, 4), np.float32)) and opt.step_count == 0


def test_changed_constant_options_take_effect_and_are_checked(backend):
    p = np.zeros(1)
    opt = fastopt.SGD([p], lr=0.1, backend=backend)
    opt.step([np.ones(1)])
    opt.param_groups[0]["lr"] = 0.5  # a new constant: used from the next step on
    opt.step([np.ones(1)])
    np.testing.assert_allclose(p, -0.6)
    opt.param_groups[0]["lr"] = math.nan  # and checked, although the plan was cached
    with pytest.raises(ValueError, match="lr must be a number, got NaN"):
        opt.step([np.ones(1)])
    opt.param_groups[0]["lr"] = lambda k: 1.0  # a schedule is evaluated at every step
    opt.step([np.ones(1)])
    opt.param_groups[0]["lr"] = lambda k: 2.0
    opt.step([np.ones(1)])
    np.testing.assert_allclose(p, -3.6)
    assert opt.last_lr == [2.0]


def test_float32_momentum_that_rounds_to_zero_still_uses_the_buffer(backend):
    """Options are decided on their double value, as PyTorch does (momentum != 0)."""
    p = np.ones(4, np.float32)
    opt = fastopt.SGD([p], lr=0.1, momentum=1e-46, weight_decay=1e-46, backend=backend)
    opt.step([np.full(4, 2.0, np.float32)])
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], 2.0)
