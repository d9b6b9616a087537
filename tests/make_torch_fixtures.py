"""Generate the PyTorch golden trajectories in ``tests/fixtures/optim_torch.npz``.

Run from the checkout (needs ``pip install torch==2.13.0``, CPU)::

    python3 tests/make_torch_fixtures.py

For every case in ``CASES`` (optimizer + options + gradient recipe) and for float32 and
float64, the script runs ``torch.optim.<Optimizer>(..., foreach=False)`` (the default
single-tensor path) for ``STEPS`` updates and records all parameters (flattened and
concatenated, in parameter order) after every ``SNAP_EVERY``-th step and after the last.

Nothing large is stored: initial parameters and gradient noise are regenerated from the
case's seed with ``numpy.random.default_rng``; the gradient of step ``k`` is computed in
float64 NumPy from the *current* parameters (for the param-dependent recipes) and then cast
to the dtype, by the same function (``grads_at``) for torch and for fastopt.  The case list
is stored in the fixture as JSON, together with the torch version and a fingerprint of the
random streams (so that a NumPy RNG change is reported as such, not as an optimizer bug).

This module must stay importable without torch: ``tests/test_torch_parity.py`` imports
its helpers (``CASES``, ``initial_params``, ``grads_at``, ``hyper_at``, ...).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from fastopt import _contract as _C
from fastopt import optim as _optim

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "optim_torch.npz"
TORCH_VERSION = "2.13.0"
SHAPES = [(7,), (3, 5), (1,)]
SIZES = [int(np.prod(s)) for s in SHAPES]
NTOTAL = sum(SIZES)
STEPS = 125
SNAP_EVERY = 10
SNAP_STEPS = [k for k in range(SNAP_EVERY, STEPS + 1, SNAP_EVERY)] + (
    [STEPS] if STEPS % SNAP_EVERY else []
)
DTYPES = ("float64", "float32")

# --------------------------------------------------------------------------- the cases
# A case: {"name", "opt", "options", "grad", "seed"} and optionally "groups".
#   options: constructor keyword arguments; a value may be a schedule spec
#            {"schedule": kind, ...} (see ``schedule_value``), evaluated at the 0-based step.
#            For betas, either element may be a schedule spec.
#   grad:    {"kind": "gauss", "scale": s}          g_k = s * noise_k
#            {"kind": "quadratic", "noise": s, "sign": +-1}
#                                                   g_k = sign * (A (x - x0)) + s * noise_k
#            where x is the float64 concatenation of the current parameters and A a fixed
#            symmetric positive-definite matrix from the seed (``problem``).
#   groups:  list of {"params": [indices into SHAPES], <option overrides>} -> parameter
#            groups (the group options override "options").


def _sgd_cases():
    out = []
    for momentum, dampening, nesterov in [
        (0.0, 0.0, False),
        (0.9, 0.0, False),
        (0.9, 0.1, False),
        (0.9, 0.0, True),
    ]:
        for weight_decay in (0.0, 0.01):
            for maximize in (False, True):
                out.append(
                    dict(
                        opt="SGD",
                        options=dict(
                            lr=0.05,
                            momentum=momentum,
                            dampening=dampening,
                            nesterov=nesterov,
                            weight_decay=weight_decay,
                            maximize=maximize,
                        ),
                    )
                )
    return out


def _adagrad_cases():
    out = []
    for lr_decay in (0.0, 0.01):
        for weight_decay in (0.0, 0.01):
            for initial_accumulator_value in (0.0, 0.1):
                for eps in (1e-10, 1e-3):
                    for maximize in (False, True):
                        out.append(
                            dict(
                                opt="Adagrad",
                                options=dict(
                                    lr=0.1,
                                    lr_decay=lr_decay,
                                    weight_decay=weight_decay,
                                    initial_accumulator_value=initial_accumulator_value,
                                    eps=eps,
                                    maximize=maximize,
                                ),
                            )
                        )
    return out


def _rmsprop_cases():
    out = []
    for centered in (False, True):
        for momentum in (0.0, 0.5):
            for weight_decay in (0.0, 0.01):
                for alpha in (0.99, 0.9):
                    for maximize in (False, True):
                        out.append(
                            dict(
                                opt="RMSprop",
                                options=dict(
                                    lr=0.01,
                                    alpha=alpha,
                                    eps=1e-8,
                                    weight_decay=weight_decay,
                                    momentum=momentum,
                                    centered=centered,
                                    maximize=maximize,
                                ),
                            )
                        )
    return out


def _adam_cases(opt):
    out = []
    for amsgrad in (False, True):
        for weight_decay in (0.0, 0.05):
            for maximize in (False, True):
                for betas, eps in [((0.9, 0.999), 1e-8), ((0.8, 0.95), 1e-4)]:
                    out.append(
                        dict(
                            opt=opt,
                            options=dict(
                                lr=0.02,
                                betas=list(betas),
                                eps=eps,
                                weight_decay=weight_decay,
                                amsgrad=amsgrad,
                                maximize=maximize,
                            ),
                        )
                    )
    return out


def _adamax_cases():
    out = []
    for weight_decay in (0.0, 0.05):
        for maximize in (False, True):
            for betas, eps in [((0.9, 0.999), 1e-8), ((0.8, 0.95), 1e-3)]:
                out.append(
                    dict(
                        opt="Adamax",
                        options=dict(
                            lr=0.02,
                            betas=list(betas),
                            eps=eps,
                            weight_decay=weight_decay,
                            maximize=maximize,
                        ),
                    )
                )
    return out


def _radam_cases():
    out = []
    for weight_decay, decoupled in [(0.0, False), (0.05, False), (0.05, True)]:
        for maximize in (False, True):
            # (0.8, 0.95): rho_t > 5 from step 7; (0.9, 0.999): from step 6 on
            for betas, eps in [((0.9, 0.999), 1e-8), ((0.8, 0.95), 1e-4)]:
                out.append(
                    dict(
                        opt="RAdam",
                        options=dict(
                            lr=0.02,
                            betas=list(betas),
                            eps=eps,
                            weight_decay=weight_decay,
                            decoupled_weight_decay=decoupled,
                            maximize=maximize,
                        ),
                    )
                )
    return out


def _adadelta_cases():
    out = []
    for rho in (0.9, 0.5):
        for weight_decay in (0.0, 0.01):
            for maximize in (False, True):
                for eps in (1e-6, 1e-3):
                    out.append(
                        dict(
                            opt="Adadelta",
                            options=dict(
                                lr=1.0,
                                rho=rho,
                                eps=eps,
                                weight_decay=weight_decay,
                                maximize=maximize,
                            ),
                        )
                    )
    return out


def _nadam_cases():
    out = []
    for weight_decay, decoupled in [(0.0, False), (0.05, False), (0.05, True)]:
        for maximize in (False, True):
            for betas, eps, momentum_decay in [
                ((0.9, 0.999), 1e-8, 4e-3),
                ((0.8, 0.95), 1e-4, 0.05),
            ]:
                out.append(
                    dict(
                        opt="NAdam",
                        options=dict(
                            lr=0.02,
                            betas=list(betas),
                            eps=eps,
                            weight_decay=weight_decay,
                            momentum_decay=momentum_decay,
                            decoupled_weight_decay=decoupled,
                            maximize=maximize,
                        ),
                    )
                )
    return out


def _exp(base, gamma):
    return {"schedule": "exp", "base": base, "gamma": gamma}


def _linear(start, end, total):
    return {"schedule": "linear", "start": start, "end": end, "total": total}


def _cosine(base, eta_min, period):
    return {"schedule": "cosine", "base": base, "eta_min": eta_min, "period": period}


QUAD = {"kind": "quadratic", "noise": 0.1, "sign": 1.0}
QUAD_MAX = {"kind": "quadratic", "noise": 0.1, "sign": -1.0}  # gradient of -f, for maximize

# Param-dependent (quadratic) cases, schedules and parameter groups: written out by hand.
SPECIAL_CASES = [
    # --- gradients that depend on the parameters (the trajectory feeds back)
    dict(name="SGD-quad", opt="SGD", grad=QUAD, options=dict(lr=0.05)),
    dict(
        name="SGD-quad-mom-nesterov-wd",
        opt="SGD",
        grad=QUAD,
        options=dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.01),
    ),
    dict(
        name="SGD-quad-mom-damp-max",
        opt="SGD",
        grad=QUAD_MAX,
        options=dict(lr=0.02, momentum=0.9, dampening=0.1, maximize=True),
    ),
    dict(name="Adagrad-quad", opt="Adagrad", grad=QUAD, options=dict(lr=0.1)),
    dict(
        name="Adagrad-quad-all",
        opt="Adagrad",
        grad=QUAD_MAX,
        options=dict(
            lr=0.1,
            lr_decay=0.01,
            weight_decay=0.01,
            initial_accumulator_value=0.1,
            eps=1e-3,
            maximize=True,
        ),
    ),
    dict(name="RMSprop-quad", opt="RMSprop", grad=QUAD, options=dict(lr=0.01)),
    dict(
        name="RMSprop-quad-centered-mom",
        opt="RMSprop",
        grad=QUAD,
        options=dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01),
    ),
    dict(name="Adam-quad", opt="Adam", grad=QUAD, options=dict(lr=0.02)),
    dict(
        name="Adam-quad-amsgrad-wd-max",
        opt="Adam",
        grad=QUAD_MAX,
        options=dict(lr=0.02, betas=[0.8, 0.95], amsgrad=True, weight_decay=0.05, maximize=True),
    ),
    dict(name="AdamW-quad", opt="AdamW", grad=QUAD, options=dict(lr=0.02)),
    dict(
        name="AdamW-quad-amsgrad-wd",
        opt="AdamW",
        grad=QUAD,
        options=dict(lr=0.02, amsgrad=True, weight_decay=0.1),
    ),
    # --- scheduled hyperparameters (callables in fastopt, param_groups[...] edits in torch)
    dict(
        name="SGD-sched-lr-momentum",
        opt="SGD",
        grad=QUAD,
        options=dict(lr=_exp(0.1, 0.95), momentum=_linear(0.5, 0.9, 50)),
    ),
    dict(
        name="SGD-sched-lr-nesterov-gauss",
        opt="SGD",
        options=dict(
            lr=_cosine(0.05, 0.001, 40),
            momentum=_linear(0.3, 0.95, 80),
            nesterov=True,
            weight_decay=_linear(0.0, 0.02, 60),
        ),
    ),
    dict(
        name="Adagrad-sched-lr",
        opt="Adagrad",
        grad=QUAD,
        options=dict(lr=_exp(0.2, 0.97), lr_decay=0.01),
    ),
    dict(
        name="RMSprop-sched-lr-momentum",
        opt="RMSprop",
        grad=QUAD,
        options=dict(lr=_exp(0.02, 0.97), momentum=_linear(0.1, 0.6, 40), centered=True),
    ),
    dict(
        name="Adam-sched-lr-beta1",
        opt="Adam",
        grad=QUAD,
        options=dict(lr=_exp(0.05, 0.97), betas=[_linear(0.5, 0.9, 60), 0.999]),
    ),
    dict(
        name="Adam-sched-beta1-beta2-gauss",
        opt="Adam",
        options=dict(
            lr=_cosine(0.02, 0.0, 50),
            betas=[_linear(0.95, 0.8, 70), _linear(0.9, 0.999, 100)],
            amsgrad=True,
        ),
    ),
    dict(
        name="AdamW-sched-lr-beta1-wd",
        opt="AdamW",
        grad=QUAD,
        options=dict(
            lr=_exp(0.05, 0.97),
            betas=[_linear(0.5, 0.9, 60), 0.999],
            weight_decay=_linear(0.2, 0.0, 100),
        ),
    ),
    # --- two parameter groups with different lr / weight_decay
    dict(
        name="SGD-groups",
        opt="SGD",
        options=dict(lr=0.05, momentum=0.9),
        groups=[{"params": [0]}, {"params": [1, 2], "lr": 0.01, "weight_decay": 0.05}],
    ),
    dict(
        name="Adagrad-groups",
        opt="Adagrad",
        grad=QUAD,
        options=dict(lr=0.1),
        groups=[{"params": [0, 2], "weight_decay": 0.02}, {"params": [1], "lr": 0.05}],
    ),
    dict(
        name="RMSprop-groups",
        opt="RMSprop",
        options=dict(lr=0.01, centered=True),
        groups=[
            {"params": [0]},
            {"params": [1, 2], "lr": 0.003, "weight_decay": 0.1, "momentum": 0.5},
        ],
    ),
    dict(
        name="Adam-groups",
        opt="Adam",
        grad=QUAD,
        options=dict(lr=0.02),
        groups=[{"params": [0]}, {"params": [1, 2], "lr": 0.005, "weight_decay": 0.1}],
    ),
    dict(
        name="AdamW-groups-sched",
        opt="AdamW",
        grad=QUAD,
        options=dict(lr=0.02),
        groups=[
            {"params": [0], "lr": _exp(0.05, 0.96), "weight_decay": 0.0},
            {"params": [1, 2], "lr": 0.01, "weight_decay": 0.3},
        ],
    ),
]


# Added with Adamax, RAdam and Adadelta; after the cases above in the list, so that the
# seeds (by position) of the older cases, hence their fixture entries, are unchanged.
SPECIAL_CASES_2 = [
    dict(name="Adamax-quad", opt="Adamax", grad=QUAD, options=dict(lr=0.02)),
    dict(
        name="Adamax-quad-wd-max",
        opt="Adamax",
        grad=QUAD_MAX,
        options=dict(lr=0.02, betas=[0.8, 0.95], weight_decay=0.05, maximize=True),
    ),
    dict(
        name="Adamax-sched-all",
        opt="Adamax",
        grad=QUAD,
        options=dict(
            lr=_exp(0.05, 0.97),
            betas=[_linear(0.5, 0.9, 60), _linear(0.9, 0.999, 100)],
            eps=_linear(1e-3, 1e-8, 50),
            weight_decay=_linear(0.05, 0.0, 80),
        ),
    ),
    dict(
        name="Adamax-groups",
        opt="Adamax",
        grad=QUAD,
        options=dict(lr=0.02),
        groups=[{"params": [0]}, {"params": [1, 2], "lr": 0.005, "weight_decay": 0.1}],
    ),
    dict(name="RAdam-quad", opt="RAdam", grad=QUAD, options=dict(lr=0.02)),
    dict(
        name="RAdam-quad-decoupled-max",
        opt="RAdam",
        grad=QUAD_MAX,
        options=dict(
            lr=0.02,
            betas=[0.8, 0.95],
            weight_decay=0.1,
            decoupled_weight_decay=True,
            maximize=True,
        ),
    ),
    dict(
        name="RAdam-sched-all",
        opt="RAdam",
        grad=QUAD,
        options=dict(
            lr=_cosine(0.05, 0.001, 40),
            betas=[_linear(0.5, 0.9, 60), _linear(0.9, 0.99, 100)],
            eps=_exp(1e-4, 0.9),
            weight_decay=_linear(0.0, 0.05, 60),
        ),
    ),
    dict(
        name="RAdam-groups-sched",
        opt="RAdam",
        grad=QUAD,
        options=dict(lr=0.02, decoupled_weight_decay=True),
        groups=[
            {"params": [0], "lr": _exp(0.05, 0.96), "weight_decay": 0.0},
            {"params": [1, 2], "lr": 0.01, "weight_decay": 0.3},
        ],
    ),
    dict(name="Adadelta-quad", opt="Adadelta", grad=QUAD, options=dict(lr=1.0)),
    dict(
        name="Adadelta-quad-wd-max",
        opt="Adadelta",
        grad=QUAD_MAX,
        options=dict(lr=0.5, rho=0.8, weight_decay=0.01, maximize=True),
    ),
    dict(
        name="Adadelta-sched-all",
        opt="Adadelta",
        grad=QUAD,
        options=dict(
            lr=_exp(2.0, 0.98),
            rho=_linear(0.5, 0.95, 80),
            eps=_linear(1e-3, 1e-6, 50),
            weight_decay=_linear(0.02, 0.0, 100),
        ),
    ),
    dict(
        name="Adadelta-groups",
        opt="Adadelta",
        options=dict(lr=1.0),
        groups=[{"params": [0]}, {"params": [1, 2], "lr": 0.3, "weight_decay": 0.05}],
    ),
]


# Added with NAdam, after all the cases above (their seeds unchanged).
SPECIAL_CASES_3 = [
    dict(name="NAdam-quad", opt="NAdam", grad=QUAD, options=dict(lr=0.02)),
    dict(
        name="NAdam-quad-decoupled-max",
        opt="NAdam",
        grad=QUAD_MAX,
        options=dict(
            lr=0.02,
            betas=[0.8, 0.95],
            weight_decay=0.1,
            decoupled_weight_decay=True,
            maximize=True,
        ),
    ),
    dict(
        # a scheduled beta1 and momentum_decay: mu_product is a running product
        name="NAdam-sched-all",
        opt="NAdam",
        grad=QUAD,
        options=dict(
            lr=_exp(0.05, 0.97),
            betas=[_linear(0.5, 0.9, 60), _linear(0.9, 0.999, 100)],
            eps=_linear(1e-3, 1e-8, 50),
            weight_decay=_linear(0.05, 0.0, 80),
            momentum_decay=_linear(0.1, 0.004, 70),
        ),
    ),
    dict(
        name="NAdam-groups-sched",
        opt="NAdam",
        grad=QUAD,
        options=dict(lr=0.02),
        groups=[
            {"params": [0], "lr": _exp(0.05, 0.96), "betas": [_linear(0.6, 0.9, 50), 0.99]},
            {"params": [1, 2], "lr": 0.01, "weight_decay": 0.3, "momentum_decay": 0.02},
        ],
    ),
]


def _rprop_asgd_cases():
    out = []
    for etas in ((0.5, 1.2), (0.3, 1.5)):
        for step_sizes in ((1e-6, 50), (1e-3, 0.05)):
            for maximize in (False, True):
                options = dict(lr=0.01, etas=list(etas), step_sizes=list(step_sizes))
                out.append(dict(opt="Rprop", options=dict(options, maximize=maximize)))
    for lambd in (1e-4, 0.05):
        for t0 in (1e6, 30.0):
            for weight_decay in (0.0, 0.01):
                for maximize in (False, True):
                    options = dict(lr=0.02, lambd=lambd, alpha=0.75, t0=t0)
                    out.append(
                        dict(
                            opt="ASGD",
                            options=dict(options, weight_decay=weight_decay, maximize=maximize),
                        )
                    )
    return out


# Added with Rprop and ASGD, after all the cases above (their seeds unchanged).  Rprop's lr
# only fills the step sizes at the first step; its schedule is still replayed every step.
SPECIAL_CASES_4 = [
    dict(name="Rprop-quad", opt="Rprop", grad=QUAD, options=dict(lr=0.01)),
    dict(
        name="Rprop-quad-clamped-max",
        opt="Rprop",
        grad=QUAD_MAX,
        options=dict(lr=0.02, etas=[0.4, 1.3], step_sizes=[1e-3, 0.03], maximize=True),
    ),
    dict(
        name="Rprop-sched-all",
        opt="Rprop",
        grad=QUAD,
        options=dict(
            lr=_exp(0.05, 0.97),
            etas=[_linear(0.3, 0.6, 60), _linear(1.5, 1.1, 80)],
            step_sizes=[_linear(1e-3, 1e-6, 50), _linear(0.02, 1.0, 100)],
        ),
    ),
    dict(
        name="Rprop-groups",
        opt="Rprop",
        grad=QUAD,
        options=dict(lr=0.01),
        groups=[{"params": [0]}, {"params": [1, 2], "lr": 0.002, "etas": [0.3, 1.5]}],
    ),
    dict(name="ASGD-quad", opt="ASGD", grad=QUAD, options=dict(lr=0.05)),
    dict(
        name="ASGD-quad-wd-max",
        opt="ASGD",
        grad=QUAD_MAX,
        options=dict(lr=0.05, lambd=0.01, t0=20.0, weight_decay=0.05, maximize=True),
    ),
    dict(
        # every scalar scheduled: eta and mu carry the previous step's lr, lambd, alpha, t0
        name="ASGD-sched-all",
        opt="ASGD",
        grad=QUAD,
        options=dict(
            lr=_exp(0.08, 0.98),
            lambd=_linear(0.05, 0.0, 80),
            alpha=_linear(0.5, 1.0, 100),
            t0=_linear(50.0, 10.0, 100),
            weight_decay=_linear(0.02, 0.0, 60),
        ),
    ),
    dict(
        name="ASGD-groups-sched",
        opt="ASGD",
        grad=QUAD,
        options=dict(lr=0.02, t0=10.0),
        groups=[
            {"params": [0], "lr": _exp(0.05, 0.96), "lambd": 0.02},
            {"params": [1, 2], "lr": 0.01, "weight_decay": 0.3, "t0": 40.0},
        ],
    ),
]


def _case_name(case):
    o = case["options"]
    parts = [case["opt"]]
    for key, value in o.items():
        if isinstance(value, list):  # betas, etas, step_sizes
            parts.append(f"{key}=" + ",".join(f"{b:g}" for b in value))
        elif isinstance(value, bool):
            if value:
                parts.append(key)
        else:
            parts.append(f"{key}={value:g}")
    return "-".join(parts)


def _grid_case(case):
    return dict(
        name=_case_name(case),
        opt=case["opt"],
        options=case["options"],
        grad={"kind": "gauss", "scale": 1.0},
    )


def _special_case(case):
    return dict(
        name=case["name"],
        opt=case["opt"],
        options=case["options"],
        grad=case.get("grad", {"kind": "gauss", "scale": 1.0}),
        **({"groups": case["groups"]} if "groups" in case else {}),
    )


def build_cases():
    """The explicit case list (grid cases + ``SPECIAL_CASES``), each with a unique seed."""
    grid = (
        _sgd_cases()
        + _adagrad_cases()
        + _rmsprop_cases()
        + _adam_cases("Adam")
        + _adam_cases("AdamW")
    )
    grid_2 = _adamax_cases() + _radam_cases() + _adadelta_cases()
    # In the order they were added: the seeds (by position) of the older cases stay.
    cases = (
        [_grid_case(c) for c in grid]
        + [_special_case(c) for c in SPECIAL_CASES]
        + [_grid_case(c) for c in grid_2]
        + [_special_case(c) for c in SPECIAL_CASES_2]
        + [_grid_case(c) for c in _nadam_cases()]
        + [_special_case(c) for c in SPECIAL_CASES_3]
        + [_grid_case(c) for c in _rprop_asgd_cases()]
        + [_special_case(c) for c in SPECIAL_CASES_4]
    )
    for i, case in enumerate(cases):
        case["seed"] = 1000 + i
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"
    return cases


CASES = build_cases()
# Every optimizer with an element-wise kernel (Adafactor and Muon have their own fixture,
# tests/make_matrix_fixtures.py): a new one must get cases here before the parity test passes.
OPTIMIZERS = tuple(
    cls.__name__
    for cls in (getattr(_optim, n) for n in _optim.__all__)
    if isinstance(cls, type)
    and issubclass(cls, _optim.Optimizer)
    and cls is not _optim.Optimizer
    and cls._spec.kernel in _C.KERNELS
)

# --------------------------------------------------------------------------- helpers
# (shared by the generator, the fixture test and the live torch test)


def schedule_value(spec, k):
    """Value of a hyperparameter at the 0-based step ``k`` (a number or a schedule spec)."""
    if not isinstance(spec, dict):
        return spec
    kind = spec["schedule"]
    if kind == "exp":
        return spec["base"] * spec["gamma"] ** k
    if kind == "linear":
        frac = min(k, spec["total"]) / spec["total"]
        return spec["start"] + (spec["end"] - spec["start"]) * frac
    if kind == "cosine":
        phase = (k % spec["period"]) / spec["period"]
        return (
            spec["eta_min"] + (spec["base"] - spec["eta_min"]) * (1 + math.cos(math.pi * phase)) / 2
        )
    raise ValueError(f"unknown schedule {kind!r}")


def is_scheduled(value):
    if isinstance(value, dict):
        return True
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, dict) for v in value)
    return False


def hyper_at(value, k):
    """A (possibly scheduled) option's value at step ``k``; betas give a tuple."""
    if isinstance(value, (list, tuple)):
        return tuple(schedule_value(v, k) for v in value)
    return schedule_value(value, k)


def group_layout(case):
    """[(param indices, {options})] for the case's parameter groups (one group if none)."""
    if "groups" not in case:
        return [(list(range(len(SHAPES))), dict(case["options"]))]
    out = []
    for g in case["groups"]:
        opts = dict(case["options"])
        opts.update({k: v for k, v in g.items() if k != "params"})
        out.append((list(g["params"]), opts))
    return out


def param_order(case):
    """Parameter indices in the order the optimizer sees them (group by group)."""
    return [i for idx, _ in group_layout(case) for i in idx]


def initial_params(case):
    """The initial parameters (float64), one array per entry of SHAPES."""
    rng = np.random.default_rng([case["seed"], 0])
    return [rng.standard_normal(s) for s in SHAPES]


def problem(case):
    """Per-case fixed data: the noise sequence (STEPS, NTOTAL) and, for the quadratic
    recipe, the SPD matrix A and the centre x0 (all float64)."""
    rng = np.random.default_rng([case["seed"], 1])
    noise = rng.standard_normal((STEPS, NTOTAL))
    m = rng.standard_normal((NTOTAL, NTOTAL))
    a = m @ m.T / NTOTAL + 0.5 * np.eye(NTOTAL)
    a /= np.linalg.eigvalsh(a).max()  # largest eigenvalue 1
    x0 = rng.standard_normal(NTOTAL)
    return {"noise": noise, "A": a, "x0": x0}


def grads_at(case, prob, k, params, dtype):
    """Gradients of the 0-based step ``k`` as ``dtype`` arrays (one per entry of SHAPES),
    computed in float64 NumPy from ``params`` (arrays in SHAPES order, any float dtype)."""
    g = case["grad"]
    if g["kind"] == "gauss":
        flat = g["scale"] * prob["noise"][k]
    elif g["kind"] == "quadratic":
        x = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in params])
        flat = g["sign"] * (prob["A"] @ (x - prob["x0"])) + g["noise"] * prob["noise"][k]
    else:
        raise ValueError(f"unknown gradient recipe {g['kind']!r}")
    out, i = [], 0
    for s, n in zip(SHAPES, SIZES):
        out.append(np.ascontiguousarray(flat[i : i + n].reshape(s), dtype=dtype))
        i += n
    return out


def flatten(params):
    return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in params])


def rng_fingerprint():
    """A few numbers from the random streams, to detect a NumPy RNG change."""
    case = CASES[0]
    return np.concatenate([flatten(initial_params(case)), problem(case)["noise"][:2].ravel()])


# --------------------------------------------------------------------------- torch
def run_torch(case, dtype, steps=STEPS, snap_steps=SNAP_STEPS):
    """Run ``case`` with torch.optim (foreach=False); returns (len(snap_steps), NTOTAL)
    float64 snapshots of the flattened parameters (in SHAPES order)."""
    import torch

    tdtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    prob = problem(case)
    params = [
        torch.nn.Parameter(torch.tensor(p.astype(dtype), dtype=tdtype))
        for p in initial_params(case)
    ]
    cls = getattr(torch.optim, case["opt"])
    # The case's options go to the constructor (torch's Adagrad reads
    # initial_accumulator_value from there, not from the groups); a group dict carries
    # only its overrides.  Scheduled values start at their step-0 value.
    layout = group_layout(case)
    overrides = case.get("groups", [{"params": list(range(len(SHAPES)))}])
    groups = [
        {
            key: ([params[i] for i in v] if key == "params" else hyper_at(v, 0))
            for key, v in g.items()
        }
        for g in overrides
    ]
    opt = cls(groups, foreach=False, **{key: hyper_at(v, 0) for key, v in case["options"].items()})
    snaps = []
    for k in range(steps):
        for group, (_, opts) in zip(opt.param_groups, layout):
            for key, value in opts.items():
                if is_scheduled(value):
                    group[key] = hyper_at(value, k)
        grads = grads_at(case, prob, k, [p.detach().numpy() for p in params], dtype)
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g)
        opt.step()
        if k + 1 in snap_steps:
            snaps.append(flatten([p.detach().numpy() for p in params]))
    return np.stack(snaps)


def main():
    import torch

    if torch.__version__.split("+")[0] != TORCH_VERSION:
        print(
            f"warning: torch {torch.__version__}, the fixture expects {TORCH_VERSION}",
            file=sys.stderr,
        )
    torch.set_num_threads(1)
    data = {
        "torch_version": np.array(torch.__version__),
        "numpy_version": np.array(np.__version__),
        "cases_json": np.array(json.dumps(CASES, sort_keys=True)),
        "snap_steps": np.array(SNAP_STEPS),
        "rng_fingerprint": rng_fingerprint(),
    }
    for case in CASES:
        for dtype in DTYPES:
            snaps = run_torch(case, dtype)
            data[f"{case['name']}|{dtype}"] = snaps.astype(dtype)
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FIXTURE, **data)
    print(
        f"wrote {FIXTURE} ({FIXTURE.stat().st_size / 1e3:.0f} kB): {len(CASES)} cases x "
        f"{len(DTYPES)} dtypes, {STEPS} steps, torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
