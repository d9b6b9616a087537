"""Functional, in-place optimizer kernels for code that keeps its own state arrays.

Each function takes one array or a list of arrays per role (parameters, gradients, state),
checks every hyperparameter and every array before modifying any, and updates the
parameters and state in place on the chosen backend.  Hyperparameters use PyTorch's names
and defaults; ``step`` is the 1-based number of this update (PyTorch's ``state['step']``
after its increment), from which the bias corrections are computed in float64.

Example::

    m, v = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, 101):
        fastopt.kernels.adam(w, grad(w), m, v, step=t, lr=1e-3)
"""
from __future__ import annotations


import numpy as np

from ._validation import check_bool, check_hyper, check_step
from .backends import resolve

__all__ = ["sgd", "adagrad", "rmsprop", "adam", "adamw"]


def _as_list(x):
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return [x]
    return list(x)


def _betas(betas):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return check_hyper("beta1", betas[0]), check_hyper("beta2", betas[1])


def sgd(params, grads, momentum_buffers=None, *, step, lr=1e-3, momentum=0.0, dampening=0.0,
        weight_decay=0.0, nesterov=False, maximize=False, backend="auto"):
    """SGD update (``torch.optim.SGD``); ``momentum_buffers`` is needed when momentum != 0.

    On ``step == 1`` the buffer is set to the gradient (PyTorch's first step, no dampening).
    """
    t = check_step(step)
    lr = check_hyper("lr", lr)
    momentum = check_hyper("momentum", momentum)
    dampening = check_hyper("dampening", dampening)
    weight_decay = check_hyper("weight_decay", weight_decay)
    nesterov = check_bool("nesterov", nesterov)
    maximize = check_bool("maximize", maximize)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov=True requires momentum > 0 and dampening == 0, got "
                         f"momentum={momentum}, dampening={dampening}")
    if momentum != 0 and momentum_buffers is None:
        raise ValueError(f"momentum={momentum} needs momentum_buffers (one array per parameter, "
                         "np.zeros_like(p)); pass them or set momentum=0")
    _, be = resolve(backend)
    be.sgd(_as_list(params), _as_list(grads), _as_list(momentum_buffers) if momentum != 0 else None,
           lr, momentum, dampening, weight_decay, nesterov, maximize, t == 1)


def adagrad(params, grads, state_sums, *, step, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
            eps=1e-10, maximize=False, backend="auto"):
    """Adagrad update (``torch.optim.Adagrad``).  ``state_sums`` start at
    ``initial_accumulator_value`` (create them with ``np.full_like(p, value)``)."""
    t = check_step(step)
    lr = check_hyper("lr", lr)
    lr_decay = check_hyper("lr_decay", lr_decay)
    weight_decay = check_hyper("weight_decay", weight_decay)
    eps = check_hyper("eps", eps)
    maximize = check_bool("maximize", maximize)
    clr = lr / (1 + (t - 1) * lr_decay)
    _, be = resolve(backend)
    be.adagrad(_as_list(params), _as_list(grads), _as_list(state_sums), clr, weight_decay, eps,
               maximize)


def rmsprop(params, grads, square_avgs, grad_avgs=None, momentum_buffers=None, *, step=None,
            lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
            maximize=False, backend="auto"):
    """RMSprop update (``torch.optim.RMSprop``); ``grad_avgs`` are needed when centered,
    ``momentum_buffers`` when momentum > 0.  RMSprop has no bias correction, so ``step`` is
    accepted for uniformity and only checked."""
    if step is not None:
        check_step(step)
    lr = check_hyper("lr", lr)
    alpha = check_hyper("alpha", alpha)
    eps = check_hyper("eps", eps)
    weight_decay = check_hyper("weight_decay", weight_decay)
    momentum = check_hyper("momentum", momentum)
    centered = check_bool("centered", centered)
    maximize = check_bool("maximize", maximize)
    if centered and grad_avgs is None:
        raise ValueError("centered=True needs grad_avgs (one zero array per parameter)")
    if momentum > 0 and momentum_buffers is None:
        raise ValueError(f"momentum={momentum} needs momentum_buffers (one zero array per "
                         "parameter); pass them or set momentum=0")
    _, be = resolve(backend)
    be.rmsprop(_as_list(params), _as_list(grads), _as_list(square_avgs),
               _as_list(grad_avgs) if centered else None,
               _as_list(momentum_buffers) if momentum > 0 else None,
               lr, alpha, eps, weight_decay, momentum, centered, maximize)


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs=None, *, step, lr=1e-3,
         betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
         decoupled_weight_decay=False, backend="auto"):
    """Adam update (``torch.optim.Adam``); AdamW with ``decoupled_weight_decay=True``.

    ``max_exp_avg_sqs`` are needed when amsgrad=True.  The bias corrections
    ``1 - beta**step`` are computed in float64 from the integer step.
    """
    t = check_step(step)
    lr = check_hyper("lr", lr)
    beta1, beta2 = _betas(betas)
    eps = check_hyper("eps", eps)
    weight_decay = check_hyper("weight_decay", weight_decay)
    amsgrad = check_bool("amsgrad", amsgrad)
    maximize = check_bool("maximize", maximize)
    decoupled = check_bool("decoupled_weight_decay", decoupled_weight_decay)
    if amsgrad and max_exp_avg_sqs is None:
        raise ValueError("amsgrad=True needs max_exp_avg_sqs (one zero array per parameter)")
    step_size, bc2_sqrt = adam_scalars(lr, beta1, beta2, t)
    _, be = resolve(backend)
    be.adam(_as_list(params), _as_list(grads), _as_list(exp_avgs), _as_list(exp_avg_sqs),
            _as_list(max_exp_avg_sqs) if amsgrad else None, beta1, beta2, eps, weight_decay,
            1.0 - lr * weight_decay, step_size, bc2_sqrt, decoupled, amsgrad, maximize)


def adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs=None, *, step, lr=1e-3,
          betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False,
          backend="auto"):
    """AdamW update (``torch.optim.AdamW``): Adam with decoupled weight decay
    ``p *= 1 - lr * weight_decay``, default ``weight_decay=1e-2``."""
    adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step=step, lr=lr, betas=betas,
         eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
         decoupled_weight_decay=True, backend=backend)


def adam_scalars(lr, beta1, beta2, t):
    """``(lr / (1 - beta1**t), sqrt(1 - beta2**t))`` in float64, as PyTorch computes them."""
    bc1 = 1.0 - beta1 ** t
    bc2 = 1.0 - beta2 ** t
    return lr / bc1, bc2 ** 0.5  # ** 0.5 as torch.optim does, not math.sqrt
