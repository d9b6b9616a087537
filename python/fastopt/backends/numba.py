"""The Numba backend: ``@njit(cache=True)`` twins of the reference loops.

Each kernel is the per-element loop of ``numpy.py`` fused into one pass.  Every
hyperparameter is passed already converted to the array's dtype (``dt(x)``), and the
loops contain no float literals, so float32 arrays are computed in float32 as in PyTorch
and in the C++ kernels.  Argument checks are those of the reference (``_checks.collect``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._checks import collect


@njit(cache=True, nogil=True)
def _sgd(p, g, buf, lr, momentum, one_minus_damp, wd, sign, use_wd, use_mom, nesterov, first):
    for i in range(p.size):
        gi = sign * g[i]
        if use_wd:
            gi = gi + wd * p[i]
        if use_mom:
            if first:
                b = gi
            else:
                b = momentum * buf[i] + one_minus_damp * gi
            buf[i] = b
            if nesterov:
                gi = gi + momentum * b
            else:
                gi = b
        p[i] = p[i] - lr * gi


@njit(cache=True, nogil=True)
def _adagrad(p, g, s, clr, wd, eps, sign, use_wd):
    for i in range(p.size):
        gi = sign * g[i]
        if use_wd:
            gi = gi + wd * p[i]
        si = s[i] + gi * gi
        s[i] = si
        p[i] = p[i] - clr * gi / (np.sqrt(si) + eps)


@njit(cache=True, nogil=True)
def _rmsprop(p, g, sq, ga, buf, lr, alpha, one_minus_alpha, eps, wd, momentum, sign,
             use_wd, centered, use_mom):
    for i in range(p.size):
        gi = sign * g[i]
        if use_wd:
            gi = gi + wd * p[i]
        si = alpha * sq[i] + one_minus_alpha * gi * gi
        sq[i] = si
        if centered:
            a = ga[i] + one_minus_alpha * (gi - ga[i])
            ga[i] = a
            avg = np.sqrt(si - a * a) + eps
        else:
            avg = np.sqrt(si) + eps
        if use_mom:
            b = momentum * buf[i] + gi / avg
            buf[i] = b
            p[i] = p[i] - lr * b
        else:
            p[i] = p[i] - lr * gi / avg


@njit(cache=True, nogil=True)
def _adam(p, g, m, v, vmax, one_minus_beta1, beta2, one_minus_beta2, eps, wd, decay,
          step_size, bc2_sqrt, sign, use_wd, decoupled, amsgrad):
    for i in range(p.size):
        gi = sign * g[i]
        pi = p[i]
        if use_wd:
            if decoupled:
                pi = pi * decay
            else:
                gi = gi + wd * pi
        mi = m[i] + one_minus_beta1 * (gi - m[i])
        vi = beta2 * v[i] + one_minus_beta2 * gi * gi
        m[i] = mi
        v[i] = vi
        vv = vi
        if amsgrad:
            if vmax[i] > vi:
                vv = vmax[i]
            vmax[i] = vv
        denom = np.sqrt(vv) / bc2_sqrt + eps
        p[i] = pi - step_size * mi / denom


def _flat(a, like):
    """1-D view of a contiguous array, or an empty placeholder of the right dtype for None."""
    if a is None:
        return np.empty(0, like.dtype)
    return a.reshape(-1)


def sgd(params, grads, momentum_buffers, lr, momentum, dampening, weight_decay, nesterov,
        maximize, first, names=None):
    rows = collect([("params", params, True), ("grads", grads, False),
                    ("momentum_buffers", momentum_buffers, True)], names)
    for p, g, buf in rows:
        dt = p.dtype.type
        use_mom = momentum != 0 and buf is not None
        _sgd(p.reshape(-1), g.reshape(-1), _flat(buf, p), dt(lr), dt(momentum),
             dt(1 - dampening), dt(weight_decay), dt(-1 if maximize else 1),
             weight_decay != 0, use_mom, bool(nesterov), bool(first))


def adagrad(params, grads, state_sums, clr, weight_decay, eps, maximize, names=None):
    rows = collect([("params", params, True), ("grads", grads, False),
                    ("state_sums", state_sums, True)], names)
    for p, g, s in rows:
        dt = p.dtype.type
        _adagrad(p.reshape(-1), g.reshape(-1), s.reshape(-1), dt(clr), dt(weight_decay),
                 dt(eps), dt(-1 if maximize else 1), weight_decay != 0)


def rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers, lr, alpha, eps,
            weight_decay, momentum, centered, maximize, names=None):
    rows = collect([("params", params, True), ("grads", grads, False),
                    ("square_avgs", square_avgs, True), ("grad_avgs", grad_avgs, True),
                    ("momentum_buffers", momentum_buffers, True)], names)
    for p, g, sq, ga, buf in rows:
        dt = p.dtype.type
        _rmsprop(p.reshape(-1), g.reshape(-1), sq.reshape(-1), _flat(ga, p), _flat(buf, p),
                 dt(lr), dt(alpha), dt(1 - alpha), dt(eps), dt(weight_decay), dt(momentum),
                 dt(-1 if maximize else 1), weight_decay != 0,
                 bool(centered) and ga is not None, momentum > 0 and buf is not None)


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, beta1, beta2, eps,
         weight_decay, decay, step_size, bc2_sqrt, decoupled, amsgrad, maximize, names=None):
    rows = collect([("params", params, True), ("grads", grads, False),
                    ("exp_avgs", exp_avgs, True), ("exp_avg_sqs", exp_avg_sqs, True),
                    ("max_exp_avg_sqs", max_exp_avg_sqs, True)], names)
    for p, g, m, v, vmax in rows:
        dt = p.dtype.type
        _adam(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), _flat(vmax, p),
              dt(1 - beta1), dt(beta2), dt(1 - beta2), dt(eps), dt(weight_decay), dt(decay),
              dt(step_size), dt(bc2_sqrt), dt(-1 if maximize else 1), weight_decay != 0,
              bool(decoupled), bool(amsgrad) and vmax is not None)
