r"""Closed-form schedules for learning rate, momentum, beta1 or weight decay.

Every schedule is a small object that maps the update number ``k`` (0-based: the
``k``-th call to ``Optimizer.step`` uses ``schedule(k)``) to a value::

    >>> import numpy as np
    >>> from fastopt import schedules as S
    >>> lr = S.warmup(S.cosine(0.1, total_steps=1000), warmup_steps=100)
    >>> lr(0), lr(100)
    (0.0, 0.1)
    >>> lr(np.arange(5))            # a float64 array, computed without a Python loop
    array([0.   , 0.001, 0.002, 0.003, 0.004])

Design (Optax's closed forms, PyTorch's numbers; ``docs/design.md`` has the conventions):

* **Closed form.**  ``schedule(k)`` depends only on ``k``; evaluating at ``10**9`` costs the
  same as at ``0`` and resuming a run needs nothing but the step.  The one exception is
  :class:`ReduceOnPlateau`, which is driven by metrics and carries a ``state_dict``.
* **PyTorch's numbers.**  ``schedule(k)`` equals the learning rate PyTorch uses for the
  ``k``-th update when ``scheduler.step()`` is called once after every
  ``optimizer.step()`` (the tests compare against fixtures recorded from
  ``torch.optim.lr_scheduler`` to 1e-12 relative).  Optax, Keras and Hugging Face
  schedules that PyTorch lacks follow those libraries; each docstring says where the
  frameworks disagree.
* **Arrays.**  ``schedule(steps)`` with a NumPy array (or list) of non-negative integer
  steps returns a float64 array of the same shape; a scalar step returns a Python float.
* **Composition** instead of subclassing: ``s * 0.5``, ``0.5 * s``, ``s1 * s2``, ``s + c``,
  ``s - c``, ``s / c``, ``-s`` build new schedules; :func:`join` runs schedules one after
  another, :func:`warmup` prepends a linear warmup, :meth:`Schedule.per_epoch` turns an
  epoch-indexed schedule into a per-update one.
* **Plain objects.**  Readable ``repr`` (``eval(repr(s))`` rebuilds it in this module's
  namespace), picklable (no lambdas are stored), arguments validated at construction with
  errors that name the argument, the value and the fix.

This module imports nothing but NumPy.
"""

from __future__ import annotations

import math
import numbers
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, SupportsFloat, SupportsInt, TypeGuard, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "Schedule",
    "constant",
    "step_decay",
    "multistep",
    "exponential",
    "inverse_time",
    "inverse_sqrt",
    "polynomial",
    "linear",
    "cosine",
    "cosine_restarts",
    "warmup",
    "warmup_cosine",
    "wsd",
    "one_cycle",
    "one_cycle_momentum",
    "cyclic",
    "cyclic_momentum",
    "piecewise_constant",
    "piecewise_interpolate",
    "linear_onecycle",
    "join",
    "from_function",
    "ReduceOnPlateau",
]

# Steps are converted to float64 by the formulas; beyond 2**53 they stop being exact.
_MAX_STEP = 2**53

Steps = npt.NDArray[np.int64]  # validated update numbers, any shape (0-d for one step)
FloatArray = npt.NDArray[np.float64]
# What a schedule can be called with: one update number, or an array/list of them.
StepLike = int | np.integer[Any] | npt.NDArray[np.integer[Any]] | Sequence[int]


# --------------------------------------------------------------------------- checks
def _is_int(value: object) -> TypeGuard[SupportsInt]:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def _is_real(value: object) -> TypeGuard[SupportsFloat]:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def _int(name: str, value: object, minimum: int = 0, hint: str = "") -> int:
    """Return ``value`` as an int >= ``minimum`` or raise naming the argument."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if not _is_int(value):
        raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__}){hint}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be {what}, got {value}{hint}")
    return value


class _Range(NamedTuple):
    """The reals from ``lo`` to ``hi`` (None: unbounded), each end closed unless it is open."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __str__(self) -> str:
        """As the errors say it, e.g. ``a finite number > 0.0``."""
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {self.lo}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {self.hi}")
        return "a finite number" + (" " + " and ".join(parts) if parts else "")

    def holds(self, v: float) -> bool:
        """Whether ``v`` is finite and in the range."""
        lo, hi = self.lo, self.hi
        return (
            math.isfinite(v)
            and (lo is None or (v > lo if self.lo_open else v >= lo))
            and (hi is None or (v < hi if self.hi_open else v <= hi))
        )


_ANY = _Range()
_NONNEG = _Range(0.0)
_POSITIVE = _Range(0.0, lo_open=True)
_UNIT = _Range(0.0, 1.0)


def _real(name: str, value: object, within: _Range = _ANY, hint: str = "") -> float:
    """Return ``value`` as a finite float ``within`` the range or raise."""
    if not _is_real(value):
        raise TypeError(f"{name} must be {within}, got {value!r} ({type(value).__name__}){hint}")
    value = float(value)
    if not within.holds(value):
        raise ValueError(f"{name} must be {within}, got {value!r}{hint}")
    return value


def _choice(name: str, value: object, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        opts = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {opts}, got {value!r}")
    return value


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def _int_list(
    name: str, values: object, nonempty: bool = False, nondecreasing: bool = False
) -> list[int]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of integers >= 0, got {values!r}")
    out = []
    for i, v in enumerate(values):
        out.append(_int(f"{name}[{i}]", v, 0))
    if nonempty and not out:
        raise ValueError(f"{name} must not be empty")
    if nondecreasing:
        for i in range(1, len(out)):
            if out[i] < out[i - 1]:
                raise ValueError(f"{name} must be sorted in increasing order, got {out!r}; sort it")
    return out


def _schedule(name: str, value: object) -> Schedule:
    """Accept a Schedule or a plain number (wrapped in :func:`constant`)."""
    if isinstance(value, Schedule):
        return value
    if _is_real(value):
        return constant(float(value))
    raise TypeError(
        f"{name} must be a Schedule or a number, got {value!r} ({type(value).__name__}); "
        "wrap a plain function with schedules.from_function(fn)"
    )


def _as_steps(step: object) -> Steps:
    """Validate ``step`` and return it as an int64 array (0-d for a scalar)."""
    if type(step) is int:  # fast path for the common case
        if 0 <= step < _MAX_STEP:
            return np.asarray(step, dtype=np.int64)
        raise ValueError(f"step must be an integer in [0, 2**53), got {step}")
    arr = np.asarray(step)
    kind = arr.dtype.kind
    if kind in "iu":
        pass
    elif kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
            raise ValueError(f"step must be a non-negative integer, got {step!r}")
    else:
        raise TypeError(
            f"step must be a non-negative integer or an array of them, got {step!r} "
            f"(dtype {arr.dtype})"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= _MAX_STEP):
        raise ValueError(
            "step must be in [0, 2**53): update numbers start at 0, got "
            f"min {arr.min()} and max {arr.max()}"
        )
    return arr.astype(np.int64, copy=False)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_fmt(v) for v in value)
        return f"[{inner}]"
    return repr(value)


def _operator(op: str, reflected: bool = False) -> Callable[[Schedule, Schedule | float], Schedule]:
    """The method behind ``schedule <op> other`` (``other <op> schedule`` when ``reflected``):
    a :class:`BinaryOp`, with a plain number as :func:`constant`."""

    def method(self: Schedule, other: Schedule | float) -> Schedule:
        if not isinstance(other, Schedule):
            if not _is_real(other):
                return NotImplemented  # type: ignore[no-any-return]  # NotImplemented is Any
            other = constant(float(other))
        return BinaryOp(op, other, self) if reflected else BinaryOp(op, self, other)

    return method


# --------------------------------------------------------------------------- base
class Schedule:
    """Base class: a value as a closed-form function of the update number ``k``.

    Subclasses implement ``_eval(k)``, taking an int64 array of valid steps (any shape,
    including 0-d) and returning a float64 array of the same shape, and list their
    constructor arguments in ``_fields`` (used by ``repr`` and equality).

    Arithmetic builds new schedules, evaluated pointwise::

        s * 0.5, 0.5 * s, s1 * s2, s + 1e-5, 1.0 - s, s / 2, -s

    A plain number in an expression acts as :func:`constant`.
    """

    _fields: tuple[str, ...] = ()
    _name: str = ""

    @overload
    def __call__(self, step: int | np.integer[Any]) -> float: ...
    @overload
    def __call__(self, step: npt.NDArray[np.integer[Any]] | Sequence[int]) -> FloatArray: ...
    def __call__(self, step: StepLike) -> float | FloatArray:
        """Value at update ``step`` (int -> float; array -> float64 array)."""
        k = _as_steps(step)
        out = np.asarray(self._eval(k), dtype=np.float64)
        if out.shape != k.shape:
            out = np.broadcast_to(out, k.shape).copy()
        if isinstance(step, (np.ndarray, list, tuple)):
            return out
        return float(out)

    def _eval(self, k: Steps) -> FloatArray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- presentation ---------------------------------------------------------
    def __repr__(self) -> str:
        name = self._name or type(self).__name__
        args = ", ".join(f"{f}={_fmt(getattr(self, f))}" for f in self._fields)
        return f"{name}({args})"

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    def __hash__(self) -> int:
        return hash((type(self), repr(self)))

    # -- composition ----------------------------------------------------------
    def per_epoch(self, steps_per_epoch: int) -> PerEpoch:
        """Evaluate this schedule at ``k // steps_per_epoch``.

        Turns an epoch-indexed schedule (e.g. ``step_decay(0.1, step_size=30)`` meaning
        30 epochs) into one that drives a per-update optimizer.
        """
        return PerEpoch(self, steps_per_epoch)

    __add__ = _operator("+")
    __radd__ = _operator("+", reflected=True)
    __sub__ = _operator("-")
    __rsub__ = _operator("-", reflected=True)
    __mul__ = _operator("*")
    __rmul__ = _operator("*", reflected=True)
    __truediv__ = _operator("/")
    __rtruediv__ = _operator("/", reflected=True)

    def __neg__(self) -> Schedule:
        return BinaryOp("*", constant(-1.0), self)


_OPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide}


class BinaryOp(Schedule):
    """Pointwise ``left <op> right`` of two schedules (built by arithmetic operators)."""

    _fields = ("op", "left", "right")

    def __init__(self, op: str, left: Schedule | float, right: Schedule | float) -> None:
        self.op = _choice("op", op, tuple(_OPS))
        self.left = _schedule("left", left)
        self.right = _schedule("right", right)

    def _eval(self, k: Steps) -> FloatArray:
        return _OPS[self.op](self.left._eval(k), self.right._eval(k))

    def __repr__(self) -> str:
        return f"({self.left!r} {self.op} {self.right!r})"


class PerEpoch(Schedule):
    r"""``schedule(k // steps_per_epoch)``: an epoch-indexed schedule driven per update.

    .. math:: v(k) = s(\lfloor k / \text{steps\_per\_epoch} \rfloor)

    Built by :meth:`Schedule.per_epoch`.
    """

    _fields = ("schedule", "steps_per_epoch")

    def __init__(self, schedule: Schedule | float, steps_per_epoch: int) -> None:
        self.schedule = _schedule("schedule", schedule)
        self.steps_per_epoch = _int("steps_per_epoch", steps_per_epoch, 1)

    def _eval(self, k: Steps) -> FloatArray:
        return self.schedule._eval(k // self.steps_per_epoch)

    def __repr__(self) -> str:
        return f"{self.schedule!r}.per_epoch({self.steps_per_epoch})"


# --------------------------------------------------------------------------- simple
class Constant(Schedule):
    r"""A constant value.

    .. math:: v(k) = \text{value}

    Same as Optax ``constant_schedule``; PyTorch's ``ConstantLR`` (a factor applied for
    the first ``total_iters`` updates) is ``piecewise_constant([T], [base * factor, base])``.
    """

    _name = "constant"
    _fields = ("value",)

    def __init__(self, value: float) -> None:
        self.value = _real("value", value)

    def _eval(self, k: Steps) -> FloatArray:
        return np.full(np.shape(k), self.value)

    def __repr__(self) -> str:
        return f"constant({self.value!r})"


class StepDecay(Schedule):
    r"""Multiply by ``gamma`` every ``step_size`` updates (PyTorch ``StepLR``).

    .. math:: v(k) = \text{init} \cdot \gamma^{\lfloor k / \text{step\_size} \rfloor}

    Identical to PyTorch's closed form. Optax spells it
    ``exponential_decay(init, step_size, gamma, staircase=True)`` and Keras
    ``ExponentialDecay(..., staircase=True)``, which :func:`exponential` also covers.
    """

    _name = "step_decay"
    _fields = ("init", "step_size", "gamma")

    def __init__(self, init: float, step_size: int, gamma: float = 0.1) -> None:
        self.init = _real("init", init)
        self.step_size = _int("step_size", step_size, 1)
        self.gamma = _real(
            "gamma", gamma, _NONNEG, hint="; gamma is the multiplicative decay factor, e.g. 0.1"
        )

    def _eval(self, k: Steps) -> FloatArray:
        return self.init * self.gamma ** (k // self.step_size).astype(np.float64)


class MultiStep(Schedule):
    r"""Multiply by ``gamma`` at every milestone (PyTorch ``MultiStepLR``).

    .. math:: v(k) = \text{init} \cdot \gamma^{\#\{m \in \text{milestones} : m \le k\}}

    i.e. ``init * gamma ** bisect_right(sorted(milestones), k)``. A milestone that appears
    twice counts twice (as in PyTorch); milestone 0 applies from the very first update.
    Milestones may be given in any order. Optax's ``piecewise_constant_schedule`` with
    every scale equal to ``gamma`` gives the same values.
    """

    _name = "multistep"
    _fields = ("init", "milestones", "gamma")

    def __init__(self, init: float, milestones: Iterable[int], gamma: float = 0.1) -> None:
        self.init = _real("init", init)
        self.milestones = sorted(_int_list("milestones", milestones))
        self.gamma = _real(
            "gamma", gamma, _NONNEG, hint="; gamma is the multiplicative decay factor, e.g. 0.1"
        )
        self._m = np.asarray(self.milestones, dtype=np.int64)

    def _eval(self, k: Steps) -> FloatArray:
        n = np.searchsorted(self._m, k, side="right")
        return self.init * self.gamma ** np.asarray(n, dtype=np.float64)

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("_m", None)
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._m = np.asarray(self.milestones, dtype=np.int64)


class Exponential(Schedule):
    r"""Exponential decay (Optax ``exponential_decay``; PyTorch ``ExponentialLR``).

    With :math:`c = k - \text{transition\_begin}` and
    :math:`p = c / \text{transition\_steps}` (floored when ``staircase``):

    .. math::
        v(k) = \begin{cases} \text{init} & c \le 0 \\
        \text{init} \cdot \text{decay\_rate}^{p} & c > 0 \end{cases}

    then clipped at ``end_value`` (from below if ``decay_rate < 1``, from above if
    ``decay_rate > 1``), as Optax does.

    With the defaults (``transition_steps=1``) this is PyTorch's
    ``ExponentialLR(gamma=decay_rate)``: ``init * decay_rate ** k``.  Keras
    ``ExponentialDecay(init, decay_steps, decay_rate, staircase)`` is the case
    ``transition_begin=0, end_value=None``.  Differences from Optax: Optax warns and falls
    back to a constant for ``transition_steps <= 0`` or ``decay_rate == 0`` and clamps a
    negative ``transition_begin`` to 0; here those are errors.  Without ``end_value`` a
    ``decay_rate > 1`` eventually overflows to ``inf``.
    """

    _name = "exponential"
    _fields = (
        "init",
        "decay_rate",
        "transition_steps",
        "staircase",
        "transition_begin",
        "end_value",
    )

    def __init__(
        self,
        init: float,
        decay_rate: float,
        transition_steps: int = 1,
        staircase: bool = False,
        transition_begin: int = 0,
        end_value: float | None = None,
    ) -> None:
        self.init = _real("init", init)
        self.decay_rate = _real(
            "decay_rate",
            decay_rate,
            _POSITIVE,
            hint="; use decay_rate < 1 to decay (e.g. 0.96) or constant(init) for no decay",
        )
        self.transition_steps = _int("transition_steps", transition_steps, 1)
        self.staircase = _bool("staircase", staircase)
        self.transition_begin = _int("transition_begin", transition_begin, 0)
        self.end_value = None if end_value is None else _real("end_value", end_value)

    def _eval(self, k: Steps) -> FloatArray:
        c = (k - self.transition_begin).astype(np.float64)
        p = c / self.transition_steps
        if self.staircase:
            p = np.floor(p)
        with np.errstate(over="ignore", under="ignore"):
            v = np.where(c <= 0, self.init, self.init * self.decay_rate ** np.maximum(p, 0.0))
        if self.end_value is not None:
            v = (
                np.maximum(v, self.end_value)
                if self.decay_rate < 1.0
                else np.minimum(v, self.end_value)
            )
        return v


class InverseTime(Schedule):
    r"""Inverse-time decay (Keras ``InverseTimeDecay``).

    .. math::
        v(k) = \frac{\text{init}}{1 + \text{decay\_rate} \cdot k / \text{decay\_steps}}

    with :math:`k / \text{decay\_steps}` floored when ``staircase``.  Same as Keras.
    Optax's ``inverse_time_decay`` is not a public schedule; PyTorch has none
    (``Adagrad(lr_decay=...)`` applies :math:`\text{lr} / (1 + (t-1)\,\text{lr\_decay})`
    inside the optimizer, i.e. ``inverse_time(lr, lr_decay, 1)``).
    """

    _name = "inverse_time"
    _fields = ("init", "decay_rate", "decay_steps", "staircase")

    def __init__(
        self, init: float, decay_rate: float, decay_steps: int, staircase: bool = False
    ) -> None:
        self.init = _real("init", init)
        self.decay_rate = _real("decay_rate", decay_rate, _NONNEG)
        self.decay_steps = _real("decay_steps", decay_steps, _POSITIVE)
        self.staircase = _bool("staircase", staircase)

    def _eval(self, k: Steps) -> FloatArray:
        p = k / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return self.init / (1.0 + self.decay_rate * p)


class InverseSqrt(Schedule):
    r"""Linear warmup, then inverse square root decay (Hugging Face ``get_inverse_sqrt_schedule``).

    With :math:`w` = ``warmup_steps`` and :math:`\tau` = ``timescale``
    (default :math:`w`, or 10000 when :math:`w = 0`, as Hugging Face):

    .. math::
        v(k) = \begin{cases}
        \text{init} \cdot k / \max(1, w) & k < w \\
        \text{init} / \sqrt{(k + \tau - w) / \tau} & k \ge w \end{cases}

    Same values as Hugging Face (which adapts big_vision's ``rsqrt``).  The decay part
    equals ``init * sqrt(w / k)`` when :math:`\tau = w`.  fairseq's ``inverse_sqrt``
    starts the warmup from ``warmup_init_lr`` and uses ``k + 1``; Optax has no equivalent.
    """

    _name = "inverse_sqrt"
    _fields = ("init", "warmup_steps", "timescale")

    def __init__(self, init: float, warmup_steps: int, timescale: float | None = None) -> None:
        self.init = _real("init", init)
        self.warmup_steps = _int("warmup_steps", warmup_steps, 0)
        if timescale is None:
            timescale = self.warmup_steps or 10_000
        self.timescale = _int("timescale", timescale, 1)

    def _eval(self, k: Steps) -> FloatArray:
        w, tau = self.warmup_steps, self.timescale
        kf = k.astype(np.float64)
        warm = self.init * (kf / max(1, w))
        decay = self.init / np.sqrt((np.maximum(kf, w) + (tau - w)) / tau)
        return np.where(k < w, warm, decay)


class Polynomial(Schedule):
    r"""Polynomial decay from ``init`` to ``end`` over ``total_steps``, then hold ``end``.

    .. math::
        v(k) = (\text{init} - \text{end}) \left(1 - \frac{\min(k, T)}{T}\right)^{\text{power}}
        + \text{end}

    With ``end=0`` this is PyTorch's ``PolynomialLR(total_iters=T, power)``:
    ``init * (1 - min(k, T) / T) ** power``.  With ``end`` it is Optax's
    ``polynomial_schedule(init, end, power, transition_steps=T)`` (without
    ``transition_begin``: use ``join([constant(init), polynomial(...)], [begin])``).
    Keras ``PolynomialDecay`` is the same with ``cycle=False``.

    ``total_steps=0`` raises ``ValueError``: Optax's ``polynomial_schedule`` with
    ``transition_steps <= 0`` instead logs a warning and returns the constant ``init``;
    fastopt refuses it because such a call is almost always a bug (an epoch count of 0,
    an integer division that rounded down).  Write ``constant(init)`` for that schedule.
    """

    _name = "polynomial"
    _fields = ("init", "total_steps", "end", "power")

    def __init__(self, init: float, total_steps: int, end: float = 0.0, power: float = 1.0) -> None:
        self.init = _real("init", init)
        self.total_steps = _int("total_steps", total_steps, 1)
        self.end = _real("end", end)
        self.power = _real("power", power, _POSITIVE)

    def _eval(self, k: Steps) -> FloatArray:
        T = self.total_steps
        frac = 1.0 - np.minimum(k, T) / T
        return (self.init - self.end) * frac**self.power + self.end


class Linear(Schedule):
    r"""Linear interpolation from ``start`` to ``end`` over ``total_steps``, then hold ``end``.

    .. math:: v(k) = \text{start} + (\text{end} - \text{start}) \frac{\min(k, T)}{T}

    PyTorch's ``LinearLR(start_factor=s, end_factor=e, total_iters=T)`` on a base rate
    ``b`` is ``linear(b * s, b * e, T)`` (PyTorch uses factors, here absolute values).
    Optax ``linear_schedule(start, end, T)`` gives the same values.

    ``total_steps=0`` raises ``ValueError``; Optax instead logs a warning and returns the
    constant ``start``.  Write ``constant(start)`` for that (or ``constant(end)``, which is
    what a zero-length transition arguably means: the two frameworks' silent choice is
    why fastopt asks).
    """

    _name = "linear"
    _fields = ("start", "end", "total_steps")

    def __init__(self, start: float, end: float, total_steps: int) -> None:
        self.start = _real("start", start)
        self.end = _real("end", end)
        self.total_steps = _int("total_steps", total_steps, 1)

    def _eval(self, k: Steps) -> FloatArray:
        T = self.total_steps
        return self.start + (self.end - self.start) * (np.minimum(k, T) / T)


class Cosine(Schedule):
    r"""Cosine annealing from ``init`` to ``final`` over ``total_steps``
    (PyTorch ``CosineAnnealingLR``).

    .. math::
        v(k) = \text{final} + (\text{init} - \text{final})
        \frac{1 + \cos(\pi \min(k, T) / T)}{2}

    For :math:`k \le T` this is PyTorch's closed form with ``T_max=T, eta_min=final``.
    After ``T`` the value **holds at** ``final`` (Optax ``cosine_decay_schedule`` and Keras
    ``CosineDecay`` do the same).  PyTorch instead keeps following the cosine, so the
    rate climbs back to ``init`` at :math:`2T`; pass ``periodic=True`` for that behaviour
    (then :math:`\min(k, T)` above becomes :math:`k`).  Optax's ``alpha`` is
    ``final / init``.

    ``exponent`` (Optax ``cosine_decay_schedule(..., exponent=p)``) raises the cosine factor
    to a power :math:`p > 0`:

    .. math::
        v(k) = \text{final} + (\text{init} - \text{final})
        \left(\frac{1 + \cos(\pi \min(k, T) / T)}{2}\right)^{p}

    which is Optax's :math:`\text{init}\,((1 - \alpha) c^p + \alpha)` with
    :math:`\alpha` = final / init.  ``exponent=1`` (the default) keeps PyTorch's operation
    order, so its values are PyTorch's bits.
    """

    _name = "cosine"
    _fields = ("init", "total_steps", "final", "periodic", "exponent")

    def __init__(
        self,
        init: float,
        total_steps: int,
        final: float = 0.0,
        periodic: bool = False,
        exponent: float = 1.0,
    ) -> None:
        self.init = _real("init", init)
        self.total_steps = _int("total_steps", total_steps, 1)
        self.final = _real("final", final)
        self.periodic = _bool("periodic", periodic)
        self.exponent = _real("exponent", exponent, _POSITIVE)

    def _eval(self, k: Steps) -> FloatArray:
        T = self.total_steps
        kk = k if self.periodic else np.minimum(k, T)
        if self.exponent != 1.0:
            # one vectorised power for scalars and arrays alike (NumPy's scalar and SIMD
            # pow may differ in the last bit)
            c = 0.5 * (1 + np.cos(np.pi * np.atleast_1d(kk) / T))
            out = self.final + (self.init - self.final) * np.power(c, self.exponent)
            return out.reshape(np.shape(kk))
        # same operation order as torch's closed form
        return self.final + (self.init - self.final) * (1 + np.cos(np.pi * kk / T)) / 2

    def __setstate__(
        self, state: dict[str, Any]
    ) -> None:  # schedules pickled before ``exponent`` existed
        self.__dict__.update(state)
        self.__dict__.setdefault("exponent", 1.0)


class CosineRestarts(Schedule):
    r"""Cosine annealing with warm restarts (SGDR; PyTorch ``CosineAnnealingWarmRestarts``).

    The run is split into cycles :math:`i = 0, 1, \ldots` of length
    :math:`T_i = T_0 m^i` (:math:`T_0` = ``period``, :math:`m` = ``period_mult``).
    Cycle :math:`i` starts at :math:`S_i = T_0 (m^i - 1) / (m - 1)` (:math:`i T_0` when
    :math:`m = 1`) and :math:`T_{cur} = k - S_i`:

    .. math::
        v(k) = \text{final} + (\text{init} - \text{final})\, \text{decay}^{i}\,
        \frac{1 + \cos(\pi T_{cur} / T_i)}{2}

    With ``decay=1`` this is PyTorch's ``CosineAnnealingWarmRestarts(T_0, T_mult,
    eta_min=final)`` stepped once per update.  ``decay`` scales the height above
    ``final`` after each restart, like Keras ``CosineDecayRestarts(m_mul=decay,
    alpha=final/init)``; Keras's ``t_mul`` may be fractional, here (as in PyTorch)
    ``period_mult`` is an integer.  The cycle index is found in closed form (a logarithm,
    then corrected with exact integer arithmetic so boundaries never round the wrong way).
    """

    _name = "cosine_restarts"
    _fields = ("init", "period", "period_mult", "final", "decay")

    def __init__(
        self, init: float, period: int, period_mult: int = 1, final: float = 0.0, decay: float = 1.0
    ) -> None:
        self.init = _real("init", init)
        self.period = _int("period", period, 1)
        self.period_mult = _int("period_mult", period_mult, 1)
        self.final = _real("final", final)
        self.decay = _real("decay", decay, _NONNEG)

    def _cycle(self, k: Steps) -> tuple[Steps, Steps, FloatArray]:
        """Return (i, T_cur, T_i): cycle index and position (int64), cycle length.

        With ``period_mult > 1`` there are at most 63 cycles before a start passes the
        int64 range, so their starts are listed once with Python's exact integers and the
        cycle of each step is found by binary search (no power can overflow)."""
        T0, m = self.period, self.period_mult
        if m == 1:
            return k // T0, k % T0, np.full(np.shape(k), T0, dtype=np.int64)
        starts, lengths = self._starts()
        i = np.searchsorted(starts, k, side="right") - 1
        return i, k - starts[i], lengths[i]

    def _starts(self) -> tuple[Steps, FloatArray]:
        cached: tuple[Steps, FloatArray] | None = self.__dict__.get("_starts_cache")
        if cached is not None:
            return cached
        T0, m = self.period, self.period_mult
        starts: list[int] = []
        lengths: list[float] = []
        s, t = 0, T0
        while s <= np.iinfo(np.int64).max:
            starts.append(s)
            lengths.append(float(t))  # T_cur / T_i is a float64 division, as before
            s, t = s + t, t * m
        cached = (np.array(starts, dtype=np.int64), np.array(lengths, dtype=np.float64))
        self.__dict__["_starts_cache"] = cached
        return cached

    def _eval(self, k: Steps) -> FloatArray:
        i, t_cur, t_i = self._cycle(k)
        amp: float | FloatArray = self.init - self.final
        if self.decay != 1.0:
            amp = amp * self.decay ** i.astype(np.float64)
        return self.final + amp * (1 + np.cos(np.pi * t_cur / t_i)) / 2


# --------------------------------------------------------------------------- composites
class Join(Schedule):
    r"""Run ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]``, ...
    (Optax ``join_schedules``).

    .. math::
        v(k) = s_i(k - b_{i-1}) \quad \text{for } b_{i-1} \le k < b_i

    with :math:`b_{-1} = 0` and :math:`b_n = \infty`: each later schedule sees the step
    counted from its own boundary, exactly as Optax.  PyTorch's ``SequentialLR`` does
    the same for closed-form schedules.  ``len(schedules) == len(boundaries) + 1``.
    Plain numbers are accepted as constant schedules.
    """

    _name = "join"
    _fields = ("schedules", "boundaries")

    def __init__(self, schedules: Iterable[Schedule | float], boundaries: Iterable[int]) -> None:
        if isinstance(schedules, Schedule) or not hasattr(schedules, "__iter__"):
            raise TypeError(f"schedules must be a list of schedules, got {schedules!r}")
        self.schedules = [_schedule(f"schedules[{i}]", s) for i, s in enumerate(schedules)]
        self.boundaries = _int_list("boundaries", boundaries, nondecreasing=True)
        if len(self.schedules) != len(self.boundaries) + 1:
            raise ValueError(
                f"join needs one more schedule than boundaries, got {len(self.schedules)} "
                f"schedules and {len(self.boundaries)} boundaries"
            )

    def _eval(self, k: Steps) -> FloatArray:
        if k.ndim == 0:  # one step: evaluate only the schedule in charge
            i = bisect_right(self.boundaries, int(k))
            return self.schedules[i]._eval(k - (self.boundaries[i - 1] if i > 0 else 0))
        b = np.asarray(self.boundaries, dtype=np.int64)
        seg = np.searchsorted(b, k, side="right")
        out = np.empty(np.shape(k), dtype=np.float64)
        for i, s in enumerate(self.schedules):
            mask = seg == i
            if not np.any(mask):
                continue
            shift = self.boundaries[i - 1] if i > 0 else 0
            out[mask] = s._eval(k[mask] - shift)
        return out


class PiecewiseConstant(Schedule):
    r"""``values[i]`` for ``boundaries[i-1] <= k < boundaries[i]``.

    .. math:: v(k) = \text{values}[\#\{b \in \text{boundaries} : b \le k\}]

    The switch happens **at** the boundary (update ``boundaries[i]`` already uses
    ``values[i+1]``), as in Optax ``piecewise_constant_schedule`` and PyTorch
    ``MultiStepLR``.  Keras ``PiecewiseConstantDecay`` switches one step later
    (``values[i+1]`` for ``k > boundaries[i]``); to reproduce Keras pass
    ``[b + 1 for b in boundaries]``.  Optax multiplies scales; here values are absolute.
    """

    _name = "piecewise_constant"
    _fields = ("boundaries", "values")

    def __init__(self, boundaries: Iterable[int], values: Iterable[float]) -> None:
        self.boundaries = _int_list("boundaries", boundaries, nondecreasing=True)
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise TypeError(f"values must be a list of numbers, got {values!r}")
        self.values = [_real(f"values[{i}]", v) for i, v in enumerate(values)]
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                f"values must have len(boundaries) + 1 = {len(self.boundaries) + 1} entries, "
                f"got {len(self.values)}"
            )

    def _eval(self, k: Steps) -> FloatArray:
        idx = np.searchsorted(np.asarray(self.boundaries, dtype=np.int64), k, side="right")
        return np.asarray(self.values, dtype=np.float64)[idx]


class Warmup(Schedule):
    r"""Linear warmup from ``start`` to ``schedule(0)``, then ``schedule`` shifted by the warmup.

    .. math::
        v(k) = \begin{cases}
        \text{start} + (s(0) - \text{start})\, k / w & k < w \\
        s(k - w) & k \ge w \end{cases}

    so the wrapped schedule starts its own clock after the warmup (as Optax
    ``join_schedules([linear_schedule(start, peak, w), s], [w])``; Hugging Face's
    ``get_*_schedule_with_warmup`` instead decay over ``num_training_steps - w``, the
    same thing).  ``warmup_steps=0`` returns ``schedule`` values unchanged.
    """

    _name = "warmup"
    _fields = ("schedule", "warmup_steps", "start")

    def __init__(self, schedule: Schedule | float, warmup_steps: int, start: float = 0.0) -> None:
        self.schedule = _schedule("schedule", schedule)
        self.warmup_steps = _int("warmup_steps", warmup_steps, 0)
        self.start = _real("start", start)

    def _eval(self, k: Steps) -> FloatArray:
        w = self.warmup_steps
        if w == 0:
            return self.schedule._eval(k)
        if k.ndim == 0:  # one step: evaluate only the branch in use
            if k >= w:
                return self.schedule._eval(k - w)
            peak = float(self.schedule._eval(np.asarray(0, dtype=np.int64)))
            return np.asarray(self.start + (peak - self.start) * (k / w))
        out = np.empty(np.shape(k), dtype=np.float64)
        warm = k < w
        if np.any(warm):
            peak = float(self.schedule._eval(np.asarray(0, dtype=np.int64)))
            out[warm] = self.start + (peak - self.start) * (k[warm] / w)
        rest = ~warm
        if np.any(rest):
            out[rest] = self.schedule._eval(k[rest] - w)
        return out


def warmup_cosine(
    peak: float, warmup_steps: int, decay_steps: int, start: float = 0.0, final: float = 0.0
) -> Schedule:
    r"""Linear warmup to ``peak``, then cosine decay to ``final``
    (Optax ``warmup_cosine_decay_schedule``).

    .. math::
        v(k) = \begin{cases}
        \text{start} + (\text{peak} - \text{start})\, k / w & k < w \\
        \text{final} + (\text{peak} - \text{final})
        \frac{1 + \cos(\pi \min(k - w, D - w) / (D - w))}{2} & k \ge w \end{cases}

    with :math:`w` = ``warmup_steps`` and :math:`D` = ``decay_steps``.  As in Optax,
    ``decay_steps`` **includes** the warmup: the value reaches ``final`` at update
    :math:`D` and holds there.  Keras ``CosineDecay(warmup_steps=w, decay_steps=D')``
    counts the decay *after* the warmup (:math:`D = w + D'`).  Returns a :func:`join`.

    Degenerate lengths: ``warmup_steps=0`` is plain :func:`cosine` decay (no warmup), as in
    Optax.  ``decay_steps <= warmup_steps`` (no decay phase left) raises ``ValueError``;
    Optax builds a cosine of zero length there, which gives a constant ``peak`` (or
    ``final``) depending on its version.  A warmup followed by a constant is
    ``warmup(constant(peak), w)``.
    """
    peak = _real("peak", peak)
    warmup_steps = _int("warmup_steps", warmup_steps, 0)
    decay_steps = _int("decay_steps", decay_steps, 1)
    if decay_steps <= warmup_steps:
        raise ValueError(
            f"decay_steps must be > warmup_steps ({warmup_steps}) because it includes the "
            f"warmup (Optax convention), got {decay_steps}; pass warmup_steps + the decay length"
        )
    start = _real("start", start)
    final = _real("final", final)
    decay = Cosine(peak, decay_steps - warmup_steps, final)
    if warmup_steps == 0:
        return decay
    return Join([Linear(start, peak, warmup_steps), decay], [warmup_steps])


class WSD(Schedule):
    r"""Warmup-stable-decay (Hugging Face ``get_wsd_schedule``; MiniCPM).

    With :math:`w, s, d` the warmup, stable and decay lengths:

    .. math::
        v(k) = \begin{cases}
        \text{final} + (\text{peak} - \text{final})\, k / \max(1, w) & k < w \\
        \text{peak} & w \le k < w + s \\
        \text{final} + (\text{peak} - \text{final})\, f\!\left(\frac{k - w - s}{\max(1, d)}\right)
          & w + s \le k < w + s + d \\
        \text{final} & k \ge w + s + d \end{cases}

    with :math:`f(p) = (1 + \cos \pi p)/2` (``decay_type="cosine"``, the default),
    :math:`1 - p` (``"linear"``) or :math:`1 - \sqrt{p}` (``"1-sqrt"``).  As in Hugging Face
    (``min_lr_ratio = final / peak``) the warmup starts from ``final``, not from 0.
    Hugging Face's ``warmup_type`` other than linear and ``num_cycles`` are not offered.
    """

    _name = "wsd"
    _fields = ("peak", "warmup_steps", "stable_steps", "decay_steps", "final", "decay_type")

    def __init__(
        self,
        peak: float,
        warmup_steps: int,
        stable_steps: int,
        decay_steps: int,
        final: float = 0.0,
        decay_type: str = "cosine",
    ) -> None:
        self.peak = _real("peak", peak)
        self.warmup_steps = _int("warmup_steps", warmup_steps, 0)
        self.stable_steps = _int("stable_steps", stable_steps, 0)
        self.decay_steps = _int("decay_steps", decay_steps, 0)
        self.final = _real("final", final)
        self.decay_type = _choice("decay_type", decay_type, ("cosine", "linear", "1-sqrt"))

    def _eval(self, k: Steps) -> FloatArray:
        w, s, d = self.warmup_steps, self.stable_steps, self.decay_steps
        kf = k.astype(np.float64)
        amp = self.peak - self.final
        warm = self.final + amp * (kf / max(1, w))
        p = np.clip((kf - w - s) / max(1, d), 0.0, 1.0)
        if self.decay_type == "cosine":
            f = 0.5 * (1.0 + np.cos(np.pi * p))
        elif self.decay_type == "linear":
            f = 1.0 - p
        else:
            f = 1.0 - np.sqrt(p)
        dec = self.final + amp * f
        return np.select(
            [k < w, k < w + s, k < w + s + d], [warm, np.full(k.shape, self.peak), dec], self.final
        )


class PiecewiseInterpolate(Schedule):
    r"""Values at boundaries joined by linear or cosine pieces
    (Optax ``piecewise_interpolate_schedule``).

    ``boundaries_and_scales`` maps boundary steps :math:`b_1 < b_2 < \dots < b_n` to
    factors :math:`f_i \ge 0`.  The value at :math:`b_i` is
    :math:`v_i = \text{init} \prod_{j \le i} f_j` (:math:`b_0 = 0`, :math:`v_0 = \text{init}`);
    between two boundaries the value moves from :math:`v_{i-1}` to :math:`v_i`:

    .. math::
        v(k) = \begin{cases}
        v_{i-1} + (v_i - v_{i-1})\, p & \text{interpolate="linear"} \\
        v_i + \frac{v_{i-1} - v_i}{2}\,(1 + \cos \pi p) & \text{interpolate="cosine"}
        \end{cases}
        \qquad p = \frac{k - b_{i-1}}{b_i - b_{i-1}},\ b_{i-1} \le k < b_i

    and :math:`v(k) = v_n` for :math:`k \ge b_n` (``init`` throughout when there are no
    boundaries).  The same arithmetic as Optax.  Difference: a boundary at 0 or two
    equal boundaries make an empty piece, which Optax turns into NaN (0 / 0 multiplied by
    its indicator); here an empty piece is skipped, so the value jumps to the product of
    the factors given so far.  Boundaries must be integers >= 0 and factors finite and
    >= 0 (Optax also refuses negative factors).
    """

    _name = "piecewise_interpolate"
    _fields = ("interpolate", "init", "boundaries_and_scales")

    def __init__(
        self, interpolate: str, init: float, boundaries_and_scales: dict[int, float] | None = None
    ) -> None:
        self.interpolate = _choice("interpolate", interpolate, ("linear", "cosine"))
        self.init = _real("init", init)
        items = {} if boundaries_and_scales is None else boundaries_and_scales
        if not isinstance(items, dict):
            raise TypeError(
                "boundaries_and_scales must be a dict {boundary step: factor}, "
                f"got {boundaries_and_scales!r}"
            )
        pairs = []
        for b, f in items.items():
            pairs.append(
                (
                    _int(f"boundaries_and_scales key {b!r}", b, 0),
                    _real(f"boundaries_and_scales[{b!r}]", f, _NONNEG),
                )
            )
        pairs.sort()
        self.boundaries_and_scales = dict(pairs)

    def _table(self) -> tuple[Steps, FloatArray]:
        cached = self.__dict__.get("_table_cache")
        if cached is None:
            bounds = [0] + list(self.boundaries_and_scales)
            values = np.cumprod([self.init] + list(self.boundaries_and_scales.values()))
            cached = (np.asarray(bounds, dtype=np.int64), values.astype(np.float64))
            self.__dict__["_table_cache"] = cached
        return cached

    def _eval(self, k: Steps) -> FloatArray:
        bounds, values = self._table()
        if len(bounds) == 1:
            return np.full(k.shape, self.init)
        # piece i covers [bounds[i], bounds[i+1]); side="right" skips empty pieces
        i = np.searchsorted(bounds, k, side="right") - 1
        last = i >= len(bounds) - 1
        j = np.minimum(i, len(bounds) - 2)
        lo, hi = bounds[j], bounds[j + 1]
        v0, v1 = values[j], values[j + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = (k - lo) / (hi - lo)
        if self.interpolate == "linear":
            inner = (v1 - v0) * pct + v0
        else:
            inner = v1 + (v0 - v1) / 2.0 * (np.cos(np.pi * pct) + 1)
        out: FloatArray = np.where(last, values[-1], inner)
        return out


def linear_onecycle(
    total_steps: int,
    peak: float,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> PiecewiseInterpolate:
    r"""Optax's ``linear_onecycle_schedule``: up, down, then a final linear anneal.

    A :class:`PiecewiseInterpolate` (``"linear"``) from ``init = peak / div_factor`` up to
    ``peak`` at step :math:`\lfloor \text{pct\_start}\, T \rfloor`, back down to ``init``
    at :math:`\lfloor \text{pct\_final}\, T \rfloor`, then to
    ``init / final_div_factor`` at :math:`T` = ``total_steps``, held afterwards.

    This differs from PyTorch's ``OneCycleLR`` (:func:`one_cycle`), which has two phases
    (or three with ``three_phase=True``, whose third phase ends at ``total_steps - 1``),
    anneals by cosine by default and ends at ``init / final_div_factor`` one step
    earlier.  ``total_steps`` must be >= 1 (Optax raises for 0 too).  When a phase has
    length 0 (tiny ``total_steps``), Optax returns NaN; here the schedule jumps (see
    :class:`PiecewiseInterpolate`).
    """
    T = _int("total_steps", total_steps, 1)
    peak = _real("peak", peak)
    pct_start = _real("pct_start", pct_start, _UNIT)
    pct_final = _real("pct_final", pct_final, _UNIT)
    if pct_final < pct_start:
        raise ValueError(f"pct_final ({pct_final}) must be >= pct_start ({pct_start})")
    div_factor = _real("div_factor", div_factor, _POSITIVE)
    final_div_factor = _real("final_div_factor", final_div_factor, _POSITIVE)
    marks = {}
    # Optax builds a dict, so a later entry with the same step replaces an earlier one.
    for b, f in (
        (int(pct_start * T), div_factor),
        (int(pct_final * T), 1.0 / div_factor),
        (T, 1.0 / final_div_factor),
    ):
        marks[b] = f
    return PiecewiseInterpolate("linear", peak / div_factor, marks)


# --------------------------------------------------------------------------- one-cycle
class _OneCycleBase(Schedule):
    """Shared phase logic of PyTorch's ``OneCycleLR`` (values given by ``_phase_values``)."""

    def _phase_values(self) -> list[tuple[float, float]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _setup(self, total_steps: int, pct_start: float, anneal: str, three_phase: bool) -> None:
        self.total_steps = _int("total_steps", total_steps, 2)
        self.pct_start = _real("pct_start", pct_start, _Range(0.0, 1.0, lo_open=True, hi_open=True))
        self.anneal = _choice("anneal", anneal, ("cos", "linear"))
        self.three_phase = _bool("three_phase", three_phase)
        T = self.total_steps
        ends = self._ends()
        prev = 0.0
        for e in ends:
            if not e > prev:
                raise ValueError(
                    f"pct_start={self.pct_start} with total_steps={T} gives an empty phase "
                    f"(phase ends {ends}); each phase must last more than one step: "
                    "increase total_steps or move pct_start away from 0 "
                    + ("and 0.5" if self.three_phase else "and 1")
                )
            prev = e

    def _ends(self) -> list[float]:
        T = self.total_steps
        ends = [float(self.pct_start * T) - 1]
        if self.three_phase:
            ends.append(float(2 * self.pct_start * T) - 2)
        ends.append(T - 1)
        return ends

    def _anneal(self, start: float, end: float, pct: FloatArray) -> FloatArray:
        if self.anneal == "cos":
            return end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1)
        return (end - start) * pct + start

    def _eval(self, k: Steps) -> FloatArray:
        # PyTorch raises past total_steps; here the schedule holds at its last value.
        kk = np.minimum(k, self.total_steps - 1).astype(np.float64)
        vals = self._phase_values()
        start_step = 0.0
        conds, choices = [], []
        ends = self._ends()
        for i, (e, (a, b)) in enumerate(zip(ends, vals)):
            pct = (kk - start_step) / (e - start_step)
            conds.append(kk <= e if i < len(ends) - 1 else np.ones(kk.shape, dtype=bool))
            choices.append(self._anneal(a, b, pct))
            start_step = e
        return np.select(conds, choices)


class OneCycle(_OneCycleBase):
    r"""The 1cycle policy, exactly as PyTorch ``OneCycleLR`` (learning rate).

    With :math:`\eta_0 = \text{max\_lr} / \text{div\_factor}` and
    :math:`\eta_{min} = \eta_0 / \text{final\_div\_factor}`, the phases end at updates
    :math:`e_1 = p T - 1` and :math:`e_2 = T - 1` (``three_phase``: :math:`p T - 1`,
    :math:`2 p T - 2`, :math:`T - 1`), :math:`p` = ``pct_start``, :math:`T` = ``total_steps``.
    In the phase :math:`(e_{j-1}, e_j]` (with :math:`e_0 = 0`),
    :math:`\rho = (k - e_{j-1}) / (e_j - e_{j-1})` and the value anneals from :math:`a_j`
    to :math:`b_j`:

    .. math::
        \text{cos: } v = b_j + \frac{a_j - b_j}{2}(1 + \cos \pi \rho), \qquad
        \text{linear: } v = a_j + (b_j - a_j)\rho

    Two phases: :math:`\eta_0 \to \text{max\_lr} \to \eta_{min}`; three phases:
    :math:`\eta_0 \to \text{max\_lr} \to \eta_0 \to \eta_{min}`.  Matches PyTorch for
    :math:`0 \le k < T`; PyTorch raises after :math:`T` steps, this holds at
    :math:`\eta_{min}`.  Optax ``cosine_onecycle_schedule`` uses different phase ends
    (no ``- 1``).  The matching momentum schedule is :meth:`momentum` /
    :func:`one_cycle_momentum`.
    """

    _name = "one_cycle"
    _fields = (
        "max_lr",
        "total_steps",
        "pct_start",
        "anneal",
        "div_factor",
        "final_div_factor",
        "three_phase",
    )

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        anneal: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ) -> None:
        self.max_lr = _real("max_lr", max_lr)
        self.div_factor = _real("div_factor", div_factor, _POSITIVE)
        self.final_div_factor = _real("final_div_factor", final_div_factor, _POSITIVE)
        self._setup(total_steps, pct_start, anneal, three_phase)

    def _phase_values(self) -> list[tuple[float, float]]:
        initial = self.max_lr / self.div_factor
        low = initial / self.final_div_factor
        if self.three_phase:
            return [(initial, self.max_lr), (self.max_lr, initial), (initial, low)]
        return [(initial, self.max_lr), (self.max_lr, low)]

    def momentum(self, base_momentum: float = 0.85, max_momentum: float = 0.95) -> OneCycleMomentum:
        """The momentum (or beta1) schedule PyTorch pairs with this lr (``cycle_momentum=True``)."""
        return OneCycleMomentum(
            self.total_steps,
            self.pct_start,
            self.anneal,
            base_momentum,
            max_momentum,
            self.three_phase,
        )


class OneCycleMomentum(_OneCycleBase):
    r"""Momentum (or Adam's beta1) of PyTorch ``OneCycleLR(cycle_momentum=True)``.

    Same phases :math:`e_j` and annealing as :func:`one_cycle`, cycled inversely to the rate:
    ``max_momentum -> base_momentum`` while the rate rises, then back to
    ``max_momentum`` (three phases: ``max -> base -> max -> max``).  With ``anneal="cos"``,
    in the first phase (:math:`\rho = k / e_1`):

    .. math::
        v(k) = \text{base} + \frac{\text{max} - \text{base}}{2}(1 + \cos \pi \rho)

    Matches PyTorch for :math:`0 \le k < T`, which writes it into
    ``group['momentum']`` (SGD, RMSprop) or ``group['betas'][0]`` (Adam, AdamW).
    """

    _name = "one_cycle_momentum"
    _fields = ("total_steps", "pct_start", "anneal", "base_momentum", "max_momentum", "three_phase")

    def __init__(
        self,
        total_steps: int,
        pct_start: float = 0.3,
        anneal: str = "cos",
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        three_phase: bool = False,
    ) -> None:
        self.base_momentum = _real("base_momentum", base_momentum)
        self.max_momentum = _real("max_momentum", max_momentum)
        self._setup(total_steps, pct_start, anneal, three_phase)

    def _phase_values(self) -> list[tuple[float, float]]:
        lo, hi = self.base_momentum, self.max_momentum
        if self.three_phase:
            return [(hi, lo), (lo, hi), (hi, hi)]
        return [(hi, lo), (lo, hi)]


# --------------------------------------------------------------------------- cyclic
class _CyclicBase(Schedule):
    def _setup(
        self, step_size_up: int, step_size_down: int | None, mode: str, gamma: float
    ) -> None:
        self.step_size_up = _int("step_size_up", step_size_up, 1)
        self.step_size_down = (
            None if step_size_down is None else _int("step_size_down", step_size_down, 1)
        )
        self.mode = _choice("mode", mode, ("triangular", "triangular2", "exp_range"))
        self.gamma = _real("gamma", gamma, _POSITIVE)

    def _shape(self, k: Steps) -> tuple[FloatArray, float | FloatArray]:
        """(scale_factor * scale) of PyTorch ``CyclicLR.get_lr``, same operation order."""
        up = float(self.step_size_up)
        down = float(self.step_size_down) if self.step_size_down is not None else up
        total = up + down
        ratio = up / total
        cycle = np.floor(1 + k / total)
        x = 1.0 + k / total - cycle
        f = np.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        scale: float | FloatArray
        if self.mode == "triangular":
            scale = 1.0
        elif self.mode == "triangular2":
            with np.errstate(over="ignore"):  # 2**(c-1) -> inf far out: scale -> 0, as in PyTorch
                scale = 1 / (2.0 ** (cycle - 1))
        else:
            with np.errstate(under="ignore"):
                scale = self.gamma ** k.astype(np.float64)
        return f, scale


class Cyclic(_CyclicBase):
    r"""Cyclical learning rate, exactly as PyTorch ``CyclicLR`` (Smith, 2017).

    With :math:`N` = ``step_size_up + step_size_down``, :math:`r` = ``step_size_up / N``:

    .. math::
        c = \lfloor 1 + k / N \rfloor, \quad x = 1 + k / N - c, \quad
        f = \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & x > r \end{cases}

    .. math:: v(k) = \text{base\_lr} + (\text{max\_lr} - \text{base\_lr})\, f \cdot s

    with :math:`s = 1` (``"triangular"``), :math:`2^{-(c-1)}` (``"triangular2"``) or
    :math:`\gamma^k` (``"exp_range"``, PyTorch's ``scale_mode='iterations'``).
    ``step_size_down=None`` means ``step_size_up``.  PyTorch's custom ``scale_fn`` is not
    offered: multiply by another schedule instead.  The matching momentum schedule is
    :meth:`momentum` / :func:`cyclic_momentum`.
    """

    _name = "cyclic"
    _fields = ("base_lr", "max_lr", "step_size_up", "step_size_down", "mode", "gamma")

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        self.base_lr = _real("base_lr", base_lr)
        self.max_lr = _real("max_lr", max_lr)
        self._setup(step_size_up, step_size_down, mode, gamma)

    def _eval(self, k: Steps) -> FloatArray:
        f, scale = self._shape(k)
        return np.asarray(self.base_lr + (self.max_lr - self.base_lr) * f * scale)

    def momentum(self, base_momentum: float = 0.8, max_momentum: float = 0.9) -> CyclicMomentum:
        """The momentum schedule PyTorch pairs with this rate (``cycle_momentum=True``)."""
        return CyclicMomentum(
            base_momentum,
            max_momentum,
            self.step_size_up,
            self.step_size_down,
            self.mode,
            self.gamma,
        )


class CyclicMomentum(_CyclicBase):
    r"""Momentum of PyTorch ``CyclicLR(cycle_momentum=True)``: cycled inversely to the rate.

    .. math::
        v(k) = \text{max\_momentum}
               - (\text{max\_momentum} - \text{base\_momentum})\, f \cdot s

    with :math:`f, s` as in :func:`cyclic`.
    """

    _name = "cyclic_momentum"
    _fields = ("base_momentum", "max_momentum", "step_size_up", "step_size_down", "mode", "gamma")

    def __init__(
        self,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        self.base_momentum = _real("base_momentum", base_momentum)
        self.max_momentum = _real("max_momentum", max_momentum)
        self._setup(step_size_up, step_size_down, mode, gamma)

    def _eval(self, k: Steps) -> FloatArray:
        f, scale = self._shape(k)
        return np.asarray(self.max_momentum - (self.max_momentum - self.base_momentum) * f * scale)


# --------------------------------------------------------------------------- from_function
class FromFunction(Schedule):
    r"""Wrap a plain callable ``fn(step: int) -> float``.

    .. math:: v(k) = \text{fn}(k)

    Array evaluation calls ``fn`` once per element (like ``np.vectorize``) unless
    ``vectorized=True``, in which case ``fn`` receives the int64 array and must return an
    array of the same shape.  Pickles if ``fn`` does (a module-level function, not a lambda).
    """

    _name = "from_function"
    _fields = ("fn", "vectorized")

    def __init__(self, fn: Callable[[Any], Any], vectorized: bool = False) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable as fn(step) -> float, got {fn!r}")
        self.fn = fn
        self.vectorized = _bool("vectorized", vectorized)

    def _eval(self, k: Steps) -> FloatArray:
        if self.vectorized:
            return np.asarray(self.fn(k), dtype=np.float64)
        if k.ndim == 0:
            return np.asarray(float(self.fn(int(k))))
        flat = np.fromiter(
            (float(self.fn(int(x))) for x in k.ravel()), dtype=np.float64, count=k.size
        )
        return flat.reshape(k.shape)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", None) or repr(self.fn)
        mod = getattr(self.fn, "__module__", None)
        name = f"{mod}.{name}" if mod and name and "<" not in name else name
        extra = ", vectorized=True" if self.vectorized else ""
        return f"from_function({name}{extra})"


# --------------------------------------------------------------------------- plateau
class ReduceOnPlateau(Schedule):
    r"""Reduce the value when a metric stops improving (PyTorch ``ReduceLROnPlateau``).

    The only stateful schedule.  ``observe(metric)`` is one PyTorch
    ``scheduler.step(metric)``; ``schedule(k)`` returns the current value for any ``k``
    (the step is ignored, so it can follow a warmup inside :func:`join`).

    On each observation, with ``best`` the best metric so far: the metric is *better*
    when (``mode="min"``) :math:`m < \text{best}(1 - \theta)` (``threshold_mode="rel"``)
    or :math:`m < \text{best} - \theta` (``"abs"``), and mirrored for ``mode="max"``.
    A better metric resets the count of bad observations, otherwise it is incremented;
    during cooldown the count is held at 0.  When the count exceeds ``patience``:

    .. math:: v \leftarrow \max(v \cdot \text{factor}, \text{min\_lr})
              \quad \text{if } v - \max(v \cdot \text{factor}, \text{min\_lr}) > \text{eps}

    then cooldown restarts and the count resets.  This is PyTorch's logic step for step;
    Keras ``ReduceLROnPlateau`` uses ``min_delta`` instead of the relative threshold and
    counts patience differently (``>=``).  ``state_dict()`` holds only plain Python
    numbers and strings (``best`` is ``None`` before the first observation), so it can be
    stored as JSON or in an ``.npz`` checkpoint.
    """

    _name = "ReduceOnPlateau"
    _fields = (
        "init",
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "min_lr",
        "eps",
    )
    _state = ("value", "best", "num_bad_epochs", "cooldown_counter", "num_observed")

    def __init__(
        self,
        init: float,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        self.init = _real("init", init)
        self.mode = _choice("mode", mode, ("min", "max"))
        self.factor = _real(
            "factor",
            factor,
            _Range(0.0, 1.0, hi_open=True),
            hint="; the value is multiplied by factor on a plateau, e.g. 0.1",
        )
        self.patience = _int("patience", patience, 0)
        self.threshold = _real("threshold", threshold, _NONNEG)
        self.threshold_mode = _choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = _int("cooldown", cooldown, 0)
        self.min_lr = _real("min_lr", min_lr)
        self.eps = _real("eps", eps, _NONNEG)
        self.reset()

    def reset(self) -> None:
        """Forget all observations: back to ``init``."""
        self.value = self.init
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.num_observed = 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def observe(self, metric: SupportsFloat | str) -> float:
        """Feed one metric value (one PyTorch ``scheduler.step(metric)``); return the new value."""
        try:
            current = float(metric)
        except (TypeError, ValueError):
            raise TypeError(
                f"metric must be a number, got {metric!r} ({type(metric).__name__})"
            ) from None
        self.num_observed += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new = max(self.value * self.factor, self.min_lr)
            if self.value - new > self.eps:
                self.value = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.value

    step = observe  # PyTorch spelling

    def _eval(self, k: Steps) -> FloatArray:
        return np.full(np.shape(k), self.value)

    def state_dict(self) -> dict[str, Any]:
        """Configuration and state as a dict of plain Python numbers and strings."""
        d = {f: getattr(self, f) for f in self._fields}
        d.update(
            value=float(self.value),
            best=None
            if math.isinf(self.best) and (self.best > 0) == (self.mode == "min")
            else float(self.best),
            num_bad_epochs=int(self.num_bad_epochs),
            cooldown_counter=int(self.cooldown_counter),
            num_observed=int(self.num_observed),
        )
        return d

    def load_state_dict(self, state: object) -> None:
        """Restore what :meth:`state_dict` returned (validated before anything changes)."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from state_dict(), got {type(state).__name__}")
        missing = [f for f in self._fields + self._state if f not in state]
        if missing:
            raise ValueError(
                f"state is missing keys {missing}; pass the dict returned by state_dict()"
            )
        cfg = {f: state[f] for f in self._fields}
        fresh = ReduceOnPlateau(**cfg)  # validates the configuration
        value = _real("state['value']", state["value"])
        best = state["best"]
        best = fresh.best if best is None else float(best)
        nbad = _int("state['num_bad_epochs']", state["num_bad_epochs"], 0)
        ccount = _int("state['cooldown_counter']", state["cooldown_counter"], 0)
        nobs = _int("state['num_observed']", state["num_observed"], 0)
        self.__dict__.update(fresh.__dict__)
        self.value, self.best = value, best
        self.num_bad_epochs, self.cooldown_counter, self.num_observed = nbad, ccount, nobs

    def __eq__(self, other: object) -> bool:
        if type(other) is not ReduceOnPlateau:
            return NotImplemented
        return self.state_dict() == other.state_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable state: not hashable


# --------------------------------------------------------------------------- public names
constant = Constant
step_decay = StepDecay
multistep = MultiStep
exponential = Exponential
inverse_time = InverseTime
inverse_sqrt = InverseSqrt
polynomial = Polynomial
linear = Linear
cosine = Cosine
cosine_restarts = CosineRestarts
warmup = Warmup
wsd = WSD
one_cycle = OneCycle
one_cycle_momentum = OneCycleMomentum
cyclic = Cyclic
cyclic_momentum = CyclicMomentum
piecewise_constant = PiecewiseConstant
piecewise_interpolate = PiecewiseInterpolate
join = Join
from_function = FromFunction
