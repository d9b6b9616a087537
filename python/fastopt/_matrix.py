"""The steps of the matrix optimizers, Adafactor and Muon, on any backend.

Their updates are not element-wise: Adafactor reduces (the RMS of the parameter and of the
update, the row and column means of the squared gradient), Muon multiplies matrices
(Newton-Schulz).  Those parts are computed here, once, with NumPy, the same code for every
backend; the element-wise parts run on the chosen backend as the kernel kinds of
``fastopt._contract.MATRIX_KERNELS`` (``adafactor_update``, ``muon_update``,
``decay_add``).  So ``backend="native"``, ``"numba"`` and ``"numpy"`` give the same bits.

``adafactor_step`` and ``muon_step`` take the backend interface's arguments (``be`` first):
``(be, kind, params, grads, state, scalars, names, check_finite)``, where ``scalars`` is the
contract's ``Spec.scalars``.  Every array is checked (``backends._checks.collect``) before
any is written; with ``check_finite`` a non-finite gradient makes them write nothing and
return the indices of the offending rows (as the native backend's ``step``).

Reductions: sums of squares are accumulated in float64 (NumPy's pairwise sum) and the norm
rounded to the array's dtype, as ``torch.norm`` returns it; torch accumulates float32 norms
in float32 in another order, so the two differ by a few float32 ulps (see the Adafactor
docstring for the measured agreement).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .backends._checks import collect, on_float32
from .backends.numpy import _lerp as _lerp_untyped

_lerp: Any = _lerp_untyped  # torch.lerp, the reference backend's rule (one for all)


def _rows(
    params: Sequence[Any], grads: Sequence[Any], state: Mapping[str, Any], names: Any
) -> list[list[Any]]:
    """Check every parameter, gradient and state array of the call (no writes yet)."""
    others = [
        ((nm, key), a)
        for key, arrays in state.items()
        if arrays is not None
        for nm, a in zip(names if names is not None else range(len(arrays)), arrays)
        if a is not None
    ]
    rows: list[list[Any]] = collect(
        [("params", params, True), ("grads", grads, False)], names, others
    )
    return rows


def _nonfinite(rows: list[list[Any]]) -> list[int] | None:
    bad = [i for i, (_p, g) in enumerate(rows) if g.size and not np.isfinite(g).all()]
    return bad or None


def _norm(a: np.ndarray, axis: int | None = None) -> Any:
    """The 2-norm of ``a`` (along ``axis``, kept), accumulated in float64, rounded to a's
    dtype."""
    sq = np.sum(np.square(a, dtype=np.float64), axis=axis, keepdims=axis is not None)
    return np.sqrt(sq).astype(a.dtype)


def _rms(a: np.ndarray) -> float:
    """torch's ``a.norm(2).item() / a.numel() ** 0.5``."""
    return float(_norm(a)) / float(a.size**0.5)


def _mean_square(g: np.ndarray, axis: int) -> np.ndarray:
    """torch's ``norm(g, dim=axis, keepdim=True).square_().div_(g.size(axis))``."""
    n: np.ndarray = _norm(g, axis)
    out: np.ndarray = n * n / g.dtype.type(g.shape[axis])
    return out


Rows = list[list[Any]]


def _driver(update: Any) -> Any:
    """The backend-interface step around ``update(be, rows, state, scalars)``: check every
    array first, then (``check_finite``) every gradient, and only then update."""

    @functools.wraps(update)
    def step(
        be: Any,
        kind: str,
        params: Sequence[Any],
        grads: Sequence[Any],
        state: Mapping[str, Any],
        scalars: Mapping[str, Any],
        names: Any = None,
        check_finite: bool = False,
    ) -> list[int] | None:
        rows = _rows(params, grads, state, names)
        if check_finite:
            bad = _nonfinite(rows)
            if bad:
                return bad
        # half precision: float32 copies of p and g, p rounded once (the reference's spec)
        on_float32(lambda wide: update(be, wide, state, scalars), rows)
        return None

    return step


def _adafactor(be: Any, rows: Rows, state: Mapping[str, Any], scalars: Mapping[str, Any]) -> None:
    """One Adafactor step (``torch.optim.Adafactor``'s single-tensor loop) of every row."""
    w, rho, eps2, d = scalars["weight"], scalars["rho"], scalars["eps2"], scalars["d"]
    apply = {"wd": scalars["wd"], "decay": scalars["decay"]}
    for i, (p, g) in enumerate(rows):
        if p.size == 0:
            continue
        dt = p.dtype.type
        eps1 = scalars["eps1"]
        if eps1 is None:
            eps1 = float(np.finfo(p.dtype).eps)
        alpha = max(eps2, _rms(p)) * rho
        u = np.empty_like(p)
        kernel = {"weight": w, "eps": eps1 * eps1, "maximize": scalars["maximize"]}
        if p.ndim >= 2:
            # The factored second moment: the sign of g does not change its squares.
            row, col = state["row_var"][i], state["col_var"][i]
            row[...] = _lerp(row, _mean_square(g, -1), w, dt)
            col[...] = _lerp(col, _mean_square(g, -2), w, dt)
            mean = np.sum(row, axis=-2, keepdims=True, dtype=np.float64) / row.shape[-2]
            scale = np.maximum(mean.astype(p.dtype), dt(eps1))
            estimate = row * col / scale
            be.step(
                "adafactor_update", [u], [g], {"variance": [estimate]}, {**kernel, "lerp": False}
            )
        else:
            variance = state["variance"][i]
            be.step(
                "adafactor_update", [u], [g], {"variance": [variance]}, {**kernel, "lerp": True}
            )
        denom = max(1.0, float(_norm(u)) / ((u.size**0.5) * d))
        be.step("decay_add", [p], [u], {}, {**apply, "step_size": alpha / denom})


adafactor_step = _driver(_adafactor)


# --------------------------------------------------------------------------- Muon
def bf16_round(x: np.ndarray) -> np.ndarray:
    """float32 ``x`` rounded to bfloat16 (to nearest, ties to even), as float32 values: what
    ``torch.Tensor.bfloat16()`` keeps, emulated with integer operations on the bits (NaN
    stays NaN, infinities stay, overflow rounds to infinity)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    lsb = (bits >> np.uint32(16)) & np.uint32(1)
    rounded = ((bits + np.uint32(0x7FFF) + lsb) & np.uint32(0xFFFF0000)).view(np.float32)
    out: np.ndarray = np.where(np.isnan(x), np.float32(np.nan), rounded.reshape(np.shape(x)))
    return out


def _same(x: np.ndarray) -> np.ndarray:
    return x


def newton_schulz(
    x: np.ndarray,
    coefficients: tuple[float, float, float],
    steps: int,
    eps: float,
    dtype: str = "bfloat16",
) -> np.ndarray:
    """torch's ``_zeropower_via_newtonschulz``: the quintic Newton-Schulz iteration that
    nearly orthogonalises the 2-D ``x``, in float32 products (BLAS) whose results are
    rounded to bfloat16 after every operation (``dtype="bfloat16"``, as torch computes in
    bfloat16 on CPU: float32 accumulation, one rounding per result) or kept in float32
    (``"float32"``).  Returns a float32 array of ``x``'s shape."""
    r = bf16_round if dtype == "bfloat16" else _same
    a, b, c = (np.float32(v) for v in coefficients)
    m = r(np.asarray(x, dtype=np.float32))
    tall = m.shape[0] > m.shape[1]
    if tall:
        m = m.T
    norm = r(np.asarray(_norm(m), dtype=np.float32))
    m = r(m / np.maximum(norm, r(np.asarray(eps, dtype=np.float32))))
    for _ in range(steps):
        gram = r(m @ m.T)
        update = r(b * gram + c * (gram @ gram))
        m = r(a * m + update @ m)
    if tall:
        m = m.T
    out: np.ndarray = np.ascontiguousarray(m)
    return out


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: tuple[int, ...]) -> float:
    """torch's ``_adjust_lr``: ``lr * sqrt(max(1, A / B))`` ("original", the default) or
    ``lr * 0.2 * sqrt(max(A, B))`` ("match_rms_adamw") for an A x B matrix."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    else:
        ratio = 0.2 * math.sqrt(max(rows, cols))
    return lr * ratio


def _muon(be: Any, rows: Rows, state: Mapping[str, Any], scalars: Mapping[str, Any]) -> None:
    """One Muon step (``torch.optim.Muon``'s loop) of every row."""
    coefficients = (scalars["ns_a"], scalars["ns_b"], scalars["ns_c"])
    momentum = {k: scalars[k] for k in ("weight", "momentum", "nesterov")}
    apply = {"wd": scalars["wd"], "decay": scalars["decay"]}
    for (p, g), buf in zip(rows, state["momentum_buffer"]):
        if p.size == 0:
            continue
        u = np.empty_like(p)
        be.step("muon_update", [u], [g], {"momentum_buffer": [buf]}, momentum)
        o = newton_schulz(
            u, coefficients, scalars["ns_steps"], scalars["eps"], scalars["ns_dtype"]
        ).astype(p.dtype)
        lr = adjusted_lr(scalars["lr"], scalars["adjust_lr_fn"], p.shape)
        be.step("decay_add", [p], [o], {}, {**apply, "step_size": lr})


muon_step = _driver(_muon)
