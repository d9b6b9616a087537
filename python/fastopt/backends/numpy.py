"""The NumPy reference backend: the spec (PyTorch's ``torch.optim`` update rules) as code.

Every function is multi-tensor and in place: it takes lists of arrays, one row per
parameter, checks them all (``_checks.collect``) and then updates each row with plain
NumPy expressions written in the order PyTorch evaluates them.  Hyperparameters are cast
to the array's dtype (``dt(x)``) so that float32 stays float32, as in PyTorch, where a
Python scalar does not promote a float32 tensor.

The Numba twins (``numba.py``) and the C++ kernels (``cpp/include/fastopt/kernels.hpp``)
compute the same per-element formulas in one fused pass.
"""
from __future__ import annotations

import numpy as np

from ._checks import collect


def sgd(params, grads, momentum_buffers, lr, momentum, dampening, weight_decay, nesterov,
        maximize, first, names=None):
    r"""SGD with momentum, dampening, Nesterov and weight decay (``torch.optim.SGD``).

    .. math::
        g &\leftarrow \pm g + \lambda p \\
        b &\leftarrow g \text{ if first else } \mu b + (1 - \tau) g \\
        g &\leftarrow g + \mu b \text{ (nesterov) else } b \\
        p &\leftarrow p - \eta g
    """
    rows = collect([("params", params, True), ("grads", grads, False),
                    ("momentum_buffers", momentum_buffers, True)], names)
    for p, g, buf in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + dt(weight_decay) * p
        if momentum != 0 and buf is not None:
            if first:
                buf[...] = g
            else:
                buf[...] = dt(momentum) * buf + dt(1 - dampening) * g
            g = g + dt(momentum) * buf if nesterov else buf
        p -= dt(lr) * g


def adagrad(params, grads, state_sums, clr, weight_decay, eps, maximize, names=None):
    r"""Adagrad (``torch.optim.Adagrad``); ``clr = lr / (1 + (t - 1) lr_decay)``.

    .. math::
        g \leftarrow \pm g + \lambda p,\quad s \leftarrow s + g^2,\quad
        p \leftarrow p - \mathrm{clr}\, g / (\sqrt{s} + \epsilon)
    """
    rows = collect([("params", params, True), ("grads", grads, False),
                    ("state_sums", state_sums, True)], names)
    for p, g, s in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + dt(weight_decay) * p
        s += g * g
        p -= dt(clr) * g / (np.sqrt(s) + dt(eps))


def rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers, lr, alpha, eps,
            weight_decay, momentum, centered, maximize, names=None):
    r"""RMSprop (``torch.optim.RMSprop``); eps is added outside the square root.

    .. math::
        v &\leftarrow \alpha v + (1 - \alpha) g^2 \\
        \bar g &\leftarrow \bar g + (1 - \alpha)(g - \bar g) \quad\text{(centered)} \\
        d &= \sqrt{v - \bar g^2} + \epsilon \text{ (centered) else } \sqrt{v} + \epsilon \\
        b &\leftarrow \mu b + g / d,\ p \leftarrow p - \eta b \text{ (momentum) else }
        p \leftarrow p - \eta g / d
    """
    rows = collect([("params", params, True), ("grads", grads, False),
                    ("square_avgs", square_avgs, True), ("grad_avgs", grad_avgs, True),
                    ("momentum_buffers", momentum_buffers, True)], names)
    for p, g, sq, ga, buf in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + dt(weight_decay) * p
        sq[...] = dt(alpha) * sq + dt(1 - alpha) * g * g
        if centered and ga is not None:
            ga += dt(1 - alpha) * (g - ga)
            avg = np.sqrt(sq - ga * ga) + dt(eps)
        else:
            avg = np.sqrt(sq) + dt(eps)
        if momentum > 0 and buf is not None:
            buf[...] = dt(momentum) * buf + g / avg
            p -= dt(lr) * buf
        else:
            p -= dt(lr) * g / avg


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, beta1, beta2, eps,
         weight_decay, decay, step_size, bc2_sqrt, decoupled, amsgrad, maximize, names=None):
    r"""Adam / AdamW (``torch.optim.Adam``, ``torch.optim.AdamW``).

    The denominator multiplies by ``1 / bc2_sqrt`` (computed once, in float64) where PyTorch
    divides by ``bc2_sqrt``: one division per element fewer, at most one rounding apart
    (the kernels are division-bound on cached arrays; 1.3x faster at 1e6 floats).

    ``step_size = lr / (1 - beta1**t)``, ``bc2_sqrt = sqrt(1 - beta2**t)`` and
    ``decay = 1 - lr * weight_decay`` are computed by the caller in float64.

    .. math::
        p &\leftarrow p \cdot \mathrm{decay} \text{ (AdamW) or } g \leftarrow g + \lambda p
        \text{ (Adam)} \\
        m &\leftarrow m + (1 - \beta_1)(g - m),\quad v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        \hat v &= \max(\hat v, v) \text{ (amsgrad) else } v \\
        p &\leftarrow p - \mathrm{step\_size} \cdot m / (\sqrt{\hat v} / \mathrm{bc2\_sqrt} + \epsilon)
    """
    rows = collect([("params", params, True), ("grads", grads, False),
                    ("exp_avgs", exp_avgs, True), ("exp_avg_sqs", exp_avg_sqs, True),
                    ("max_exp_avg_sqs", max_exp_avg_sqs, True)], names)
    for p, g, m, v, vmax in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if weight_decay != 0:
            if decoupled:
                p *= dt(decay)
            else:
                g = g + dt(weight_decay) * p
        m += dt(1 - beta1) * (g - m)
        v[...] = dt(beta2) * v + dt(1 - beta2) * g * g
        if amsgrad and vmax is not None:
            np.maximum(vmax, v, out=vmax)
            vv = vmax
        else:
            vv = v
        denom = np.sqrt(vv) * dt(1.0 / bc2_sqrt) + dt(eps)
        p -= dt(step_size) * m / denom
