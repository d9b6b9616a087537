"""A small two-layer tanh MLP in plain NumPy (forward and backward), shared by the training
tests and their fixture script, and its PyTorch twin for the golden loss curves."""

import numpy as np

N, D, H = 128, 6, 12


def data_and_init(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    teacher = rng.standard_normal((D, 1))
    y = np.tanh(X @ teacher) + 0.1 * rng.standard_normal((N, 1))
    params = {
        "W1": rng.standard_normal((D, H)) / np.sqrt(D),
        "b1": np.zeros(H),
        "W2": rng.standard_normal((H, 1)) / np.sqrt(H),
        "b2": np.zeros(1),
    }
    return X, y, params


def loss_and_grads(params, X, y):
    """Mean squared error and its gradients, by hand."""
    h_pre = X @ params["W1"] + params["b1"]
    h = np.tanh(h_pre)
    out = h @ params["W2"] + params["b2"]
    diff = out - y
    loss = float(np.mean(diff**2))
    d_out = 2.0 * diff / diff.size
    d_h = d_out @ params["W2"].T * (1.0 - h**2)
    grads = {
        "W1": X.T @ d_h,
        "b1": d_h.sum(axis=0),
        "W2": h.T @ d_out,
        "b2": d_out.sum(axis=0),
    }
    return loss, grads


def torch_onecycle_losses(steps, max_lr, seed=0):
    """PyTorch reference: SGD(momentum) + OneCycleLR(cycle_momentum=True), float64."""
    import torch

    X, y, params = data_and_init(seed)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = torch.optim.SGD(list(tp.values()), lr=max_lr, momentum=0.9, nesterov=False)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, total_steps=steps, cycle_momentum=True
    )
    Xt, yt = torch.tensor(X), torch.tensor(y)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        out = torch.tanh(Xt @ tp["W1"] + tp["b1"]) @ tp["W2"] + tp["b2"]
        loss = torch.mean((out - yt) ** 2)
        loss.backward()
        losses.append(loss.item())
        opt.step()
        sched.step()
    return np.array(losses)
