"""fastopt.SGD + schedules.one_cycle (with its momentum schedule) follows PyTorch's
SGD + OneCycleLR(cycle_momentum=True) loss curve on a real MLP."""

import os

import numpy as np
import pytest

import fastopt
from fastopt import schedules
from mlp import data_and_init, loss_and_grads, torch_onecycle_losses

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "onecycle_training_torch.npz")


def fastopt_losses(steps, max_lr, backend, seed=0):
    X, y, params = data_and_init(seed)
    lr = schedules.one_cycle(max_lr, total_steps=steps)
    opt = fastopt.SGD(params, lr=lr, momentum=lr.momentum(0.85, 0.95), backend=backend)
    losses = []
    for _ in range(steps):
        loss, grads = loss_and_grads(params, X, y)
        losses.append(loss)
        opt.step(grads)
    return np.array(losses), opt


def test_one_cycle_training_matches_torch_fixture(backend):
    ref = np.load(FIXTURE)
    steps, max_lr = int(ref["steps"]), float(ref["max_lr"])
    losses, opt = fastopt_losses(steps, max_lr, backend)
    assert losses[-1] < 0.5 * losses[0]  # it really trains
    np.testing.assert_allclose(losses, ref["losses"], rtol=1e-9)
    assert opt.last_lr[0] == pytest.approx(max_lr / 25 / 1e4)


def test_one_cycle_training_matches_torch_live(backend):
    pytest.importorskip("torch")
    steps, max_lr = 50, 0.3
    losses, _ = fastopt_losses(steps, max_lr, backend, seed=1)
    np.testing.assert_allclose(losses, torch_onecycle_losses(steps, max_lr, seed=1), rtol=1e-9)
