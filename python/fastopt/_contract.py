"""The kernel contract: one declarative description per optimizer.

Everything the optimizer classes (``optim.py``), the functional kernels (``kernels.py``),
the Numba kernels (``jit.py``) and the backends need to agree on is written here once:

* the **options**: torch's names and defaults (the only place a default is written: the
  public signatures read them as ``SPEC.D.<name>``), their kind (a schedulable real
  ``scalar``, a ``pair`` of schedulable reals such as ``betas``, a boolean ``flag``, or a
  ``const`` real that only fills state) and their check (a rule of ``_validation.RULES``,
  plus the same bounds as numbers for the Numba kernels);
* the **cross-option check** (Nesterov needs momentum > 0 and dampening == 0);
* the **state arrays**: torch's state name, the kernels' argument name, when the options
  need it and how it starts (``zeros``, ``fill`` with ``initial_accumulator_value``, or
  torch's lazy starts: ``grad``, the buffer becomes the gradient on its first use, and
  ``lr``, the buffer becomes that step's lr on its first use (Rprop's ``step_size``,
  torch's ``full_like(grad, lr)`` at state creation); the kernel gets ``first=True`` on
  that call);
* the **derived scalars**: plain arithmetic functions computing, in double and exactly
  once, every constant the per-element rule needs: ``<name>_constants(options...)`` (those
  that depend on the options only) and ``<name>_per_step(options..., step)`` (the bias
  corrections, Adagrad's decayed lr).  The same source is compiled by Numba for
  ``fastopt.jit``; the results are named by ``Spec.constant_names`` / ``step_names``,
  which are the fields of the C++ ``Job`` (``cpp/include/fastopt/dispatch.hpp``).
  ``Spec.scalars(options, step)`` gives them all as one dict;
* the **carried group state** (``carry``): reals kept per parameter group next to the step
  counter (saved by ``state_dict``) that ``per_step`` reads before the step and returns
  updated after its scalars: NAdam's running ``mu_product``, a running product because
  beta1 and momentum_decay may be scheduled, and ASGD's ``eta`` and ``mu``, which torch
  computes at the end of a step for the next one (``Spec.step_scalars``).

The backend interface (numpy, numba and native alike) is one keyword call::

    backend.step(kind, params, grads, state={state name: list or None},
                 scalars={scalar name: value}, names=None)

``kind`` is ``Spec.kernel`` ("sgd", "adagrad", "rmsprop", "adam", "adamax", "nadam",
"radam", "adadelta", "rprop", "asgd"; AdamW is "adam" with ``decoupled=True``), ``state``
maps torch's state names (``"exp_avg"``, ...) to one array per parameter (a missing or
None entry: not used this step), ``scalars`` is ``Spec.scalars(options, step)`` (plus
``first`` for the kernels with a lazily started buffer: SGD, Rprop).  Unknown state or scalar names
raise TypeError.  The native backend also takes ``check_finite`` (7th argument, default
False): it then reads every gradient after its array checks and, if any holds inf or NaN,
writes nothing and returns the indices of those rows (None when it updated); the
optimizers use it for ``nonfinite="raise"``/``"skip"`` with one group and no clipping.

Adding an optimizer: its per-element rule in each backend (``backends/numpy.py``,
``backends/numba.py``, ``cpp/include/fastopt/kernels.hpp`` + ``cpp/src/isa_kernels.inc``
+ the kind table of ``cpp/src/bindings.cpp``), its ``Spec`` here, its class in ``optim.py``
(and for the functional forms a typed function in ``kernels.py``, and in ``jit.py`` a typed
stub under ``@_jit`` with its ``@njit`` body); for the C/C++
embedding API, its entry in ``cpp/include/fastopt/optimizers.h`` and its derived scalars in
``fastopt.hpp`` (``docs/embedding.md``).  Half precision comes with the pattern: the C++
loop takes the storage type ``P`` of the parameter and gradient next to ``T`` and reads
them with ``load(p[i])``, ``load(g[i])``, writes ``store(p[i], x)`` (``at<P>`` for slots 0
and 1 in ``isa_kernels.inc``); the Numba loop reads ``_ld(p[i])``, ``_ld(g[i])`` and
writes ``_st(p, i, x)``; the NumPy rule needs nothing (it runs on float32 copies).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

from ._validation import check_bool, check_hyper

__all__ = [
    "Option",
    "State",
    "Spec",
    "SPECS",
    "SGD",
    "ADAGRAD",
    "RMSPROP",
    "ADAM",
    "ADAMW",
    "ADAMAX",
    "NADAM",
    "RADAM",
    "ADADELTA",
    "ADAFACTOR",
    "MUON",
    "RPROP",
    "ASGD",
]


class Option:
    """One option of an optimizer.

    ``kind``: "scalar" (a real, may be a schedule ``step -> value``), "pair" (a tuple of
    ``len(rules)`` such reals, checked by ``rules[0]``, ``rules[1]``, ...: ``betas``, Muon's
    three ``ns_coefficients``), "flag" (True/False), "const" (a real that is not
    schedulable) or "fixed" (any other value that is not schedulable, checked and
    normalised by ``check(name, value)``: Muon's ``ns_steps`` and ``adjust_lr_fn``).  ``rules`` name ``_validation.RULES`` entries;
    ``bounds`` gives each rule's range as numbers ``(low, high, high_open)`` for the Numba
    kernels (tests hold both to the same values)."""

    __slots__ = ("bounds", "check", "default", "doc", "kind", "name", "rules")

    def __init__(
        self,
        name: str,
        default: Any,
        kind: str,
        rules: tuple[str, ...] = (),
        bounds: tuple[tuple[float, float, bool], ...] = (),
        doc: str = "",
        check: Callable[[str, Any], Any] | None = None,
    ) -> None:
        self.name, self.default, self.kind = name, default, kind
        self.rules, self.bounds, self.doc, self.check = rules, bounds, doc, check

    def __repr__(self) -> str:
        return f"Option({self.name!r}, {self.default!r}, {self.kind!r})"


_NONNEG = (0.0, math.inf, False)
_UNIT = (0.0, 1.0, True)
_ANY = (-math.inf, math.inf, False)
_CLOSED_UNIT = (0.0, 1.0, False)
# Open lower bounds as the next double up (x >= nextafter(a) is x > a): Rprop's etas.
_OPEN_UNIT = (math.nextafter(0.0, 1.0), 1.0, True)
_ABOVE_ONE = (math.nextafter(1.0, 2.0), math.inf, False)


def scalar(
    name: str,
    default: float,
    rule: str | None = None,
    bounds: tuple[float, float, bool] = _NONNEG,
    doc: str = "",
) -> Option:
    return Option(name, default, "scalar", (rule or name,), (bounds,), doc)


def const(name: str, default: float, doc: str = "") -> Option:
    return Option(name, default, "const", (name,), (_NONNEG,), doc)


def flag(name: str, default: bool, doc: str = "") -> Option:
    return Option(name, default, "flag", (), (), doc)


def fixed(name: str, default: Any, check: Callable[[str, Any], Any], doc: str = "") -> Option:
    return Option(name, default, "fixed", (), (), doc, check)


def pair(
    name: str,
    default: tuple[Any, ...],
    rules: tuple[str, ...],
    bounds: tuple[tuple[float, float, bool], ...],
    doc: str = "",
) -> Option:
    return Option(name, default, "pair", rules, bounds, doc)


class State:
    """One state array per parameter: torch's name (``opt.state`` and checkpoints), the
    kernels' argument name, when the (checked, evaluated) options need it, how it starts,
    and its shape for a parameter of a given shape (``shape``: default the parameter's;
    None: this parameter keeps no such array, as Adafactor's ``variance`` for a matrix)."""

    __slots__ = ("arg", "init", "name", "needed", "shape", "why")

    def __init__(
        self,
        name: str,
        arg: str,
        needed: Callable[[Mapping[str, Any]], bool],
        init: str = "zeros",
        why: str = "",
        shape: Callable[[tuple[int, ...]], tuple[int, ...] | None] | None = None,
    ) -> None:
        self.name, self.arg, self.needed, self.init, self.why = name, arg, needed, init, why
        self.shape = shape if shape is not None else _same_shape


def _same_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    return shape


def _always(options: Mapping[str, Any]) -> bool:
    return True


class Spec:
    """The contract of one optimizer (see the module docstring)."""

    def __init__(
        self,
        name: str,
        kernel: str,
        options: tuple[Option, ...],
        state: tuple[State, ...],
        constants: Callable[..., tuple[Any, ...]],
        constant_names: tuple[str, ...],
        per_step: Callable[..., tuple[Any, ...]] | None = None,
        step_names: tuple[str, ...] = (),
        cross: Callable[[Mapping[str, Any]], None] | None = None,
        fixed: dict[str, Any] | None = None,
        group_state: dict[str, Any] | None = None,
        carry: tuple[str, ...] = (),
        param_ndim: int | None = None,
    ) -> None:
        import inspect

        self.name = name
        self.kernel = kernel
        self.options = options
        self.option = {o.name: o for o in options}
        self.state = state
        self.constants, self.constant_names = constants, constant_names
        self.per_step, self.step_names = per_step, step_names
        #: Every scalar the kernel takes (the C++ ``Job`` fields), constants first.
        self.scalar_names = constant_names + step_names
        self.cross = cross
        self.fixed = dict(fixed or {})
        self.group_state = dict(group_state or {})
        #: Group-state reals that ``per_step`` reads (its arguments before ``step``) and
        #: returns updated (after the step scalars): NAdam's running ``mu_product``.
        self.carry = tuple(carry)
        #: The one number of dimensions every parameter must have (Muon: 2), or None.
        self.param_ndim = param_ndim
        self.defaults: dict[str, Any] = {o.name: o.default for o in options}
        #: The defaults as attributes, for the public signatures: ``lr=ADAM.D.lr``.
        self.D: Any = SimpleNamespace(**self.defaults)
        self.state_names = tuple(s.name for s in state)
        lazy = [s.name for s in state if s.init in ("grad", "lr")]
        #: (state name, group counter) of a buffer that starts at its first use (SGD's
        #: momentum_buffer, ``momentum_ready``; Rprop's step_size, ``step_size_ready``): the
        #: kernel gets ``first=True`` until then.
        self.lazy_state = (lazy[0], next(iter(self.group_state))) if lazy else None
        self.flags = tuple(o.name for o in options if o.kind == "flag")
        self.schedulable = tuple(o.name for o in options if o.kind in ("scalar", "pair"))
        # The options each function takes, in its order (a pair's elements by their rule
        # names: beta1, beta2; ``fixed`` kernel flags such as decoupled).
        self.constant_args = tuple(inspect.signature(constants).parameters)
        self.step_args = (
            tuple(inspect.signature(per_step).parameters)[: -1 - len(self.carry)]
            if per_step is not None
            else ()
        )
        # Generated (as namedtuple does) so that the per-step cost of the optimizers is one
        # dict display and a few stores:
        #   constants_at(args) -> {constant name: value}
        #   put(scalars, args, step): scalars[step name] = value, for this step
        #   (with ``carry``: put(scalars, args, step, carried) -> the updated carried values)
        for n in self.scalar_names:
            if not n.isidentifier():
                raise ValueError(f"scalar name {n!r} is not an identifier")
        src = (
            "def constants_at(args):\n    v = constants(*args)\n    return {"
            + ", ".join(f"{n!r}: v[{i}]" for i, n in enumerate(constant_names))
            + "}\n"
            + ("def put(d, args, step, carried):\n" if self.carry else "def put(d, args, step):\n")
            + (
                # Arguments by index, not *args: 20% less per call (75 ns for Adam).
                "    v = per_step("
                + "".join(f"args[{i}], " for i in range(len(self.step_args)))
                + "".join(f"carried[{i}], " for i in range(len(self.carry)))
                + "step)\n"
                + "".join(f"    d[{n!r}] = v[{i}]\n" for i, n in enumerate(step_names))
                + (f"    return v[{len(step_names)}:]\n" if self.carry else "")
                if per_step is not None
                else "    pass\n"
            )
        )
        namespace: dict[str, Any] = {"constants": constants, "per_step": per_step}
        exec(src, namespace)
        self.constants_at: Callable[[tuple[Any, ...]], dict[str, Any]] = namespace["constants_at"]
        self.put: Callable[..., Any] = namespace["put"]

    def pick(self, namespace: Mapping[str, Any]) -> dict[str, Any]:
        """This optimizer's options taken from ``namespace`` by name (a constructor's or a
        functional kernel's ``locals()``), so that typed signatures are forwarded without
        listing their arguments again; an option the caller does not take (the functional
        Adagrad has no ``initial_accumulator_value``: its state arrives filled) keeps its
        default."""
        return {o.name: namespace.get(o.name, o.default) for o in self.options}

    def replace(
        self, name: str, defaults: dict[str, Any] | None = None, fixed: dict[str, Any] | None = None
    ) -> Spec:
        """A variant (AdamW from Adam): other defaults and fixed kernel flags."""
        opts = tuple(
            Option(
                o.name,
                (defaults or {}).get(o.name, o.default),
                o.kind,
                o.rules,
                o.bounds,
                o.doc,
                o.check,
            )
            for o in self.options
        )
        return Spec(
            name,
            self.kernel,
            opts,
            self.state,
            self.constants,
            self.constant_names,
            self.per_step,
            self.step_names,
            self.cross,
            {**self.fixed, **(fixed or {})},
            self.group_state,
            self.carry,
            self.param_ndim,
        )

    def check_param(self, label: str, shape: tuple[int, ...]) -> None:
        """Refuse a parameter of the wrong number of dimensions (``param_ndim``)."""
        if self.param_ndim is not None and len(shape) != self.param_ndim:
            raise ValueError(
                f"{self.name} only supports {self.param_ndim}-D parameters, but {label} has "
                f"shape {shape}; optimize the other parameters with another optimizer "
                "(such as AdamW)"
            )

    # ---------------------------------------------------------------- checks
    def check_value(self, name: str, value: Any, *, allow_schedule: bool) -> Any:
        """Check one option's value (a constant, or a schedule where ``allow_schedule`` and
        the option is schedulable); return it normalised (float, bool, tuple for a pair)."""
        opt = self.option[name]
        if opt.kind == "flag":
            return check_bool(name, value)
        if opt.kind == "fixed":
            assert opt.check is not None
            return opt.check(name, value)
        if opt.kind == "pair":
            if not isinstance(value, (tuple, list)) or len(value) != len(opt.rules):
                raise TypeError(f"{name} must be a pair ({', '.join(opt.rules)}), got {value!r}")
            return tuple(
                v if allow_schedule and callable(v) else check_hyper(r, v)
                for r, v in zip(opt.rules, value)
            )
        if allow_schedule and opt.kind == "scalar" and callable(value):
            return value
        return check_hyper(opt.rules[0], value)

    def check_options(
        self, options: Mapping[str, Any], *, allow_schedule: bool = True, where: str = ""
    ) -> dict[str, Any]:
        """Every option checked (unknown or missing names refused) and the cross-option
        check on the constant values; returns the normalised dict.  Nothing is modified."""
        unknown = [k for k in options if k not in self.option]
        if unknown:
            raise ValueError(
                f"{where}unknown option(s) {unknown} for {self.name}; valid "
                f"options: {sorted(self.option)}"
            )
        missing = [k for k in self.option if k not in options]
        if missing:
            raise ValueError(f"{where}missing option(s) {missing} for {self.name}")
        out = {
            k: self.check_value(k, options[k], allow_schedule=allow_schedule) for k in self.option
        }
        if self.cross is not None:
            self.cross(out)
        return out

    # ---------------------------------------------------------------- per step
    def args_of(self, options: Mapping[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
        """The arguments ``names`` (``constant_args`` or ``step_args``) from evaluated
        options (and ``fixed``)."""
        out = []
        for a in names:
            if a in options:
                out.append(options[a])
            else:  # an element of a pair: beta1 -> betas[0]
                for o in self.options:
                    if o.kind == "pair" and a in o.rules:
                        out.append(options[o.name][o.rules.index(a)])
                        break
                else:
                    out.append(self.fixed[a])
        return tuple(out)

    def scalars(
        self, options: Mapping[str, Any], step: int, carried: tuple[Any, ...] | None = None
    ) -> dict[str, Any]:
        """Every per-step constant of the kernel, in double, for 1-based ``step``
        (``carried``: the ``carry`` values before this step, default their start values)."""
        return self.step_scalars(options, step, carried)[0]

    def step_scalars(
        self, options: Mapping[str, Any], step: int, carried: tuple[Any, ...] | None = None
    ) -> tuple[dict[str, Any], tuple[Any, ...]]:
        """``scalars`` and the ``carry`` values after this step (``()`` without carry)."""
        d = self.constants_at(self.args_of(options, self.constant_args))
        args = self.args_of(options, self.step_args)
        if not self.carry:
            self.put(d, args, step)
            return d, ()
        if carried is None:
            carried = tuple(self.group_state[c] for c in self.carry)
        return d, tuple(self.put(d, args, step, tuple(carried)))

    def needed(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        """The state arrays these evaluated options use this step."""
        return tuple(s.name for s in self.state if s.needed(options))


# ---------------------------------------------------------------------------------------
# Derived scalars.  Plain arithmetic on Python floats/ints only (no imports, no
# containers), so that Numba compiles the very same functions for fastopt.jit.  Powers of
# the integer step are taken as ``beta ** float(step)`` (C ``pow``, as CPython computes
# ``beta ** step``; Numba would otherwise multiply by repeated squaring).


def sgd_constants(
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> tuple[Any, ...]:
    return (lr, momentum, 1.0 - dampening, weight_decay, nesterov, maximize)


def adagrad_constants(weight_decay: float, eps: float, maximize: bool) -> tuple[Any, ...]:
    return (weight_decay, eps, maximize)


def adagrad_per_step(lr: float, lr_decay: float, step: int) -> tuple[float]:
    return (lr / (1 + (step - 1) * lr_decay),)


def rmsprop_constants(
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> tuple[Any, ...]:
    return (lr, alpha, 1.0 - alpha, eps, weight_decay, momentum, centered, maximize)


def adam_constants(
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    decoupled: bool,
) -> tuple[Any, ...]:
    return (
        1.0 - beta1,
        beta2,
        1.0 - beta2,
        eps,
        weight_decay,
        1.0 - lr * weight_decay,
        amsgrad,
        maximize,
        decoupled,
    )


def adam_per_step(lr: float, beta1: float, beta2: float, step: int) -> tuple[float, float]:
    t = float(step)
    bc1 = 1.0 - beta1**t
    bc2 = 1.0 - beta2**t
    bc2_sqrt = bc2**0.5  # ** 0.5 as torch.optim does, not math.sqrt
    return (lr / bc1, 1.0 / bc2_sqrt)


def adamax_constants(
    beta1: float, beta2: float, eps: float, weight_decay: float, maximize: bool
) -> tuple[Any, ...]:
    return (1.0 - beta1, beta2, eps, weight_decay, maximize)


def adamax_per_step(lr: float, beta1: float, step: int) -> tuple[float]:
    bias_correction = 1.0 - beta1 ** float(step)
    return (lr / bias_correction,)


def radam_constants(
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> tuple[Any, ...]:
    return (
        1.0 - beta1,
        beta2,
        1.0 - beta2,
        eps,
        weight_decay,
        1.0 - lr * weight_decay,
        maximize,
        decoupled_weight_decay,
    )


def radam_per_step(lr: float, beta1: float, beta2: float, step: int) -> tuple[Any, ...]:
    # torch.optim.RAdam's Python-float scalars, in its order; the rectification branch
    # (rho_t > 5) is decided here, in double.
    t = float(step)
    bias_correction1 = 1.0 - beta1**t
    bias_correction2 = 1.0 - beta2**t
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * t * (beta2**t) / bias_correction2
    if rho_t > 5.0:
        rect = (
            (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
        ) ** 0.5
        return (lr * (bias_correction2**0.5) * rect / bias_correction1, True)
    return (lr / bias_correction1, False)


def _round_f32(x: float) -> float:
    """``x`` rounded to float32 (to nearest even), as a Python float."""
    import struct

    return float(struct.unpack("f", struct.pack("f", x))[0])


# NAdam's constants are RAdam's: the same options, the same derived values.
nadam_constants = radam_constants


def nadam_per_step(
    lr: float, beta1: float, beta2: float, momentum_decay: float, mu_product: float, step: int
) -> tuple[float, float, float, float]:
    # torch.optim.NAdam's scalars, in its order.  Its mu_product is a 0-d tensor of torch's
    # default dtype (float32): ``mu_product *= mu`` rounds mu to float32 and the product to
    # float32; the coefficients are then Python floats (the float32 value read as double).
    # Not compiled by Numba (struct), unlike the other per-step functions.
    t = float(step)
    bias_correction2 = 1.0 - beta2**t
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (t * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((t + 1.0) * momentum_decay)))
    mu_product = _round_f32(mu_product * _round_f32(mu))
    mu_product_next = mu_product * mu_next
    grad_coef = -lr * (1.0 - mu) / (1.0 - mu_product)
    avg_coef = (-lr * mu_next) / (1.0 - mu_product_next)
    return (bias_correction2, grad_coef, avg_coef, mu_product)


def adadelta_constants(
    lr: float, rho: float, eps: float, weight_decay: float, maximize: bool
) -> tuple[Any, ...]:
    return (lr, rho, 1.0 - rho, eps, weight_decay, maximize)


def adafactor_constants(
    lr: float,
    weight_decay: float,
    eps1: float | None,
    eps2: float,
    d: float,
    maximize: bool,
) -> tuple[Any, ...]:
    # eps1 None: the machine epsilon of each parameter's dtype (chosen by the driver).
    return (1.0 - lr * weight_decay, weight_decay, eps1, eps2, d, maximize)


def adafactor_per_step(lr: float, beta2_decay: float, step: int) -> tuple[float, float]:
    # torch.optim.Adafactor's Python floats: 1 - beta2_t = t ** beta2_decay (the lerp
    # weight of the second moments) and the relative step size rho_t = min(lr, 1 / t**0.5).
    t = float(step)
    return (t**beta2_decay, min(lr, 1.0 / (t**0.5)))


def muon_constants(
    lr: float,
    weight_decay: float,
    momentum: float,
    nesterov: bool,
    ns_a: float,
    ns_b: float,
    ns_c: float,
    eps: float,
    ns_steps: int,
    adjust_lr_fn: str | None,
    ns_dtype: str,
) -> tuple[Any, ...]:
    # The Newton-Schulz options pass through to fastopt._matrix.muon_step.
    return (
        lr,
        weight_decay,
        1.0 - lr * weight_decay,
        1.0 - momentum,
        momentum,
        nesterov,
        ns_a,
        ns_b,
        ns_c,
        eps,
        ns_steps,
        adjust_lr_fn,
        ns_dtype,
    )


def rprop_constants(
    lr: float,
    etaminus: float,
    etaplus: float,
    step_size_min: float,
    step_size_max: float,
    maximize: bool,
) -> tuple[Any, ...]:
    # lr only fills the step sizes on their first use (first=True), as torch's state init.
    return (lr, etaminus, etaplus, step_size_min, step_size_max, maximize)


def asgd_constants(weight_decay: float, maximize: bool) -> tuple[Any, ...]:
    return (weight_decay, maximize)


def asgd_per_step(
    lr: float, lambd: float, alpha: float, t0: float, eta: float, mu: float, step: int
) -> tuple[Any, ...]:
    # torch.optim.ASGD: eta and mu are 0-d tensors of the default dtype (float32) that a
    # step reads (eta starts at lr, mu at 1, when the state is created: step 1) and then
    # sets for the next step from Python floats, each rounded to float32 by ``copy_``.
    # Averaging (ax += (p - ax) * mu) runs when mu != 1, else ax = p.
    if step == 1:
        eta = _round_f32(lr)
        mu = 1.0
    t = float(step)
    eta_next = _round_f32(lr / ((1.0 + lambd * lr * t) ** alpha))
    mu_next = _round_f32(1.0 / max(1.0, t - t0))
    return (eta, 1.0 - lambd * eta, mu, mu != 1.0, eta_next, mu_next)


def _step_sizes_check(o: Mapping[str, Any]) -> None:
    lo, hi = o["step_sizes"]
    if not callable(lo) and not callable(hi) and lo > hi:
        raise ValueError(
            f"step_sizes must be (min, max) with min <= max, got ({lo}, {hi}); torch would "
            "clamp every step size to max"
        )


def _nesterov_check(o: Mapping[str, Any]) -> None:
    m, d = o["momentum"], o["dampening"]
    if o["nesterov"] and not callable(m) and not callable(d) and (m <= 0 or d != 0):
        raise ValueError(
            f"nesterov=True requires momentum > 0 and dampening == 0, got "
            f"momentum={m}, dampening={d}"
        )


_MAXIMIZE = flag("maximize", False, "maximize the objective (the gradient is negated)")

SGD = Spec(
    "sgd",
    "sgd",
    options=(
        scalar("lr", 1e-3, doc="learning rate"),
        scalar("momentum", 0.0, doc="momentum factor"),
        scalar("dampening", 0.0, bounds=_ANY, doc="dampening for momentum"),
        scalar("weight_decay", 0.0, doc="L2 penalty"),
        flag("nesterov", False, "Nesterov momentum"),
        _MAXIMIZE,
    ),
    state=(
        State(
            "momentum_buffer",
            "momentum_buffers",
            lambda o: o["momentum"] != 0,
            "grad",
            "momentum != 0",
        ),
    ),
    constants=sgd_constants,
    constant_names=("lr", "momentum", "one_minus_damp", "wd", "nesterov", "maximize"),
    cross=_nesterov_check,
    group_state={"momentum_ready": False},
)

ADAGRAD = Spec(
    "adagrad",
    "adagrad",
    options=(
        scalar("lr", 1e-2, doc="learning rate"),
        scalar("lr_decay", 0.0, doc="learning rate decay"),
        scalar("weight_decay", 0.0, doc="L2 penalty"),
        const("initial_accumulator_value", 0.0, "initial value of the sum of squares"),
        scalar("eps", 1e-10, doc="term added to the denominator"),
        _MAXIMIZE,
    ),
    state=(State("sum", "state_sums", _always, "fill"),),
    constants=adagrad_constants,
    constant_names=("wd", "eps", "maximize"),
    per_step=adagrad_per_step,
    step_names=("clr",),
)

RMSPROP = Spec(
    "rmsprop",
    "rmsprop",
    options=(
        scalar("lr", 1e-2, doc="learning rate"),
        scalar("alpha", 0.99, doc="smoothing constant"),
        scalar("eps", 1e-8, doc="term added to the denominator"),
        scalar("weight_decay", 0.0, doc="L2 penalty"),
        scalar("momentum", 0.0, doc="momentum factor"),
        flag("centered", False, "normalise by the estimated variance of the gradient"),
        _MAXIMIZE,
    ),
    state=(
        State("square_avg", "square_avgs", _always),
        State("grad_avg", "grad_avgs", lambda o: o["centered"], why="centered=True"),
        State(
            "momentum_buffer", "momentum_buffers", lambda o: o["momentum"] > 0, why="momentum > 0"
        ),
    ),
    constants=rmsprop_constants,
    constant_names=(
        "lr",
        "alpha",
        "one_minus_alpha",
        "eps",
        "wd",
        "momentum",
        "centered",
        "maximize",
    ),
)

ADAM = Spec(
    "adam",
    "adam",
    options=(
        scalar("lr", 1e-3, doc="learning rate"),
        pair(
            "betas",
            (0.9, 0.999),
            ("beta1", "beta2"),
            (_UNIT, _UNIT),
            "coefficients of the running averages of the gradient and its square",
        ),
        scalar("eps", 1e-8, doc="term added to the denominator"),
        scalar("weight_decay", 0.0, doc="weight decay"),
        flag("amsgrad", False, "use the maximum of past squared averages (AMSGrad)"),
        _MAXIMIZE,
    ),
    state=(
        State("exp_avg", "exp_avgs", _always),
        State("exp_avg_sq", "exp_avg_sqs", _always),
        State("max_exp_avg_sq", "max_exp_avg_sqs", lambda o: o["amsgrad"], why="amsgrad=True"),
    ),
    constants=adam_constants,
    constant_names=(
        "one_minus_beta1",
        "beta2",
        "one_minus_beta2",
        "eps",
        "wd",
        "decay",
        "amsgrad",
        "maximize",
        "decoupled",
    ),
    per_step=adam_per_step,
    step_names=("step_size", "inv_bc2_sqrt"),
    fixed={"decoupled": False},
)

ADAMW = ADAM.replace("adamw", defaults={"weight_decay": 1e-2}, fixed={"decoupled": True})

_BETAS = pair(
    "betas",
    (0.9, 0.999),
    ("beta1", "beta2"),
    (_UNIT, _UNIT),
    "coefficients of the running averages of the gradient and its square",
)

ADAMAX = Spec(
    "adamax",
    "adamax",
    options=(
        scalar("lr", 2e-3, doc="learning rate"),
        _BETAS,
        scalar("eps", 1e-8, doc="term added to the denominator"),
        scalar("weight_decay", 0.0, doc="weight decay (L2 penalty)"),
        _MAXIMIZE,
    ),
    state=(State("exp_avg", "exp_avgs", _always), State("exp_inf", "exp_infs", _always)),
    constants=adamax_constants,
    constant_names=("one_minus_beta1", "beta2", "eps", "wd", "maximize"),
    per_step=adamax_per_step,
    step_names=("step_size",),
)

RADAM = Spec(
    "radam",
    "radam",
    options=(
        scalar("lr", 1e-3, doc="learning rate"),
        _BETAS,
        scalar("eps", 1e-8, doc="term added to the denominator"),
        scalar("weight_decay", 0.0, doc="weight decay"),
        flag("decoupled_weight_decay", False, "decoupled (AdamW-style) weight decay"),
        _MAXIMIZE,
    ),
    state=(State("exp_avg", "exp_avgs", _always), State("exp_avg_sq", "exp_avg_sqs", _always)),
    constants=radam_constants,
    constant_names=(
        "one_minus_beta1",
        "beta2",
        "one_minus_beta2",
        "eps",
        "wd",
        "decay",
        "maximize",
        "decoupled",
    ),
    per_step=radam_per_step,
    step_names=("step_size", "rectify"),
)

NADAM = Spec(
    "nadam",
    "nadam",
    options=(
        scalar("lr", 2e-3, doc="learning rate"),
        _BETAS,
        scalar("eps", 1e-8, doc="term added to the denominator"),
        scalar("weight_decay", 0.0, doc="weight decay"),
        scalar("momentum_decay", 4e-3, doc="momentum decay"),
        flag("decoupled_weight_decay", False, "decoupled (AdamW-style) weight decay"),
        _MAXIMIZE,
    ),
    state=(State("exp_avg", "exp_avgs", _always), State("exp_avg_sq", "exp_avg_sqs", _always)),
    constants=nadam_constants,
    constant_names=RADAM.constant_names,  # nadam_constants is radam_constants
    per_step=nadam_per_step,
    step_names=("bias_correction2", "grad_coef", "avg_coef"),
    group_state={"mu_product": 1.0},
    carry=("mu_product",),
)

ADADELTA = Spec(
    "adadelta",
    "adadelta",
    options=(
        scalar("lr", 1.0, doc="coefficient that scales delta before it is applied"),
        scalar("rho", 0.9, bounds=_CLOSED_UNIT, doc="coefficient of the running averages"),
        scalar("eps", 1e-6, doc="term added to the denominator"),
        scalar("weight_decay", 0.0, doc="weight decay (L2 penalty)"),
        _MAXIMIZE,
    ),
    state=(
        State("square_avg", "square_avgs", _always),
        State("acc_delta", "acc_deltas", _always),
    ),
    constants=adadelta_constants,
    constant_names=("lr", "rho", "one_minus_rho", "eps", "wd", "maximize"),
)


def _factored_shape(axis: int) -> Callable[[tuple[int, ...]], tuple[int, ...] | None]:
    """Adafactor's row (axis -1) or column (axis -2) factor: the parameter's shape with
    that axis reduced to 1, for parameters of 2 or more dimensions."""

    def shape(s: tuple[int, ...]) -> tuple[int, ...] | None:
        if len(s) < 2:
            return None
        out = list(s)
        out[axis] = 1
        return tuple(out)

    return shape


def _vector_shape(s: tuple[int, ...]) -> tuple[int, ...] | None:
    return s if len(s) < 2 else None


ADAFACTOR = Spec(
    "adafactor",
    "adafactor",
    options=(
        scalar("lr", 1e-2, doc="learning rate: the largest relative step size, and weight decay"),
        scalar("beta2_decay", -0.8, bounds=(-math.inf, 0.0, False), doc="decay rate of beta2"),
        pair(
            "eps",
            (None, 1e-3),
            ("eps1", "eps2"),
            (_NONNEG, _NONNEG),
            "eps1 (None: the dtype's machine epsilon) and eps2",
        ),
        scalar("d", 1.0, bounds=(1.0, math.inf, False), doc="clipping threshold"),
        scalar("weight_decay", 0.0, doc="decoupled weight decay"),
        _MAXIMIZE,
    ),
    state=(
        State("row_var", "row_vars", _always, why="ndim >= 2", shape=_factored_shape(-1)),
        State("col_var", "col_vars", _always, why="ndim >= 2", shape=_factored_shape(-2)),
        State("variance", "variances", _always, why="ndim <= 1", shape=_vector_shape),
    ),
    constants=adafactor_constants,
    constant_names=("decay", "wd", "eps1", "eps2", "d", "maximize"),
    per_step=adafactor_per_step,
    step_names=("weight", "rho"),
)


def _ns_steps(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer in [0, 100), got {value!r}")
    n = int(value)
    if not 0 <= n < 100:
        raise ValueError(f"{name} must be in [0, 100) (torch refuses 100 or more), got {value!r}")
    return n


def _choice(*allowed: Any) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if not any(value is a or (isinstance(value, str) and value == a) for a in allowed):
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        return value

    return check


MUON = Spec(
    "muon",
    "muon",
    options=(
        scalar("lr", 1e-3, doc="learning rate"),
        scalar("weight_decay", 0.1, doc="decoupled weight decay"),
        scalar("momentum", 0.95, doc="momentum factor"),
        flag("nesterov", True, "Nesterov momentum"),
        pair(
            "ns_coefficients",
            (3.4445, -4.775, 2.0315),
            ("ns_a", "ns_b", "ns_c"),
            (_ANY, _ANY, _ANY),
            "coefficients (a, b, c) of the Newton-Schulz polynomial",
        ),
        scalar("eps", 1e-7, doc="floor of the norm the update is divided by"),
        fixed("ns_steps", 5, _ns_steps, "number of Newton-Schulz iterations"),
        fixed(
            "adjust_lr_fn",
            None,
            _choice(None, "original", "match_rms_adamw"),
            "learning-rate adjustment for the matrix shape",
        ),
        fixed(
            "ns_dtype",
            "bfloat16",
            _choice("bfloat16", "float32"),
            "precision of the Newton-Schulz iteration",
        ),
    ),
    state=(State("momentum_buffer", "momentum_buffers", _always),),
    constants=muon_constants,
    constant_names=(
        "lr",
        "wd",
        "decay",
        "weight",
        "momentum",
        "nesterov",
        "ns_a",
        "ns_b",
        "ns_c",
        "eps",
        "ns_steps",
        "adjust_lr_fn",
        "ns_dtype",
    ),
    param_ndim=2,
)

#: The element-wise parts of the matrix optimizers (Adafactor, Muon), run by every backend
#: between the reductions and the Newton-Schulz products of ``fastopt._matrix`` (NumPy, the
#: same for every backend).  Slot 0 ("params") is the array the rule writes:
#:
#: * ``adafactor_update``: ``u = g / sqrt(max(v, eps))`` with ``g`` negated when
#:   ``maximize``; ``v`` (slot ``variance``, param-shaped) is first lerped towards ``g*g``
#:   by ``weight`` when ``lerp`` (a vector's second moment), else read as it is (a
#:   matrix's factored estimate, materialised).  Scalars: weight, eps, lerp, maximize.
#: * ``muon_update``: ``b = lerp(b, g, weight)``; ``u = lerp(g, b, momentum)`` when
#:   ``nesterov``, else ``u = b``.  Scalars: weight, momentum, nesterov.
#: * ``decay_add``: ``p = p * decay`` (when ``wd != 0``), then ``p = p - step_size * u``
#:   (``u`` in the grads slot).  Scalars: wd, decay, step_size.
#:
#: ``lerp(a, b, w)`` is torch's: ``a + w (b - a)`` when ``|w| < 0.5``, else
#: ``b - (b - a)(1 - w)``, with ``w`` and ``1 - w`` in the array's dtype.
MATRIX_KERNELS: dict[str, tuple[State, ...]] = {
    "adafactor_update": (State("variance", "variances", _always),),
    "muon_update": (State("momentum_buffer", "momentum_buffers", _always),),
    "decay_add": (),
}

RPROP = Spec(
    "rprop",
    "rprop",
    options=(
        scalar("lr", 1e-2, doc="learning rate: the initial step size"),
        pair(
            "etas",
            (0.5, 1.2),
            ("etaminus", "etaplus"),
            (_OPEN_UNIT, _ABOVE_ONE),
            "multiplicative decrease and increase factors of the step sizes",
        ),
        pair(
            "step_sizes",
            (1e-6, 50),
            ("step_size_min", "step_size_max"),
            (_NONNEG, _NONNEG),
            "minimal and maximal allowed step sizes",
        ),
        _MAXIMIZE,
    ),
    state=(
        State("prev", "prevs", _always),
        State("step_size", "step_size_buffers", _always, "lr"),
    ),
    constants=rprop_constants,
    constant_names=("lr", "etaminus", "etaplus", "step_size_min", "step_size_max", "maximize"),
    cross=_step_sizes_check,
    group_state={"step_size_ready": False},
)

ASGD = Spec(
    "asgd",
    "asgd",
    options=(
        scalar("lr", 1e-2, doc="learning rate"),
        scalar("lambd", 1e-4, doc="decay term"),
        scalar("alpha", 0.75, doc="power for eta update"),
        scalar("t0", 1e6, bounds=_ANY, doc="point at which to start averaging"),
        scalar("weight_decay", 0.0, doc="weight decay (L2 penalty)"),
        _MAXIMIZE,
    ),
    state=(State("ax", "axs", _always),),
    constants=asgd_constants,
    constant_names=("wd", "maximize"),
    per_step=asgd_per_step,
    step_names=("eta", "decay", "mu", "average"),
    group_state={"eta": 0.0, "mu": 1.0},
    carry=("eta", "mu"),
)


def slots(kind: str, params: Any, grads: Any, state: Mapping[str, Any]) -> list[Any]:
    """The ``(role, arrays or None, writable)`` slots of a backend call of kernel ``kind``
    (as ``backends._checks.collect`` takes them): params, grads, then each state array in
    the contract's order, labelled by the kernels' argument names."""
    states = KERNEL_STATE.get(kind) if isinstance(kind, str) else None
    if states is None:
        raise ValueError(f"unknown kernel kind {kind!r}; one of {sorted(KERNEL_STATE)}")
    if not isinstance(state, Mapping):
        raise TypeError(
            f"state must be a dict of state name -> list of arrays, got {type(state).__name__}"
        )
    names = [s.name for s in states]
    for key in state:
        if key not in names:
            raise TypeError(f"{kind} has no state {key!r}; its state: {names}")
    return [("params", params, True), ("grads", grads, False)] + [
        (s.arg, state.get(s.name), True) for s in states
    ]


SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        SGD,
        ADAGRAD,
        RMSPROP,
        ADAM,
        ADAMW,
        ADAMAX,
        NADAM,
        RADAM,
        ADADELTA,
        RPROP,
        ASGD,
        ADAFACTOR,
        MUON,
    )
}
#: Kernel kind -> (the kernels' state argument names in slot order, the state names).
KERNELS: dict[str, Spec] = {
    "sgd": SGD,
    "adagrad": ADAGRAD,
    "rmsprop": RMSPROP,
    "adam": ADAM,
    "adamax": ADAMAX,
    "nadam": NADAM,
    "radam": RADAM,
    "adadelta": ADADELTA,
    "rprop": RPROP,
    "asgd": ASGD,
}
#: Every kernel kind a backend runs -> its state arrays, in slot order.
KERNEL_STATE: dict[str, tuple[State, ...]] = {
    **{k: s.state for k, s in KERNELS.items()},
    **MATRIX_KERNELS,
}
