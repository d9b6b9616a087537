"""Numba kernels: fastopt's optimizers callable from your own ``@numba.njit`` code.

``import fastopt.jit`` (``import fastopt`` alone does not import Numba) gives ``sgd``,
``adagrad``, ``rmsprop``, ``adam``, ``adamw``, ``adamax``, ``radam``, ``adadelta``, ``rprop``
and ``asgd`` (not ``nadam``) with the parameter names, order and
defaults of ``fastopt.kernels`` (state arrays after the gradient, optional ones may be
``None``; ``step`` and the options as keywords; ``betas`` a tuple), on single arrays, in
place, bit-identical to ``fastopt.kernels`` with the same inputs::

    import numba, fastopt.jit

    @numba.njit
    def train(w, x, y, steps):
        m, v = np.zeros_like(w), np.zeros_like(w)
        for t in range(1, steps + 1):
            g = grad(w, x, y)
            fastopt.jit.adam(w, g, m, v, step=t, lr=1e-3)

They are also callable from Python (compiled on first use).  The per-step scalars come
from the very functions of ``fastopt._contract`` (compiled here by Numba), and the
per-element loops are those of the Numba backend, so the results are the same bits as
every other backend's.  Checks: ``step`` is an integer >= 1, every option is in the range
the optimizers accept (ValueError), arrays of one dtype (float32 or float64: half-precision
parameters are for the optimizers and ``fastopt.kernels``' backends only), C-contiguous
parameters and state (TypingError at compile time), equal shapes and the state the options
need (ValueError).  Unlike ``fastopt.kernels``, memory overlap between the arrays is not
checked, and there is no ``backend`` argument.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import overload

from . import _contract as C
from . import kernels as _kernels
from .backends.numba import (
    _adadelta,
    _adagrad,
    _adam,
    _adamax,
    _asgd,
    _radam,
    _rmsprop,
    _rprop,
    _sgd,
)

# fastopt.kernels' functions but nadam (its per-step scalars are not compiled here)
__all__ = [name for name in _kernels.__all__ if name != "nadam"]


@overload(C._round_f32, jit_options={"cache": False})
def _ov_round_f32(x):
    """The contract's float32 rounding (``struct`` in Python) as Numba compiles it."""

    def impl(x):
        return float(np.float32(x))

    return impl


_sgd_constants = njit(cache=True)(C.sgd_constants)
_adagrad_constants = njit(cache=True)(C.adagrad_constants)
_adagrad_per_step = njit(cache=True)(C.adagrad_per_step)
_rmsprop_constants = njit(cache=True)(C.rmsprop_constants)
_adam_constants = njit(cache=True)(C.adam_constants)
_adam_per_step = njit(cache=True)(C.adam_per_step)
_adamax_constants = njit(cache=True)(C.adamax_constants)
_adamax_per_step = njit(cache=True)(C.adamax_per_step)
_radam_constants = njit(cache=True)(C.radam_constants)
_radam_per_step = njit(cache=True)(C.radam_per_step)
_adadelta_constants = njit(cache=True)(C.adadelta_constants)
_rprop_constants = njit(cache=True)(C.rprop_constants)
_asgd_constants = njit(cache=True)(C.asgd_constants)
_asgd_per_step = njit(cache=True)(C.asgd_per_step)


@njit(cache=True)
def _out_of_range(v, low, high, high_open):
    """The contract's real-number rule: finite, >= low, <= high (< high if high_open)."""
    return v != v or math.isinf(v) or v < low or v > high or (high_open and v >= high)


def _bounds(spec: C.Spec, name: str, i: int = 0) -> tuple[float, float, bool]:
    return spec.option[name].bounds[i]


def _float_type(params: Any, roles: tuple[tuple[str, Any, bool], ...]) -> Any:
    """Typing-time checks of the arrays; the NumPy scalar type of the parameter."""
    if not isinstance(params, types.Array) or params.dtype not in (types.float32, types.float64):
        raise TypingError(f"params must be a float32 or float64 array, got {params}")
    for role, a, writable in roles:
        if a is None or isinstance(a, (types.NoneType, types.Omitted)):
            continue
        if not isinstance(a, types.Array) or a.dtype != params.dtype or a.ndim != params.ndim:
            raise TypingError(
                f"{role} must be a {params.dtype} array with {params.ndim} "
                f"dimension(s) like params, got {a}"
            )
        if writable and a.layout != "C":
            raise TypingError(f"{role} must be C-contiguous (it is updated in place)")
    if params.layout != "C":
        raise TypingError("params must be C-contiguous (it is updated in place)")
    return np.float32 if params.dtype == types.float32 else np.float64


def _absent(a: Any) -> bool:
    return a is None or isinstance(a, (types.NoneType, types.Omitted))


def _check_step_type(step: Any) -> None:
    if _absent(step):
        raise TypingError("step is required: the 1-based number of this update (step=t)")
    if not isinstance(step, types.Integer) or isinstance(step, types.Boolean):
        raise TypingError(f"step must be an integer >= 1, got {step}")


def _check_betas(betas: Any, name: str = "betas", what: str = "beta1, beta2") -> None:
    if not isinstance(betas, (tuple, types.UniTuple, types.Tuple, types.Omitted)) or (
        not isinstance(betas, types.Omitted) and len(betas) != 2
    ):
        raise TypingError(f"{name} must be a pair ({what}), got {betas}")


def _check_flags(**flags: Any) -> None:
    for name, v in flags.items():
        if not isinstance(v, (bool, types.Boolean, types.Omitted)):  # bool: omitted
            raise TypingError(f"{name} must be True or False, got {v}")


@njit(cache=True)
def _flat_grad(g):
    return np.ascontiguousarray(g).reshape(-1)


@njit(cache=True)
def _same_size(p, a):
    if a.shape != p.shape:
        raise ValueError("every array must have the parameter's shape")


# ------------------------------------------------------------------------------- sgd
_S = C.SGD.D


def sgd(
    params: np.ndarray,
    grads: np.ndarray,
    momentum_buffers: np.ndarray | None = None,
    *,
    step: int,
    lr: float = _S.lr,
    momentum: float = _S.momentum,
    dampening: float = _S.dampening,
    weight_decay: float = _S.weight_decay,
    nesterov: bool = _S.nesterov,
    maximize: bool = _S.maximize,
) -> None:
    """SGD update (``torch.optim.SGD``), as ``fastopt.kernels.sgd`` on one array; the buffer
    is needed when momentum != 0 and is set to the gradient on ``step == 1``."""
    _sgd_py(
        params,
        grads,
        momentum_buffers,
        step,
        lr,
        momentum,
        dampening,
        weight_decay,
        nesterov,
        maximize,
    )


@overload(sgd, jit_options={"cache": False})
def _ov_sgd(
    params,
    grads,
    momentum_buffers=None,
    step=None,
    lr=_S.lr,
    momentum=_S.momentum,
    dampening=_S.dampening,
    weight_decay=_S.weight_decay,
    nesterov=_S.nesterov,
    maximize=_S.maximize,
):
    dt = _float_type(
        params, (("grads", grads, False), ("momentum_buffers", momentum_buffers, True))
    )
    _check_step_type(step)
    _check_flags(nesterov=nesterov, maximize=maximize)
    has_buf = not _absent(momentum_buffers)
    b_lr, b_mom, b_damp, b_wd = (
        _bounds(C.SGD, n) for n in ("lr", "momentum", "dampening", "weight_decay")
    )

    def impl(
        params,
        grads,
        momentum_buffers=None,
        step=None,
        lr=_S.lr,
        momentum=_S.momentum,
        dampening=_S.dampening,
        weight_decay=_S.weight_decay,
        nesterov=_S.nesterov,
        maximize=_S.maximize,
    ):
        if step < 1:
            raise ValueError("step must be >= 1 (1 for the first update)")
        if _out_of_range(lr, *b_lr):
            raise ValueError("lr must be a finite number >= 0")
        if _out_of_range(momentum, *b_mom):
            raise ValueError("momentum must be a finite number >= 0")
        if _out_of_range(dampening, *b_damp):
            raise ValueError("dampening must be a finite number")
        if _out_of_range(weight_decay, *b_wd):
            raise ValueError("weight_decay must be a finite number >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening == 0")
        _same_size(params, grads)
        c = _sgd_constants(
            float(lr), float(momentum), float(dampening), float(weight_decay), nesterov, maximize
        )
        use_mom = c[1] != 0
        if has_buf:
            _same_size(params, momentum_buffers)
            buf = momentum_buffers.reshape(-1)
        else:
            if use_mom:
                raise ValueError("momentum != 0 needs momentum_buffers (np.zeros_like(p))")
            buf = np.empty(0, params.dtype)
        _sgd(
            params.reshape(-1),
            _flat_grad(grads),
            buf,
            dt(c[0]),
            dt(c[1]),
            dt(c[2]),
            dt(c[3]),
            dt(-1.0) if c[5] else dt(1.0),
            c[3] != 0,
            use_mom,
            c[4],
            step == 1,
        )

    return impl


@njit
def _sgd_py(params, grads, bufs, step, lr, momentum, dampening, weight_decay, nesterov, maximize):
    sgd(
        params,
        grads,
        bufs,
        step=step,
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
        nesterov=nesterov,
        maximize=maximize,
    )


# ------------------------------------------------------------------------------- adagrad
_AG = C.ADAGRAD.D


def adagrad(
    params: np.ndarray,
    grads: np.ndarray,
    state_sums: np.ndarray,
    *,
    step: int,
    lr: float = _AG.lr,
    lr_decay: float = _AG.lr_decay,
    weight_decay: float = _AG.weight_decay,
    eps: float = _AG.eps,
    maximize: bool = _AG.maximize,
) -> None:
    """Adagrad update (``torch.optim.Adagrad``), as ``fastopt.kernels.adagrad`` on one
    array (``state_sums`` start at ``initial_accumulator_value``)."""
    _adagrad_py(params, grads, state_sums, step, lr, lr_decay, weight_decay, eps, maximize)


@overload(adagrad, jit_options={"cache": False})
def _ov_adagrad(
    params,
    grads,
    state_sums,
    step=None,
    lr=_AG.lr,
    lr_decay=_AG.lr_decay,
    weight_decay=_AG.weight_decay,
    eps=_AG.eps,
    maximize=_AG.maximize,
):
    dt = _float_type(params, (("grads", grads, False), ("state_sums", state_sums, True)))
    if _absent(state_sums):
        raise TypingError("adagrad needs state_sums")
    _check_step_type(step)
    _check_flags(maximize=maximize)
    b_lr, b_dec, b_wd, b_eps = (
        _bounds(C.ADAGRAD, n) for n in ("lr", "lr_decay", "weight_decay", "eps")
    )

    def impl(
        params,
        grads,
        state_sums,
        step=None,
        lr=_AG.lr,
        lr_decay=_AG.lr_decay,
        weight_decay=_AG.weight_decay,
        eps=_AG.eps,
        maximize=_AG.maximize,
    ):
        if step < 1:
            raise ValueError("step must be >= 1 (1 for the first update)")
        if _out_of_range(lr, *b_lr):
            raise ValueError("lr must be a finite number >= 0")
        if _out_of_range(lr_decay, *b_dec):
            raise ValueError("lr_decay must be a finite number >= 0")
        if _out_of_range(weight_decay, *b_wd):
            raise ValueError("weight_decay must be a finite number >= 0")
        if _out_of_range(eps, *b_eps):
            raise ValueError("eps must be a finite number >= 0")
        _same_size(params, grads)
        _same_size(params, state_sums)
        c = _adagrad_constants(float(weight_decay), float(eps), maximize)
        s = _adagrad_per_step(float(lr), float(lr_decay), step)
        _adagrad(
            params.reshape(-1),
            _flat_grad(grads),
            state_sums.reshape(-1),
            dt(s[0]),
            dt(c[0]),
            dt(c[1]),
            dt(-1.0) if c[2] else dt(1.0),
            c[0] != 0,
        )

    return impl


@njit
def _adagrad_py(params, grads, sums, step, lr, lr_decay, weight_decay, eps, maximize):
    adagrad(
        params,
        grads,
        sums,
        step=step,
        lr=lr,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
        eps=eps,
        maximize=maximize,
    )


# ------------------------------------------------------------------------------- rmsprop
_R = C.RMSPROP.D


def rmsprop(
    params: np.ndarray,
    grads: np.ndarray,
    square_avgs: np.ndarray,
    grad_avgs: np.ndarray | None = None,
    momentum_buffers: np.ndarray | None = None,
    *,
    step: int | None = None,
    lr: float = _R.lr,
    alpha: float = _R.alpha,
    eps: float = _R.eps,
    weight_decay: float = _R.weight_decay,
    momentum: float = _R.momentum,
    centered: bool = _R.centered,
    maximize: bool = _R.maximize,
) -> None:
    """RMSprop update (``torch.optim.RMSprop``), as ``fastopt.kernels.rmsprop`` on one
    array (``step`` is optional: RMSprop has no bias correction)."""
    _rmsprop_py(
        params,
        grads,
        square_avgs,
        grad_avgs,
        momentum_buffers,
        1 if step is None else step,
        lr,
        alpha,
        eps,
        weight_decay,
        momentum,
        centered,
        maximize,
    )


@overload(rmsprop, jit_options={"cache": False})
def _ov_rmsprop(
    params,
    grads,
    square_avgs,
    grad_avgs=None,
    momentum_buffers=None,
    step=None,
    lr=_R.lr,
    alpha=_R.alpha,
    eps=_R.eps,
    weight_decay=_R.weight_decay,
    momentum=_R.momentum,
    centered=_R.centered,
    maximize=_R.maximize,
):
    dt = _float_type(
        params,
        (
            ("grads", grads, False),
            ("square_avgs", square_avgs, True),
            ("grad_avgs", grad_avgs, True),
            ("momentum_buffers", momentum_buffers, True),
        ),
    )
    if not _absent(step):
        _check_step_type(step)
    no_step = _absent(step)
    _check_flags(centered=centered, maximize=maximize)
    has_ga, has_buf = not _absent(grad_avgs), not _absent(momentum_buffers)
    b_lr, b_alpha, b_eps, b_wd, b_mom = (
        _bounds(C.RMSPROP, n) for n in ("lr", "alpha", "eps", "weight_decay", "momentum")
    )

    def impl(
        params,
        grads,
        square_avgs,
        grad_avgs=None,
        momentum_buffers=None,
        step=None,
        lr=_R.lr,
        alpha=_R.alpha,
        eps=_R.eps,
        weight_decay=_R.weight_decay,
        momentum=_R.momentum,
        centered=_R.centered,
        maximize=_R.maximize,
    ):
        if not no_step and step < 1:
            raise ValueError("step must be >= 1 (1 for the first update)")
        if _out_of_range(lr, *b_lr):
            raise ValueError("lr must be a finite number >= 0")
        if _out_of_range(alpha, *b_alpha):
            raise ValueError("alpha must be a finite number >= 0")
        if _out_of_range(eps, *b_eps):
            raise ValueError("eps must be a finite number >= 0")
        if _out_of_range(weight_decay, *b_wd):
            raise ValueError("weight_decay must be a finite number >= 0")
        if _out_of_range(momentum, *b_mom):
            raise ValueError("momentum must be a finite number >= 0")
        _same_size(params, grads)
        _same_size(params, square_avgs)
        c = _rmsprop_constants(
            float(lr),
            float(alpha),
            float(eps),
            float(weight_decay),
            float(momentum),
            centered,
            maximize,
        )
        use_mom = c[5] > 0
        if has_ga:
            _same_size(params, grad_avgs)
            ga = grad_avgs.reshape(-1)
        else:
            if centered:
                raise ValueError("centered=True needs grad_avgs (np.zeros_like(p))")
            ga = np.empty(0, params.dtype)
        if has_buf:
            _same_size(params, momentum_buffers)
            buf = momentum_buffers.reshape(-1)
        else:
            if use_mom:
                raise ValueError("momentum > 0 needs momentum_buffers (np.zeros_like(p))")
            buf = np.empty(0, params.dtype)
        _rmsprop(
            params.reshape(-1),
            _flat_grad(grads),
            square_avgs.reshape(-1),
            ga,
            buf,
            dt(c[0]),
            dt(c[1]),
            dt(c[2]),
            dt(c[3]),
            dt(c[4]),
            dt(c[5]),
            dt(-1.0) if c[7] else dt(1.0),
            c[4] != 0,
            c[6],
            use_mom,
        )

    return impl


@njit
def _rmsprop_py(
    params, grads, sq, ga, bufs, step, lr, alpha, eps, weight_decay, momentum, centered, maximize
):
    rmsprop(
        params,
        grads,
        sq,
        ga,
        bufs,
        step=step,
        lr=lr,
        alpha=alpha,
        eps=eps,
        weight_decay=weight_decay,
        momentum=momentum,
        centered=centered,
        maximize=maximize,
    )


# ------------------------------------------------------------------------------- adam
_A, _AW = C.ADAM.D, C.ADAMW.D


def adam(
    params: np.ndarray,
    grads: np.ndarray,
    exp_avgs: np.ndarray,
    exp_avg_sqs: np.ndarray,
    max_exp_avg_sqs: np.ndarray | None = None,
    *,
    step: int,
    lr: float = _A.lr,
    betas: tuple[float, float] = _A.betas,
    eps: float = _A.eps,
    weight_decay: float = _A.weight_decay,
    amsgrad: bool = _A.amsgrad,
    maximize: bool = _A.maximize,
    decoupled_weight_decay: bool = False,
) -> None:
    """Adam update (``torch.optim.Adam``; AdamW with ``decoupled_weight_decay=True``), as
    ``fastopt.kernels.adam`` on one array."""
    _adam_py(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs,
        step,
        lr,
        betas,
        eps,
        weight_decay,
        amsgrad,
        maximize,
        decoupled_weight_decay,
    )


@overload(adam, jit_options={"cache": False})
def _ov_adam(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs=None,
    step=None,
    lr=_A.lr,
    betas=_A.betas,
    eps=_A.eps,
    weight_decay=_A.weight_decay,
    amsgrad=_A.amsgrad,
    maximize=_A.maximize,
    decoupled_weight_decay=False,
):
    dt = _float_type(
        params,
        (
            ("grads", grads, False),
            ("exp_avgs", exp_avgs, True),
            ("exp_avg_sqs", exp_avg_sqs, True),
            ("max_exp_avg_sqs", max_exp_avg_sqs, True),
        ),
    )
    _check_step_type(step)
    _check_flags(amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
    if not isinstance(betas, (tuple, types.UniTuple, types.Tuple, types.Omitted)) or (
        not isinstance(betas, types.Omitted) and len(betas) != 2
    ):
        raise TypingError(f"betas must be a pair (beta1, beta2), got {betas}")
    has_max = not _absent(max_exp_avg_sqs)
    b_lr, b_eps, b_wd = (_bounds(C.ADAM, n) for n in ("lr", "eps", "weight_decay"))
    b_b1, b_b2 = _bounds(C.ADAM, "betas", 0), _bounds(C.ADAM, "betas", 1)

    def impl(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs=None,
        step=None,
        lr=_A.lr,
        betas=_A.betas,
        eps=_A.eps,
        weight_decay=_A.weight_decay,
        amsgrad=_A.amsgrad,
        maximize=_A.maximize,
        decoupled_weight_decay=False,
    ):
        if step < 1:
            raise ValueError("step must be >= 1 (1 for the first update)")
        beta1, beta2 = float(betas[0]), float(betas[1])
        if _out_of_range(lr, *b_lr):
            raise ValueError("lr must be a finite number >= 0")
        if _out_of_range(beta1, *b_b1):
            raise ValueError("beta1 must be in [0, 1)")
        if _out_of_range(beta2, *b_b2):
            raise ValueError("beta2 must be in [0, 1)")
        if _out_of_range(eps, *b_eps):
            raise ValueError("eps must be a finite number >= 0")
        if _out_of_range(weight_decay, *b_wd):
            raise ValueError("weight_decay must be a finite number >= 0")
        _same_size(params, grads)
        _same_size(params, exp_avgs)
        _same_size(params, exp_avg_sqs)
        c = _adam_constants(
            float(lr),
            beta1,
            beta2,
            float(eps),
            float(weight_decay),
            amsgrad,
            maximize,
            decoupled_weight_decay,
        )
        s = _adam_per_step(float(lr), beta1, beta2, step)
        if has_max:
            _same_size(params, max_exp_avg_sqs)
            vmax = max_exp_avg_sqs.reshape(-1)
        else:
            if amsgrad:
                raise ValueError("amsgrad=True needs max_exp_avg_sqs (np.zeros_like(p))")
            vmax = np.empty(0, params.dtype)
        _adam(
            params.reshape(-1),
            _flat_grad(grads),
            exp_avgs.reshape(-1),
            exp_avg_sqs.reshape(-1),
            vmax,
            dt(c[0]),
            dt(c[1]),
            dt(c[2]),
            dt(c[3]),
            dt(c[4]),
            dt(c[5]),
            dt(s[0]),
            dt(s[1]),
            dt(-1.0) if c[7] else dt(1.0),
            c[4] != 0,
            c[8],
            c[6],
        )

    return impl


@njit
def _adam_py(
    params, grads, m, v, vmax, step, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled
):
    adam(
        params,
        grads,
        m,
        v,
        vmax,
        step=step,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        maximize=maximize,
        decoupled_weight_decay=decoupled,
    )


def adamw(
    params: np.ndarray,
    grads: np.ndarray,
    exp_avgs: np.ndarray,
    exp_avg_sqs: np.ndarray,
    max_exp_avg_sqs: np.ndarray | None = None,
    *,
    step: int,
    lr: float = _AW.lr,
    betas: tuple[float, float] = _AW.betas,
    eps: float = _AW.eps,
    weight_decay: float = _AW.weight_decay,
    amsgrad: bool = _AW.amsgrad,
    maximize: bool = _AW.maximize,
) -> None:
    """AdamW update (``torch.optim.AdamW``), as ``fastopt.kernels.adamw`` on one array."""
    _adamw_py(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs,
        step,
        lr,
        betas,
        eps,
        weight_decay,
        amsgrad,
        maximize,
    )


@overload(adamw, jit_options={"cache": False})
def _ov_adamw(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs=None,
    step=None,
    lr=_AW.lr,
    betas=_AW.betas,
    eps=_AW.eps,
    weight_decay=_AW.weight_decay,
    amsgrad=_AW.amsgrad,
    maximize=_AW.maximize,
):
    def impl(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs=None,
        step=None,
        lr=_AW.lr,
        betas=_AW.betas,
        eps=_AW.eps,
        weight_decay=_AW.weight_decay,
        amsgrad=_AW.amsgrad,
        maximize=_AW.maximize,
    ):
        adam(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            max_exp_avg_sqs,
            step=step,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    return impl


@njit
def _adamw_py(params, grads, m, v, vmax, step, lr, betas, eps, weight_decay, amsgrad, maximize):
    adamw(
        params,
        grads,
        m,
        v,
        vmax,
        step=step,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        maximize=maximize,
    )


# ------------------------------------------------------------------------------- adamax
_AX = C.ADAMAX.D


def adamax(
    params: np.ndarray,
    grads: np.ndarray,
    exp_avgs: np.ndarray,
    exp_infs: np.ndarray,
    *,
    step: int,
    lr: float = _AX.lr,
    betas: tuple[float, float] = _AX.betas,
    eps: float = _AX.eps,
    weight_decay: float = _AX.weight_decay,
    maximize: bool = _AX.maximize,
) -> None:
    """Adamax update (``torch.optim.Adamax``), as ``fastopt.kernels.adamax`` on one array."""
    _adamax_py(params, grads, exp_avgs, exp_infs, step, lr, betas, eps, weight_decay, maximize)


@overload(adamax, jit_options={"cache": False})
def _ov_adamax(
    params,
    grads,
    exp_avgs,
    exp_infs,
    step=None,
    lr=_AX.lr,
    betas=_AX.betas,
    eps=_AX.eps,
    weight_decay=_AX.weight_decay,
    maximize=_AX.maximize,
):
    dt = _float_type(
        params,
        (("grads", grads, False), ("exp_avgs", exp_avgs, True), ("exp_infs", exp_infs, True)),
    )
    _check_step_type(step)
    _check_flags(maximize=maximize)
    _check_betas(betas)
    b_lr, b_eps, b_wd = (_bounds(C.ADAMAX, n) for n in ("lr", "eps", "weight_decay"))
    b_b1, b_b2 = _bounds(C.ADAMAX, "betas", 0), _bounds(C.ADAMAX, "betas", 1)

    def impl(
        params,
        grads,
        exp_avgs,
        exp_infs,
        step=None,
        lr=_AX.lr,
        betas=_AX.betas,
        eps=_AX.eps,
        weight_decay=_AX.weight_decay,
        maximize=_AX.maximize,
    ):
        if step < 1:
            raise ValueError("step must be >= 1 (1 for the first update)")
        beta1, beta2 = float(betas[0]), float(betas[1])
        if _out_of_range(lr, *b_lr):
            raise ValueError("lr must be a finite number >= 0")
        if _out_of_range(beta1, *b_b1):
            raise ValueError("beta1 must be in [0, 1)")
        if _out_of_range(beta2, *b_b2):
            raise ValueError("beta2 must be in [0, 1)")
        if _out_of_range(eps, *b_eps):
            raise ValueError("eps must be a finite number >= 0")
        if _out_of_range(weight_decay, *b_wd):
            raise ValueError("weight_decay must be a finite number >= 0")
        _same_size(params, grads)
        _same_size(params, exp_avgs)
        _same_size(params, exp_infs)
        c = _adamax_constants(beta1, beta2, float(eps), float(weight_decay), maximize)
        s = _adamax_per_step(float(lr), beta1, step)
        _adamax(
            params.reshape(-1),
            _flat_grad(grads),
            exp_avgs.reshape(-1),
            exp_infs.reshape(-1),
            dt(c[0]),
            dt(c[1]),
            dt(c[2]),
            dt(c[3]),
            dt(s[0]),
            dt(-1.0) if c[4] else dt(1.0),
            c[3] != 0,
        )

    return impl


@njit
def _adamax_py(params, grads, m, u, step, lr, betas, eps, weight_decay, maximize):
    adamax(
        params,
        grads,
        m,
        u,
        step=step,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        maximize=maximize,
    )


# ------------------------------------------------------------------------------- radam
_RA = C.RADAM.D


def radam(
    params: np.ndarray,
    grads: np.ndarray,
    exp_avgs: np.ndarray,
    exp_avg_sqs: np.ndarray,
    *,
    step: int,
    lr: float = _RA.lr,
    betas: tuple[float, float] = _RA.betas,
    eps: float = _RA.eps,
    weight_decay: float = _RA.weight_decay,
    decoupled_weight_decay: bool = _RA.decoupled_weight_decay,
    maximize: bool = _RA.maximize,
) -> None:
    """RAdam update (``torch.optim.RAdam``), as ``fastopt.kernels.radam`` on one array."""
    _radam_py(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        step,
        lr,
        betas,
        eps,
        weight_decay,
        decoupled_weight_decay,
        maximize,
    )


@overload(radam, jit_options={"cache": False})
def _ov_radam(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    step=None,
    lr=_RA.lr,
    betas=_RA.betas,
    eps=_RA.eps,
    weight_decay=_RA.weight_decay,
    decoupled_weight_decay=_RA.decoupled_weight_decay,
    maximize=_RA.maximize,
):
    dt = _float_type(
        params,
        (
            ("grads", grads, False),
            ("exp_avgs", exp_avgs, True),
            ("exp_avg_sqs", exp_avg_sqs, True),
        ),
    )
    _check_step_type(step)
    _check_flags(maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
    _check_betas(betas)
    b_lr, b_eps, b_wd = (_bounds(C.RADAM, n) for n in ("lr", "eps", "weight_decay"))
    b_b1, b_b2 = _bounds(C.RADAM, "betas", 0), _bounds(C.RADAM, "betas", 1)

    def impl(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        step=None,
        lr=_RA.lr,
        betas=_RA.betas,
        eps=_RA.eps,
        weight_decay=_RA.weight_decay,
        decoupled_weight_decay=_RA.decoupled_weight_decay,
        maximize=_RA.maximize,
    ):
        if step < 1:
            raise ValueError("step must be >= 1 (1 for the first update)")
        beta1, beta2 = float(betas[0]), float(betas[1])
        if _out_of_range(lr, *b_lr):
            raise ValueError("lr must be a finite number >= 0")
        if _out_of_range(beta1, *b_b1):
            raise ValueError("beta1 must be in [0, 1)")
        if _out_of_range(beta2, *b_b2):
            raise ValueError("beta2 must be in [0, 1)")
        if _out_of_range(eps, *b_eps):
            raise ValueError("eps must be a finite number >= 0")
        if _out_of_range(weight_decay, *b_wd):
            raise ValueError("weight_decay must be a finite number >= 0")
        _same_size(params, grads)
        _same_size(params, exp_avgs)
        _same_size(params, exp_avg_sqs)
        c = _radam_constants(
            float(lr),
            beta1,
            beta2,
            float(eps),
            float(weight_decay),
            decoupled_weight_decay,
            maximize,
        )
        s = _radam_per_step(float(lr), beta1, beta2, step)
        _radam(
            params.reshape(-1),
            _flat_grad(grads),
            exp_avgs.reshape(-1),
            exp_avg_sqs.reshape(-1),
            dt(c[0]),
            dt(c[1]),
            dt(c[2]),
            dt(c[3]),
            dt(c[4]),
            dt(c[5]),
            dt(s[0]),
            dt(-1.0) if c[6] else dt(1.0),
            c[4] != 0,
            c[7],
            s[1],
        )

    return impl


@njit
def _radam_py(params, grads, m, v, step, lr, betas, eps, weight_decay, decoupled, maximize):
    radam(
        params,
        grads,
        m,
        v,
        step=step,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled,
        maximize=maximize,
    )


# ------------------------------------------------------------------------------- adadelta
_AD = C.ADADELTA.D


def adadelta(
    params: np.ndarray,
    grads: np.ndarray,
    square_avgs: np.ndarray,
    acc_deltas: np.ndarray,
    *,
    step: int | None = None,
    lr: float = _AD.lr,
    rho: float = _AD.rho,
    eps: float = _AD.eps,
    weight_decay: float = _AD.weight_decay,
    maximize: bool = _AD.maximize,
) -> None:
    """Adadelta update (``torch.optim.Adadelta``), as ``fastopt.kernels.adadelta`` on one
    array (``step`` is only checked)."""
    _adadelta_py(
        params,
        grads,
        square_avgs,
        acc_deltas,
        1 if step is None else step,
        lr,
        rho,
        eps,
        weight_decay,
        maximize,
    )


@overload(adadelta, jit_options={"cache": False})
def _ov_adadelta(
    params,
    grads,
    square_avgs,
    acc_deltas,
    step=None,
    lr=_AD.lr,
    rho=_AD.rho,
    eps=_AD.eps,
    weight_decay=_AD.weight_decay,
    maximize=_AD.maximize,
):
    dt = _float_type(
        params,
        (
            ("grads", grads, False),
            ("square_avgs", square_avgs, True),
            ("acc_deltas", acc_deltas, True),
        ),
    )
    has_step = not _absent(step)
    if has_step:
        _check_step_type(step)
    _check_flags(maximize=maximize)
    b_lr, b_rho, b_eps, b_wd = (
        _bounds(C.ADADELTA, n) for n in ("lr", "rho", "eps", "weight_decay")
    )

    def impl(
        params,
        grads,
        square_avgs,
        acc_deltas,
        step=None,
        lr=_AD.lr,
        rho=_AD.rho,
        eps=_AD.eps,
        weight_decay=_AD.weight_decay,
        maximize=_AD.maximize,
    ):
        if has_step and step < 1:
            raise ValueError("step must be >= 1 (1 for the first update)")
        if _out_of_range(lr, *b_lr):
            raise ValueError("lr must be a finite number >= 0")
        if _out_of_range(rho, *b_rho):
            raise ValueError("rho must be in [0, 1]")
        if _out_of_range(eps, *b_eps):
            raise ValueError("eps must be a finite number >= 0")
        if _out_of_range(weight_decay, *b_wd):
            raise ValueError("weight_decay must be a finite number >= 0")
        _same_size(params, grads)
        _same_size(params, square_avgs)
        _same_size(params, acc_deltas)
        c = _adadelta_constants(float(lr), float(rho), float(eps), float(weight_decay), maximize)
        _adadelta(
            params.reshape(-1),
            _flat_grad(grads),
            square_avgs.reshape(-1),
            acc_deltas.reshape(-1),
            dt(c[0]),
            dt(c[1]),
            dt(c[2]),
            dt(c[3]),
            dt(c[4]),
            dt(-1.0) if c[5] else dt(1.0),
            c[4] != 0,
        )

    return impl


@njit
def _adadelta_py(params, grads, v, u, step, lr, rho, eps, weight_decay, maximize):
    adadelta(
        params,
        grads,
        v,
        u,
        step=step,
        lr=lr,
        rho=rho,
        eps=eps,
        weight_decay=weight_decay,
        maximize=maximize,
    )


# ------------------------------------------------------------------------------- rprop
_RP = C.RPROP.D


def rprop(
    params: np.ndarray,
    grads: np.ndarray,
    prevs: np.ndarray,
    step_size_buffers: np.ndarray,
    *,
    step: int,
    lr: float = _RP.lr,
    etas: tuple[float, float] = _RP.etas,
    step_sizes: tuple[float, float] = _RP.step_sizes,
    maximize: bool = _RP.maximize,
) -> None:
    """Rprop update (``torch.optim.Rprop``), as ``fastopt.kernels.rprop`` on one array; the
    step sizes are filled with ``lr`` on ``step == 1``."""
    _rprop_py(params, grads, prevs, step_size_buffers, step, lr, etas, step_sizes, maximize)


@overload(rprop, jit_options={"cache": False})
def _ov_rprop(
    params,
    grads,
    prevs,
    step_size_buffers,
    step=None,
    lr=_RP.lr,
    etas=_RP.etas,
    step_sizes=_RP.step_sizes,
    maximize=_RP.maximize,
):
    dt = _float_type(
        params,
        (
            ("grads", grads, False),
            ("prevs", prevs, True),
            ("step_size_buffers", step_size_buffers, True),
        ),
    )
    _check_step_type(step)
    _check_flags(maximize=maximize)
    _check_betas(etas, "etas", "etaminus, etaplus")
    _check_betas(step_sizes, "step_sizes", "step_size_min, step_size_max")
    b_lr = _bounds(C.RPROP, "lr")
    b_em, b_ep = _bounds(C.RPROP, "etas", 0), _bounds(C.RPROP, "etas", 1)
    b_lo, b_hi = _bounds(C.RPROP, "step_sizes", 0), _bounds(C.RPROP, "step_sizes", 1)

    def impl(
        params,
        grads,
        prevs,
        step_size_buffers,
        step=None,
        lr=_RP.lr,
        etas=_RP.etas,
        step_sizes=_RP.step_sizes,
        maximize=_RP.maximize,
    ):
        if step < 1:
            raise ValueError("step must be >= 1 (1 for the first update)")
        etaminus, etaplus = float(etas[0]), float(etas[1])
        lo, hi = float(step_sizes[0]), float(step_sizes[1])
        if _out_of_range(lr, *b_lr):
            raise ValueError("lr must be a finite number >= 0")
        if _out_of_range(etaminus, *b_em):
            raise ValueError("etaminus must be in (0, 1)")
        if _out_of_range(etaplus, *b_ep):
            raise ValueError("etaplus must be a finite number > 1")
        if _out_of_range(lo, *b_lo) or _out_of_range(hi, *b_hi) or lo > hi:
            raise ValueError("step_sizes must be finite numbers (min, max), 0 <= min <= max")
        _same_size(params, grads)
        _same_size(params, prevs)
        _same_size(params, step_size_buffers)
        c = _rprop_constants(float(lr), etaminus, etaplus, lo, hi, maximize)
        _rprop(
            params.reshape(-1),
            _flat_grad(grads),
            prevs.reshape(-1),
            step_size_buffers.reshape(-1),
            dt(c[0]),
            dt(c[1]),
            dt(c[2]),
            dt(c[3]),
            dt(c[4]),
            dt(-1.0) if c[5] else dt(1.0),
            step == 1,
        )

    return impl


@njit
def _rprop_py(params, grads, prevs, ss, step, lr, etas, step_sizes, maximize):
    rprop(
        params,
        grads,
        prevs,
        ss,
        step=step,
        lr=lr,
        etas=etas,
        step_sizes=step_sizes,
        maximize=maximize,
    )


# ------------------------------------------------------------------------------- asgd
_AS = C.ASGD.D


def asgd(
    params: np.ndarray,
    grads: np.ndarray,
    axs: np.ndarray,
    *,
    step: int,
    lr: float = _AS.lr,
    lambd: float = _AS.lambd,
    alpha: float = _AS.alpha,
    t0: float = _AS.t0,
    weight_decay: float = _AS.weight_decay,
    maximize: bool = _AS.maximize,
    eta: float = 0.0,
    mu: float = 1.0,
) -> tuple[float, float]:
    """ASGD update (``torch.optim.ASGD``), as ``fastopt.kernels.asgd`` on one array: takes
    this step's ``eta`` and ``mu`` (ignored on ``step == 1``) and returns the next ones,
    rounded to float32 as torch keeps them."""
    out: tuple[float, float] = _asgd_py(
        params, grads, axs, step, eta, mu, lr, lambd, alpha, t0, weight_decay, maximize
    )
    return out


@overload(asgd, jit_options={"cache": False})
def _ov_asgd(
    params,
    grads,
    axs,
    step=None,
    lr=_AS.lr,
    lambd=_AS.lambd,
    alpha=_AS.alpha,
    t0=_AS.t0,
    weight_decay=_AS.weight_decay,
    maximize=_AS.maximize,
    eta=0.0,
    mu=1.0,
):
    dt = _float_type(params, (("grads", grads, False), ("axs", axs, True)))
    _check_step_type(step)
    _check_flags(maximize=maximize)
    b_lr, b_lambd, b_alpha, b_t0, b_wd = (
        _bounds(C.ASGD, n) for n in ("lr", "lambd", "alpha", "t0", "weight_decay")
    )

    def impl(
        params,
        grads,
        axs,
        step=None,
        lr=_AS.lr,
        lambd=_AS.lambd,
        alpha=_AS.alpha,
        t0=_AS.t0,
        weight_decay=_AS.weight_decay,
        maximize=_AS.maximize,
        eta=0.0,
        mu=1.0,
    ):
        if step < 1:
            raise ValueError("step must be >= 1 (1 for the first update)")
        if _out_of_range(eta, 0.0, math.inf, False):
            raise ValueError("eta must be a finite number >= 0")
        if _out_of_range(mu, 0.0, 1.0, False):
            raise ValueError("mu must be in [0, 1]")
        if _out_of_range(lr, *b_lr):
            raise ValueError("lr must be a finite number >= 0")
        if _out_of_range(lambd, *b_lambd):
            raise ValueError("lambd must be a finite number >= 0")
        if _out_of_range(alpha, *b_alpha):
            raise ValueError("alpha must be a finite number >= 0")
        if _out_of_range(t0, *b_t0):
            raise ValueError("t0 must be a finite number")
        if _out_of_range(weight_decay, *b_wd):
            raise ValueError("weight_decay must be a finite number >= 0")
        _same_size(params, grads)
        _same_size(params, axs)
        c = _asgd_constants(float(weight_decay), maximize)
        s = _asgd_per_step(
            float(lr), float(lambd), float(alpha), float(t0), float(eta), float(mu), step
        )
        _asgd(
            params.reshape(-1),
            _flat_grad(grads),
            axs.reshape(-1),
            dt(s[0]),
            dt(s[1]),
            dt(s[2]),
            dt(c[0]),
            dt(-1.0) if c[1] else dt(1.0),
            c[0] != 0,
            s[3],
        )
        return (s[4], s[5])

    return impl


@njit
def _asgd_py(params, grads, axs, step, eta, mu, lr, lambd, alpha, t0, weight_decay, maximize):
    return asgd(
        params,
        grads,
        axs,
        step=step,
        eta=eta,
        mu=mu,
        lr=lr,
        lambd=lambd,
        alpha=alpha,
        t0=t0,
        weight_decay=weight_decay,
        maximize=maximize,
    )
