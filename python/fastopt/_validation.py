"""Checks of scalar hyperparameters: each error names the argument, the value and the fix.

Shared by the optimizers (``optim.py``), the functional kernels and gradient clipping
(``clip.py``), so that none of those modules needs to import another for its checks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
    hint: str = "pass a finite value",
) -> float:
    """Return ``float(value)`` after checking that it is a real (finite unless ``allow_inf``)
    in the given range; ``hint`` ends the NaN message."""
    if type(value) is not float and (
        isinstance(value, bool) or not isinstance(value, numbers.Real)
    ):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{name} must be a number, got NaN; {hint}")
    if math.isinf(v) and not allow_inf:
        raise ValueError(f"{name} must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        op = ">" if low_open else ">="
        raise ValueError(f"{name} must be {op} {low}, got {value!r}")
    if high is not None and (v > high or (high_open and v == high)):
        lo = f"{'(' if low_open else '['}{low if low is not None else '-inf'}"
        rng = f"{lo}, {high})" if high_open else f"<= {high}"
        raise ValueError(f"{name} must be {'in ' + rng if high_open else rng}, got {value!r}")
    return v


def check_beta(name: str, value: object) -> float:
    v = check_real(name, value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return v


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool,)) and type(value).__name__ != "bool_":
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_step(step: object) -> int:
    """The 1-based update number t of the functional kernels."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(
            f"step must be an integer >= 1 (the number of this update, 1 for the "
            f"first), got {step!r}"
        )
    if step < 1:
        raise ValueError(f"step must be >= 1 (1 for the first update), got {step}")
    return int(step)


def as_scalar(value: object, what: str, where: str = "") -> float:
    """``float(value)`` for a reported number (a loss, a metric): a Python or NumPy number,
    a one-element array, or anything with ``__float__`` (a 0-d torch tensor).  ``what``
    names it in the errors, ``where`` follows (e.g. " at step 3")."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(
                f"{what} must be a scalar (e.g. the batch mean), got an array of "
                f"shape {value.shape}{where}"
            )
        value = value.reshape(()).item()
    try:
        return float(value)  # type: ignore[arg-type]  # anything float() accepts
    except (TypeError, ValueError):
        raise TypeError(
            f"{what} must be a real number, got {type(value).__name__}{where}"
        ) from None


# --------------------------------------------------------------------------- clipping
# An infinite bound is allowed (it means no clipping); NaN and negative bounds are not.
def _nonneg_bound(name: str, value: object, hint: str) -> float:
    v = check_real(name, value, allow_inf=True, hint=hint)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


def check_max_norm(value: object, name: str = "max_grad_norm") -> float:
    """The largest allowed total gradient norm (``max_grad_norm=``, ``max_norm``)."""
    return _nonneg_bound(name, value, "pass the largest allowed gradient norm, e.g. 1.0")


def check_clip_value(value: object, name: str = "clip_value") -> float:
    """The largest allowed ``|gradient|`` element (``clip_value=``)."""
    return _nonneg_bound(name, value, "pass the largest allowed |gradient| element, e.g. 1.0")


def check_norm_type(value: object) -> float:
    """The order p > 0 of the gradient norm (``float('inf')`` allowed)."""
    v = check_real(
        "norm_type", value, allow_inf=True, hint="use 2.0 (Euclidean), 1.0 or float('inf')"
    )
    if not v > 0:
        raise ValueError(f"norm_type must be > 0 (2.0, 1.0, float('inf'), ...), got {value!r}")
    return v


# The rules of each hyperparameter, by name; used by the optimizers for constant values at
# construction and for scheduled values at every step, and by the functional kernels.
RULES: dict[str, Callable[[str, object], float]] = {
    "lr": lambda n, v: check_real(n, v, low=0.0),
    "momentum": lambda n, v: check_real(n, v, low=0.0),
    "dampening": lambda n, v: check_real(n, v),
    "weight_decay": lambda n, v: check_real(n, v, low=0.0),
    "eps": lambda n, v: check_real(n, v, low=0.0),
    "lr_decay": lambda n, v: check_real(n, v, low=0.0),
    "initial_accumulator_value": lambda n, v: check_real(n, v, low=0.0),
    "alpha": lambda n, v: check_real(n, v, low=0.0),
    "beta1": check_beta,
    "beta2": check_beta,
    "rho": lambda n, v: check_real(n, v, low=0.0, high=1.0),
    "momentum_decay": lambda n, v: check_real(n, v, low=0.0),
    # NAdam's running product of the momentum coefficients (group state, checkpoints)
    "mu_product": lambda n, v: check_real(n, v, low=0.0, high=1.0),
    # Adafactor
    "beta2_decay": lambda n, v: check_real(n, v, high=0.0),
    "eps1": lambda n, v: None if v is None else check_real(n, v, low=0.0),  # type: ignore
    "eps2": lambda n, v: check_real(n, v, low=0.0),
    "d": lambda n, v: check_real(n, v, low=1.0),
    # Muon's Newton-Schulz coefficients
    "ns_a": lambda n, v: check_real(n, v),
    "ns_b": lambda n, v: check_real(n, v),
    "ns_c": lambda n, v: check_real(n, v),
    # Rprop: etas = (etaminus, etaplus), step_sizes = (step_size_min, step_size_max)
    "etaminus": lambda n, v: check_real(n, v, low=0.0, high=1.0, low_open=True, high_open=True),
    "etaplus": lambda n, v: check_real(n, v, low=1.0, low_open=True),
    "step_size_min": lambda n, v: check_real(n, v, low=0.0),
    "step_size_max": lambda n, v: check_real(n, v, low=0.0),
    # ASGD: the decay term, the averaging start, and its carried eta and mu (group state)
    "lambd": lambda n, v: check_real(n, v, low=0.0),
    "t0": lambda n, v: check_real(n, v),
    "eta": lambda n, v: check_real(n, v, low=0.0),
    "mu": lambda n, v: check_real(n, v, low=0.0, high=1.0),
}


def check_hyper(name: str, value: object) -> float:
    """Check hyperparameter ``name`` by its rule in ``RULES``; returns it as a float."""
    return RULES[name](name, value)
