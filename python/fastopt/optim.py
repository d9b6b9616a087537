"""Optimizer objects over NumPy arrays: SGD, Adagrad, RMSprop, Adam and AdamW.

Arguments, defaults and update rules are PyTorch's (``torch.optim``); see the docstrings
of ``fastopt.backends.numpy`` for the formulas.  Differences from PyTorch:

* ``step(grads)`` takes the gradients explicitly, in the structure of ``params`` (a list
  in order, or a dict by name); every parameter needs a gradient at every step.
* Any scalar hyperparameter (``lr``, ``momentum``, ``betas[0]``, ``weight_decay``, ...)
  may be a number or a callable ``step -> value`` (such as a ``fastopt.schedules``
  schedule); the optimizer evaluates it at its step counter (0 for the first update) and
  passes the numbers to the kernels.  Nothing is written back into the groups.
* ``state_dict()`` returns copies (a snapshot), not references.

Robustness options (keyword-only, on every optimizer; see ``Optimizer``):

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
* Thread safety: different optimizers may be stepped from different threads at once
  (the kernels release the GIL).  Stepping (or loading) *one* optimizer from two threads
  at once raises ``RuntimeError`` in the second thread, with nothing modified by it.
"""
from __future__ import annotations

import itertools
import operator
import numbers
import threading

import numpy as np

from ._validation import (check_bool, check_clip_value, check_hyper, check_max_norm,
                          check_norm_type)
from .backends import _checks, resolve
from .clip import _clip_value_copy, _norm_coef, _total_norm
from .errors import NonFiniteGradientError
from .kernels import adam_scalars

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NonFiniteGradientError"]

_SCHEDULE_MARK = "<schedule>"
_NONFINITE = ("raise", "skip", "ignore")


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

    def __init__(self, table):
        self._table = table
        self.id = next(self._ids)

    def remove(self):
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


def _parse_params(params):
    """Normalise ``params`` into a list of group dicts with 'params' and 'names' lists."""
    if isinstance(params, np.ndarray):
        raise TypeError("params must be a list of arrays, a dict of name -> array or a list of "
                        "parameter-group dicts, got a single ndarray; wrap it: [array]")
    if isinstance(params, dict):
        if "params" in params and not isinstance(params["params"], np.ndarray):
            raise TypeError("params looks like one parameter group; pass a list of groups: [group]")
        return [{"params": params}]
    try:
        items = list(params)
    except TypeError:
        raise TypeError(f"params must be a list of arrays, a dict of name -> array or a list of "
                        f"parameter-group dicts, got {type(params).__name__}") from None
    if not items:
        raise ValueError("params is empty: the optimizer got no parameters to update")
    if all(isinstance(x, dict) for x in items):
        return [dict(g) for g in items]
    if any(isinstance(x, dict) for x in items):
        raise TypeError("params mixes arrays and parameter-group dicts; pass either a list of "
                        "arrays or a list of groups {'params': [...], ...}")
    return [{"params": items}]


class Optimizer:
    """Base class: parameter groups, scheduled hyperparameters, state, hooks, save/resume.

    Subclasses set ``_defaults`` (PyTorch's), ``_scalars`` (the schedulable scalar options),
    ``_flags`` (boolean options) and implement ``_state_names(group)`` and ``_apply``.
    """

    _defaults: dict = {}
    _scalars: tuple = ()
    _flags: tuple = ()

    def __init__(self, params, backend="auto", *, nonfinite="raise", max_grad_norm=None,
                 norm_type=2.0, clip_value=None, clip_scope="all", **options):
        self.backend, self._be = resolve(backend)
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
        self.defaults = dict(self._defaults)
        for key, value in options.items():
            if key not in self.defaults:
                raise TypeError(f"{type(self).__name__} got an unexpected option {key!r}; "
                                f"valid options: {sorted(self.defaults)}")
            self.defaults[key] = value
        self.param_groups = []
        self._buffers = []      # per group: {state name: [array per param]}
        self._group_state = []  # per group: {"step": int, ...}
        self._names = []        # every parameter's name, in order
        self._string_names = True
        self.step_count = 0
        self._pre_hooks = {}
        self._plans = {}  # group index -> (raw option values, checked plan); see _cached_plan
        self._raw_options = operator.itemgetter(*self._scalars)  # every optimizer has >= 2
        self._post_hooks = {}
        for group in _parse_params(params):
            self.add_param_group(group)
        self.last_lr = [self._value(g, "lr", 0) for g in self.param_groups]

    # ------------------------------------------------------------------ groups
    def add_param_group(self, group):
        """Add a group ``{"params": list or dict of arrays, <option>: value, ...}``."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("a parameter group must be a dict with a 'params' entry")
        group = dict(group)
        raw = group.pop("params")
        for key in group:
            if key not in self.defaults:
                raise ValueError(f"parameter group has an unknown option {key!r}; valid options "
                                 f"for {type(self).__name__}: {sorted(self.defaults)}")
        if isinstance(raw, np.ndarray):
            raise TypeError("a group's 'params' must be a list or dict of arrays; wrap a single "
                            "array in a list")
        if isinstance(raw, dict):
            names, arrays = list(raw.keys()), list(raw.values())
            for nm in names:
                if not isinstance(nm, str):
                    raise TypeError(f"parameter names must be strings, got {nm!r}")
        else:
            arrays = list(raw)
            names = list(range(len(self._names), len(self._names) + len(arrays)))
            self._string_names = False
        if not arrays:
            raise ValueError("a parameter group has no parameters")
        dup = set(names) & set(self._names)
        if dup:
            raise ValueError(f"parameter names {sorted(map(str, dup))} appear in two groups")
        # The same checks (and messages) as every backend's: arrays, float32/float64,
        # C-contiguous, writeable, and no two parameters (of any group) sharing memory, nor a
        # parameter with a state array of an earlier group.
        _checks.collect([("params", [p for g in self.param_groups for p in g["params"]] + arrays,
                          True)], self._names + names,
                        (((nm, key), a) for g, bufs in zip(self.param_groups, self._buffers)
                         for key, states in bufs.items() for nm, a in zip(g["names"], states)))
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_group(group)
        group["params"] = arrays
        group["names"] = names
        self.param_groups.append(group)
        self._names.extend(names)
        self._buffers.append({name: [self._new_state(name, group, p) for p in arrays]
                              for name in self._state_names(group)})
        self._group_state.append({"step": 0, **self._extra_group_state()})

    def _check_group(self, group):
        for key in self._flags:
            group[key] = check_bool(key, group[key])
        for key in self._scalars:
            if key == "betas":
                b = group[key]
                if not isinstance(b, (tuple, list)) or len(b) != 2:
                    raise TypeError(f"betas must be a pair (beta1, beta2), got {b!r}")
                for name, v in zip(("beta1", "beta2"), b):
                    if not callable(v):
                        check_hyper(name, v)
                group[key] = tuple(b)
            elif not callable(group[key]):
                check_hyper(key, group[key])

    def _value(self, group, key, k):
        v = group[key]
        if callable(v):
            v = v(k)
            if isinstance(v, np.ndarray) and v.ndim == 0:
                v = v.item()
        return check_hyper(key, v)

    def _betas(self, group, k):
        b1, b2 = group["betas"]
        b1 = b1(k) if callable(b1) else b1
        b2 = b2(k) if callable(b2) else b2
        return check_hyper("beta1", b1), check_hyper("beta2", b2)

    # ------------------------------------------------------------------ subclass API
    def _state_names(self, group):
        return ()

    def _new_state(self, name, group, p):
        return np.zeros_like(p)

    def _extra_group_state(self):
        return {}

    def _cached_plan(self, gi, group, k):
        """``_plan`` of a group, reused while its options are the same constants.

        A group whose options are all plain numbers gives the same checked plan at every
        step; it is computed again whenever an option changes (``group["lr"] = x``, a
        ``load_state_dict``) and never cached when an option is a schedule."""
        raw = self._raw_options(group)
        hit = self._plans.get(gi)
        if hit is not None and hit[0] == raw:
            return hit[1]
        plan = self._plan(group, k)
        flat = [x for v in raw for x in (v if isinstance(v, tuple) else (v,))]
        if not any(callable(x) for x in flat):
            self._plans[gi] = (raw, plan)
        else:
            self._plans.pop(gi, None)
        return plan

    def _plan(self, group, k):
        """Evaluate and check this step's hyperparameters of one group (no array touched)."""
        raise NotImplementedError

    def _apply(self, group, gstate, buffers, grads, plan):
        raise NotImplementedError

    # ------------------------------------------------------------------ stepping
    def _split_grads(self, grads):
        total = len(self._names)
        if isinstance(grads, dict):
            if not self._string_names:
                raise TypeError("grads is a dict but the parameters were given as a list; pass "
                                "the gradients as a list in the same order")
            missing = [n for n in self._names if n not in grads]
            extra = [n for n in grads if n not in set(self._names)]
            if missing or extra:
                msg = []
                if missing:
                    msg.append(f"missing gradients for {missing[:5]}")
                if extra:
                    msg.append(f"gradients for unknown parameters {extra[:5]}")
                raise ValueError("grads does not match params: " + "; ".join(msg) +
                                 "; pass exactly one gradient per parameter name")
            flat = [grads[n] for n in self._names]
        elif self._string_names and not isinstance(grads, np.ndarray):
            # Matching a list to named parameters by dict order would silently swap two
            # gradients of the same shape: the order is ambiguous.
            raise TypeError("params were given by name: pass grads as a dict by name, "
                            f"{{name: gradient}} (got {type(grads).__name__})")
        elif isinstance(grads, np.ndarray):
            if total != 1:
                raise TypeError(f"grads is one array but the optimizer has {total} parameters; "
                                "pass a list (or dict) of gradients")
            flat = [grads]
        else:
            try:
                flat = list(grads)
            except TypeError:
                raise TypeError("grads must be a list of arrays in the order of params (or a dict "
                                f"by name), got {type(grads).__name__}") from None
            if len(flat) != total:
                raise ValueError(f"grads has {len(flat)} arrays but the optimizer has {total} "
                                 "parameters; pass exactly one gradient per parameter, in order")
        # A None (or any non-array) gradient is reported by the array checks of the backend.
        if len(self.param_groups) == 1:
            return [flat]
        out, i = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            out.append(flat[i:i + n])
            i += n
        return out

    def __getstate__(self):
        d = dict(self.__dict__)
        d.pop("_lock", None)
        d.pop("_be", None)  # a module; re-resolved from self.backend
        return d

    def __setstate__(self, d):
        self.__dict__.update(d)
        self._be = resolve(self.backend)[1]
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
                "modified by this call")

    def step(self, grads):
        """Apply one update with ``grads`` (same structure as params) to every parameter.

        Every gradient and every hyperparameter of every group is checked before any
        array is written; on error nothing has changed.  Non-finite gradients are handled
        per ``nonfinite`` (on a skipped step the post-hooks are not called and
        ``last_step_skipped`` is True); clipping per ``clip_value``/``max_grad_norm``.
        Raises RuntimeError if this optimizer is being stepped by another thread.
        """
        self._acquire("step")
        try:
            self._step(grads)
        finally:
            self._lock.release()

    def _check_all(self, per_group):
        # Every group's parameters, gradients and state: a gradient may alias none of them.
        _checks.collect([("params", [p for g in self.param_groups for p in g["params"]], True),
                         ("grads", [x for gs in per_group for x in gs], False)], self._names,
                        (((nm, key), a) for g, bufs in zip(self.param_groups, self._buffers)
                         for key, states in bufs.items() for nm, a in zip(g["names"], states)))

    def _step(self, grads):
        if self._pre_hooks:
            for hook in list(self._pre_hooks.values()):
                hook(self, grads)
        per_group = self._split_grads(grads)
        k = self.step_count
        plans = [self._cached_plan(gi, g, k) for gi, g in enumerate(self.param_groups)]
        checked = False
        if len(self.param_groups) > 1:
            # One backend call per group: check all groups first so that an error in a later
            # group cannot leave an earlier one updated.
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
                if not (isinstance(g, np.ndarray) and g.dtype.kind in "fc"):
                    continue  # not a valid gradient: the array checks report it
                idx = _first_nonfinite(g)
                if idx is None:
                    continue
                if not checked:  # report a malformed argument before the bad value
                    self._check_all(per_group)
                if self.nonfinite == "skip":
                    self.skipped_steps += 1
                    self.last_step_skipped = True
                    return
                raise NonFiniteGradientError(
                    f"grads[{nm!r}] has a non-finite value ({g[idx]}) at index "
                    f"{idx if g.ndim != 1 else idx[0]} (step {k}); nothing was updated.  "
                    "Fix the loss/gradient, or construct the optimizer with "
                    "nonfinite='skip' to skip such steps (counted in skipped_steps)")
        if self.clip_value is not None or self.max_grad_norm is not None:
            if not checked:
                self._check_all(per_group)
            per_group = self._clip(per_group)
        self.last_step_skipped = False
        for group, gstate, buffers, grads_g, plan in zip(
                self.param_groups, self._group_state, self._buffers, per_group, plans):
            self._apply(group, gstate, buffers, grads_g, plan)
            gstate["step"] += 1
        self.step_count = k + 1
        self.last_lr = [plan["lr"] for plan in plans]
        if self._post_hooks:
            for hook in list(self._post_hooks.values()):
                hook(self, grads)

    def _clip(self, per_group):
        """Clipped copies of the gradients (the caller's arrays are not modified)."""
        if self.clip_value is not None:
            per_group = [[_clip_value_copy(g, self.clip_value) for g in gs] for gs in per_group]
        if self.max_grad_norm is not None:
            if self.clip_scope == "all":
                sets = [[x for gs in per_group for x in gs]]
            else:
                sets = per_group
            coefs = [_norm_coef(self.max_grad_norm, _total_norm(s, self.norm_type)) for s in sets]
            if self.clip_scope == "all":
                coefs = coefs * len(per_group)
            per_group = [gs if c is None else [np.multiply(g, g.dtype.type(c)) for g in gs]
                         for gs, c in zip(per_group, coefs)]
        return per_group

    def register_step_pre_hook(self, hook):
        """Call ``hook(optimizer, grads)`` before every step; returns a handle with ``remove()``."""
        h = _Hook(self._pre_hooks)
        self._pre_hooks[h.id] = hook
        return h

    def register_step_post_hook(self, hook):
        """Call ``hook(optimizer, grads)`` after every step; returns a handle with ``remove()``."""
        h = _Hook(self._post_hooks)
        self._post_hooks[h.id] = hook
        return h

    @property
    def state(self):
        """Per-parameter state, ``{name: {state name: array}}`` (live arrays, not copies)."""
        out = {}
        for group, buffers in zip(self.param_groups, self._buffers):
            for i, nm in enumerate(group["names"]):
                out[nm] = {key: arrays[i] for key, arrays in buffers.items()}
        return out

    # ------------------------------------------------------------------ save / resume
    def state_dict(self):
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
                zip(self.param_groups, self._group_state, self._buffers)):
            entry = {"names": list(group["names"]), "shapes": [p.shape for p in group["params"]],
                     "dtypes": [p.dtype.str for p in group["params"]], **dict(gstate)}
            for key in self.defaults:
                v = group[key]
                if key == "betas":
                    entry[key] = tuple(_SCHEDULE_MARK if callable(b) else float(b) for b in v)
                    for bi, b in enumerate(v):
                        parts = _stateful_parts(b)
                        if parts:
                            schedules[f"{gi}.betas.{bi}"] = [x.state_dict() for x in parts]
                elif callable(v):
                    entry[key] = _SCHEDULE_MARK
                    parts = _stateful_parts(v)
                    if parts:
                        schedules[f"{gi}.{key}"] = [x.state_dict() for x in parts]
                else:
                    entry[key] = v
            groups.append(entry)
            for i, nm in enumerate(group["names"]):
                state[nm] = {key: arrays[i].copy() for key, arrays in buffers.items()}
        return {"kind": type(self).__name__, "step_count": self.step_count,
                "skipped_steps": self.skipped_steps, "last_lr": list(self.last_lr), "param_groups": groups, "state": state,
                "schedules": schedules}

    def load_state_dict(self, state_dict):
        """Restore a snapshot from ``state_dict()``.  Everything is checked first (optimizer
        kind, group layout, names, shapes, dtypes); on a mismatch nothing is changed."""
        self._acquire("load_state_dict")
        try:
            self._load_state_dict(state_dict)
        finally:
            self._lock.release()

    def _load_state_dict(self, state_dict):
        sd = state_dict
        kind = type(self).__name__
        if sd.get("kind") != kind:
            raise ValueError(f"state_dict is from a {sd.get('kind')} optimizer, not {kind}")
        groups = sd["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(groups)} parameter groups, this optimizer has "
                             f"{len(self.param_groups)}")
        for gi, (entry, group, buffers) in enumerate(zip(groups, self.param_groups, self._buffers)):
            names = list(entry["names"])
            if [str(n) for n in names] != [str(n) for n in group["names"]]:
                raise ValueError(f"group {gi}: state_dict has parameters {names[:5]}..., this "
                                 f"optimizer has {group['names'][:5]}...")
            for nm, p in zip(group["names"], group["params"]):
                saved = sd["state"].get(nm, sd["state"].get(str(nm)))
                if saved is None:
                    raise ValueError(f"state_dict has no state for parameter {nm!r}")
                for key in buffers:
                    if key not in saved:
                        raise ValueError(f"state_dict lacks {key!r} for parameter {nm!r} (was "
                                         "it saved with other options?)")
                    a = np.asarray(saved[key])
                    if a.shape != p.shape or a.dtype != p.dtype:
                        raise ValueError(f"state {key!r} of parameter {nm!r}: saved "
                                         f"{a.dtype}{a.shape}, parameter is {p.dtype}{p.shape}")
            for key in self.defaults:
                if key not in entry:
                    raise ValueError(f"group {gi} of the state_dict lacks option {key!r}")
        for tag, saved_states in sd.get("schedules", {}).items():
            parts = self._schedule_parts(tag)
            if isinstance(saved_states, dict):
                saved_states = [saved_states]
            if len(parts) != len(saved_states):
                raise ValueError(f"state_dict holds {len(saved_states)} stateful schedule(s) for "
                                 f"{tag!r}, this optimizer has {len(parts)} there; construct "
                                 "the optimizer with the same schedules as the saved run")
        for gi, (entry, group, gstate, buffers) in enumerate(
                zip(groups, self.param_groups, self._group_state, self._buffers)):
            for i, nm in enumerate(group["names"]):
                saved = sd["state"].get(nm, sd["state"].get(str(nm)))
                for key, arrays in buffers.items():
                    np.copyto(arrays[i], saved[key])
            for key in gstate:
                if key in entry:
                    gstate[key] = type(gstate[key])(entry[key])
            for key in self.defaults:
                v = entry[key]
                if key == "betas":
                    cur = list(group["betas"])
                    for bi in range(2):
                        if v[bi] != _SCHEDULE_MARK and not callable(cur[bi]):
                            cur[bi] = float(v[bi])
                    group["betas"] = tuple(cur)
                elif isinstance(v, str) and v == _SCHEDULE_MARK:
                    pass  # the schedule object is the constructor's; its state is restored below
                elif not callable(group[key]):
                    group[key] = type(group[key])(v) if isinstance(v, numbers.Number) else v
        for tag, saved_states in sd.get("schedules", {}).items():
            if isinstance(saved_states, dict):
                saved_states = [saved_states]
            for part, saved in zip(self._schedule_parts(tag), saved_states):
                part.load_state_dict(saved)
        self.step_count = int(sd["step_count"])
        self.skipped_steps = int(sd.get("skipped_steps", 0))
        self.last_lr = [float(x) for x in sd.get("last_lr", self.last_lr)]

    def _schedule_parts(self, tag):
        """The stateful schedules inside the hyperparameter named by a state_dict tag
        ("<group>.<option>" or "<group>.betas.<i>")."""
        pieces = str(tag).split(".")
        try:
            target = self.param_groups[int(pieces[0])][pieces[1]]
            if pieces[1] == "betas":
                target = target[int(pieces[2])]
        except (IndexError, KeyError, ValueError):
            raise ValueError(f"state_dict has schedule state for {tag!r}, which this optimizer "
                             "does not have") from None
        return _stateful_parts(target)

    def __repr__(self):
        lines = [f"{type(self).__name__}(backend={self.backend!r}, step_count={self.step_count}"]
        for gi, g in enumerate(self.param_groups):
            opts = ", ".join(f"{k}={g[k]!r}" for k in self.defaults)
            lines.append(f"  group {gi}: {len(g['params'])} arrays, {opts}")
        return "\n".join(lines) + ")"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay,
    as ``torch.optim.SGD`` (default ``lr=1e-3``)."""

    _defaults = dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                     maximize=False)
    _scalars = ("lr", "momentum", "dampening", "weight_decay")
    _flags = ("nesterov", "maximize")

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, backend="auto",
                 nonfinite="raise", max_grad_norm=None,
                 norm_type=2.0, clip_value=None, clip_scope="all"):
        super().__init__(params, backend, nonfinite=nonfinite, max_grad_norm=max_grad_norm,
                         norm_type=norm_type, clip_value=clip_value, clip_scope=clip_scope,
                         lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)

    def _check_group(self, group):
        super()._check_group(group)
        m, d = group["momentum"], group["dampening"]
        if group["nesterov"] and not callable(m) and not callable(d) and (m <= 0 or d != 0):
            raise ValueError(f"nesterov=True requires momentum > 0 and dampening == 0, got "
                             f"momentum={m}, dampening={d}")

    def _state_names(self, group):
        m = group["momentum"]
        return ("momentum_buffer",) if callable(m) or m != 0 else ()

    def _extra_group_state(self):
        return {"momentum_ready": False}

    def _plan(self, group, k):
        plan = {key: self._value(group, key, k) for key in self._scalars}
        if group["nesterov"] and (plan["momentum"] <= 0 or plan["dampening"] != 0):
            raise ValueError(f"nesterov=True requires momentum > 0 and dampening == 0, got "
                             f"momentum={plan['momentum']}, dampening={plan['dampening']} at "
                             f"step {k}")
        return plan

    def _apply(self, group, gstate, buffers, grads, plan):
        use_mom = plan["momentum"] != 0
        self._be.sgd(group["params"], grads, buffers["momentum_buffer"] if use_mom else None,
                     plan["lr"], plan["momentum"], plan["dampening"], plan["weight_decay"],
                     group["nesterov"], group["maximize"],
                     use_mom and not gstate["momentum_ready"], group["names"])
        if use_mom:
            gstate["momentum_ready"] = True


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad`` (``lr=1e-2, lr_decay=0, eps=1e-10``).

    Difference from PyTorch: an ``initial_accumulator_value`` given in a parameter group is
    honoured for that group; PyTorch 2.13 ignores it and fills every group's sum from the
    constructor argument."""

    _defaults = dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                     eps=1e-10, maximize=False)
    _scalars = ("lr", "lr_decay", "weight_decay", "eps")
    _flags = ("maximize",)

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, *, maximize=False, backend="auto",
                 nonfinite="raise", max_grad_norm=None,
                 norm_type=2.0, clip_value=None, clip_scope="all"):
        super().__init__(params, backend, nonfinite=nonfinite, max_grad_norm=max_grad_norm,
                         norm_type=norm_type, clip_value=clip_value, clip_scope=clip_scope,
                         lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps,
                         maximize=maximize)

    def _check_group(self, group):
        super()._check_group(group)
        check_hyper("initial_accumulator_value", group["initial_accumulator_value"])

    def _state_names(self, group):
        return ("sum",)

    def _new_state(self, name, group, p):
        return np.full_like(p, group["initial_accumulator_value"])

    def _plan(self, group, k):
        return {key: self._value(group, key, k) for key in self._scalars}

    def _apply(self, group, gstate, buffers, grads, plan):
        t = gstate["step"] + 1
        clr = plan["lr"] / (1 + (t - 1) * plan["lr_decay"])
        self._be.adagrad(group["params"], grads, buffers["sum"], clr, plan["weight_decay"],
                         plan["eps"], group["maximize"], group["names"])


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop`` (``lr=1e-2, alpha=0.99, eps=1e-8``; eps outside
    the square root, no bias correction)."""

    _defaults = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                     centered=False, maximize=False)
    _scalars = ("lr", "alpha", "eps", "weight_decay", "momentum")
    _flags = ("centered", "maximize")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False, backend="auto",
                 nonfinite="raise", max_grad_norm=None,
                 norm_type=2.0, clip_value=None, clip_scope="all"):
        super().__init__(params, backend, nonfinite=nonfinite, max_grad_norm=max_grad_norm,
                         norm_type=norm_type, clip_value=clip_value, clip_scope=clip_scope,
                         lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum, centered=centered, maximize=maximize)

    def _state_names(self, group):
        names = ["square_avg"]
        m = group["momentum"]
        if callable(m) or m > 0:
            names.append("momentum_buffer")
        if group["centered"]:
            names.append("grad_avg")
        return tuple(names)

    def _plan(self, group, k):
        return {key: self._value(group, key, k) for key in self._scalars}

    def _apply(self, group, gstate, buffers, grads, plan):
        use_mom = plan["momentum"] > 0
        self._be.rmsprop(group["params"], grads, buffers["square_avg"],
                         buffers["grad_avg"] if group["centered"] else None,
                         buffers["momentum_buffer"] if use_mom else None,
                         plan["lr"], plan["alpha"], plan["eps"], plan["weight_decay"],
                         plan["momentum"], group["centered"], group["maximize"], group["names"])


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (``lr=1e-3, betas=(0.9, 0.999), eps=1e-8``), with
    amsgrad, maximize and (coupled, L2) weight decay."""

    _defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                     maximize=False)
    _scalars = ("lr", "betas", "eps", "weight_decay")
    _flags = ("amsgrad", "maximize")
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, backend="auto",
                 nonfinite="raise", max_grad_norm=None,
                 norm_type=2.0, clip_value=None, clip_scope="all"):
        super().__init__(params, backend, nonfinite=nonfinite, max_grad_norm=max_grad_norm,
                         norm_type=norm_type, clip_value=clip_value, clip_scope=clip_scope,
                         lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)

    def _state_names(self, group):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())

    def _plan(self, group, k):
        plan = {key: self._value(group, key, k) for key in ("lr", "eps", "weight_decay")}
        plan["beta1"], plan["beta2"] = self._betas(group, k)
        return plan

    def _apply(self, group, gstate, buffers, grads, plan):
        t = gstate["step"] + 1
        lr, wd, beta1, beta2 = plan["lr"], plan["weight_decay"], plan["beta1"], plan["beta2"]
        step_size, bc2_sqrt = adam_scalars(lr, beta1, beta2, t)
        self._be.adam(group["params"], grads, buffers["exp_avg"], buffers["exp_avg_sq"],
                      buffers["max_exp_avg_sq"] if group["amsgrad"] else None,
                      beta1, beta2, plan["eps"], wd, 1.0 - lr * wd, step_size,
                      bc2_sqrt, self._decoupled, group["amsgrad"], group["maximize"],
                      group["names"])


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: Adam with decoupled weight decay
    ``p *= 1 - lr * weight_decay`` (this step's lr), default ``weight_decay=1e-2``."""

    _defaults = dict(Adam._defaults, weight_decay=1e-2)
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, backend="auto",
                 nonfinite="raise", max_grad_norm=None,
                 norm_type=2.0, clip_value=None, clip_scope="all"):
        Optimizer.__init__(self, params, backend, nonfinite=nonfinite,
                           max_grad_norm=max_grad_norm, norm_type=norm_type,
                           clip_value=clip_value, clip_scope=clip_scope, lr=lr, betas=betas,
                           eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
