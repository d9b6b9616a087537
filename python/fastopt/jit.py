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

import functools
import inspect
import math
from collections import namedtuple
from collections.abc import Callable
from typing import Any, TypeVar

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


def _check_arrays(params: Any, roles: tuple[tuple[str, Any, bool], ...]) -> None:
    """Typing-time checks of the arrays."""
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


# ------------------------------------------------------------------------------- generated
# Each optimizer below is written once: a ``@njit`` body that takes the arguments as one
# named tuple, and its public stub, a typed ``def`` (the signature that mypy, help() and
# ``test_same_signatures_as_kernels`` see) decorated with ``@_jit``.  ``_jit`` writes from
# the stub's signature what needs the parameter list spelled out: the ``@overload`` typer
# (the typing checks) and its ``impl`` (the runtime checks, from the contract's bounds and
# state, then the body) for calls in ``@njit`` code, and for calls from Python the public
# function itself (the stub's signature and docstring) and the ``@njit`` wrapper it calls.

# The range errors' wording, by the contract's numeric bounds.
_RANGE = {
    C._NONNEG: "a finite number >= 0",
    C._ANY: "a finite number",
    C._UNIT: "in [0, 1)",
    C._CLOSED_UNIT: "in [0, 1]",
    C._OPEN_UNIT: "in (0, 1)",
    C._ABOVE_ONE: "a finite number > 1",
}

_STEP_ERROR = "step must be >= 1 (1 for the first update)"


def _typecheck(
    name: str, spec: C.Spec, sig: inspect.Signature, states: list[str], t: dict[str, Any]
) -> dict[str, bool]:
    """The typing-time checks of one call (``t``: the Numba type, or the omitted default,
    of each argument by name); whether it passes each state array and ``step``."""
    _check_arrays(t["params"], (("grads", t["grads"], False), *((s, t[s], True) for s in states)))
    has = {n: not _absent(t[n]) for n in [*states, "step"]}
    for s in states:
        if sig.parameters[s].default is not None and not has[s]:
            raise TypingError(f"{name} needs {s}")
    if has["step"] or sig.parameters["step"].default is not None:
        _check_step_type(t["step"])
    _check_flags(**{n: t[n] for n, p in sig.parameters.items() if isinstance(p.default, bool)})
    for o in spec.options:
        if o.kind == "pair" and o.name in t:
            _check_betas(t[o.name], o.name, ", ".join(o.rules))
    return has


def _range_checks(
    spec: C.Spec,
    names: list[str],
    bounds: dict[str, tuple[float, float, bool]],
    messages: dict[str, str],
    ns: dict[str, Any],
) -> list[tuple[str, str]]:
    """(condition, error) of the range of each argument: those in ``bounds`` first, then
    the options of ``spec`` in the signature's order (a pair: one per element, or one for
    both where ``messages`` words the error); their bounds go into ``ns``."""
    tests = []
    for n in [n for n in names if n in bounds] + [n for n in names if n in spec.option]:
        o = spec.option.get(n)
        if o is None:
            items = [(n, n, bounds[n])]
        elif o.kind == "pair":
            items = [(f"float({n}[{i}])", r, _bounds(spec, n, i)) for i, r in enumerate(o.rules)]
        elif o.kind == "scalar":
            items = [(n, n, _bounds(spec, n))]
        else:
            continue
        mine = []
        for value, what, b in items:
            ns[f"b_{what}"] = b
            mine.append((f"_out_of_range({value}, *b_{what})", f"{what} must be {_RANGE[b]}"))
        if n in messages:
            mine = [(" or ".join(test for test, _ in mine), messages[n])]
        tests += mine
    return tests


_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(
    spec: C.Spec,
    body: Any,
    *,
    needs: dict[str, str] | None = None,
    checks: tuple[tuple[str, str], ...] = (),
    bounds: dict[str, tuple[float, float, bool]] | None = None,
    messages: dict[str, str] | None = None,
) -> Callable[[_F], _F]:
    """Decorator: the public function of the stub it decorates, callable in ``@njit`` code
    (an ``@overload``) and from Python (through an ``@njit`` wrapper), with the stub's
    signature, docstring and annotations (``functools.wraps``; the stub's body is not run).
    It checks its arguments, then runs ``body(a)``, ``a`` a named tuple of the arguments by
    the stub's names with ``params``, ``grads`` and the state arrays (the parameters between
    ``grads`` and ``step``) flat, an absent optional one empty; an optional ``step`` left
    None is passed from Python as 1 (it is only checked), one compiled variant.

    The runtime checks, in this order: ``step >= 1``; the range of every argument named in
    ``bounds`` (those not in the contract: ASGD's carried eta and mu), then of every option
    of ``spec``, ``messages`` wording an option's error in place of the generic one;
    ``checks``, (condition, error) with the condition as source over the arguments (cross
    checks); equal shapes; then each optional state array, required where the condition
    ``needs`` gives it (source) holds, the error worded from the contract's ``why``."""
    return lambda stub: _generate(
        stub, spec, body, needs or {}, checks, bounds or {}, messages or {}
    )


def _generate(
    stub: Any,
    spec: C.Spec,
    body: Any,
    needs: dict[str, str],
    checks: tuple[tuple[str, str], ...],
    bounds: dict[str, tuple[float, float, bool]],
    messages: dict[str, str],
) -> Any:
    """``_jit``'s work: the public function of ``stub``."""
    sig = inspect.signature(stub)
    name, names = stub.__name__, list(sig.parameters)
    states = names[2 : names.index("step")]
    optional = [n for n in states if sig.parameters[n].default is None]
    if set(optional) != set(needs):
        raise ValueError(f"{name}: needs must give the condition of each of {optional}")
    step_optional = sig.parameters["step"].default is None
    ns: dict[str, Any] = {
        "body": body,
        "Args": namedtuple(f"_{name}_args", names),  # type: ignore[misc]
        "typecheck": _typecheck,
        "name": name,
        "spec": spec,
        "sig": sig,
        "states": states,
        "np": np,
        "_out_of_range": _out_of_range,
        "_same_size": _same_size,
        "_flat_grad": _flat_grad,
    }
    # The parameters: the stub's (``public``), and as @overload needs them (``plain``): the
    # keyword-only ones plain too, with a default (None for step where it has none).
    public, plain = [], []
    for n, p in sig.parameters.items():
        if p.kind is p.KEYWORD_ONLY and "*" not in public:
            public.append("*")
        if p.default is p.empty:
            public.append(n)
        else:
            public.append(f"{n}=d_{n}")
            ns[f"d_{n}"] = p.default
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty:
            plain.append(n)
        else:
            plain.append(f"{n}=d_{n}")
            ns.setdefault(f"d_{n}", None)
    positional = [n for n, p in sig.parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD]

    tests = [("has_step and step < 1" if step_optional else "step < 1", _STEP_ERROR)]
    tests += _range_checks(spec, names, bounds, messages, ns)
    tests += checks
    lines = []
    for test, error in tests:
        lines += [f"if {test}:", f"    raise ValueError({error!r})"]
    lines += [f"_same_size(params, {n})" for n in ["grads", *states] if n not in optional]
    flat = {n: f"{n}.reshape(-1)" for n in ["params", *states]}
    flat["grads"] = "_flat_grad(grads)"
    why = {s.arg: s.why for s in spec.state}
    for n in optional:
        lines += [
            f"if has_{n}:",
            f"    _same_size(params, {n})",
            f"    flat_{n} = {n}.reshape(-1)",
            "else:",
            f"    if {needs[n]}:",
            f"        raise ValueError({f'{why[n]} needs {n} (np.zeros_like(p))'!r})",
            f"    flat_{n} = np.empty(0, params.dtype)",
        ]
        flat[n] = f"flat_{n}"
    lines.append(f"return body(Args({', '.join(flat.get(n, n) for n in names)}))")
    to_py = ", ".join(
        "1 if step is None else step" if n == "step" and step_optional else n for n in names
    )
    src = (
        f"def typer({', '.join(plain)}):\n"
        "    has = typecheck(name, spec, sig, states, locals())\n"
        + "".join(f"    has_{n} = has[{n!r}]\n" for n in [*optional, "step"])
        + f"    def impl({', '.join(plain)}):\n"
        + "".join(f"        {line}\n" for line in lines)
        + "    return impl\n"
        + f"def py({', '.join(names)}):\n"
        + f"    return {name}({', '.join(n if n in positional else f'{n}={n}' for n in names)})\n"
        + f"def {name}({', '.join(public)}):\n"
        + f"    return py_jit({to_py})\n"
    )
    exec(compile(src, f"<fastopt.jit: {name}>", "exec"), ns)
    fn = functools.wraps(stub)(ns[name])  # what @njit code and py call
    ns["py_jit"] = njit(ns["py"])
    overload(fn, jit_options={"cache": False})(ns["typer"])
    return fn


# ------------------------------------------------------------------------------- sgd
_S = C.SGD.D


@njit(inline="always")
def _sgd_body(a):
    dt = a.params.dtype.type
    c = _sgd_constants(
        float(a.lr),
        float(a.momentum),
        float(a.dampening),
        float(a.weight_decay),
        a.nesterov,
        a.maximize,
    )
    _sgd(
        a.params,
        a.grads,
        a.momentum_buffers,
        dt(c[0]),
        dt(c[1]),
        dt(c[2]),
        dt(c[3]),
        dt(-1.0) if c[5] else dt(1.0),
        c[3] != 0,
        c[1] != 0,
        c[4],
        a.step == 1,
    )


@_jit(
    C.SGD,
    _sgd_body,
    needs={"momentum_buffers": "momentum != 0"},
    checks=(
        (
            "nesterov and (momentum <= 0 or dampening != 0)",
            "nesterov=True requires momentum > 0 and dampening == 0",
        ),
    ),
)
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


# ------------------------------------------------------------------------------- adagrad
_AG = C.ADAGRAD.D


@njit(inline="always")
def _adagrad_body(a):
    dt = a.params.dtype.type
    c = _adagrad_constants(float(a.weight_decay), float(a.eps), a.maximize)
    s = _adagrad_per_step(float(a.lr), float(a.lr_decay), a.step)
    _adagrad(
        a.params,
        a.grads,
        a.state_sums,
        dt(s[0]),
        dt(c[0]),
        dt(c[1]),
        dt(-1.0) if c[2] else dt(1.0),
        c[0] != 0,
    )


@_jit(C.ADAGRAD, _adagrad_body)
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


# ------------------------------------------------------------------------------- rmsprop
_R = C.RMSPROP.D


@njit(inline="always")
def _rmsprop_body(a):
    dt = a.params.dtype.type
    c = _rmsprop_constants(
        float(a.lr),
        float(a.alpha),
        float(a.eps),
        float(a.weight_decay),
        float(a.momentum),
        a.centered,
        a.maximize,
    )
    _rmsprop(
        a.params,
        a.grads,
        a.square_avgs,
        a.grad_avgs,
        a.momentum_buffers,
        dt(c[0]),
        dt(c[1]),
        dt(c[2]),
        dt(c[3]),
        dt(c[4]),
        dt(c[5]),
        dt(-1.0) if c[7] else dt(1.0),
        c[4] != 0,
        c[6],
        c[5] > 0,
    )


@_jit(
    C.RMSPROP,
    _rmsprop_body,
    needs={"grad_avgs": "centered", "momentum_buffers": "momentum > 0"},
)
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


# ------------------------------------------------------------------------------- adam
_A, _AW = C.ADAM.D, C.ADAMW.D


@njit(inline="always")
def _adam_step(a, decoupled):
    dt = a.params.dtype.type
    beta1, beta2 = float(a.betas[0]), float(a.betas[1])
    c = _adam_constants(
        float(a.lr),
        beta1,
        beta2,
        float(a.eps),
        float(a.weight_decay),
        a.amsgrad,
        a.maximize,
        decoupled,
    )
    s = _adam_per_step(float(a.lr), beta1, beta2, a.step)
    _adam(
        a.params,
        a.grads,
        a.exp_avgs,
        a.exp_avg_sqs,
        a.max_exp_avg_sqs,
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


@njit(inline="always")
def _adam_body(a):
    _adam_step(a, a.decoupled_weight_decay)


@njit(inline="always")
def _adamw_body(a):
    _adam_step(a, True)


@_jit(C.ADAM, _adam_body, needs={"max_exp_avg_sqs": "amsgrad"})
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


@_jit(C.ADAMW, _adamw_body, needs={"max_exp_avg_sqs": "amsgrad"})
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


# ------------------------------------------------------------------------------- adamax
_AX = C.ADAMAX.D


@njit(inline="always")
def _adamax_body(a):
    dt = a.params.dtype.type
    beta1, beta2 = float(a.betas[0]), float(a.betas[1])
    c = _adamax_constants(beta1, beta2, float(a.eps), float(a.weight_decay), a.maximize)
    s = _adamax_per_step(float(a.lr), beta1, a.step)
    _adamax(
        a.params,
        a.grads,
        a.exp_avgs,
        a.exp_infs,
        dt(c[0]),
        dt(c[1]),
        dt(c[2]),
        dt(c[3]),
        dt(s[0]),
        dt(-1.0) if c[4] else dt(1.0),
        c[3] != 0,
    )


@_jit(C.ADAMAX, _adamax_body)
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


# ------------------------------------------------------------------------------- radam
_RA = C.RADAM.D


@njit(inline="always")
def _radam_body(a):
    dt = a.params.dtype.type
    beta1, beta2 = float(a.betas[0]), float(a.betas[1])
    c = _radam_constants(
        float(a.lr),
        beta1,
        beta2,
        float(a.eps),
        float(a.weight_decay),
        a.decoupled_weight_decay,
        a.maximize,
    )
    s = _radam_per_step(float(a.lr), beta1, beta2, a.step)
    _radam(
        a.params,
        a.grads,
        a.exp_avgs,
        a.exp_avg_sqs,
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


@_jit(C.RADAM, _radam_body)
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


# ------------------------------------------------------------------------------- adadelta
_AD = C.ADADELTA.D


@njit(inline="always")
def _adadelta_body(a):
    dt = a.params.dtype.type
    c = _adadelta_constants(
        float(a.lr), float(a.rho), float(a.eps), float(a.weight_decay), a.maximize
    )
    _adadelta(
        a.params,
        a.grads,
        a.square_avgs,
        a.acc_deltas,
        dt(c[0]),
        dt(c[1]),
        dt(c[2]),
        dt(c[3]),
        dt(c[4]),
        dt(-1.0) if c[5] else dt(1.0),
        c[4] != 0,
    )


@_jit(C.ADADELTA, _adadelta_body)
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


# ------------------------------------------------------------------------------- rprop
_RP = C.RPROP.D


@njit(inline="always")
def _rprop_body(a):
    dt = a.params.dtype.type
    c = _rprop_constants(
        float(a.lr),
        float(a.etas[0]),
        float(a.etas[1]),
        float(a.step_sizes[0]),
        float(a.step_sizes[1]),
        a.maximize,
    )
    _rprop(
        a.params,
        a.grads,
        a.prevs,
        a.step_size_buffers,
        dt(c[0]),
        dt(c[1]),
        dt(c[2]),
        dt(c[3]),
        dt(c[4]),
        dt(-1.0) if c[5] else dt(1.0),
        a.step == 1,
    )


_STEP_SIZES = "step_sizes must be finite numbers (min, max), 0 <= min <= max"


@_jit(
    C.RPROP,
    _rprop_body,
    messages={"step_sizes": _STEP_SIZES},
    checks=(("float(step_sizes[0]) > float(step_sizes[1])", _STEP_SIZES),),
)
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


# ------------------------------------------------------------------------------- asgd
_AS = C.ASGD.D


@njit(inline="always")
def _asgd_body(a):
    dt = a.params.dtype.type
    c = _asgd_constants(float(a.weight_decay), a.maximize)
    s = _asgd_per_step(
        float(a.lr), float(a.lambd), float(a.alpha), float(a.t0), float(a.eta), float(a.mu), a.step
    )
    _asgd(
        a.params,
        a.grads,
        a.axs,
        dt(s[0]),
        dt(s[1]),
        dt(s[2]),
        dt(c[0]),
        dt(-1.0) if c[1] else dt(1.0),
        c[0] != 0,
        s[3],
    )
    return (s[4], s[5])


# eta and mu, carried from step to step, are checked first
@_jit(C.ASGD, _asgd_body, bounds={"eta": C._NONNEG, "mu": C._CLOSED_UNIT})
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
