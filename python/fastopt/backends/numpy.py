"""The NumPy reference backend: the spec (PyTorch's ``torch.optim`` update rules) as code.

``step(kind, params, grads, state, scalars, names)`` is the backend interface (see
``fastopt._contract``).  It is multi-tensor and in place: it takes lists of arrays, one row
per parameter, checks them all (``_checks.collect``) and then updates each row with plain
NumPy expressions written in the order PyTorch evaluates them.  Hyperparameters are cast
to the array's dtype (``dt(x)``) so that float32 stays float32, as in PyTorch, where a
Python scalar does not promote a float32 tensor.

The Numba twins (``numba.py``) and the C++ kernels (``cpp/include/fastopt/kernels.hpp``)
compute the same per-element formulas in one fused pass.
"""

from __future__ import annotations

import numpy as np

from .._contract import slots
from ._checks import collect, on_float32


def _sgd(rows, *, lr, momentum, one_minus_damp, wd, nesterov, maximize, first=False):
    r"""SGD with momentum, dampening, Nesterov and weight decay (``torch.optim.SGD``).

    .. math::
        g &\leftarrow \pm g + \lambda p \\
        b &\leftarrow g \text{ if first else } \mu b + (1 - \tau) g \\
        g &\leftarrow g + \mu b \text{ (nesterov) else } b \\
        p &\leftarrow p - \eta g
    """
    for p, g, buf in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if wd != 0:
            g = g + dt(wd) * p
        if momentum != 0 and buf is not None:
            if first:
                buf[...] = g
            else:
                buf[...] = dt(momentum) * buf + dt(one_minus_damp) * g
            g = g + dt(momentum) * buf if nesterov else buf
        p -= dt(lr) * g


def _adagrad(rows, *, clr, wd, eps, maximize):
    r"""Adagrad (``torch.optim.Adagrad``); ``clr = lr / (1 + (t - 1) lr_decay)``.

    .. math::
        g \leftarrow \pm g + \lambda p,\quad s \leftarrow s + g^2,\quad
        p \leftarrow p - \mathrm{clr}\, g / (\sqrt{s} + \epsilon)
    """
    for p, g, s in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if wd != 0:
            g = g + dt(wd) * p
        s += g * g
        p -= dt(clr) * g / (np.sqrt(s) + dt(eps))


def _rmsprop(rows, *, lr, alpha, one_minus_alpha, eps, wd, momentum, centered, maximize):
    r"""RMSprop (``torch.optim.RMSprop``); eps is added outside the square root.

    .. math::
        v &\leftarrow \alpha v + (1 - \alpha) g^2 \\
        \bar g &\leftarrow \bar g + (1 - \alpha)(g - \bar g) \quad\text{(centered)} \\
        d &= \sqrt{v - \bar g^2} + \epsilon \text{ (centered) else } \sqrt{v} + \epsilon \\
        b &\leftarrow \mu b + g / d,\ p \leftarrow p - \eta b \text{ (momentum) else }
        p \leftarrow p - \eta g / d
    """
    for p, g, sq, ga, buf in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if wd != 0:
            g = g + dt(wd) * p
        sq[...] = dt(alpha) * sq + dt(one_minus_alpha) * g * g
        if centered and ga is not None:
            ga += dt(one_minus_alpha) * (g - ga)
            avg = np.sqrt(sq - ga * ga) + dt(eps)
        else:
            avg = np.sqrt(sq) + dt(eps)
        if momentum > 0 and buf is not None:
            buf[...] = dt(momentum) * buf + g / avg
            p -= dt(lr) * buf
        else:
            p -= dt(lr) * g / avg


def _adam(
    rows,
    *,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    step_size,
    inv_bc2_sqrt,
    decoupled,
    amsgrad,
    maximize,
):
    r"""Adam / AdamW (``torch.optim.Adam``, ``torch.optim.AdamW``).

    The denominator multiplies by ``inv_bc2_sqrt = 1 / bc2_sqrt`` (computed once, in
    float64) where PyTorch divides by ``bc2_sqrt``: one division per element fewer, at most
    one rounding apart (the kernels are division-bound on cached arrays; 1.3x faster at 1e6
    floats).

    ``step_size = lr / (1 - beta1**t)``, ``bc2_sqrt = (1 - beta2**t)**0.5``,
    ``inv_bc2_sqrt = 1 / bc2_sqrt`` and ``decay = 1 - lr * weight_decay`` are computed in
    float64 by ``_contract.adam_per_step``.

    .. math::
        p &\leftarrow p \cdot \mathrm{decay} \text{ (AdamW) or } g \leftarrow g + \lambda p
        \text{ (Adam)} \\
        m &\leftarrow m + (1 - \beta_1)(g - m),\quad v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        \hat v &= \max(\hat v, v) \text{ (amsgrad) else } v \\
        p &\leftarrow p - \mathrm{step\_size} \cdot m / (\sqrt{\hat v} / \mathrm{bc2\_sqrt} + \epsilon)
    """
    for p, g, m, v, vmax in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if wd != 0:
            if decoupled:
                p *= dt(decay)
            else:
                g = g + dt(wd) * p
        m += dt(one_minus_beta1) * (g - m)
        v[...] = dt(beta2) * v + dt(one_minus_beta2) * g * g
        if amsgrad and vmax is not None:
            np.maximum(vmax, v, out=vmax)
            vv = vmax
        else:
            vv = v
        denom = np.sqrt(vv) * dt(inv_bc2_sqrt) + dt(eps)
        p -= dt(step_size) * m / denom


def _adamax(rows, *, one_minus_beta1, beta2, eps, wd, step_size, maximize):
    r"""Adamax (``torch.optim.Adamax``); ``step_size = lr / (1 - beta1**t)`` in float64.

    .. math::
        g \leftarrow \pm g + \lambda p,\quad m \leftarrow m + (1 - \beta_1)(g - m),\quad
        u \leftarrow \max(\beta_2 u, |g| + \epsilon),\quad
        p \leftarrow p - \mathrm{step\_size} \cdot m / u

    The maximum propagates NaN from either side (``torch.maximum``, ``np.maximum``).
    """
    for p, g, m, u in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if wd != 0:
            g = g + dt(wd) * p
        m += dt(one_minus_beta1) * (g - m)
        np.maximum(dt(beta2) * u, np.abs(g) + dt(eps), out=u)
        p -= dt(step_size) * m / u


def _nadam(
    rows,
    *,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    bias_correction2,
    grad_coef,
    avg_coef,
    decoupled,
    maximize,
):
    r"""NAdam (``torch.optim.NAdam``).  ``_contract.nadam_per_step`` computes in float64
    ``bias_correction2 = 1 - beta2**t``, ``grad_coef = -lr (1 - mu_t) / (1 - prod mu)`` and
    ``avg_coef = -lr mu_{t+1} / (1 - mu_{t+1} prod mu)`` (and the running product).

    .. math::
        p &\leftarrow p \cdot \mathrm{decay} \text{ (decoupled) or }
        g \leftarrow g + \lambda p \\
        m &\leftarrow m + (1 - \beta_1)(g - m),\quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2,\quad
        d = \sqrt{v / \mathrm{bias\_correction2}} + \epsilon \\
        p &\leftarrow p + \mathrm{grad\_coef} \cdot g / d,\quad
        p \leftarrow p + \mathrm{avg\_coef} \cdot m / d
    """
    for p, g, m, v in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if wd != 0:
            if decoupled:
                p *= dt(decay)
            else:
                g = g + dt(wd) * p
        m += dt(one_minus_beta1) * (g - m)
        v[...] = dt(beta2) * v + dt(one_minus_beta2) * g * g
        denom = np.sqrt(v / dt(bias_correction2)) + dt(eps)
        p += dt(grad_coef) * g / denom
        p += dt(avg_coef) * m / denom


def _radam(
    rows,
    *,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    step_size,
    rectify,
    decoupled,
    maximize,
):
    r"""RAdam (``torch.optim.RAdam``).  ``_contract.radam_per_step`` decides in float64
    whether the variance is rectified (``rho_t > 5``) and folds every scalar into
    ``step_size``: ``lr * sqrt(1 - beta2**t) * r_t / (1 - beta1**t)`` when rectified, else
    ``lr / (1 - beta1**t)``.

    .. math::
        p &\leftarrow p \cdot \mathrm{decay} \text{ (decoupled) or }
        g \leftarrow g + \lambda p \\
        m &\leftarrow m + (1 - \beta_1)(g - m),\quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        p &\leftarrow p - \mathrm{step\_size} \cdot m / (\sqrt{v} + \epsilon)
        \text{ (rectify) else } p \leftarrow p - \mathrm{step\_size} \cdot m
    """
    for p, g, m, v in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if wd != 0:
            if decoupled:
                p *= dt(decay)
            else:
                g = g + dt(wd) * p
        m += dt(one_minus_beta1) * (g - m)
        v[...] = dt(beta2) * v + dt(one_minus_beta2) * g * g
        if rectify:
            p -= dt(step_size) * m / (np.sqrt(v) + dt(eps))
        else:
            p -= dt(step_size) * m


def _adadelta(rows, *, lr, rho, one_minus_rho, eps, wd, maximize):
    r"""Adadelta (``torch.optim.Adadelta``).

    .. math::
        g &\leftarrow \pm g + \lambda p,\quad
        v \leftarrow \rho v + (1 - \rho) g^2 \\
        \Delta &= \sqrt{u + \epsilon} / \sqrt{v + \epsilon} \cdot g,\quad
        u \leftarrow \rho u + (1 - \rho) \Delta^2,\quad p \leftarrow p - \eta \Delta
    """
    for p, g, v, u in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if wd != 0:
            g = g + dt(wd) * p
        v[...] = dt(rho) * v + dt(one_minus_rho) * g * g
        delta = np.sqrt(u + dt(eps)) / np.sqrt(v + dt(eps)) * g
        u[...] = dt(rho) * u + dt(one_minus_rho) * delta * delta
        p -= dt(lr) * delta


def _lerp(a, b, w, dt):
    """``torch.lerp(a, b, w)`` with a scalar weight, in dtype ``dt``: ``a + w (b - a)`` when
    ``|w| < 0.5``, else ``b - (b - a)(1 - w)`` (``w`` and ``1 - w`` rounded to ``dt``).
    PyTorch's vectorised CPU loop fuses the last multiply-add (one rounding fewer, a few
    ulps apart); fastopt rounds each operation, the same on every backend."""
    w = dt(w)
    if abs(w) < 0.5:
        return a + w * (b - a)
    return b - (b - a) * (dt(1) - w)


def _adafactor_update(rows, *, weight, eps, lerp, maximize):
    r"""Adafactor's element-wise part (``torch.optim.Adafactor``), writing the update ``u``
    (slot 0); ``eps`` is :math:`\epsilon_1^2`.

    .. math::
        g \leftarrow \pm g,\quad v \leftarrow \mathrm{lerp}(v, g^2, w) \text{ (if lerp)},\quad
        u = g \cdot 1 / \sqrt{\max(v, \epsilon_1^2)}
    """
    for u, g, v in rows:
        dt = u.dtype.type
        g = -g if maximize else g
        if lerp:
            v[...] = _lerp(v, g * g, weight, dt)
        u[...] = dt(1) / np.sqrt(np.maximum(v, dt(eps))) * g


def _muon_update(rows, *, weight, momentum, nesterov):
    r"""Muon's momentum (``torch.optim.Muon``), writing the matrix to orthogonalise ``u``.

    .. math::
        b \leftarrow \mathrm{lerp}(b, g, 1 - \mu),\quad
        u = \mathrm{lerp}(g, b, \mu) \text{ (nesterov) else } b
    """
    for u, g, b in rows:
        dt = u.dtype.type
        b[...] = _lerp(b, g, weight, dt)
        u[...] = _lerp(g, b, momentum, dt) if nesterov else b


def _decay_add(rows, *, wd, decay, step_size):
    r"""The last step of Adafactor and Muon: decoupled weight decay, then the update ``u``
    (slot 1).

    .. math::
        p \leftarrow p \cdot \mathrm{decay} \text{ (if } \lambda \neq 0),\quad
        p \leftarrow p - \mathrm{step\_size} \cdot u
    """
    for p, u in rows:
        dt = p.dtype.type
        if wd != 0:
            p *= dt(decay)
        p -= dt(step_size) * u


def _sign(x):
    """``torch.sign``: 1, -1 or 0 in x's dtype, and 0 for NaN (``np.sign`` gives NaN)."""
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


def _rprop(rows, *, lr, etaminus, etaplus, step_size_min, step_size_max, maximize, first):
    r"""Rprop (``torch.optim.Rprop``), in torch's order of operations; on the first step
    (``first``) the step sizes start at ``lr``.

    .. math::
        s &= \operatorname{sign}(\pm g \cdot g_{prev}),\quad
        f = \eta_+ \text{ if } s > 0,\ \eta_- \text{ if } s < 0,\ 1 \text{ if } s = 0 \\
        \Delta &\leftarrow \operatorname{clamp}(\Delta f, \Delta_{min}, \Delta_{max}),\quad
        g \leftarrow 0 \text{ where } f = \eta_-,\quad
        p \leftarrow p - \operatorname{sign}(g) \Delta,\quad g_{prev} \leftarrow g

    ``sign`` is ``torch.sign`` (0 for NaN: a NaN gradient leaves its element unchanged); the
    factor is replaced in torch's order (etaplus, etaminus, then 1 for 0), in the array's
    dtype, and the gradient is zeroed where the factor equals etaminus.
    """
    for p, g, prev, ss in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        f = _sign(g * prev)
        f[f > 0] = dt(etaplus)
        f[f < 0] = dt(etaminus)
        f[f == 0] = 1
        base = np.full_like(p, dt(lr)) if first else ss
        ss[...] = np.minimum(np.maximum(base * f, dt(step_size_min)), dt(step_size_max))
        g = np.where(f == dt(etaminus), dt(0), g)
        p -= _sign(g) * ss
        prev[...] = g


def _asgd(rows, *, eta, decay, mu, average, wd, maximize):
    r"""ASGD (``torch.optim.ASGD``).  ``_contract.asgd_per_step`` gives this step's ``eta``
    and ``mu`` (torch's float32 state, set at the end of the previous step), ``decay = 1 -
    lambd * eta`` and ``average = mu != 1``.

    .. math::
        g \leftarrow \pm g + \lambda p,\quad p \leftarrow p (1 - \lambda_d \eta),\quad
        p \leftarrow p - \eta g,\quad
        a \leftarrow a + (p - a) \mu \text{ (average) else } a \leftarrow p
    """
    for p, g, ax in rows:
        dt = p.dtype.type
        g = -g if maximize else g
        if wd != 0:
            g = g + dt(wd) * p
        p *= dt(decay)
        p -= dt(eta) * g
        if average:
            ax += (p - ax) * dt(mu)
        else:
            ax[...] = p


_RULES = {
    "sgd": _sgd,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamax": _adamax,
    "nadam": _nadam,
    "radam": _radam,
    "adadelta": _adadelta,
    "adafactor_update": _adafactor_update,
    "muon_update": _muon_update,
    "decay_add": _decay_add,
    "rprop": _rprop,
    "asgd": _asgd,
}


def step(kind, params, grads, state, scalars, names=None):
    """One multi-tensor update of optimizer ``kind`` (the backend interface of
    ``fastopt._contract``): check every array of every row, then run the rule.

    Half precision (float16, bfloat16 parameters and gradients; float32 state): the rule
    runs on float32 copies of the parameter and the gradient (exact), and the parameter is
    then written back rounded to nearest even, once per step: ``p[...] = p32``."""
    rows = collect(slots(kind, params, grads, state), names)  # checks kind and names too
    on_float32(lambda wide: _RULES[kind](wide, **scalars), rows)
