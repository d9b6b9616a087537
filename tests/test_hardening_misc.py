"""Regression tests for defects found by hostile testing (issue: hardening), one per defect."""

import numpy as np
import pytest

import fastopt
from fastopt import schedules


def _restarts_reference(k, init, period, mult, decay, final=0.0):
    """Cycle search with Python's unbounded integers: the definition, step by step."""
    start, length, i = 0, period, 0
    while start + length <= k:
        start, length, i = start + length, length * mult, i + 1
    return final + (init - final) * decay**i * (1 + np.cos(np.pi * (k - start) / length)) / 2


@pytest.mark.parametrize(
    "period, mult, k",
    [
        (10, 10**6, 10_000_010),  # gave 0.125 (int64 overflow in the cycle search)
        (1, 2**31, 2**31 + 1),  # gave NaN
        (1, 2**31, 2**31 + 2**45),
        (3, 2, 2**52 + 5),
        (7, 3, 12345),
    ],
)
def test_cosine_restarts_does_not_overflow(period, mult, k):
    s = schedules.cosine_restarts(1.0, period=period, period_mult=mult, decay=0.5)
    want = _restarts_reference(k, 1.0, period, mult, 0.5)
    assert s(k) == pytest.approx(want, rel=1e-12, abs=1e-300)
    assert np.isfinite(s(np.array([k, k - 1, 0]))).all()


def test_cosine_restarts_boundaries_match_the_definition():
    s = schedules.cosine_restarts(2.0, period=3, period_mult=4, final=0.1, decay=0.7)
    ks = np.arange(0, 2000)
    got = s(ks)
    want = np.array([_restarts_reference(int(k), 2.0, 3, 4, 0.7, 0.1) for k in ks])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_lr_find_steepest_is_not_the_noisy_first_point(kind):
    # Small batches on real data: the first smoothed points are one or two batches, whose
    # noise used to be the steepest "descent" (steepest returned start_lr = 1e-7).
    pytest.importorskip("sklearn")
    from fastopt.demo import MLP, batches, load_digits_data
    from fastopt.lr_finder import lr_find

    X, y, _, _ = load_digits_data()
    factory = {"adam": lambda p: fastopt.Adam(p), "sgd": lambda p: fastopt.SGD(p, momentum=0.9)}[
        kind
    ]
    for seed in range(3):
        model = MLP(seed=seed)
        it = batches(len(X), 8, seed)

        def f(step, model=model, it=it):
            idx = next(it)
            return model.loss_and_grads(X[idx], y[idx])

        res = lr_find(model.params, factory, f, progress=False)
        i = res.indices["steepest"]
        assert i is not None and res.lrs[i] > 1e-4, (seed, res.lrs[i])
        assert i <= res.indices["minimum"]
        # the loss has clearly fallen by then
        assert res.smoothed_losses[i] < np.median(res.losses[:10]) - 0.05 * (
            np.median(res.losses[:10]) - res.smoothed_losses.min()
        )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--steps", "0"], "--steps: must be >= 1, got 0"),
        (["demo", "--steps", "-5"], "--steps: must be >= 1, got -5"),
        (["demo", "--steps", "x"], "expected a whole number"),
        (["demo", "--out", "/proc/nope"], "cannot create the output folder (--out) '/proc/nope'"),
        (["demo", "--optimizers", "Adam,Foo"], "unknown optimizer(s) ['Foo']"),
        (["demo", "--backend", "gpu"], "invalid choice: 'gpu'"),
        (["lr-find", "--num-steps", "0"], "--num-steps: must be >= 1"),
        (["lr-find", "--start-lr", "-1"], "--start-lr: must be a finite number > 0"),
        (["lr-find", "--end-lr", "1e-9"], "--end-lr (1e-09) must be larger than --start-lr"),
        (["lr-find", "--out", "/proc/nope/x.png"], "cannot create the folder of --out"),
    ],
)
def test_cli_rejects_bad_arguments_with_a_clear_message(argv, message, capsys):
    from fastopt.__main__ import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
