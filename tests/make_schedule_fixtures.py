"""Record PyTorch's learning rates (and momenta) for the schedule tests.

Run once (needs torch) from the repository root::

    python3 tests/make_schedule_fixtures.py

It drives the real ``torch.optim.lr_scheduler`` classes with a one-element parameter
and a real optimizer, the way a training loop does: for each update ``k`` it records
``param_groups[0]['lr']`` (and the momentum PyTorch wrote, ``'momentum'`` for SGD or
``betas[0]`` for Adam) *before* ``scheduler.step()``, then calls ``optimizer.step()`` and
``scheduler.step()`` (``scheduler.step(metric)`` for ReduceLROnPlateau).  So entry ``k``
is the rate PyTorch uses for update ``k``: what ``fastopt`` schedules return for step ``k``.

The cases and their configuration are stored next to the numbers in
``tests/fixtures/schedules_torch.npz``: ``config`` (a JSON string: list of cases) and one
``<name>__lr`` / ``<name>__momentum`` float64 array per case.  tests/test_schedules.py
also imports :func:`run_case` to regenerate a few cases live when torch is installed.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "schedules_torch.npz")


def _metrics():
    """A scripted metric sequence: improves, plateaus with noise, improves, worsens."""
    rng = np.random.default_rng(1234)
    a = list(np.linspace(1.0, 0.5, 8))
    b = list(0.5 + 0.002 * rng.standard_normal(12))
    c = list(np.linspace(0.45, 0.2, 6))
    d = list(0.2 + 0.05 * np.arange(10))
    e = list(0.2 + 0.0001 * rng.standard_normal(14))
    return [float(x) for x in a + b + c + d + e]


METRICS = _metrics()

# name, scheduler class, kwargs, base lr, optimizer, number of updates, extra
CASES = [
    dict(name="step", cls="StepLR", kwargs=dict(step_size=7, gamma=0.5), lr=0.1, steps=40),
    dict(
        name="step_gamma_big", cls="StepLR", kwargs=dict(step_size=3, gamma=0.9), lr=1.0, steps=30
    ),
    dict(
        name="multistep",
        cls="MultiStepLR",
        kwargs=dict(milestones=[5, 12, 30], gamma=0.3),
        lr=0.1,
        steps=40,
    ),
    dict(
        name="multistep_zero_repeat",
        cls="MultiStepLR",
        kwargs=dict(milestones=[0, 5, 5, 12], gamma=0.5),
        lr=0.2,
        steps=30,
    ),
    dict(name="exponential", cls="ExponentialLR", kwargs=dict(gamma=0.95), lr=0.1, steps=120),
    dict(
        name="linear_up",
        cls="LinearLR",
        kwargs=dict(start_factor=0.25, end_factor=1.0, total_iters=10),
        lr=0.1,
        steps=30,
    ),
    dict(
        name="linear_down",
        cls="LinearLR",
        kwargs=dict(start_factor=1.0, end_factor=0.1, total_iters=17),
        lr=0.3,
        steps=40,
    ),
    dict(
        name="constant", cls="ConstantLR", kwargs=dict(factor=0.5, total_iters=8), lr=0.1, steps=20
    ),
    dict(
        name="polynomial_p2",
        cls="PolynomialLR",
        kwargs=dict(total_iters=20, power=2.0),
        lr=0.1,
        steps=40,
    ),
    dict(
        name="polynomial_p1",
        cls="PolynomialLR",
        kwargs=dict(total_iters=13, power=1.0),
        lr=0.05,
        steps=30,
    ),
    dict(
        name="cosine_eta_min",
        cls="CosineAnnealingLR",
        kwargs=dict(T_max=25, eta_min=0.001),
        lr=0.1,
        steps=100,
    ),
    dict(
        name="cosine", cls="CosineAnnealingLR", kwargs=dict(T_max=10, eta_min=0.0), lr=0.1, steps=60
    ),
    dict(
        name="restarts_mult1",
        cls="CosineAnnealingWarmRestarts",
        kwargs=dict(T_0=10, T_mult=1, eta_min=0.0),
        lr=0.1,
        steps=50,
    ),
    dict(
        name="restarts_mult2",
        cls="CosineAnnealingWarmRestarts",
        kwargs=dict(T_0=5, T_mult=2, eta_min=0.01),
        lr=0.1,
        steps=100,
    ),
    dict(
        name="restarts_mult3",
        cls="CosineAnnealingWarmRestarts",
        kwargs=dict(T_0=2, T_mult=3, eta_min=0.001),
        lr=0.1,
        steps=100,
    ),
    dict(
        name="cyclic_triangular",
        cls="CyclicLR",
        kwargs=dict(base_lr=0.01, max_lr=0.1, step_size_up=5, mode="triangular"),
        lr=0.1,
        steps=40,
        optimizer="SGD",
        momentum=True,
    ),
    dict(
        name="cyclic_triangular2_down",
        cls="CyclicLR",
        kwargs=dict(
            base_lr=0.001,
            max_lr=0.1,
            step_size_up=4,
            step_size_down=6,
            mode="triangular2",
            base_momentum=0.85,
            max_momentum=0.95,
        ),
        lr=0.1,
        steps=60,
        optimizer="SGD",
        momentum=True,
    ),
    dict(
        name="cyclic_exp_range",
        cls="CyclicLR",
        kwargs=dict(
            base_lr=0.01, max_lr=0.2, step_size_up=5, step_size_down=3, mode="exp_range", gamma=0.97
        ),
        lr=0.1,
        steps=60,
        optimizer="Adam",
        momentum=True,
    ),
    dict(
        name="cyclic_exp_range_sym",
        cls="CyclicLR",
        kwargs=dict(
            base_lr=0.01,
            max_lr=0.2,
            step_size_up=6,
            mode="exp_range",
            gamma=0.99,
            cycle_momentum=False,
        ),
        lr=0.1,
        steps=60,
    ),
    dict(
        name="onecycle_cos_sgd",
        cls="OneCycleLR",
        kwargs=dict(max_lr=0.5, total_steps=100),
        lr=0.1,
        steps=100,
        optimizer="SGD",
        momentum=True,
    ),
    dict(
        name="onecycle_linear_adam",
        cls="OneCycleLR",
        kwargs=dict(
            max_lr=0.3,
            total_steps=57,
            pct_start=0.25,
            anneal_strategy="linear",
            base_momentum=0.8,
            max_momentum=0.9,
        ),
        lr=0.1,
        steps=57,
        optimizer="Adam",
        momentum=True,
    ),
    dict(
        name="onecycle_three_phase",
        cls="OneCycleLR",
        kwargs=dict(max_lr=1.0, total_steps=80, pct_start=0.3, three_phase=True),
        lr=0.1,
        steps=80,
        optimizer="SGD",
        momentum=True,
    ),
    dict(
        name="onecycle_three_phase_linear",
        cls="OneCycleLR",
        kwargs=dict(
            max_lr=0.2,
            total_steps=63,
            pct_start=0.35,
            anneal_strategy="linear",
            three_phase=True,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
        lr=0.1,
        steps=63,
        optimizer="Adam",
        momentum=True,
    ),
    dict(
        name="plateau_min_rel",
        cls="ReduceLROnPlateau",
        kwargs=dict(mode="min", factor=0.5, patience=2),
        lr=0.1,
        steps=len(METRICS),
        metrics=METRICS,
    ),
    dict(
        name="plateau_min_abs_cooldown",
        cls="ReduceLROnPlateau",
        kwargs=dict(
            mode="min",
            factor=0.3,
            patience=1,
            threshold=0.01,
            threshold_mode="abs",
            cooldown=3,
            min_lr=0.002,
        ),
        lr=0.1,
        steps=len(METRICS),
        metrics=METRICS,
    ),
    dict(
        name="plateau_max_rel_cooldown",
        cls="ReduceLROnPlateau",
        kwargs=dict(mode="max", factor=0.1, patience=3, threshold=0.05, cooldown=2),
        lr=1.0,
        steps=len(METRICS),
        metrics=[-m for m in METRICS],
    ),
    dict(
        name="plateau_max_abs_patience0",
        cls="ReduceLROnPlateau",
        kwargs=dict(mode="max", factor=0.7, patience=0, threshold=0.001, threshold_mode="abs"),
        lr=0.1,
        steps=len(METRICS),
        metrics=[-m for m in METRICS],
    ),
    dict(
        name="plateau_eps",
        cls="ReduceLROnPlateau",
        kwargs=dict(mode="min", factor=0.5, patience=0, eps=1e-3, min_lr=0.0),
        lr=0.01,
        steps=len(METRICS),
        metrics=METRICS,
    ),
]


def run_case(case):
    """Drive PyTorch for one case; return ``(lr, momentum_or_None)`` as float64 arrays."""
    import warnings

    import torch
    from torch.optim import lr_scheduler

    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt_name = case.get("optimizer", "SGD")
    if opt_name == "SGD":
        opt = torch.optim.SGD([p], lr=case["lr"], momentum=0.9 if case.get("momentum") else 0.0)
    else:
        opt = torch.optim.Adam([p], lr=case["lr"])
    sched = getattr(lr_scheduler, case["cls"])(opt, **case["kwargs"])
    lrs, moms = [], []
    metrics = case.get("metrics")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(case["steps"]):
            group = opt.param_groups[0]
            lrs.append(float(group["lr"]))
            if case.get("momentum"):
                moms.append(float(group["momentum"] if opt_name == "SGD" else group["betas"][0]))
            p.grad = torch.ones_like(p)
            opt.step()
            if metrics is not None:
                sched.step(metrics[k])
            else:
                sched.step()
    lr = np.asarray(lrs, dtype=np.float64)
    mom = np.asarray(moms, dtype=np.float64) if case.get("momentum") else None
    return lr, mom


def main(path=FIXTURE):
    import torch

    arrays = {}
    for case in CASES:
        lr, mom = run_case(case)
        arrays[case["name"] + "__lr"] = lr
        if mom is not None:
            arrays[case["name"] + "__momentum"] = mom
    meta = {"torch_version": torch.__version__, "cases": CASES}
    arrays["config"] = np.array(json.dumps(meta))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, **arrays)
    print(f"wrote {len(CASES)} cases to {path} (torch {torch.__version__})")


if __name__ == "__main__":
    main(*sys.argv[1:])
