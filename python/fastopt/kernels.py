"""Functional, in-place optimizer kernels for code that keeps its own state arrays.

Each function takes one array or a list of arrays per role (parameters, gradients, state),
checks every hyperparameter and every array before modifying any, and updates the
parameters and state in place on the chosen backend.  Hyperparameters use PyTorch's names
and defaults (written once, in ``fastopt._contract``); ``step`` is the 1-based number of
this update (PyTorch's ``state['step']`` after its increment), from which the bias
corrections are computed in float64.  The formulas are in the docstrings of the optimizer
classes (``help(fastopt.Adam)``); ``fastopt.jit`` has the same functions for Numba code.
Parameters and gradients may be float16 or bfloat16 (``ml_dtypes``); their state arrays
are then float32 (``np.zeros(w.shape, np.float32)``), the arithmetic float32 and each call
rounds the parameter once (see ``fastopt.optim``).

Example::

    m, v = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, 101):
        fastopt.kernels.adam(w, grad(w), m, v, step=t, lr=1e-3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _contract as C
from ._validation import check_hyper, check_step
from .backends import resolve

__all__ = [
    "sgd",
    "adagrad",
    "rmsprop",
    "adam",
    "adamw",
    "adamax",
    "nadam",
    "radam",
    "adadelta",
    "rprop",
    "asgd",
]

Arrays = np.ndarray | Sequence[np.ndarray]
_SGD, _ADAGRAD, _RMSPROP, _ADAM, _ADAMW = (C.SGD.D, C.ADAGRAD.D, C.RMSPROP.D, C.ADAM.D, C.ADAMW.D)
_ADAMAX, _NADAM, _RADAM, _ADADELTA = C.ADAMAX.D, C.NADAM.D, C.RADAM.D, C.ADADELTA.D
_RPROP, _ASGD = C.RPROP.D, C.ASGD.D


def _as_list(x: Any) -> list[Any] | None:
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return [x]
    return list(x)


def _run(
    spec: C.Spec,
    namespace: Mapping[str, Any],
    t: int,
    params: Any,
    grads: Any,
    given: dict[str, Any],
    backend: str,
    **extra: Any,
) -> None:
    """Check the options (taken by name from ``namespace``, the caller's ``locals()``, by
    the contract's rules), the presence of the state arrays they need, then one keyword
    call of the backend (which checks every array)."""
    opts = spec.check_options(spec.pick(namespace), allow_schedule=False)
    needed = spec.needed(opts)
    state = {}
    for s in spec.state:
        if s.name in needed:
            if given[s.name] is None:
                hint = (
                    "np.full_like(p, initial_accumulator_value)"
                    if s.init == "fill"
                    else "np.zeros_like(p)"
                )
                raise ValueError(
                    f"{s.why or spec.name} needs {s.arg} (one array per parameter, "
                    f"{hint}); pass them"
                    + (f" or change {s.why.split()[0].split('=')[0]}" if s.why else "")
                )
            state[s.name] = _as_list(given[s.name])
    carried = extra.pop("carried", None)
    scalars = spec.scalars({**opts, **extra}, t, carried)
    if spec.lazy_state is not None:  # SGD's momentum buffer, Rprop's step sizes
        scalars["first"] = t == 1
    _, be = resolve(backend)
    be.step(spec.kernel, _as_list(params), _as_list(grads), state, scalars)


def _run_carried(
    spec: C.Spec,
    namespace: Mapping[str, Any],
    carried: dict[str, Any],
    t: int,
    params: Any,
    grads: Any,
    given: dict[str, Any],
    backend: str,
) -> tuple[float, ...]:
    """``_run`` for a kernel with carried group state (``spec.carry``, given by name in
    ``carried`` and checked by its rule): returns the carried values after the step."""
    before = tuple(check_hyper(c, carried[c]) for c in spec.carry)
    opts = spec.check_options(spec.pick(namespace), allow_schedule=False)
    _, after = spec.step_scalars(opts, t, before)
    _run(spec, opts, t, params, grads, given, backend, carried=before)
    return tuple(float(x) for x in after)


def sgd(
    params: Arrays,
    grads: Arrays,
    momentum_buffers: Arrays | None = None,
    *,
    step: int,
    lr: float = _SGD.lr,
    momentum: float = _SGD.momentum,
    dampening: float = _SGD.dampening,
    weight_decay: float = _SGD.weight_decay,
    nesterov: bool = _SGD.nesterov,
    maximize: bool = _SGD.maximize,
    backend: str = "auto",
) -> None:
    """SGD update (``torch.optim.SGD``); ``momentum_buffers`` is needed when momentum != 0.

    On ``step == 1`` the buffer is set to the gradient (PyTorch's first step, no dampening).
    """
    t = check_step(step)
    _run(
        C.SGD,
        locals(),
        t,
        params,
        grads,
        {"momentum_buffer": momentum_buffers},
        backend,
    )


def adagrad(
    params: Arrays,
    grads: Arrays,
    state_sums: Arrays,
    *,
    step: int,
    lr: float = _ADAGRAD.lr,
    lr_decay: float = _ADAGRAD.lr_decay,
    weight_decay: float = _ADAGRAD.weight_decay,
    eps: float = _ADAGRAD.eps,
    maximize: bool = _ADAGRAD.maximize,
    backend: str = "auto",
) -> None:
    """Adagrad update (``torch.optim.Adagrad``).  ``state_sums`` start at
    ``initial_accumulator_value`` (create them with ``np.full_like(p, value)``)."""
    t = check_step(step)
    _run(
        C.ADAGRAD,
        locals(),
        t,
        params,
        grads,
        {"sum": state_sums},
        backend,
    )


def rmsprop(
    params: Arrays,
    grads: Arrays,
    square_avgs: Arrays,
    grad_avgs: Arrays | None = None,
    momentum_buffers: Arrays | None = None,
    *,
    step: int | None = None,
    lr: float = _RMSPROP.lr,
    alpha: float = _RMSPROP.alpha,
    eps: float = _RMSPROP.eps,
    weight_decay: float = _RMSPROP.weight_decay,
    momentum: float = _RMSPROP.momentum,
    centered: bool = _RMSPROP.centered,
    maximize: bool = _RMSPROP.maximize,
    backend: str = "auto",
) -> None:
    """RMSprop update (``torch.optim.RMSprop``); ``grad_avgs`` are needed when centered,
    ``momentum_buffers`` when momentum > 0.  RMSprop has no bias correction, so ``step`` is
    accepted for uniformity and only checked."""
    t = 1 if step is None else check_step(step)
    _run(
        C.RMSPROP,
        locals(),
        t,
        params,
        grads,
        {"square_avg": square_avgs, "grad_avg": grad_avgs, "momentum_buffer": momentum_buffers},
        backend,
    )


def adam(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    exp_avg_sqs: Arrays,
    max_exp_avg_sqs: Arrays | None = None,
    *,
    step: int,
    lr: float = _ADAM.lr,
    betas: tuple[float, float] = _ADAM.betas,
    eps: float = _ADAM.eps,
    weight_decay: float = _ADAM.weight_decay,
    amsgrad: bool = _ADAM.amsgrad,
    maximize: bool = _ADAM.maximize,
    decoupled_weight_decay: bool = False,
    backend: str = "auto",
) -> None:
    """Adam update (``torch.optim.Adam``); AdamW with ``decoupled_weight_decay=True``.

    ``max_exp_avg_sqs`` are needed when amsgrad=True.  The bias corrections
    ``1 - beta**step`` are computed in float64 from the integer step.
    """
    t = check_step(step)
    decoupled = C.check_bool("decoupled_weight_decay", decoupled_weight_decay)
    _run(
        C.ADAM,
        locals(),
        t,
        params,
        grads,
        {"exp_avg": exp_avgs, "exp_avg_sq": exp_avg_sqs, "max_exp_avg_sq": max_exp_avg_sqs},
        backend,
        decoupled=decoupled,
    )


def adamw(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    exp_avg_sqs: Arrays,
    max_exp_avg_sqs: Arrays | None = None,
    *,
    step: int,
    lr: float = _ADAMW.lr,
    betas: tuple[float, float] = _ADAMW.betas,
    eps: float = _ADAMW.eps,
    weight_decay: float = _ADAMW.weight_decay,
    amsgrad: bool = _ADAMW.amsgrad,
    maximize: bool = _ADAMW.maximize,
    backend: str = "auto",
) -> None:
    """AdamW update (``torch.optim.AdamW``): Adam with decoupled weight decay
    ``p *= 1 - lr * weight_decay``, default ``weight_decay=1e-2``."""
    adam(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs,
        step=step,
        decoupled_weight_decay=True,
        backend=backend,
        **C.ADAMW.pick(locals()),
    )


def adamax(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    exp_infs: Arrays,
    *,
    step: int,
    lr: float = _ADAMAX.lr,
    betas: tuple[float, float] = _ADAMAX.betas,
    eps: float = _ADAMAX.eps,
    weight_decay: float = _ADAMAX.weight_decay,
    maximize: bool = _ADAMAX.maximize,
    backend: str = "auto",
) -> None:
    """Adamax update (``torch.optim.Adamax``); ``exp_avgs`` and ``exp_infs`` start at
    zero.  The bias correction ``1 - beta1**step`` is computed in float64."""
    t = check_step(step)
    _run(
        C.ADAMAX,
        locals(),
        t,
        params,
        grads,
        {"exp_avg": exp_avgs, "exp_inf": exp_infs},
        backend,
    )


def nadam(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    exp_avg_sqs: Arrays,
    *,
    step: int,
    mu_product: float = 1.0,
    lr: float = _NADAM.lr,
    betas: tuple[float, float] = _NADAM.betas,
    eps: float = _NADAM.eps,
    weight_decay: float = _NADAM.weight_decay,
    momentum_decay: float = _NADAM.momentum_decay,
    decoupled_weight_decay: bool = _NADAM.decoupled_weight_decay,
    maximize: bool = _NADAM.maximize,
    backend: str = "auto",
) -> float:
    """NAdam update (``torch.optim.NAdam``); ``exp_avgs`` and ``exp_avg_sqs`` start at zero.

    ``mu_product`` is the running product of the momentum coefficients before this step
    (1.0 before the first); the call returns the product after it, to pass to the next
    call::

        mu = 1.0
        for t in range(1, n + 1):
            mu = fastopt.kernels.nadam(p, g, m, v, step=t, mu_product=mu)

    The product is kept rounded to float32, as torch keeps it (``fastopt.NAdam``)."""
    t = check_step(step)
    (after,) = _run_carried(
        C.NADAM,
        locals(),
        {"mu_product": mu_product},
        t,
        params,
        grads,
        {"exp_avg": exp_avgs, "exp_avg_sq": exp_avg_sqs},
        backend,
    )
    return after


def radam(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    exp_avg_sqs: Arrays,
    *,
    step: int,
    lr: float = _RADAM.lr,
    betas: tuple[float, float] = _RADAM.betas,
    eps: float = _RADAM.eps,
    weight_decay: float = _RADAM.weight_decay,
    decoupled_weight_decay: bool = _RADAM.decoupled_weight_decay,
    maximize: bool = _RADAM.maximize,
    backend: str = "auto",
) -> None:
    """RAdam update (``torch.optim.RAdam``); ``exp_avgs`` and ``exp_avg_sqs`` start at
    zero.  The bias corrections, ``rho_t`` and the rectification (applied when
    ``rho_t > 5``) are computed in float64 from the integer step."""
    t = check_step(step)
    _run(
        C.RADAM,
        locals(),
        t,
        params,
        grads,
        {"exp_avg": exp_avgs, "exp_avg_sq": exp_avg_sqs},
        backend,
    )


def adadelta(
    params: Arrays,
    grads: Arrays,
    square_avgs: Arrays,
    acc_deltas: Arrays,
    *,
    step: int | None = None,
    lr: float = _ADADELTA.lr,
    rho: float = _ADADELTA.rho,
    eps: float = _ADADELTA.eps,
    weight_decay: float = _ADADELTA.weight_decay,
    maximize: bool = _ADADELTA.maximize,
    backend: str = "auto",
) -> None:
    """Adadelta update (``torch.optim.Adadelta``); ``square_avgs`` and ``acc_deltas`` start
    at zero.  Adadelta has no bias correction, so ``step`` is accepted for uniformity and
    only checked."""
    t = 1 if step is None else check_step(step)
    _run(
        C.ADADELTA,
        locals(),
        t,
        params,
        grads,
        {"square_avg": square_avgs, "acc_delta": acc_deltas},
        backend,
    )


def rprop(
    params: Arrays,
    grads: Arrays,
    prevs: Arrays,
    step_size_buffers: Arrays,
    *,
    step: int,
    lr: float = _RPROP.lr,
    etas: tuple[float, float] = _RPROP.etas,
    step_sizes: tuple[float, float] = _RPROP.step_sizes,
    maximize: bool = _RPROP.maximize,
    backend: str = "auto",
) -> None:
    """Rprop update (``torch.optim.Rprop``); ``prevs`` start at zero, and
    ``step_size_buffers`` (each parameter's current step sizes, torch's ``step_size``
    state) are filled with ``lr`` on ``step == 1`` (create them with ``np.zeros_like(p)``);
    ``step_sizes`` is the (min, max) pair they are clamped to."""
    t = check_step(step)
    _run(
        C.RPROP,
        locals(),
        t,
        params,
        grads,
        {"prev": prevs, "step_size": step_size_buffers},
        backend,
    )


def asgd(
    params: Arrays,
    grads: Arrays,
    axs: Arrays,
    *,
    step: int,
    lr: float = _ASGD.lr,
    lambd: float = _ASGD.lambd,
    alpha: float = _ASGD.alpha,
    t0: float = _ASGD.t0,
    weight_decay: float = _ASGD.weight_decay,
    maximize: bool = _ASGD.maximize,
    eta: float = 0.0,
    mu: float = 1.0,
    backend: str = "auto",
) -> tuple[float, float]:
    """ASGD update (``torch.optim.ASGD``); ``axs`` (the averages) start at zero.

    ``eta`` and ``mu`` are this step's learning rate and averaging weight, which torch
    computes at the end of the previous step (ignored on ``step == 1``, where they start at
    ``lr`` and 1); the call returns the values for the next step::

        eta, mu = 0.0, 1.0
        for t in range(1, n + 1):
            eta, mu = fastopt.kernels.asgd(p, g, ax, step=t, eta=eta, mu=mu)

    Both are kept rounded to float32, as torch keeps them (``fastopt.ASGD``)."""
    t = check_step(step)
    eta_next, mu_next = _run_carried(
        C.ASGD, locals(), {"eta": eta, "mu": mu}, t, params, grads, {"ax": axs}, backend
    )
    return eta_next, mu_next
