"""Gradient clipping, as ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``.

Both functions modify the gradients **in place** (like PyTorch's trailing-underscore
functions) and check every argument and every array before touching any; on an error
nothing is modified.  ``grads`` is one array, a list/tuple of arrays or a dict of
name -> array (the structure ``Optimizer.step`` takes).

The same clipping is available as optimizer options (``clip_value=``, ``max_grad_norm=``,
``norm_type=``, ``clip_scope=``), which never modify the caller's gradients: a step that
clips uses scaled copies.

Norms are accumulated in float64 whatever the gradients' dtype (PyTorch accumulates in
the gradients' dtype, so float32 results can differ from PyTorch's in the last bits of the
norm), with no temporary larger than 64 Ki elements.  The work is NumPy's vectorised C
loops (one read of each gradient for the norm, one read+write to scale); there is no
separate compiled kernel because these loops are already memory-bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ._validation import check_clip_value, check_max_norm, check_norm_type
from .backends import _checks
from .errors import NonFiniteGradientError

__all__ = ["clip_grad_norm", "clip_grad_value"]

# What the clipping functions take: one array, a sequence of arrays or a dict of them.
Grads = np.ndarray | Sequence[np.ndarray] | Mapping[Any, np.ndarray]

_CHUNK = 1 << 16
_EPS = 1e-6  # PyTorch's: clip_coef = max_norm / (total_norm + 1e-6)


# --------------------------------------------------------------------------- checks
def _as_arrays(grads: object) -> list[np.ndarray]:
    """``[(label, array)]`` from one array, a sequence or a dict; checked for in-place use."""
    items: list[tuple[str, Any]]
    if isinstance(grads, np.ndarray):
        items = [("grads", grads)]
    elif isinstance(grads, dict):
        items = [(f"grads[{k!r}]", g) for k, g in grads.items()]
    elif isinstance(grads, (str, bytes)) or not hasattr(grads, "__iter__"):
        raise TypeError(
            f"grads must be an array, a list of arrays or a dict of arrays, got "
            f"{type(grads).__name__}"
        )
    else:
        items = [(f"grads[{i}]", g) for i, g in enumerate(grads)]
    intervals = []
    for label, g in items:
        if not isinstance(g, np.ndarray):
            raise TypeError(f"{label} must be a numpy array, got {type(g).__name__}")
        if not _checks.is_float(g.dtype):
            raise TypeError(f"{label} has dtype {g.dtype}; gradients must be floating point")
        if not g.flags.writeable:
            raise ValueError(
                f"{label} is read-only; clipping modifies gradients in place: pass "
                "a writeable array (or use the optimizer's clipping options, which "
                "do not modify the gradients)"
            )
        if g.size:
            lo = g.__array_interface__["data"][0]
            # the extent of a strided view, conservatively
            span = sum((n - 1) * abs(s) for n, s in zip(g.shape, g.strides)) + g.itemsize
            start = lo + sum((n - 1) * s for n, s in zip(g.shape, g.strides) if s < 0)
            intervals.append((start, start + span, True, label))
    _checks.check_no_overlap(intervals)
    return [g for _, g in items]


# --------------------------------------------------------------------------- helpers
def _chunks(g: np.ndarray) -> Iterator[np.ndarray]:
    flat = g.reshape(-1)
    for i in range(0, flat.size, _CHUNK):
        yield flat[i : i + _CHUNK].astype(np.float64)


def _array_norm_pow(g: np.ndarray, p: float) -> float:
    """``sum(|g|**p)`` in float64 (``max|g|`` for p = inf)."""
    if g.size == 0:
        return 0.0
    if math.isinf(p):
        with np.errstate(invalid="ignore"):
            return float(max(abs(float(g.max())), abs(float(g.min()))))
    if p == 2.0 and g.dtype == np.float64 and g.flags.c_contiguous:
        x = g.reshape(-1)
        return float(np.dot(x, x))
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for c in _chunks(g):
            if p == 2.0:
                total += float(np.dot(c, c))
            elif p == 1.0:
                total += float(np.abs(c).sum())
            else:
                total += float((np.abs(c) ** p).sum())
    return total


def _total_norm(grads: Sequence[np.ndarray], norm_type: float = 2.0) -> float:
    """The norm of all gradients together (the norm of the per-array norms), float64."""
    p = float(norm_type)
    if math.isinf(p):
        vals = [_array_norm_pow(g, p) for g in grads]
        return max(vals, default=0.0) if not any(math.isnan(v) for v in vals) else math.nan
    s = sum(_array_norm_pow(g, p) for g in grads)
    if p == 2.0:
        return math.sqrt(s)
    if p == 1.0:
        return s
    return float(s ** (1.0 / p))


def _norm_coef(max_norm: float, total_norm: float) -> float | None:
    """PyTorch's ``max_norm / (total_norm + 1e-6)`` if it is < 1, else None (no scaling)."""
    coef = max_norm / (total_norm + _EPS)
    return coef if coef < 1.0 else None


def _clip_value_copy(g: np.ndarray, c: float) -> np.ndarray:
    """``g`` clamped to [-c, c]: a new array if anything is outside, else ``g`` itself."""
    if g.size and (g.max() > c or g.min() < -c):
        out: np.ndarray = np.clip(g, -c, c, out=np.empty_like(g))  # bfloat16 stays bfloat16
        return out
    return g


# --------------------------------------------------------------------------- public
def clip_grad_norm(
    grads: Grads,
    max_norm: float,
    norm_type: float = 2.0,
    *,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale ``grads`` in place so that their total norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: ``total = ||(||g_1||, ..., ||g_n||)||_p`` over
    all the arrays given (pass one group's gradients to clip per group), then if
    ``coef = max_norm / (total + 1e-6)`` is below 1 every gradient is multiplied by
    ``coef`` (rounded to the gradient's dtype).  Returns the total norm before clipping,
    a Python float (accumulated in float64).  ``norm_type`` may be any p > 0 or
    ``float('inf')`` (max absolute value).  With ``error_if_nonfinite=True`` a NaN or
    infinite total norm raises ``fastopt.NonFiniteGradientError`` (a ValueError)
    before anything is modified; otherwise non-finite gradients are scaled like PyTorch
    does (an infinite norm makes every gradient 0 or NaN).

    Raises TypeError (not an array, not floating point) or ValueError (read-only or
    overlapping arrays, NaN or negative ``max_norm``, ``norm_type <= 0``), changing nothing.
    """
    max_norm = check_max_norm(max_norm, "max_norm")
    p = check_norm_type(norm_type)
    arrays = _as_arrays(grads)
    total = _total_norm(arrays, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise NonFiniteGradientError(
            f"the total norm of order {p} of the gradients is {total}; nothing was modified "
            "(pass error_if_nonfinite=False to scale anyway)"
        )
    coef = _norm_coef(max_norm, total)
    if coef is not None:
        for g in arrays:
            np.multiply(g, g.dtype.type(coef), out=g)
    return total


def clip_grad_value(grads: Grads, clip_value: float) -> None:
    """Clamp every element of ``grads`` to ``[-clip_value, clip_value]`` in place, as
    ``torch.nn.utils.clip_grad_value_`` (NaN stays NaN).  Returns None.

    Raises TypeError or ValueError (read-only arrays, NaN or negative ``clip_value``)
    before modifying anything.
    """
    c = check_clip_value(clip_value)
    for g in _as_arrays(grads):
        np.clip(g, -c, c, out=g)
