"""PyTorch parity: fastopt replays the golden torch.optim trajectories in
``tests/fixtures/optim_torch.npz`` (made by ``tests/make_torch_fixtures.py``) on every
available backend.  No torch needed, except for ``test_live_torch_parity`` (skipped
without it), which runs fresh cases (other seeds) against torch directly.

Tolerances (measured worst errors are in the comments; see the generator for the cases):

* float64: ``rtol=1e-10`` element-wise, plus an absolute floor of ``1e-12 * max|p|`` (max
  over the snapshot) so that an element passing close to zero does not turn a 1e-16
  rounding difference into a large relative one.  Measured over all cases and backends:
  worst element-wise relative error 8.3e-12 (AdamW, native), worst error relative to
  max|p| 1.5e-15.
* float32: ``rtol=1e-5`` element-wise, plus an absolute floor of ``3e-6 * max|p|``.
  Measured: worst error relative to max|p| 8.5e-7 (AdamW with weight decay, native
  backend; 4.5e-7 for the numpy/numba backends, RMSprop centered + momentum on the
  quadratic), i.e. float32 rounding differences random-walking over 125 steps (torch and
  fastopt round some products in another order, e.g. ``(lr * g) / d`` vs ``lr * (g / d)``,
  the native kernels may fuse multiply-adds, and the param-dependent gradients feed the
  differences back).  Element-wise relative errors reach 8e-4, only on elements that pass
  near zero, hence the floor.

A deliberate 1e-7 relative change of lr, or a 0.1 % change of AdamW's decay factor, fails
these tests (float64 cases).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import fastopt

_HERE = Path(__file__).resolve().parent


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "make_torch_fixtures", _HERE / "make_torch_fixtures.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_torch_fixtures", mod)
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()

FIXTURE = gen.FIXTURE
BACKENDS = fastopt.available_backends()
TOL = {  # dtype -> (rtol, atol as a fraction of max|p| of the snapshot)
    "float64": (1e-10, 1e-12),
    "float32": (1e-5, 3e-6),
}


def _load_fixture():
    if not FIXTURE.exists():
        return None
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


DATA = _load_fixture()
FIXTURE_CASES = json.loads(str(DATA["cases_json"])) if DATA is not None else []


# --------------------------------------------------------------------------- replay
def _to_fastopt(value):
    """A case option for fastopt: schedule specs become callables ``step -> value``."""
    if isinstance(value, dict):
        return lambda k, spec=value: gen.schedule_value(spec, k)
    if isinstance(value, list):  # betas, etas, step_sizes
        return tuple(_to_fastopt(v) for v in value)
    return value


def make_optimizer(case, params, backend):
    cls = getattr(fastopt, case["opt"])
    options = {key: _to_fastopt(v) for key, v in case["options"].items()}
    if "groups" not in case:
        return cls(list(params), backend=backend, **options)
    groups = [
        {
            key: ([params[i] for i in v] if key == "params" else _to_fastopt(v))
            for key, v in g.items()
        }
        for g in case["groups"]
    ]
    return cls(groups, backend=backend, **options)


def run_fastopt(case, dtype, backend, steps=gen.STEPS, snap_steps=gen.SNAP_STEPS):
    """fastopt's trajectory of ``case``: snapshots shaped like ``gen.run_torch``'s."""
    prob = gen.problem(case)
    params = [np.ascontiguousarray(p, dtype=dtype) for p in gen.initial_params(case)]
    opt = make_optimizer(case, params, backend)
    order = gen.param_order(case)
    snaps = []
    for k in range(steps):
        grads = gen.grads_at(case, prob, k, params, dtype)
        opt.step([grads[i] for i in order])
        if k + 1 in snap_steps:
            snaps.append(gen.flatten(params))
    return np.stack(snaps)


def assert_trajectory_close(got, ref, dtype, snap_steps, label):
    rtol, atol_frac = TOL[dtype]
    assert got.shape == ref.shape, (got.shape, ref.shape)
    for i, step in enumerate(snap_steps):
        scale = float(np.abs(ref[i]).max())
        np.testing.assert_allclose(
            got[i],
            ref[i],
            rtol=rtol,
            atol=atol_frac * scale,
            err_msg=f"{label}: parameters after step {step} differ from torch.optim",
        )


# --------------------------------------------------------------------------- fixture
def _require_fixture():
    if DATA is None:
        pytest.fail(
            f"{FIXTURE} is missing; run `python3 tests/make_torch_fixtures.py` "
            "(needs torch==2.13.0)"
        )


def test_fixture_is_complete_and_current():
    _require_fixture()
    assert str(DATA["torch_version"]).startswith(gen.TORCH_VERSION), DATA["torch_version"]
    assert list(DATA["snap_steps"]) == gen.SNAP_STEPS
    # The fixture was generated from the script's current case list (else: regenerate).
    assert FIXTURE_CASES == json.loads(json.dumps(gen.CASES, sort_keys=True)), (
        "tests/make_torch_fixtures.py changed since the fixture was made: regenerate it"
    )
    # Every optimizer, both dtypes, a param-dependent gradient, a schedule and groups.
    for opt in gen.OPTIMIZERS:
        mine = [c for c in FIXTURE_CASES if c["opt"] == opt]
        assert len(mine) >= 8, f"only {len(mine)} {opt} cases in the fixture"
        assert any(c["grad"]["kind"] == "quadratic" for c in mine), opt
        assert any(
            any(gen.is_scheduled(v) for v in c["options"].values())
            or any(gen.is_scheduled(v) for g in c.get("groups", []) for v in g.values())
            for c in mine
        ), opt
        assert any("groups" in c for c in mine), opt
        for flag in {
            "SGD": ["nesterov", "maximize"],
            "Adagrad": ["maximize"],
            "RMSprop": ["centered", "maximize"],
            "Adam": ["amsgrad", "maximize"],
            "AdamW": ["amsgrad", "maximize"],
            "Adamax": ["maximize"],
            "NAdam": ["decoupled_weight_decay", "maximize"],
            "RAdam": ["decoupled_weight_decay", "maximize"],
            "Adadelta": ["maximize"],
            "Rprop": ["maximize"],
            "ASGD": ["maximize"],
        }[opt]:
            assert {bool(c["options"].get(flag, False)) for c in mine} == {False, True}, (opt, flag)
    for case in FIXTURE_CASES:
        for dtype in gen.DTYPES:
            key = f"{case['name']}|{dtype}"
            assert key in DATA, f"fixture lacks {key}"
            arr = DATA[key]
            assert arr.dtype == np.dtype(dtype), (key, arr.dtype)
            assert arr.shape == (len(gen.SNAP_STEPS), gen.NTOTAL), (key, arr.shape)
            assert np.isfinite(arr).all(), key
    assert {k.rsplit("|", 1)[1] for k in DATA if "|" in k} == set(gen.DTYPES)


def test_rng_streams_unchanged():
    """Initial parameters and gradients are regenerated from seeds with default_rng; if
    NumPy ever changes that stream, say so here rather than as optimizer mismatches."""
    _require_fixture()
    np.testing.assert_array_equal(
        gen.rng_fingerprint(),
        DATA["rng_fingerprint"],
        err_msg="numpy.random.default_rng produced other numbers "
        "than when the fixture was made: regenerate the fixture",
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", gen.DTYPES)
@pytest.mark.parametrize("case", FIXTURE_CASES, ids=[c["name"] for c in FIXTURE_CASES])
def test_matches_torch_fixture(case, dtype, backend):
    ref = DATA[f"{case['name']}|{dtype}"].astype(np.float64)
    got = run_fastopt(case, dtype, backend)
    assert_trajectory_close(
        got, ref, dtype, gen.SNAP_STEPS, f"{case['name']} [{dtype}, backend={backend}]"
    )


# --------------------------------------------------------------------------- live torch
LIVE_CASES = [  # (fixture case name, what it covers)
    "SGD-quad-mom-nesterov-wd",
    "SGD-sched-lr-momentum",
    "Adagrad-quad-all",
    "RMSprop-quad-centered-mom",
    "Adam-quad-amsgrad-wd-max",
    "Adam-sched-beta1-beta2-gauss",
    "AdamW-groups-sched",
    "AdamW-sched-lr-beta1-wd",
    "Adamax-quad-wd-max",
    "Adamax-sched-all",
    "NAdam-quad-decoupled-max",
    "NAdam-sched-all",
    "NAdam-groups-sched",
    "RAdam-quad-decoupled-max",
    "RAdam-sched-all",
    "RAdam-groups-sched",
    "Adadelta-quad-wd-max",
    "Adadelta-sched-all",
    "Rprop-quad-clamped-max",
    "Rprop-sched-all",
    "Rprop-groups",
    "ASGD-quad-wd-max",
    "ASGD-sched-all",
    "ASGD-groups-sched",
]


@pytest.mark.parametrize("dtype", gen.DTYPES)
@pytest.mark.parametrize("name", LIVE_CASES)
def test_live_torch_parity(name, dtype):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    case = dict(next(c for c in gen.CASES if c["name"] == name))
    case["seed"] += 7919  # other initial parameters and gradients than the fixture
    steps, snaps = 60, [1, 2, 3, 10, 30, 60]
    ref = gen.run_torch(case, dtype, steps=steps, snap_steps=snaps)
    for backend in BACKENDS:
        got = run_fastopt(case, dtype, backend, steps=steps, snap_steps=snaps)
        assert_trajectory_close(
            got, ref, dtype, snaps, f"{name} seed {case['seed']} [{dtype}, backend={backend}]"
        )
