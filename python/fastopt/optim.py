"""Optimizer objects over NumPy arrays: SGD, Adagrad, RMSprop, Adam, AdamW, Adamax, NAdam,
RAdam, Adadelta, Rprop and ASGD.

Arguments, defaults and update rules are PyTorch's (``torch.optim``); each class's
docstring gives its formula and arguments (``help(fastopt.Adam)``), and the options,
defaults, checks, state arrays and per-step scalars of every optimizer are declared once in
``fastopt._contract``.  Differences from PyTorch:

* ``step(grads)`` takes the gradients explicitly, in the structure of ``params`` (a list
  in order, or a dict by name).  A gradient may be ``None``: that parameter is frozen for
  this step, as torch skips a parameter whose ``.grad`` is None (see "Frozen parameters").
* Any scalar hyperparameter (``lr``, ``momentum``, ``betas[0]``, ``weight_decay``, ...)
  may be a number or a callable ``step -> value`` (such as a ``fastopt.schedules``
  schedule); the optimizer evaluates it at its step counter (0 for the first update) and
  passes the numbers to the kernels.  Nothing is written back into the groups.
* ``state_dict()`` returns copies (a snapshot), not references.

Frozen parameters (``None`` gradients): ``opt.step([g0, None, g2])`` (or a dict with a
None value, in any group) leaves parameter 1, its state arrays and its own counters
untouched.  As in torch, which keeps ``state[p]["step"]`` per parameter, every counter that
advances with the step is per parameter: the step ``t`` of the bias corrections (Adam
family, NAdam, RAdam, Adamax, Adagrad's decayed lr), the contract's carried values
(NAdam's ``mu_product``) and SGD's ``momentum_ready`` (a frozen parameter's momentum buffer
starts as its gradient at its first update).  A group's parameters with equal counters
share one backend call (one call in the common case).  ``step_count``, at which schedules
are evaluated, counts calls to ``step`` (as torch's LR schedulers step once per
iteration), including a step whose gradients are all None (nothing else changes then).
Clipping norms and the non-finite check see only the gradients that exist (as
``clip_grad_norm_`` sees the ``.grad`` that exist).  ``opt.counters()`` gives each
parameter's counters; ``state_dict()`` saves them per parameter (a list per counter, in
the group's order; an older state_dict's single group value applies to every parameter).

Robustness options (keyword-only, on every optimizer; the same paragraph closes each
class's docstring):

* ``nonfinite="raise"`` (default) | ``"skip"`` | ``"ignore"``: what ``step`` does when a
  gradient holds a NaN or an infinity.  ``"raise"`` raises ``NonFiniteGradientError`` (a
  ``ValueError``) naming the array and the first bad index, with nothing modified;
  ``"skip"`` leaves parameters, state and step counters untouched and increments
  ``skipped_steps``; ``"ignore"`` applies the update as PyTorch would (NaN propagates).
  The default is ``"raise"`` because a silently skipped step can hide a bug for hours,
  while an exception changes nothing and can be caught to skip explicitly; loss-scaling
  (mixed precision) loops that expect overflow should use ``"skip"``.  The check costs
  one read of each gradient (``np.isfinite(g.sum())``, exact fallback on overflow).
* ``clip_value=None``: clamp each gradient element to ``[-clip_value, clip_value]``
  (``torch.nn.utils.clip_grad_value_``), then ``max_grad_norm=None, norm_type=2.0,
  clip_scope="all" | "group"``: scale the gradients so that their total norm (over all
  parameters, or per group) is at most ``max_grad_norm`` (``clip_grad_norm_``'s formula
  ``coef = max_norm / (norm + 1e-6)``, applied when ``coef < 1``).  The user's gradient
  arrays are never modified: a clipped step uses scaled copies (allocated only on steps
  that actually clip).
* ``master_weights=False``: with half-precision parameters (float16, or bfloat16 from
  ``ml_dtypes``), keep a float32 master copy of each in the state (``master_weight``,
  saved by ``state_dict`` and checkpoints), update it in float32 and write the parameter
  as its rounding after each step (see "Half precision" below).
* Thread safety: different optimizers may be stepped from different threads at once
  (the kernels release the GIL).  Stepping (or loading) *one* optimizer from two threads
  at once raises ``RuntimeError`` in the second thread, with nothing modified by it.

Half precision: parameters may be float16 (``np.float16``) or bfloat16
(``ml_dtypes.bfloat16``; ``pip install 'fastopt[half]'``), on every optimizer and backend.
The gradient has the parameter's dtype, the state arrays are float32, the arithmetic is
float32 and each step writes the parameter once, rounded to nearest even:
``p <- rne(u(float32(p), float32(g), s))`` for the optimizer's float32 update rule ``u``
and state ``s``.  An update smaller than half a unit in the last place of the half type
is lost at every step; ``master_weights=True`` keeps a float32 copy ``w`` instead:
``w <- u(w, float32(g), s)``, ``p <- rne(w)``, exactly the float32 run.
"""

from __future__ import annotations

import functools
import itertools
import numbers
import operator
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

if TYPE_CHECKING:  # typing.Unpack is 3.11+; the annotations are never evaluated at run time
    from typing_extensions import Unpack

from . import _contract as C
from . import _matrix, _memory
from ._validation import check_bool, check_clip_value, check_hyper, check_max_norm, check_norm_type
from .backends import _checks, resolve
from .clip import _clip_value_copy, _norm_coef, _total_norm
from .errors import NonFiniteGradientError

__all__ = [
    "Optimizer",
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "Adadelta",
    "Rprop",
    "ASGD",
    "Adafactor",
    "Muon",
    "NonFiniteGradientError",
]

_SCHEDULE_MARK = "<schedule>"
#: The state name of a half parameter's float32 master copy (``master_weights=True``).
_MASTER = "master_weight"
_NONFINITE = ("raise", "skip", "ignore")

#: A hyperparameter: a number, or a schedule ``step -> value`` evaluated at every step.
Schedule = Callable[[int], float]
Hyper = float | Schedule
Betas = tuple[Hyper, Hyper] | list[Hyper]
#: Parameters: a list of arrays, a dict name -> array, or a list of parameter groups
#: ``{"params": ..., <option>: value}`` (checked when the optimizer is built).
Params = Mapping[str, np.ndarray] | Sequence[Any]
#: Gradients, in the structure of the parameters.
Grads = np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]
#: A step hook: ``hook(optimizer, grads)``.
Hook = Callable[[Any, Any], Any]


class Robustness(TypedDict, total=False):
    """The keyword options every optimizer takes besides its own (documented once, in each
    class's docstring): ``backend``, ``nonfinite``, ``max_grad_norm``, ``norm_type``,
    ``clip_value``, ``clip_scope``; passed through to :class:`Optimizer`."""

    backend: str
    nonfinite: str
    max_grad_norm: float | None
    norm_type: float
    clip_value: float | None
    clip_scope: str
    master_weights: bool


def _evaluate(rule: str, v: Any, k: int) -> float:
    """A scalar option's value at step ``k`` (a schedule is called), checked by ``rule``."""
    if callable(v):
        v = v(k)
        if isinstance(v, np.ndarray) and v.ndim == 0:
            v = v.item()
    return check_hyper(rule, v)


def _count(name: str, v: Any) -> int:
    """A step counter from a state_dict: a non-negative integer (not a bool, float or str)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {v!r} ({type(v).__name__})")
    if v < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    return int(v)


def _checked(where: str, rule: str, v: Any, flag: bool = False) -> Any:
    try:
        return check_bool(rule, v) if flag else check_hyper(rule, v)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}{exc}") from None


def _is_mark(x: Any) -> bool:
    return isinstance(x, str) and x == _SCHEDULE_MARK


def _first_nonfinite(g):
    """Index (tuple) of the first non-finite element of float array ``g``, or None.

    One read of ``g`` and no temporary array in the common (finite) case; the sum of
    finite values can overflow, so an infinite sum is confirmed with an exact check.
    """
    if g.size == 0:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(g.sum()):
            return None
    bad = np.flatnonzero(~np.isfinite(g.ravel()))
    if bad.size == 0:
        return None
    return tuple(int(i) for i in np.unravel_index(int(bad[0]), g.shape))


class _Hook:
    _ids = itertools.count()

    def __init__(self, table: dict[int, Any]) -> None:
        self._table = table
        self.id = next(self._ids)

    def remove(self) -> None:
        self._table.pop(self.id, None)


def _stateful_parts(obj):
    """Every object with ``state_dict``/``load_state_dict`` (such as ``ReduceOnPlateau``) inside
    a hyperparameter's schedule, found depth-first through composed schedules (join, warmup,
    arithmetic, per_epoch), in a deterministic order."""
    found = []

    def walk(x, depth):
        if depth > 50:
            return
        if hasattr(x, "state_dict") and hasattr(x, "load_state_dict"):
            found.append(x)
            return
        if isinstance(x, (list, tuple)):
            for item in x:
                walk(item, depth + 1)
            return
        if type(x).__module__ == "fastopt.schedules" and hasattr(x, "__dict__"):
            for key in sorted(vars(x)):
                walk(vars(x)[key], depth + 1)

    walk(obj, 0)
    return found


def parse_params(params: Any) -> list[dict[str, Any]]:
    """Normalise ``params`` into a list of group dicts with 'params' and 'names' lists."""
    if isinstance(params, np.ndarray):
        raise TypeError(
            "params must be a list of arrays, a dict of name -> array or a list of "
            "parameter-group dicts, got a single ndarray; wrap it: [array]"
        )
    if isinstance(params, dict):
        if "params" in params and not isinstance(params["params"], np.ndarray):
            raise TypeError("params looks like one parameter group; pass a list of groups: [group]")
        return [{"params": params}]
    try:
        items = list(params)
    except TypeError:
        raise TypeError(
            f"params must be a list of arrays, a dict of name -> array or a list of "
            f"parameter-group dicts, got {type(params).__name__}"
        ) from None
    if not items:
        raise ValueError("params is empty: the optimizer got no parameters to update")
    if all(isinstance(x, dict) for x in items):
        return [dict(g) for g in items]
    if any(isinstance(x, dict) for x in items):
        raise TypeError(
            "params mixes arrays and parameter-group dicts; pass either a list of "
            "arrays or a list of groups {'params': [...], ...}"
        )
    return [{"params": items}]


def split_group(raw: Any, taken: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """A group's ``params`` as ``(names, arrays)``: a dict's names (strings), or the arrays'
    indices counted on from the ``taken`` names of the earlier groups.  Raises on a name that
    is not a string, an empty group or a name of an earlier group."""
    if isinstance(raw, dict):
        names, arrays = list(raw.keys()), list(raw.values())
        for nm in names:
            if not isinstance(nm, str):
                raise TypeError(f"parameter names must be strings, got {nm!r}")
    else:
        arrays = list(raw)
        names = list(range(len(taken), len(taken) + len(arrays)))
    if not arrays:
        raise ValueError("a parameter group has no parameters")
    dup = set(names) & set(taken)
    if dup:
        raise ValueError(f"parameter names {sorted(map(str, dup))} appear in two groups")
    return names, arrays


class _Plan:
    """One group's options for one step, checked: ``options`` (evaluated values), the state
    arrays they need, the kernel's scalars that depend on the options only, and the
    arguments of the contract's ``per_step`` (without the step)."""

    __slots__ = ("args", "lazy", "lr", "needed", "options", "scalars", "state")

    def __init__(self, spec: C.Spec, options: dict[str, Any]) -> None:
        self.options = options
        self.needed = spec.needed(options)
        full = {**spec.fixed, **options}
        #: The kernel's scalars: the constants now, the per-step ones written at each step.
        self.scalars = spec.constants_at(spec.args_of(full, spec.constant_args))
        self.args = spec.args_of(full, spec.step_args)
        lazy = spec.lazy_state
        self.lr: float = options["lr"]
        #: The group counter of a buffer that starts as the gradient, if used this step.
        self.lazy = lazy[1] if lazy is not None and lazy[0] in self.needed else None
        #: {state name: the group's arrays}, filled by the first step that needs no new one.
        self.state: dict[str, list[np.ndarray]] | None = None

    def __getitem__(self, key: str) -> Any:
        return self.options[key]


class _StateView(Mapping):  # type: ignore[type-arg]
    """``opt.state``: a read-only, live view ``{parameter name: {state name: array}}``.

    The arrays are the optimizer's own (modify them in place, e.g. ``opt.state[k]["exp_avg"]
    [...] = 0``); the mappings cannot be assigned to (``opt.state[k] = ...`` raises
    TypeError): use ``load_state_dict`` to replace state."""

    __slots__ = ("_opt",)

    def __init__(self, opt: Optimizer) -> None:
        self._opt = opt

    def __getitem__(self, name: Any) -> Mapping[str, np.ndarray]:
        gi, i = self._opt._where[name]
        return MappingProxyType(
            {k: a[i] for k, a in self._opt._buffers[gi].items() if a[i] is not None}
        )

    def __iter__(self) -> Iterator[Any]:
        return iter(self._opt._names)

    def __len__(self) -> int:
        return len(self._opt._names)

    def __setitem__(self, name: Any, value: Any) -> None:
        raise TypeError(
            "opt.state is a read-only view of the optimizer's state arrays: modify "
            "the arrays in place (opt.state[name]['exp_avg'][...] = x) or use "
            "load_state_dict to replace the state"
        )

    __delitem__ = __setitem__  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr({k: dict(self[k]) for k in self})


def grads_in_order(grads: Any, names: Sequence[Any], by_name: bool) -> list[Any]:
    """The gradients as a list in the order of ``names`` (the parameters' order).

    ``grads`` is a dict by name (only when the parameters were given ``by_name``), one
    array (one parameter), or a sequence in order; a sequence for named parameters is
    refused (matching it by dict order could silently swap two gradients).  The arrays
    themselves are checked by the backends (``_checks.collect``)."""
    total = len(names)
    if isinstance(grads, dict):
        if not by_name:
            raise TypeError(
                "grads is a dict but the parameters were given as a list; pass "
                "the gradients as a list in the same order"
            )
        missing = [n for n in names if n not in grads]
        known = set(names)
        extra = [n for n in grads if n not in known]
        if missing or extra:
            msg = []
            if missing:
                msg.append(f"missing gradients for {missing[:5]}")
            if extra:
                msg.append(f"gradients for unknown parameters {extra[:5]}")
            raise ValueError(
                "grads does not match params: "
                + "; ".join(msg)
                + "; pass exactly one gradient per parameter name"
            )
        flat = [grads[n] for n in names]
    elif by_name and not isinstance(grads, np.ndarray):
        # Matching a list to named parameters by dict order would silently swap two
        # gradients of the same shape: the order is ambiguous.
        raise TypeError(
            "params were given by name: pass grads as a dict by name, "
            f"{{name: gradient}} (got {type(grads).__name__})"
        )
    elif isinstance(grads, np.ndarray):
        if total != 1:
            raise TypeError(
                f"grads is one array but the optimizer has {total} parameters; "
                "pass a list (or dict) of gradients"
            )
        flat = [grads]
    else:
        try:
            flat = list(grads)
        except TypeError:
            raise TypeError(
                "grads must be a list of arrays in the order of params (or a dict "
                f"by name), got {type(grads).__name__}"
            ) from None
        if len(flat) != total:
            raise ValueError(
                f"grads has {len(flat)} arrays but the optimizer has {total} "
                "parameters; pass exactly one gradient per parameter, in order"
            )
    return flat


class Optimizer:
    """Base class: parameter groups, scheduled hyperparameters, state, hooks, save/resume.

    Subclasses set ``_spec``, their optimizer's contract (``fastopt._contract``): options,
    defaults, checks, state arrays and derived scalars.  Everything else is generic.
    """

    _spec: C.Spec
    #: The step of an optimizer that is not one element-wise backend call (Adafactor,
    #: Muon: ``fastopt._matrix``): ``driver(backend module, <the backend step's arguments>)``.
    _driver: Callable[..., Any] | None = None

    def __init__(
        self,
        params: Params,
        backend: str = "auto",
        *,
        nonfinite: str = "raise",
        max_grad_norm: float | None = None,
        norm_type: float = 2.0,
        clip_value: float | None = None,
        clip_scope: str = "all",
        master_weights: bool = False,
        **options: Any,
    ) -> None:
        self.backend, self._be = resolve(backend)
        self._bind_kernel()
        self.master_weights = check_bool("master_weights", master_weights)
        if not isinstance(nonfinite, str) or nonfinite not in _NONFINITE:
            raise ValueError(f"nonfinite must be one of {_NONFINITE}, got {nonfinite!r}")
        self.nonfinite = nonfinite
        self.max_grad_norm = None if max_grad_norm is None else check_max_norm(max_grad_norm)
        self.norm_type = check_norm_type(norm_type)
        self.clip_value = None if clip_value is None else check_clip_value(clip_value)
        if clip_scope not in ("all", "group"):
            raise ValueError(f"clip_scope must be 'all' or 'group', got {clip_scope!r}")
        self.clip_scope = clip_scope
        self.skipped_steps = 0
        self.last_step_skipped = False
        self._lock = threading.Lock()
        spec = self._spec
        self.defaults: dict[str, Any] = dict(spec.defaults)
        for key, value in options.items():
            if key not in self.defaults:
                raise TypeError(
                    f"{type(self).__name__} got an unexpected option {key!r}; "
                    f"valid options: {sorted(self.defaults)}"
                )
            self.defaults[key] = value
        self.param_groups: list[dict[str, Any]] = []
        self._buffers: list[dict[str, list[np.ndarray]]] = []  # per group: {state: [array]}
        # per group, with master_weights: a float32 copy of each half parameter (None else)
        self._masters: list[list[np.ndarray | None]] = []
        # Per group, the counters that advance with the step ({"step": int, carried values,
        # lazy-buffer flags}) shared by all its parameters; a group whose parameters differ
        # (after None gradients) has one dict per parameter in _split instead.
        self._group_state: list[dict[str, Any]] = []
        self._split: dict[int, list[dict[str, Any]]] = {}
        self._names: list[Any] = []  # every parameter's name, in order
        self._where: dict[Any, tuple[int, int]] = {}  # name -> (group, index in group)
        self._string_names = True
        self.step_count = 0
        self._pre_hooks: dict[int, Callable[..., Any]] = {}
        self._plans: dict[int, tuple[Any, _Plan]] = {}  # group -> (option snapshot, plan)
        self._raw_options = operator.itemgetter(*spec.option)  # every optimizer has >= 2
        self._post_hooks: dict[int, Callable[..., Any]] = {}
        for group in parse_params(params):
            self.add_param_group(group)
        self.last_lr: list[float] = [self._plan(g, 0).lr for g in self.param_groups]

    def _bind_kernel(self) -> None:
        """``self._kernel``: the backend's ``step``, or the driver bound to the backend."""
        driver = type(self)._driver
        self._kernel: Callable[..., Any] = (
            self._be.step if driver is None else functools.partial(driver, self._be)
        )
        # master_weights=True in one backend call (the native backend's ``masters``); the
        # drivers of the matrix optimizers take the float32 path below.
        self._fused_masters = driver is None and bool(getattr(self._be, "FUSED_MASTERS", False))

    # ------------------------------------------------------------------ groups
    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a group ``{"params": list or dict of arrays, <option>: value, ...}``."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("a parameter group must be a dict with a 'params' entry")
        group = dict(group)
        raw = group.pop("params")
        for key in group:
            if key not in self.defaults:
                raise ValueError(
                    f"parameter group has an unknown option {key!r}; valid options "
                    f"for {type(self).__name__}: {sorted(self.defaults)}"
                )
        if isinstance(raw, np.ndarray):
            raise TypeError(
                "a group's 'params' must be a list or dict of arrays; wrap a single array in a list"
            )
        names, arrays = split_group(raw, self._names)
        # The same checks (and messages) as every backend's: arrays, float32/float64,
        # C-contiguous, writeable, and no two parameters (of any group) sharing memory, nor a
        # parameter with a state array of an earlier group.
        _checks.collect(
            [("params", [p for g in self.param_groups for p in g["params"]] + arrays, True)],
            self._names + names,
            (
                ((nm, key), a)
                for g, bufs in zip(self.param_groups, self._buffers)
                for key, states in bufs.items()
                for nm, a in zip(g["names"], states)
                if a is not None
            ),
        )
        for nm, a in zip(names, arrays):
            self._spec.check_param(f"params[{nm!r}]", a.shape)
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_group(group)
        group["params"] = arrays
        group["names"] = names
        plan = self._plan(group, self.step_count)
        gi = len(self.param_groups)
        self.param_groups.append(group)
        for i, nm in enumerate(names):
            self._where[nm] = (gi, i)
        self._names.extend(names)
        self._string_names = self._string_names and isinstance(raw, dict)
        self._buffers.append(
            {s: [self._new_state(s, group, p) for p in arrays] for s in plan.needed}
        )
        self._masters.append(
            [
                self._new_master(p) if self.master_weights and _checks.is_half(p.dtype) else None
                for p in arrays
            ]
        )
        self._group_state.append({"step": 0, **self._spec.group_state})

    def _check_group(self, group: dict[str, Any]) -> None:
        """Check a group's options with the contract's rules (schedules allowed where the
        option is schedulable); flags become bools and pairs tuples, in the group."""
        checked = self._spec.check_options({k: group[k] for k in self._spec.option})
        for o in self._spec.options:
            if o.kind == "flag":
                group[o.name] = checked[o.name]
            elif o.kind == "pair":
                group[o.name] = tuple(group[o.name])

    @staticmethod
    def _new_master(p: np.ndarray) -> np.ndarray:
        """The float32 master copy of half parameter ``p`` (exact), placed off its state
        arrays' page offsets (see fastopt._memory)."""
        m = _memory.zeros_beside(p.shape, np.float32, p, 0)
        m[...] = p
        return m

    def _new_state(self, name: str, group: Mapping[str, Any], p: np.ndarray) -> Any:
        """A new state array, as the contract says it starts (a ``grad`` or ``lr`` buffer is
        written whole by its first step, the kernel's ``first=True``), of the contract's
        shape for this parameter; None if this parameter keeps no such array (Adafactor).
        A half-precision parameter's state is float32."""
        slot, st = next((i, s) for i, s in enumerate(self._spec.state) if s.name == name)
        shape = st.shape(p.shape)
        if shape is None:
            return None
        # Placed off the parameter's page offset (see fastopt._memory): slots 1, 2, ...
        a = _memory.zeros_beside(shape, _checks.state_dtype(p.dtype), p, slot + 1)
        if st.init == "fill":
            a.fill(group["initial_accumulator_value"])
        return a

    def _cached_plan(self, gi: int, group: dict[str, Any], k: int) -> _Plan:
        """``_plan`` of a group, reused while its options are the same constants.

        A group whose options are all plain values gives the same checked plan at every
        step; it is computed again whenever an option changes (``group["lr"] = x``, a list
        of betas mutated in place, a ``load_state_dict``) and never cached when an option is
        a schedule."""
        raw = self._raw_options(group)
        hit = self._plans.get(gi)
        if hit is not None:
            try:
                if hit[0] == raw:
                    return hit[1]
            except Exception:  # an option that does not compare (an array): check it below
                pass
        plan = self._plan(group, k)
        flat = [x for v in raw for x in (v if isinstance(v, (tuple, list)) else (v,))]
        if not any(callable(x) for x in flat):
            # A snapshot: lists copied, so that an in-place change is seen at the next step.
            self._plans[gi] = (tuple(list(v) if isinstance(v, list) else v for v in raw), plan)
        else:
            self._plans.pop(gi, None)
        return plan

    def _plan(self, group: Mapping[str, Any], k: int) -> _Plan:
        """Evaluate (schedules at step ``k``) and check every option of one group with the
        contract's rules, including the cross-option checks (no array touched)."""
        spec = self._spec
        missing = [key for key in spec.option if key not in group]
        if missing:
            raise ValueError(f"a parameter group lacks option(s) {missing}")
        opts: dict[str, Any] = {}
        for o in spec.options:
            v = group[o.name]
            if o.kind == "pair":
                if not isinstance(v, (tuple, list)) or len(v) != len(o.rules):
                    raise TypeError(f"{o.name} must be a pair ({', '.join(o.rules)}), got {v!r}")
                opts[o.name] = tuple(_evaluate(r, x, k) for r, x in zip(o.rules, v))
            elif o.kind == "flag":
                opts[o.name] = check_bool(o.name, v)
            elif o.kind == "fixed":
                opts[o.name] = spec.check_value(o.name, v, allow_schedule=False)
            elif o.kind == "const":
                opts[o.name] = check_hyper(o.rules[0], v)
            else:
                opts[o.name] = _evaluate(o.rules[0], v, k)
        if spec.cross is not None:
            spec.cross(opts)
        return _Plan(spec, opts)

    def _apply(
        self,
        group: dict[str, Any],
        gstate: dict[str, Any],
        buffers: dict[str, list[np.ndarray]],
        grads: list[Any],
        plan: _Plan,
        check: bool = False,
        rows: list[int] | None = None,
    ) -> Any:
        """One backend call for one group (or its parameters ``rows``, which share the
        counters ``gstate``): the contract's scalars for this step, the state arrays the
        options need (created as the contract says when first needed, kept only if the call
        succeeds), and SGD-style lazy buffers started from the gradient.

        ``check`` (native backend only): the backend reads the gradients first and, if any
        holds inf or NaN, writes nothing and returns their row indices (returned here)."""
        spec = self._spec
        params, names = group["params"], group["names"]
        scalars = plan.scalars  # the per-step entries are rewritten here, every step
        carried = None
        if spec.carry:  # NAdam's running product: updated only if the step succeeds
            carried = spec.put(
                scalars, plan.args, gstate["step"] + 1, tuple(gstate[c] for c in spec.carry)
            )
        elif spec.per_step is not None:
            spec.put(scalars, plan.args, gstate["step"] + 1)
        state = plan.state
        new = None
        if state is None:
            state = {}
            for name in plan.needed:
                arrays = buffers.get(name)
                if arrays is None:
                    arrays = [self._new_state(name, group, p) for p in group["params"]]
                    new = new or {}
                    new[name] = arrays
                state[name] = arrays
            if new is None:
                plan.state = state  # the group's own lists: reused while the plan is
        if rows is not None:
            params, names = [params[i] for i in rows], [names[i] for i in rows]
            grads = [grads[i] for i in rows]
            state = {k: [a[i] for i in rows] for k, a in state.items()}
        lazy = plan.lazy
        if lazy is not None:
            scalars["first"] = not gstate[lazy]
        masters = fused = None  # the float32 masters of the rows, for one of two paths
        if self.master_weights:
            ms = next(m for g, m in zip(self.param_groups, self._masters) if g is group)
            if rows is not None:
                ms = [ms[i] for i in rows]
            if any(m is not None for m in ms):
                if self._fused_masters:
                    # One backend call updates the masters from the half gradients and writes
                    # each half parameter as its master rounded to nearest even (every array
                    # checked first).
                    fused = ms
                else:
                    masters = ms
        if masters is not None:
            # The float32 masters are updated (with the half gradients widened, exactly);
            # each half parameter is then their copy rounded to nearest even.
            _checks.collect([("params", params, True), ("grads", grads, False)], names)
            halves = params
            grads = [g if m is None else g.astype(np.float32) for g, m in zip(grads, masters)]
            params = [p if m is None else m for p, m in zip(params, masters)]
        args = (spec.kernel, params, grads, state, scalars, names)
        if check or fused is not None:
            # check_finite positional: pybind11 parses keywords slowly
            bad = (
                self._kernel(*args, check, fused)
                if fused is not None
                else self._kernel(*args, True)
            )
            if bad is not None:
                return bad  # nothing was written: the carried values stay as they were
        else:
            self._kernel(*args)
        if masters is not None:
            for p, m in zip(halves, masters):
                if m is not None:
                    p[...] = m
        if carried is not None:
            gstate.update(zip(spec.carry, carried))
        if new:
            buffers.update(new)
        if lazy is not None:
            gstate[lazy] = True
        return None

    def _apply_split(
        self,
        gi: int,
        group: dict[str, Any],
        buffers: dict[str, list[np.ndarray]],
        grads: list[Any],
        plan: _Plan,
    ) -> None:
        """Step group ``gi`` whose parameters do not all share their counters, or some of
        whose gradients are None: one backend call per set of parameters with a gradient
        and equal counters; a parameter without a gradient keeps its counters."""
        counters = self._split.get(gi) or [self._group_state[gi]] * len(grads)
        parts: dict[tuple[Any, ...], list[int]] = {}
        for i, g in enumerate(grads):
            if g is not None:
                parts.setdefault(tuple(counters[i].values()), []).append(i)
        after = list(counters)
        for rows in parts.values():
            gstate = dict(counters[rows[0]])
            self._apply(group, gstate, buffers, grads, plan, rows=rows)
            gstate["step"] += 1
            for i in rows:
                after[i] = gstate
        self._set_counters(gi, after)

    def _set_counters(self, gi: int, counters: list[dict[str, Any]]) -> None:
        """Store group ``gi``'s per-parameter counters: as the group's one dict when they
        are all equal (the common, fast case), else one dict per parameter."""
        if all(c == counters[0] for c in counters):
            self._group_state[gi] = dict(counters[0])
            self._split.pop(gi, None)
        else:
            self._split[gi] = [dict(c) for c in counters]

    def counters(self) -> dict[Any, dict[str, Any]]:
        """Each parameter's counters, ``{name: {"step": t, ...}}`` (a snapshot): the number
        of updates it received (torch's ``state[p]["step"]``), and the optimizer's other
        per-parameter counters (NAdam's ``mu_product``, SGD's ``momentum_ready``)."""
        return {
            nm: dict(c)
            for gi, g in enumerate(self.param_groups)
            for nm, c in zip(g["names"], self._param_counters(gi))
        }

    def _param_counters(self, gi: int) -> list[dict[str, Any]]:
        return self._split.get(gi) or [self._group_state[gi]] * len(self.param_groups[gi]["names"])

    # ------------------------------------------------------------------ stepping
    def _split_grads(self, grads):
        flat = grads_in_order(grads, self._names, self._string_names)
        # A None gradient freezes its parameter for this step; any other non-array gradient
        # is reported by the array checks of the backend.
        if len(self.param_groups) == 1:
            return [flat]
        out, i = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            out.append(flat[i : i + n])
            i += n
        return out

    def __getstate__(self):
        d = dict(self.__dict__)
        d.pop("_lock", None)
        d.pop("_be", None)  # a module; re-resolved from self.backend
        d.pop("_kernel", None)
        return d

    def __setstate__(self, d):
        self.__dict__.update(d)
        self._be = resolve(self.backend)[1]
        self._bind_kernel()
        self._lock = threading.Lock()

    def _acquire(self, what):
        """Take this optimizer's lock or raise: ``step``, ``load_state_dict``, ``state_dict``
        and ``fastopt.save``/``fastopt.load`` exclude each other, so a snapshot is always of
        one step and a step never sees half a load.  A second caller does not wait (a
        waiting snapshot taken from a step hook would deadlock): it raises, changing nothing."""
        if not self._lock.acquire(blocking=False):
            raise RuntimeError(
                f"{type(self).__name__}.{what} called while another thread is using this "
                "optimizer (stepping, saving or loading it): one optimizer was used from two "
                "threads at once.  Use each optimizer from one thread at a time, or guard it "
                "with your own lock (different optimizers may run in parallel); nothing was "
                "modified by this call"
            )

    def step(self, grads: Grads) -> None:
        """Apply one update with ``grads`` (same structure as params) to every parameter.

        Every gradient and every hyperparameter of every group is checked before any
        array is written; on error nothing has changed.  Non-finite gradients are handled
        per ``nonfinite`` (on a skipped step the post-hooks are not called and
        ``last_step_skipped`` is True); clipping per ``clip_value``/``max_grad_norm``.
        Raises RuntimeError if this optimizer is being stepped by another thread.
        """
        if not self._lock.acquire(False):  # inline: the common case costs no extra call
            self._acquire("step")  # raises (or takes the lock, released meanwhile)
        try:  # the whole step here, not in a method of its own: one call less per step
            if self._pre_hooks:
                for hook in list(self._pre_hooks.values()):
                    hook(self, grads)
            groups = self.param_groups
            if (
                type(grads) is list
                and len(groups) == 1
                and not self._string_names
                and len(grads) == len(self._names)
            ):  # what _split_grads returns for a list of the right length, without the call
                per_group = [grads[:]]
            else:
                per_group = self._split_grads(grads)
            k = self.step_count
            if (
                len(groups) == 1
                and self.clip_value is None
                and self.max_grad_norm is None
                and (self.nonfinite == "ignore" or self.backend == "native")
                and not self._split
            ):
                # The common case: one group, no clipping, one backend call.  The native backend
                # runs the finiteness check inside that call (after its array checks, before any
                # write) and returns the flagged rows.  A None gradient fails those checks before
                # anything is written: such a step takes the general path below.
                try:
                    self._step_one(groups[0], grads, per_group[0], k)
                    return
                except TypeError:
                    if not any(g is None for g in per_group[0]):
                        raise
            plans = [self._cached_plan(gi, g, k) for gi, g in enumerate(groups)]
            checked = False
            frozen = [any(g is None for g in gs) for gs in per_group]
            if len(groups) > 1 or self._split or any(frozen):
                # One backend call per group (or per set of parameters with equal counters):
                # check all groups first so that an error in a later call cannot leave an
                # earlier one updated.
                self._check_all(per_group)
                checked = True
            if self.nonfinite != "ignore":
                flat = per_group[0] if len(per_group) == 1 else [x for gs in per_group for x in gs]
                if self.backend == "native":
                    # One threaded, vectorised read of every gradient; only the arrays it flags
                    # (non-finite, or not plain float arrays) are examined below with NumPy.
                    named = [(self._names[i], flat[i]) for i in self._be.nonfinite_rows(flat)]
                else:
                    named = zip(self._names, flat)
                for nm, g in named:
                    if not (isinstance(g, np.ndarray) and _checks.is_float(g.dtype)):
                        continue  # not a valid gradient: the array checks report it
                    idx = _first_nonfinite(g)
                    if idx is None:
                        continue
                    if not checked:  # report a malformed argument before the bad value
                        self._check_all(per_group)
                    self._nonfinite(nm, g, idx, k)
                    return
            if self.clip_value is not None or self.max_grad_norm is not None:
                if not checked:
                    self._check_all(per_group)
                per_group = self._clip(per_group)
            self.last_step_skipped = False
            for gi, (group, gstate, buffers, grads_g, plan) in enumerate(
                zip(groups, self._group_state, self._buffers, per_group, plans)
            ):
                if frozen[gi] or gi in self._split:
                    self._apply_split(gi, group, buffers, grads_g, plan)
                    continue
                self._apply(group, gstate, buffers, grads_g, plan)
                gstate["step"] += 1
            self.step_count = k + 1
            self.last_lr = [plan.lr for plan in plans]
            if self._post_hooks:
                for hook in list(self._post_hooks.values()):
                    hook(self, grads)
        finally:
            self._lock.release()

    def _check_all(self, per_group):
        # Every group's parameters, gradients and state: a gradient may alias none of them.
        # The parameters whose gradient is None are not stepped: their rows are left out.
        params = [p for g in self.param_groups for p in g["params"]]
        grads = [x for gs in per_group for x in gs]
        names = self._names
        if any(x is None for x in grads):
            rows = [i for i, x in enumerate(grads) if x is not None]
            params, grads = [params[i] for i in rows], [grads[i] for i in rows]
            names = [names[i] for i in rows]
        _checks.collect(
            [("params", params, True), ("grads", grads, False)],
            names,
            (
                ((nm, key), a)
                for g, bufs in zip(self.param_groups, self._buffers)
                for key, states in bufs.items()
                for nm, a in zip(g["names"], states)
                if a is not None
            ),
        )

    def _step_one(self, group, grads, grads_g, k):
        plan = self._cached_plan(0, group, k)
        gstate = self._group_state[0]
        spec = self._spec
        if (
            plan.state is not None
            and plan.lazy is None
            and not spec.carry
            and not self.master_weights
        ):
            # ``_apply`` in the steady state (state arrays made, no lazy buffer, no carried
            # value, no masters): only the per-step scalars and the backend call.
            if spec.per_step is not None:
                spec.put(plan.scalars, plan.args, gstate["step"] + 1)
            if self.nonfinite != "ignore":
                bad = self._kernel(
                    spec.kernel,
                    group["params"],
                    grads_g,
                    plan.state,
                    plan.scalars,
                    group["names"],
                    True,
                )
            else:
                self._kernel(
                    spec.kernel,
                    group["params"],
                    grads_g,
                    plan.state,
                    plan.scalars,
                    group["names"],
                )
                bad = None
        elif self.nonfinite != "ignore":
            bad = self._apply(group, gstate, self._buffers[0], grads_g, plan, True)
        else:
            bad = self._apply(group, gstate, self._buffers[0], grads_g, plan)
        if bad is not None:
            for i in bad:
                idx = _first_nonfinite(grads_g[i])
                if idx is not None:
                    self._nonfinite(self._names[i], grads_g[i], idx, k)
                    return
            # Flagged, yet finite now (the caller changed it meanwhile): update with it.
            self._apply(group, gstate, self._buffers[0], grads_g, plan)
        self.last_step_skipped = False
        gstate["step"] += 1
        self.step_count = k + 1
        self.last_lr = [plan.lr]
        if self._post_hooks:
            for hook in list(self._post_hooks.values()):
                hook(self, grads)

    def _nonfinite(self, nm: Any, g: np.ndarray, idx: tuple[int, ...], k: int) -> None:
        """Gradient ``nm`` holds a non-finite value at ``idx``: count a skipped step
        (``nonfinite="skip"``) or raise.  Nothing has been written."""
        if self.nonfinite == "skip":
            self.skipped_steps += 1
            self.last_step_skipped = True
            return
        raise NonFiniteGradientError(
            f"grads[{nm!r}] has a non-finite value ({g[idx]}) at index "
            f"{idx if g.ndim != 1 else idx[0]} (step {k}); nothing was updated.  "
            "Fix the loss/gradient, or construct the optimizer with "
            "nonfinite='skip' to skip such steps (counted in skipped_steps)"
        )

    def _clip(self, per_group):
        """Clipped copies of the gradients (the caller's arrays are not modified)."""
        # A None gradient (a frozen parameter) stays None and counts in no norm.
        if self.clip_value is not None:
            per_group = [
                [g if g is None else _clip_value_copy(g, self.clip_value) for g in gs]
                for gs in per_group
            ]
        if self.max_grad_norm is not None:
            if self.clip_scope == "all":
                sets = [[x for gs in per_group for x in gs if x is not None]]
            else:
                sets = [[x for x in gs if x is not None] for gs in per_group]
            coefs = [_norm_coef(self.max_grad_norm, _total_norm(s, self.norm_type)) for s in sets]
            if self.clip_scope == "all":
                coefs = coefs * len(per_group)
            per_group = [
                gs
                if c is None
                else [g if g is None else np.multiply(g, g.dtype.type(c)) for g in gs]
                for gs, c in zip(per_group, coefs)
            ]
        return per_group

    def register_step_pre_hook(self, hook: Hook) -> _Hook:
        """Call ``hook(optimizer, grads)`` before every step; returns a handle with ``remove()``."""
        h = _Hook(self._pre_hooks)
        self._pre_hooks[h.id] = hook
        return h

    def register_step_post_hook(self, hook: Hook) -> _Hook:
        """Call ``hook(optimizer, grads)`` after every step; returns a handle with ``remove()``."""
        h = _Hook(self._post_hooks)
        self._post_hooks[h.id] = hook
        return h

    @property
    def state(self) -> Mapping[Any, Mapping[str, np.ndarray]]:
        """Per-parameter state ``{name: {state name: array}}``: a read-only, live view (the
        arrays are the optimizer's own, not copies; assigning into the view raises
        TypeError, use ``load_state_dict`` to replace state)."""
        return _StateView(self)

    # ------------------------------------------------------------------ save / resume
    def state_dict(self) -> dict[str, Any]:
        """A snapshot: step counter, group options, copies of every state array and the
        state of stateful schedules (those with ``state_dict``), all plain Python/NumPy.
        Raises RuntimeError if another thread is stepping or loading this optimizer."""
        self._acquire("state_dict")
        try:
            return self._state_dict()
        finally:
            self._lock.release()

    def _state_dict(self):
        groups, state, schedules = [], {}, {}
        for gi, (group, gstate, buffers) in enumerate(
            zip(self.param_groups, self._group_state, self._buffers)
        ):
            counters = self._param_counters(gi)
            entry = {
                "names": list(group["names"]),
                "shapes": [p.shape for p in group["params"]],
                "dtypes": [_checks.dtype_tag(p.dtype) for p in group["params"]],
                # per parameter, in the order of "names"
                **{key: [c[key] for c in counters] for key in gstate},
            }
            for key in self.defaults:
                v = group[key]
                if self._spec.option[key].kind == "pair":
                    entry[key] = tuple(
                        _SCHEDULE_MARK if callable(b) else None if b is None else float(b)
                        for b in v
                    )
                    for bi, b in enumerate(v):
                        parts = _stateful_parts(b)
                        if parts:
                            schedules[f"{gi}.{key}.{bi}"] = [x.state_dict() for x in parts]
                elif callable(v):
                    entry[key] = _SCHEDULE_MARK
                    parts = _stateful_parts(v)
                    if parts:
                        schedules[f"{gi}.{key}"] = [x.state_dict() for x in parts]
                else:
                    entry[key] = v
            groups.append(entry)
            masters = self._masters[gi]
            for i, nm in enumerate(group["names"]):
                state[nm] = {
                    key: arrays[i].copy()
                    for key, arrays in buffers.items()
                    if arrays[i] is not None
                }
                if masters[i] is not None:
                    state[nm][_MASTER] = masters[i].copy()
        return {
            "kind": type(self).__name__,
            "step_count": self.step_count,
            "skipped_steps": self.skipped_steps,
            "last_lr": list(self.last_lr),
            "param_groups": groups,
            "state": state,
            "schedules": schedules,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a snapshot from ``state_dict()``, as torch does: the optimizer takes the
        snapshot's options (checked with the constructor's rules; an option that is a
        schedule here stays this optimizer's schedule, its state restored) and its state
        arrays, then steps exactly like an optimizer built with those options.

        Everything is checked before anything is copied (optimizer kind, group layout,
        names, every option's type and range, the step counters as non-negative integers,
        every state array's name, shape and dtype, and that the state the options need is
        there); on any error (TypeError/ValueError) nothing has changed.  A group's counters
        (``step``, ...) are lists, one value per parameter; a single value (a state_dict of
        fastopt before per-parameter counters) is every parameter's."""
        self._acquire("load_state_dict")
        try:
            self._load_state_dict(state_dict)
        finally:
            self._lock.release()

    def _load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        sd = state_dict
        spec = self._spec
        kind = type(self).__name__
        if not isinstance(sd, Mapping):
            raise TypeError(f"state_dict must be a dict from state_dict(), got {type(sd).__name__}")
        if sd.get("kind") != kind:
            raise ValueError(f"state_dict is from a {sd.get('kind')} optimizer, not {kind}")
        groups = sd.get("param_groups")
        if not isinstance(groups, (list, tuple)) or not all(isinstance(e, Mapping) for e in groups):
            raise TypeError("state_dict['param_groups'] must be a list of dicts")
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict has {len(groups)} parameter groups, this optimizer has "
                f"{len(self.param_groups)}"
            )
        states = sd.get("state")
        if not isinstance(states, Mapping):
            raise TypeError("state_dict['state'] must be a dict {parameter name: {state: array}}")
        step_count = _count("step_count", sd.get("step_count"))
        skipped = _count("skipped_steps", sd.get("skipped_steps", 0))
        last_lr = sd.get("last_lr", self.last_lr)
        if (
            not isinstance(last_lr, (list, tuple))
            or len(last_lr) != len(self.param_groups)
            or not all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in last_lr)
        ):
            raise TypeError(f"state_dict['last_lr'] must be one number per group, got {last_lr!r}")
        schedules = sd.get("schedules", {})
        if not isinstance(schedules, Mapping):
            raise TypeError("state_dict['schedules'] must be a dict")
        counters = {"step": 0, **spec.group_state}
        lazy = spec.lazy_state
        todo = []  # per group: (options, counters, {state name: [saved array per param]})
        for gi, (entry, group) in enumerate(zip(groups, self.param_groups)):
            names = entry.get("names")
            if not isinstance(names, (list, tuple)) or [str(n) for n in names] != [
                str(n) for n in group["names"]
            ]:
                raise ValueError(
                    f"group {gi}: state_dict has parameters "
                    f"{list(names)[:5] if isinstance(names, (list, tuple)) else names}"
                    f"..., this optimizer has {group['names'][:5]}..."
                )
            where = f"group {gi} of the state_dict: "
            opts: dict[str, Any] = {}
            for o in spec.options:
                if o.name not in entry:
                    raise ValueError(f"{where}lacks option {o.name!r}")
                v, cur = entry[o.name], group[o.name]
                if o.kind == "pair":
                    if not isinstance(v, (tuple, list)) or len(v) != len(o.rules):
                        raise TypeError(
                            f"{where}{o.name} must be a pair ({', '.join(o.rules)}), got {v!r}"
                        )
                    opts[o.name] = tuple(
                        c if callable(c) or _is_mark(x) else _checked(where, r, x)
                        for r, x, c in zip(o.rules, v, cur)
                    )
                elif callable(cur) or (_is_mark(v) and o.kind != "flag"):
                    opts[o.name] = cur  # this optimizer's schedule (its state restored below)
                elif o.kind == "flag":
                    opts[o.name] = _checked(where, o.name, v, flag=True)
                elif o.kind == "fixed":
                    try:
                        opts[o.name] = spec.check_value(o.name, v, allow_schedule=False)
                    except (TypeError, ValueError) as exc:
                        raise type(exc)(f"{where}{exc}") from None
                else:
                    opts[o.name] = _checked(where, o.rules[0], v)
            try:
                if spec.cross is not None:
                    spec.cross(opts)
                plan = self._plan(opts, step_count)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{where}{exc}") from None
            per_param: list[dict[str, Any]] = [{} for _ in group["names"]]
            for key, _default in counters.items():
                if key not in entry:
                    raise ValueError(f"{where}lacks the counter {key!r}")
                values = entry[key]
                if not isinstance(values, (list, tuple)):  # one value for the group (legacy)
                    values = [values] * len(per_param)
                elif len(values) != len(per_param):
                    raise ValueError(
                        f"{where}counter {key!r} has {len(values)} values, the group has "
                        f"{len(per_param)} parameters (one value per parameter)"
                    )
                for nm, c, v in zip(group["names"], per_param, values):
                    c[key] = (
                        _count(f"{where}{key} of {nm!r}", v)
                        if key == "step"
                        else _checked(
                            f"{where}{key} of {nm!r}: ", key, v, flag=isinstance(_default, bool)
                        )
                    )
            loaded: dict[str, list[Any]] = {}
            masters: list[np.ndarray | None] = []
            keys = None
            shapes = {st.name: st.shape for st in spec.state}
            for i, (nm, p, gstate) in enumerate(zip(group["names"], group["params"], per_param)):
                # The states this parameter keeps, each with its shape (Adafactor's factors).
                own = {k: f(p.shape) for k, f in shapes.items() if f(p.shape) is not None}
                saved = states.get(nm, states.get(str(nm)))
                if saved is None:
                    raise ValueError(f"state_dict has no state for parameter {nm!r}")
                if not isinstance(saved, Mapping):
                    raise TypeError(
                        f"state of parameter {nm!r} must be a dict of arrays, got "
                        f"{type(saved).__name__}"
                    )
                masters.append(self._saved_master(nm, p, saved))
                saved = {k: v for k, v in saved.items() if k != _MASTER}
                for key, a in saved.items():
                    if key not in spec.state_names:
                        raise ValueError(
                            f"state_dict has state {key!r} for parameter {nm!r}; "
                            f"{kind} keeps {list(spec.state_names)}"
                        )
                    want = own.get(key)
                    sdt = _checks.state_dtype(p.dtype)  # float32 for a half parameter
                    if not isinstance(a, np.ndarray) or a.shape != want or a.dtype != sdt:
                        desc = f"{a.dtype}{a.shape}" if isinstance(a, np.ndarray) else repr(a)
                        raise ValueError(
                            f"state {key!r} of parameter {nm!r}: saved {desc}, "
                            + (
                                f"parameter is {p.dtype}{p.shape}"
                                if want == p.shape
                                else f"it must be {sdt}{want}"
                                if want is not None
                                else f"a parameter of shape {p.shape} keeps no {key!r}"
                            )
                            + (f" (its state is {sdt})" if sdt != p.dtype else "")
                        )
                    loaded.setdefault(key, [None] * len(group["params"]))[i] = a
                # States a parameter of this shape does not keep count as present.
                have = set(saved) | (set(shapes) - set(own))
                if keys is None:
                    keys = have
                elif have != keys:
                    raise ValueError(
                        f"group {gi}: parameter {nm!r} has state {sorted(saved)}, "
                        f"the group's first has {sorted(keys)}"
                    )
                for key in plan.needed:
                    fresh = lazy is not None and key == lazy[0] and not gstate[lazy[1]]
                    if key not in saved and key in own and not fresh:
                        raise ValueError(
                            f"state_dict lacks {key!r} for parameter {nm!r} (its "
                            "options need it: was it saved with other options?)"
                        )
            todo.append((opts, per_param, loaded, masters))
        for tag, saved_states in schedules.items():
            parts = self._schedule_parts(tag)
            if isinstance(saved_states, dict):
                saved_states = [saved_states]
            if not isinstance(saved_states, (list, tuple)) or len(parts) != len(saved_states):
                raise ValueError(
                    f"state_dict holds {len(saved_states)} stateful schedule(s) for "
                    f"{tag!r}, this optimizer has {len(parts)} there; construct "
                    "the optimizer with the same schedules as the saved run"
                )
        # Everything is checked: copy.
        for gi, (opts, per_param, loaded, masters) in enumerate(todo):
            group, buffers = self.param_groups[gi], self._buffers[gi]
            for m, saved_m in zip(self._masters[gi], masters):
                if m is not None:
                    np.copyto(m, saved_m)
            new = {}
            for key, saved_arrays in loaded.items():
                arrays = buffers.get(key) or [
                    self._new_state(key, group, p) for p in group["params"]
                ]
                for dst, src in zip(arrays, saved_arrays):
                    if src is not None:
                        np.copyto(dst, src)
                new[key] = arrays
            self._buffers[gi] = new
            self._set_counters(gi, per_param)
            group.update(opts)
        for tag, saved_states in schedules.items():
            if isinstance(saved_states, dict):
                saved_states = [saved_states]
            for part, saved in zip(self._schedule_parts(tag), saved_states):
                part.load_state_dict(saved)
        self._plans.clear()
        self.step_count = step_count
        self.skipped_steps = skipped
        self.last_lr = [float(x) for x in last_lr]

    def _saved_master(self, nm: Any, p: np.ndarray, saved: Mapping[str, Any]) -> Any:
        """The saved float32 master copy of parameter ``nm`` (checked), or None."""
        if _MASTER not in saved:
            if self.master_weights and _checks.is_half(p.dtype):
                raise ValueError(
                    f"state_dict lacks {_MASTER!r} for parameter {nm!r} (saved without "
                    "master_weights=True?): this optimizer keeps a float32 master copy of it"
                )
            return None
        a = saved[_MASTER]
        if not (self.master_weights and _checks.is_half(p.dtype)):
            raise ValueError(
                f"state_dict has a {_MASTER!r} for parameter {nm!r}, which this optimizer "
                "does not keep: construct it with master_weights=True and the same "
                "half-precision parameters"
            )
        if not isinstance(a, np.ndarray) or a.shape != p.shape or a.dtype != np.float32:
            desc = f"{a.dtype}{a.shape}" if isinstance(a, np.ndarray) else repr(a)
            raise ValueError(
                f"state {_MASTER!r} of parameter {nm!r}: saved {desc}, it must be float32{p.shape}"
            )
        return a

    def _schedule_parts(self, tag):
        """The stateful schedules inside the hyperparameter named by a state_dict tag
        ("<group>.<option>" or "<group>.betas.<i>")."""
        pieces = str(tag).split(".")
        try:
            target = self.param_groups[int(pieces[0])][pieces[1]]
            if self._spec.option[pieces[1]].kind == "pair":
                target = target[int(pieces[2])]
        except (IndexError, KeyError, ValueError, TypeError):
            raise ValueError(
                f"state_dict has schedule state for {tag!r}, which this optimizer does not have"
            ) from None
        return _stateful_parts(target)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}(backend={self.backend!r}, step_count={self.step_count}"]
        for gi, g in enumerate(self.param_groups):
            opts = ", ".join(f"{k}={g[k]!r}" for k in self.defaults)
            lines.append(f"  group {gi}: {len(g['params'])} arrays, {opts}")
        return "\n".join(lines) + ")"


_ROBUST_DOC = """
    Robustness options (keyword-only, the same on every optimizer):
        backend (str): "auto" (default: native, else numba, else numpy), "native", "numba"
            or "numpy"; ``FASTOPT_BACKEND`` overrides what "auto" means.
        nonfinite (str): what ``step`` does when a gradient holds a NaN or an infinity.
            "raise" (default) raises ``NonFiniteGradientError`` (a ValueError) naming the
            array and the first bad index, with nothing modified; "skip" leaves parameters,
            state and step counters untouched and increments ``skipped_steps``; "ignore"
            applies the update as PyTorch would (NaN propagates).  The check costs one read
            of each gradient.
        clip_value (float, optional): clamp each gradient element to
            ``[-clip_value, clip_value]`` (``torch.nn.utils.clip_grad_value_``) first.
        max_grad_norm (float, optional), norm_type (float, default 2.0), clip_scope ("all"
            or "group"): scale the gradients so that their total norm (over all parameters,
            or per group) is at most ``max_grad_norm`` (``clip_grad_norm_``'s
            ``coef = max_norm / (norm + 1e-6)``, applied when ``coef < 1``).  The caller's
            gradient arrays are never modified (a clipped step uses scaled copies).
        master_weights (bool, default False): keep a float32 master copy of each float16 or
            bfloat16 parameter (state ``master_weight``, saved in checkpoints), update it
            in float32 and write the parameter as its rounding to nearest even after each
            step; without it the half parameter itself is widened, updated in float32 and
            rounded once per step.  State arrays are float32 either way.

    Every scalar option (``lr``, ``momentum``, each of ``betas``, ...) may also be a
    schedule: a callable ``step -> value`` (such as a ``fastopt.schedules`` schedule),
    evaluated at the optimizer's step counter (0 for the first update).  Options may be
    changed between steps (``opt.param_groups[i]["momentum"] = 0.9``, as in torch): they
    are checked again before any group is updated, and state arrays an option newly needs
    start as torch starts them (a ``momentum_buffer`` becomes the gradient at its first
    use; other buffers start at zero).  ``step(grads)`` checks every gradient and option
    of every group before writing any array; on error nothing has changed.  A ``None``
    gradient freezes its parameter for that step, as torch skips a parameter whose
    ``.grad`` is None: the parameter, its state and its own step count (``counters()``)
    stay as they were.
"""


def _document(cls: Any) -> Any:
    """Append the shared robustness paragraph to an optimizer's docstring (as torch shares
    ``_maximize_doc``), so that ``help(fastopt.Adam)`` shows formula, Args and options, and
    write the contract's defaults into the Args section (``@lr@``): the docs cannot drift."""
    doc = (cls.__doc__ or "") + _ROBUST_DOC
    for opt in cls._spec.options:
        doc = doc.replace(f"@{opt.name}@", repr(opt.default))
    if "@" in doc.replace("@_document", ""):
        raise AssertionError(f"{cls.__name__}'s docstring names an unknown option")
    cls.__doc__ = doc
    return cls


_S, _AG, _R, _A, _AW = C.SGD.D, C.ADAGRAD.D, C.RMSPROP.D, C.ADAM.D, C.ADAMW.D


@_document
class SGD(Optimizer):
    r"""Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize}) \\
        &\text{if } \lambda \neq 0:\ g_t \leftarrow g_t + \lambda \theta_{t-1} \\
        &\text{if } \mu \neq 0:\ b_t \leftarrow g_t \text{ at the buffer's first use,
            else } b_t \leftarrow \mu b_{t-1} + (1 - \tau) g_t \\
        &\qquad g_t \leftarrow g_t + \mu b_t \text{ if nesterov, else } g_t \leftarrow b_t \\
        &\theta_t \leftarrow \theta_{t-1} - \gamma g_t
        \end{aligned}

    Args:
        params: a list of float32, float64, float16 or bfloat16 arrays, a dict name ->
            array, or a list of parameter groups ``{"params": ..., <option>: value}``;
            updated in place.
        lr (float or schedule, default @lr@): learning rate :math:`\gamma`.
        momentum (float or schedule, default @momentum@): momentum factor :math:`\mu`.
        dampening (float or schedule, default @dampening@): dampening for momentum
            :math:`\tau`.
        weight_decay (float or schedule, default @weight_decay@): L2 penalty :math:`\lambda`.
        nesterov (bool, default @nesterov@): Nesterov momentum (needs momentum > 0 and
            dampening == 0).
        maximize (bool, default @maximize@): maximize the objective instead of minimizing.

    State per parameter: ``momentum_buffer`` (when momentum != 0).
    """

    _spec = C.SGD

    def __init__(
        self,
        params: Params,
        lr: Hyper = _S.lr,
        momentum: Hyper = _S.momentum,
        dampening: Hyper = _S.dampening,
        weight_decay: Hyper = _S.weight_decay,
        nesterov: bool = _S.nesterov,
        *,
        maximize: bool = _S.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


@_document
class Adagrad(Optimizer):
    r"""Adagrad, as ``torch.optim.Adagrad``.

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize}) \\
        &\tilde\gamma \leftarrow \gamma / (1 + (t - 1) \eta) \\
        &\text{if } \lambda \neq 0:\ g_t \leftarrow g_t + \lambda \theta_{t-1} \\
        &s_t \leftarrow s_{t-1} + g_t^2 \\
        &\theta_t \leftarrow \theta_{t-1} - \tilde\gamma\, g_t / (\sqrt{s_t} + \epsilon)
        \end{aligned}

    Args:
        params: a list of float32, float64, float16 or bfloat16 arrays, a dict name ->
            array, or a list of parameter groups ``{"params": ..., <option>: value}``;
            updated in place.
        lr (float or schedule, default @lr@): learning rate :math:`\gamma`.
        lr_decay (float or schedule, default @lr_decay@): learning rate decay :math:`\eta`.
        weight_decay (float or schedule, default @weight_decay@): L2 penalty :math:`\lambda`.
        initial_accumulator_value (float, default @initial_accumulator_value@): initial
            value of :math:`s`.
        eps (float or schedule, default @eps@): term added to the denominator.
        maximize (bool, default @maximize@): maximize the objective instead of minimizing.

    State per parameter: ``sum`` (:math:`s`).  Difference from PyTorch: an
    ``initial_accumulator_value`` given in a parameter group is honoured for that group;
    PyTorch 2.13 ignores it and fills every group's sum from the constructor argument.
    """

    _spec = C.ADAGRAD

    def __init__(
        self,
        params: Params,
        lr: Hyper = _AG.lr,
        lr_decay: Hyper = _AG.lr_decay,
        weight_decay: Hyper = _AG.weight_decay,
        initial_accumulator_value: float = _AG.initial_accumulator_value,
        eps: Hyper = _AG.eps,
        *,
        maximize: bool = _AG.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


@_document
class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop`` (eps outside the square root, no bias
    correction).

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize}) \\
        &\text{if } \lambda \neq 0:\ g_t \leftarrow g_t + \lambda \theta_{t-1} \\
        &v_t \leftarrow \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        &\text{if centered: } \bar g_t \leftarrow \bar g_{t-1} + (1 - \alpha)(g_t - \bar g_{t-1}),
            \ d_t = \sqrt{v_t - \bar g_t^2} + \epsilon, \text{ else } d_t = \sqrt{v_t} + \epsilon \\
        &\text{if } \mu > 0:\ b_t \leftarrow \mu b_{t-1} + g_t / d_t,\
            \theta_t \leftarrow \theta_{t-1} - \gamma b_t \\
        &\text{else: } \theta_t \leftarrow \theta_{t-1} - \gamma g_t / d_t
        \end{aligned}

    Args:
        params: a list of float32, float64, float16 or bfloat16 arrays, a dict name ->
            array, or a list of parameter groups ``{"params": ..., <option>: value}``;
            updated in place.
        lr (float or schedule, default @lr@): learning rate :math:`\gamma`.
        alpha (float or schedule, default @alpha@): smoothing constant :math:`\alpha`.
        eps (float or schedule, default @eps@): term added to the denominator.
        weight_decay (float or schedule, default @weight_decay@): L2 penalty :math:`\lambda`.
        momentum (float or schedule, default @momentum@): momentum factor :math:`\mu`.
        centered (bool, default @centered@): normalise by the estimated variance of the
            gradient.
        maximize (bool, default @maximize@): maximize the objective instead of minimizing.

    State per parameter: ``square_avg`` (:math:`v`), ``grad_avg`` (:math:`\bar g`, when
    centered), ``momentum_buffer`` (when momentum > 0).
    """

    _spec = C.RMSPROP

    def __init__(
        self,
        params: Params,
        lr: Hyper = _R.lr,
        alpha: Hyper = _R.alpha,
        eps: Hyper = _R.eps,
        weight_decay: Hyper = _R.weight_decay,
        momentum: Hyper = _R.momentum,
        centered: bool = _R.centered,
        *,
        maximize: bool = _R.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


_ADAM_MATH = r"""
    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize}) \\
        &\text{if } \lambda \neq 0: %s \\
        &m_t \leftarrow m_{t-1} + (1 - \beta_1)(g_t - m_{t-1}) \\
        &v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        &\hat v_t \leftarrow \max(\hat v_{t-1}, v_t) \text{ if amsgrad, else } \hat v_t = v_t \\
        &\theta_t \leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \cdot
            \frac{m_t}{\sqrt{\hat v_t} \cdot \left(1 / \sqrt{1 - \beta_2^t}\right) + \epsilon}
        \end{aligned}

    The scalars are computed once per step in float64 (``lr / (1 - beta1**t)``,
    ``1 / (1 - beta2**t)**0.5``%s); the denominator multiplies by the reciprocal where
    torch divides (at most one rounding apart).

    Args:
        params: a list of float32, float64, float16 or bfloat16 arrays, a dict name ->
            array, or a list of parameter groups ``{"params": ..., <option>: value}``;
            updated in place.
        lr (float or schedule, default @lr@): learning rate :math:`\gamma`.
        betas (pair of floats or schedules, default @betas@): :math:`(\beta_1,
            \beta_2)`, the coefficients of the running averages of the gradient and of its
            square.
        eps (float or schedule, default @eps@): term added to the denominator.
        weight_decay (float or schedule, default @weight_decay@): %s :math:`\lambda`.
        amsgrad (bool, default @amsgrad@): use the maximum of past squared averages
            (AMSGrad).
        maximize (bool, default @maximize@): maximize the objective instead of minimizing.

    State per parameter: ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`),
    ``max_exp_avg_sq`` (:math:`\hat v`, when amsgrad).
"""


@_document
class Adam(Optimizer):
    __doc__ = "Adam, as ``torch.optim.Adam`` (coupled, L2 weight decay).\n" + _ADAM_MATH % (
        r"g_t \leftarrow g_t + \lambda \theta_{t-1}",
        "",
        "weight decay (L2 penalty)",
    )

    _spec = C.ADAM

    def __init__(
        self,
        params: Params,
        lr: Hyper = _A.lr,
        betas: Betas = _A.betas,
        eps: Hyper = _A.eps,
        weight_decay: Hyper = _A.weight_decay,
        amsgrad: bool = _A.amsgrad,
        *,
        maximize: bool = _A.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


@_document
class AdamW(Adam):
    __doc__ = (
        "AdamW, as ``torch.optim.AdamW``: Adam with decoupled weight decay (this "
        "step's lr).\n"
        + _ADAM_MATH
        % (
            r"\theta_{t-1} \leftarrow \theta_{t-1} (1 - \gamma \lambda)",
            ", ``1 - lr * weight_decay``",
            "decoupled weight decay",
        )
    )

    _spec = C.ADAMW

    def __init__(
        self,
        params: Params,
        lr: Hyper = _AW.lr,
        betas: Betas = _AW.betas,
        eps: Hyper = _AW.eps,
        weight_decay: Hyper = _AW.weight_decay,
        amsgrad: bool = _AW.amsgrad,
        *,
        maximize: bool = _AW.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


_AX, _NA, _RA, _AD = C.ADAMAX.D, C.NADAM.D, C.RADAM.D, C.ADADELTA.D


@_document
class Adamax(Optimizer):
    r"""Adamax (Adam with the infinity norm), as ``torch.optim.Adamax``.

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize}) \\
        &\text{if } \lambda \neq 0:\ g_t \leftarrow g_t + \lambda \theta_{t-1} \\
        &m_t \leftarrow m_{t-1} + (1 - \beta_1)(g_t - m_{t-1}) \\
        &u_t \leftarrow \max(\beta_2 u_{t-1}, |g_t| + \epsilon) \\
        &\theta_t \leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \cdot m_t / u_t
        \end{aligned}

    The step size ``lr / (1 - beta1**t)`` is computed once per step in float64.  The
    maximum propagates a NaN from either side, as ``torch.maximum``.

    Args:
        params: a list of float32, float64, float16 or bfloat16 arrays, a dict name ->
            array, or a list of parameter groups ``{"params": ..., <option>: value}``;
            updated in place.
        lr (float or schedule, default @lr@): learning rate :math:`\gamma`.
        betas (pair of floats or schedules, default @betas@): :math:`(\beta_1,
            \beta_2)`, the coefficients of the running average of the gradient and of
            the exponentially weighted infinity norm.
        eps (float or schedule, default @eps@): term added to the denominator.
        weight_decay (float or schedule, default @weight_decay@): weight decay (L2
            penalty) :math:`\lambda`.
        maximize (bool, default @maximize@): maximize the objective instead of minimizing.

    State per parameter: ``exp_avg`` (:math:`m`), ``exp_inf`` (:math:`u`).
    """

    _spec = C.ADAMAX

    def __init__(
        self,
        params: Params,
        lr: Hyper = _AX.lr,
        betas: Betas = _AX.betas,
        eps: Hyper = _AX.eps,
        weight_decay: Hyper = _AX.weight_decay,
        *,
        maximize: bool = _AX.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


@_document
class NAdam(Optimizer):
    r"""NAdam (Adam with Nesterov momentum), as ``torch.optim.NAdam``.

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize}) \\
        &\text{if } \lambda \neq 0:\ \theta_{t-1} \leftarrow \theta_{t-1} (1 - \gamma \lambda)
            \text{ if decoupled\_weight\_decay, else } g_t \leftarrow g_t + \lambda \theta_{t-1} \\
        &\mu_t = \beta_1 \left(1 - \tfrac12\, 0.96^{t \psi}\right),\quad
            \mu_{t+1} = \beta_1 \left(1 - \tfrac12\, 0.96^{(t + 1) \psi}\right),\quad
            \Pi_t = \Pi_{t-1} \mu_t \\
        &m_t \leftarrow m_{t-1} + (1 - \beta_1)(g_t - m_{t-1}) \\
        &v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2,\quad
            d_t = \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
        &\theta_t \leftarrow \theta_{t-1} - \frac{\gamma (1 - \mu_t)}{1 - \Pi_t} \cdot
            \frac{g_t}{d_t} - \frac{\gamma \mu_{t+1}}{1 - \Pi_t \mu_{t+1}} \cdot \frac{m_t}{d_t}
        \end{aligned}

    The coefficients are computed once per step in float64, from the running product
    :math:`\Pi_t` (``mu_product``, group state, starts at 1.0, saved by ``state_dict`` and
    ``fastopt.save``; with a scheduled :math:`\beta_1` or :math:`\psi` it is the product of
    the values of each step).  As in torch, whose ``mu_product`` is a tensor of the default
    dtype, the product is rounded to float32 at every step (:math:`\mu_t` too, before the
    multiplication); with ``torch.set_default_dtype(torch.float64)`` torch keeps it in
    float64, which moves a float64 trajectory by about 1e-8 relative.

    Args:
        params: a list of float32, float64, float16 or bfloat16 arrays, a dict name ->
            array, or a list of parameter groups ``{"params": ..., <option>: value}``;
            updated in place.
        lr (float or schedule, default @lr@): learning rate :math:`\gamma`.
        betas (pair of floats or schedules, default @betas@): :math:`(\beta_1,
            \beta_2)`, the coefficients of the running averages of the gradient and of its
            square.
        eps (float or schedule, default @eps@): term added to the denominator.
        weight_decay (float or schedule, default @weight_decay@): weight decay
            :math:`\lambda`.
        momentum_decay (float or schedule, default @momentum_decay@): momentum decay
            :math:`\psi`.
        decoupled_weight_decay (bool, default @decoupled_weight_decay@): decay the
            parameters (AdamW-style, NAdamW) instead of adding :math:`\lambda \theta` to the
            gradient.
        maximize (bool, default @maximize@): maximize the objective instead of minimizing.

    State per parameter: ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`); per group:
    ``mu_product`` (:math:`\Pi`; torch keeps one per parameter, all equal).
    """

    _spec = C.NADAM

    def __init__(
        self,
        params: Params,
        lr: Hyper = _NA.lr,
        betas: Betas = _NA.betas,
        eps: Hyper = _NA.eps,
        weight_decay: Hyper = _NA.weight_decay,
        momentum_decay: Hyper = _NA.momentum_decay,
        decoupled_weight_decay: bool = _NA.decoupled_weight_decay,
        *,
        maximize: bool = _NA.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


@_document
class RAdam(Optimizer):
    r"""RAdam (rectified Adam), as ``torch.optim.RAdam``.

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize}) \\
        &\text{if } \lambda \neq 0:\ \theta_{t-1} \leftarrow \theta_{t-1} (1 - \gamma \lambda)
            \text{ if decoupled\_weight\_decay, else } g_t \leftarrow g_t + \lambda \theta_{t-1} \\
        &m_t \leftarrow m_{t-1} + (1 - \beta_1)(g_t - m_{t-1}) \\
        &v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        &\rho_\infty = 2 / (1 - \beta_2) - 1,\quad
            \rho_t = \rho_\infty - 2 t \beta_2^t / (1 - \beta_2^t) \\
        &\text{if } \rho_t > 5:\ r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
            {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}},\
            \theta_t \leftarrow \theta_{t-1} - \frac{\gamma \sqrt{1 - \beta_2^t}\, r_t}
            {1 - \beta_1^t} \cdot \frac{m_t}{\sqrt{v_t} + \epsilon} \\
        &\text{else: } \theta_t \leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} m_t
        \end{aligned}

    :math:`\rho_t`, the branch and the step size are computed once per step in float64
    (torch's Python floats); the step size folds the scalars that torch multiplies element
    by element (a few roundings apart).

    Args:
        params: a list of float32, float64, float16 or bfloat16 arrays, a dict name ->
            array, or a list of parameter groups ``{"params": ..., <option>: value}``;
            updated in place.
        lr (float or schedule, default @lr@): learning rate :math:`\gamma`.
        betas (pair of floats or schedules, default @betas@): :math:`(\beta_1,
            \beta_2)`, the coefficients of the running averages of the gradient and of its
            square.
        eps (float or schedule, default @eps@): term added to the denominator.
        weight_decay (float or schedule, default @weight_decay@): weight decay
            :math:`\lambda`.
        decoupled_weight_decay (bool, default @decoupled_weight_decay@): decay the
            parameters (AdamW-style) instead of adding :math:`\lambda \theta` to the gradient.
        maximize (bool, default @maximize@): maximize the objective instead of minimizing.

    State per parameter: ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`).
    """

    _spec = C.RADAM

    def __init__(
        self,
        params: Params,
        lr: Hyper = _RA.lr,
        betas: Betas = _RA.betas,
        eps: Hyper = _RA.eps,
        weight_decay: Hyper = _RA.weight_decay,
        decoupled_weight_decay: bool = _RA.decoupled_weight_decay,
        *,
        maximize: bool = _RA.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


@_document
class Adadelta(Optimizer):
    r"""Adadelta, as ``torch.optim.Adadelta``.

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize}) \\
        &\text{if } \lambda \neq 0:\ g_t \leftarrow g_t + \lambda \theta_{t-1} \\
        &v_t \leftarrow \rho v_{t-1} + (1 - \rho) g_t^2 \\
        &\Delta_t = \sqrt{u_{t-1} + \epsilon} / \sqrt{v_t + \epsilon} \cdot g_t \\
        &u_t \leftarrow \rho u_{t-1} + (1 - \rho) \Delta_t^2 \\
        &\theta_t \leftarrow \theta_{t-1} - \gamma \Delta_t
        \end{aligned}

    Args:
        params: a list of float32, float64, float16 or bfloat16 arrays, a dict name ->
            array, or a list of parameter groups ``{"params": ..., <option>: value}``;
            updated in place.
        lr (float or schedule, default @lr@): coefficient :math:`\gamma` that scales
            :math:`\Delta` before it is applied.
        rho (float or schedule, default @rho@): coefficient :math:`\rho` of the running
            averages of the squared gradient and of the squared update (in [0, 1]).
        eps (float or schedule, default @eps@): term added inside both square roots.
        weight_decay (float or schedule, default @weight_decay@): weight decay (L2
            penalty) :math:`\lambda`.
        maximize (bool, default @maximize@): maximize the objective instead of minimizing.

    State per parameter: ``square_avg`` (:math:`v`), ``acc_delta`` (:math:`u`).
    """

    _spec = C.ADADELTA

    def __init__(
        self,
        params: Params,
        lr: Hyper = _AD.lr,
        rho: Hyper = _AD.rho,
        eps: Hyper = _AD.eps,
        weight_decay: Hyper = _AD.weight_decay,
        *,
        maximize: bool = _AD.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


_RP, _AS = C.RPROP.D, C.ASGD.D


@_document
class Rprop(Optimizer):
    r"""Rprop (resilient backpropagation), as ``torch.optim.Rprop``.

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize}) \\
        &\text{at the first step: } \Delta_0 = \gamma,\ g_0 = 0 \\
        &s_t = \operatorname{sign}(g_t \, g_{t-1}),\quad
            f_t = \eta_+ \text{ if } s_t > 0,\ \eta_- \text{ if } s_t < 0,\
            1 \text{ otherwise} \\
        &\Delta_t \leftarrow \min(\max(\Delta_{t-1} f_t, \Gamma_{min}), \Gamma_{max}) \\
        &g_t \leftarrow 0 \text{ where } f_t = \eta_- \\
        &\theta_t \leftarrow \theta_{t-1} - \operatorname{sign}(g_t) \, \Delta_t \\
        &g_{t-1} \leftarrow g_t \text{ (kept as } \texttt{prev}\text{)}
        \end{aligned}

    In torch's order and dtype: the factor replaces the sign (etaplus, then etaminus, then 1
    for 0) in the parameter's dtype, and the gradient is zeroed where the factor equals
    etaminus.  ``sign`` is ``torch.sign``, 0 for NaN: an element whose gradient is NaN keeps
    its value and step size (and its ``prev`` becomes NaN), as in torch.  ``lr`` only
    fills the step sizes, at the group's first step (a schedule's value at that step; as
    torch, which fills them from ``group["lr"]`` when the state is created); changing it
    later has no effect.

    Args:
        params: a list of float32/float64 arrays, a dict name -> array, or a list of
            parameter groups ``{"params": ..., <option>: value}``; updated in place.
        lr (float or schedule, default @lr@): learning rate :math:`\gamma`, the initial
            step size.
        etas (pair of floats or schedules, default @etas@): :math:`(\eta_-, \eta_+)`, the
            multiplicative decrease and increase factors, :math:`0 < \eta_- < 1 < \eta_+`.
        step_sizes (pair of floats or schedules, default @step_sizes@):
            :math:`(\Gamma_{min}, \Gamma_{max})`, the minimal and maximal step sizes
            (min <= max).
        maximize (bool, default @maximize@): maximize the objective instead of minimizing.

    State per parameter: ``prev`` (:math:`g_{t-1}`), ``step_size`` (:math:`\Delta`; zeros
    until the first step fills it with lr); per group: ``step_size_ready``.
    """

    _spec = C.RPROP

    def __init__(
        self,
        params: Params,
        lr: Hyper = _RP.lr,
        etas: Betas = _RP.etas,
        step_sizes: Betas = _RP.step_sizes,
        *,
        maximize: bool = _RP.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


@_document
class ASGD(Optimizer):
    r"""Averaged stochastic gradient descent, as ``torch.optim.ASGD``.

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize}) \\
        &\text{if } \lambda \neq 0:\ g_t \leftarrow g_t + \lambda \theta_{t-1} \\
        &\theta_t \leftarrow \theta_{t-1} (1 - \lambda_d \eta_t) \\
        &\theta_t \leftarrow \theta_t - \eta_t g_t \\
        &a_t \leftarrow a_{t-1} + (\theta_t - a_{t-1}) \mu_t \text{ if } \mu_t \neq 1,
            \text{ else } a_t \leftarrow \theta_t \\
        &\eta_{t+1} = \gamma / (1 + \lambda_d \gamma t)^{\alpha},\quad
            \mu_{t+1} = 1 / \max(1, t - t_0)
        \end{aligned}

    with :math:`\eta_1 = \gamma` and :math:`\mu_1 = 1`.  As in torch, :math:`\eta` and
    :math:`\mu` are computed at the end of a step for the next one, with that step's
    options, in float64, and kept rounded to float32 (torch keeps them as 0-d tensors of its
    default dtype); they are group state (``eta``, ``mu``), saved by ``state_dict`` and
    ``fastopt.save``, so that a resumed run gives the same bits.

    Args:
        params: a list of float32/float64 arrays, a dict name -> array, or a list of
            parameter groups ``{"params": ..., <option>: value}``; updated in place.
        lr (float or schedule, default @lr@): learning rate :math:`\gamma`.
        lambd (float or schedule, default @lambd@): decay term :math:`\lambda_d`.
        alpha (float or schedule, default @alpha@): power :math:`\alpha` of the eta
            update.
        t0 (float or schedule, default @t0@): the step :math:`t_0` from which on the
            average moves (before it, :math:`a = \theta`).
        weight_decay (float or schedule, default @weight_decay@): weight decay (L2
            penalty) :math:`\lambda`.
        maximize (bool, default @maximize@): maximize the objective instead of minimizing.

    State per parameter: ``ax`` (:math:`a`, the average); per group: ``eta``
    (:math:`\eta`, 0.0 before the first step, which starts it at lr) and ``mu``
    (:math:`\mu`; torch keeps them per parameter, all equal).
    """

    _spec = C.ASGD

    def __init__(
        self,
        params: Params,
        lr: Hyper = _AS.lr,
        lambd: Hyper = _AS.lambd,
        alpha: Hyper = _AS.alpha,
        t0: Hyper = _AS.t0,
        weight_decay: Hyper = _AS.weight_decay,
        *,
        maximize: bool = _AS.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


_AF, _MU = C.ADAFACTOR.D, C.MUON.D

#: ``eps`` of Adafactor: (eps1 or None, eps2).
Eps = tuple[Hyper | None, Hyper] | list[Any]


@_document
class Adafactor(Optimizer):
    r"""Adafactor, as ``torch.optim.Adafactor`` (torch's variant: lr caps the relative step
    size and scales the decoupled weight decay; eps1 acts on the variance estimate).

    .. math::
        \begin{aligned}
        &G_t \leftarrow \nabla_\theta f_t(\theta_{t-1})
            \quad (-\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize}) \\
        &\hat\beta_{2_t} = 1 - t^{\tau},\quad \rho_t = \min(\gamma, 1 / \sqrt t),\quad
            \alpha_t = \max(\epsilon_2, \mathrm{RMS}(\theta_{t-1}))\, \rho_t \\
        &\text{if } \lambda \neq 0:\ \theta_{t-1} \leftarrow \theta_{t-1} (1 - \gamma \lambda) \\
        &\text{if } \dim G_t \geq 2:\ R_t \leftarrow \mathrm{lerp}(R_{t-1},
            \mathrm{mean}_{-1}(G_t^2), t^{\tau}),\
            C_t \leftarrow \mathrm{lerp}(C_{t-1}, \mathrm{mean}_{-2}(G_t^2), t^{\tau}),\
            \hat V_t = \frac{R_t C_t}{\max(\mathrm{mean}_{-2}(R_t), \epsilon_1)} \\
        &\text{else: } \hat V_t \leftarrow \mathrm{lerp}(\hat V_{t-1}, G_t^2, t^{\tau}) \\
        &U_t = G_t / \sqrt{\max(\hat V_t, \epsilon_1^2)},\quad
            \theta_t \leftarrow \theta_{t-1} - \frac{\alpha_t}
            {\max(1, \mathrm{RMS}(U_t) / d)} U_t
        \end{aligned}

    :math:`\mathrm{RMS}(x) = \lVert x \rVert_2 / \sqrt{\mathrm{numel}(x)}`;
    :math:`\mathrm{mean}_{-1}(G^2)` is ``norm(G, dim=-1)**2 / G.size(-1)`` as torch computes
    it; ``lerp(a, b, w)`` is torch's (``a + w (b - a)`` for ``|w| < 0.5``, else
    ``b - (b - a)(1 - w)``).  Parameters of 2 or more dimensions keep the factored second
    moment (``row_var`` of shape ``(..., m, 1)``, ``col_var`` of shape ``(..., 1, n)``),
    vectors and scalars the full ``variance``.  Each parameter takes the step counter of its
    group (torch keeps one per parameter; every parameter gets a gradient at every step
    here, so they are equal).  ``eps1=None`` is the machine epsilon of each parameter's
    dtype (torch takes the first parameter's for the whole group).

    Exactness: the reductions (norms, row and column means) are computed once in NumPy
    (``fastopt._matrix``), accumulated in float64 and rounded to the parameter's dtype, and
    the element-wise parts run on the chosen backend, so every backend gives the same bits.
    torch accumulates its float32 norms in float32 in another order and fuses some
    multiply-adds, so fastopt matches torch to a few float32 ulps per step (tests hold it
    to ``rtol=1e-5`` plus ``3e-6 * max|p|`` over 20 steps in float32, ``1e-10`` in
    float64).  No ``fastopt.jit`` overload and no functional form: use this class.

    Args:
        params: a list of float32/float64 arrays, a dict name -> array, or a list of
            parameter groups ``{"params": ..., <option>: value}``; updated in place.
        lr (float or schedule, default @lr@): :math:`\gamma`, the largest relative step
            size :math:`\rho_t` and the weight-decay scale.
        beta2_decay (float or schedule, default @beta2_decay@): :math:`\tau \le 0`, the
            decay rate of :math:`\hat\beta_2`.
        eps (pair, default @eps@): :math:`(\epsilon_1, \epsilon_2)`; :math:`\epsilon_1`
            (None: the dtype's machine epsilon) floors the variance estimate,
            :math:`\epsilon_2` the parameter RMS in :math:`\alpha_t`.
        d (float or schedule, default @d@): the clipping threshold of the update's RMS
            (>= 1).
        weight_decay (float or schedule, default @weight_decay@): decoupled weight decay
            :math:`\lambda`.
        maximize (bool, default @maximize@): maximize the objective instead of minimizing.

    State per parameter: ``row_var`` (:math:`R`) and ``col_var`` (:math:`C`) for 2-D and
    higher parameters, ``variance`` (:math:`\hat V`) for the others.
    """

    _spec = C.ADAFACTOR
    _driver = _matrix.adafactor_step

    def __init__(
        self,
        params: Params,
        lr: Hyper = _AF.lr,
        beta2_decay: Hyper = _AF.beta2_decay,
        eps: Eps = _AF.eps,
        d: Hyper = _AF.d,
        weight_decay: Hyper = _AF.weight_decay,
        *,
        maximize: bool = _AF.maximize,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)


@_document
class Muon(Optimizer):
    r"""Muon (momentum orthogonalised by Newton-Schulz), as ``torch.optim.Muon``: for
    2-D parameters only (the constructor refuses others; give biases, embeddings and other
    parameters to another optimizer such as AdamW).

    .. math::
        \begin{aligned}
        &B_t \leftarrow \mathrm{lerp}(B_{t-1}, g_t, 1 - \mu) \\
        &\tilde B_t = \mathrm{lerp}(g_t, B_t, \mu) \text{ if nesterov, else } B_t \\
        &X_0 = \tilde B_t / \max(\lVert \tilde B_t \rVert_F, \epsilon)
            \quad (\text{transposed when it has more rows than columns}) \\
        &X_{k+1} = a X_k + (b A_k + c A_k^2) X_k,\quad A_k = X_k X_k^\top
            \quad (k < \text{ns\_steps}),\quad O_t = X_{\text{ns\_steps}} \\
        &\theta_t \leftarrow \theta_{t-1} (1 - \gamma \lambda) - \gamma' O_t,\quad
            \gamma' = \gamma \sqrt{\max(1, A / B)} \text{ ("original", None) or }
            0.2 \gamma \sqrt{\max(A, B)} \text{ ("match\_rms\_adamw")}
        \end{aligned}

    for an :math:`A \times B` parameter; ``lerp`` is torch's.  The Newton-Schulz iteration
    runs in NumPy (BLAS) for every backend (``fastopt._matrix.newton_schulz``); the
    momentum and the update are element-wise rules of the chosen backend, so every backend
    gives the same bits.  ``ns_dtype="bfloat16"`` (the default, as torch) rounds the input
    and every product to bfloat16 (round to nearest even, emulated on the float32 bits;
    products accumulate in float32, one rounding per result, as torch on CPU), so it matches
    torch to bfloat16 rounding: the summation order of the products differs, and one
    bfloat16 ulp is 2**-8 relative (tests: within one bfloat16 ulp of the update per step).
    ``ns_dtype="float32"`` keeps float32 throughout: more exact, not torch's numbers.  No
    ``fastopt.jit`` overload and no functional form: use this class.

    Args:
        params: a list of 2-D float32/float64 arrays, a dict name -> array, or a list of
            parameter groups ``{"params": ..., <option>: value}``; updated in place.
        lr (float or schedule, default @lr@): learning rate :math:`\gamma`.
        weight_decay (float or schedule, default @weight_decay@): decoupled weight decay
            :math:`\lambda`.
        momentum (float or schedule, default @momentum@): momentum factor :math:`\mu`.
        nesterov (bool, default @nesterov@): Nesterov momentum.
        ns_coefficients (three floats or schedules, default @ns_coefficients@): the
            coefficients :math:`(a, b, c)` of the Newton-Schulz polynomial.
        eps (float or schedule, default @eps@): floor :math:`\epsilon` of the norm the
            momentum is divided by.
        ns_steps (int, default @ns_steps@): number of Newton-Schulz iterations, in [0, 100).
        adjust_lr_fn (str or None, default @adjust_lr_fn@): "original" (or None) or
            "match_rms_adamw": how :math:`\gamma'` follows the matrix shape.
        ns_dtype (str, default @ns_dtype@): "bfloat16" (torch's numbers) or "float32".

    State per parameter: ``momentum_buffer`` (:math:`B`).
    """

    _spec = C.MUON
    _driver = _matrix.muon_step

    def __init__(
        self,
        params: Params,
        lr: Hyper = _MU.lr,
        weight_decay: Hyper = _MU.weight_decay,
        momentum: Hyper = _MU.momentum,
        nesterov: bool = _MU.nesterov,
        ns_coefficients: tuple[Hyper, Hyper, Hyper] | list[Hyper] = _MU.ns_coefficients,
        eps: Hyper = _MU.eps,
        ns_steps: int = _MU.ns_steps,
        adjust_lr_fn: str | None = _MU.adjust_lr_fn,
        *,
        ns_dtype: str = _MU.ns_dtype,
        **robust: Unpack[Robustness],
    ) -> None:
        super().__init__(params, **self._spec.pick(locals()), **robust)
