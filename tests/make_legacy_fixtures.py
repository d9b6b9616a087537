"""Write tests/fixtures/legacy_<kind>.npz: ``fastopt.save`` files in the format of fastopt
before per-parameter counters (one ``step``, ``mu_product``, ``momentum_ready`` per group),
which tests/test_frozen.py resumes.  Run it with such a fastopt installed (it was run with
the fastopt of the commit that added it, before that change):

    python tests/make_legacy_fixtures.py

Each file holds a run of ``LEGACY_STEPS`` steps of ``legacy_run`` (below, imported by the
test, which repeats the run with the current fastopt and continues it from the file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import fastopt

LEGACY_STEPS = 3
LEGACY_CASES = {
    "SGD": dict(lr=0.05, momentum=0.9),
    "Adam": dict(lr=0.01, betas=(0.8, 0.95)),
    "NAdam": dict(lr=0.01, betas=(0.8, 0.95), momentum_decay=0.01),
}


def legacy_params():
    rng = np.random.default_rng(7)
    return {"w": rng.standard_normal(5), "b": rng.standard_normal(1).astype(np.float32)}


def legacy_grads(t):
    rng = np.random.default_rng(100 + t)
    return {"w": rng.standard_normal(5), "b": rng.standard_normal(1).astype(np.float32)}


def legacy_run(kind, steps):
    """The optimizer (numpy backend: the same bits on any machine) after ``steps`` steps."""
    params = legacy_params()
    opt = getattr(fastopt, kind)(params, backend="numpy", **LEGACY_CASES[kind])
    for t in range(steps):
        opt.step(legacy_grads(t))
    return opt


if __name__ == "__main__":
    out = Path(__file__).parent / "fixtures"
    for kind in LEGACY_CASES:
        fastopt.save(out / f"legacy_{kind}.npz", legacy_run(kind, LEGACY_STEPS))
