"""Adafactor and Muon (fastopt._matrix): every backend gives the NumPy reference's bits,
torch's trajectories are replayed from ``fixtures/matrix_torch.npz`` (made by
``make_matrix_fixtures.py``) and, with torch installed, compared live; bad input changes
nothing; a resumed run is bit-identical.

Tolerances against torch (measured worst, 20 steps, every backend, in the comments):

* Adafactor: float64 ``rtol=1e-10`` plus ``1e-12 * max|p|`` (measured 2e-16 of max|p|);
  float32 ``rtol=1e-5`` plus ``3e-6 * max|p|`` (measured 1.2e-7 of max|p|): fastopt's
  norms are accumulated in float64 and rounded, torch's in float32 in another order, and
  torch fuses the multiply-adds of ``lerp`` and ``add_``.
* Muon, bfloat16 Newton-Schulz (the default): the same bounds, or one bfloat16 ulp
  (2**-8) of the update per step times the largest adjusted lr, whichever is larger: the
  emulated bfloat16 rounding matches torch's CPU products exactly on small matrices, and
  13 x 17 products summed in another order move some elements by one bfloat16 ulp
  (measured 7.6e-9 absolute after 20 steps at lr 1e-3, float64).  ``ns_dtype="float32"``
  is not torch's numbers.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

import fastopt
from _tolerance import assert_same_bits
from fastopt import _contract as C
from fastopt import _matrix

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "make_matrix_fixtures", _HERE / "make_matrix_fixtures.py"
)
gen = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("make_matrix_fixtures", gen)
_spec.loader.exec_module(gen)

BACKENDS = fastopt.available_backends()
OTHERS = [b for b in BACKENDS if b != "numpy"]
TOL = {"float64": (1e-10, 1e-12), "float32": (1e-5, 3e-6)}
DTYPES = ["float32", "float64"]

AF_SHAPES = [(1,), (7,), (13, 17), (2, 3, 5), (), (1, 1), (4099,)]
MU_SHAPES = [(1, 1), (7, 3), (3, 5), (13, 17)]


def _combos(**axes):
    import itertools

    keys = list(axes)
    return [dict(zip(keys, v)) for v in itertools.product(*axes.values())]


AF_CASES = _combos(
    weight_decay=[0.0, 0.05], maximize=[False, True], eps=[(None, 1e-3), (1e-30, 0.5)], d=[1.0, 1.3]
)
MU_CASES = _combos(
    nesterov=[True, False],
    weight_decay=[0.0, 0.1],
    adjust_lr_fn=[None, "original", "match_rms_adamw"],
    ns_dtype=["bfloat16", "float32"],
)


def _params(shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(s), dtype=dtype) for s in shapes]


def _run(cls, shapes, kw, backend, dtype, steps=15, seed=0):
    params = _params(shapes, dtype, seed)
    opt = cls(params, backend=backend, **kw)
    rng = np.random.default_rng(seed + 1)
    for _ in range(steps):
        opt.step(gen.grads_at(rng, params))
    return params, opt


def _same_run(a, b):
    (pa, oa), (pb, ob) = a, b
    for i, (x, y) in enumerate(zip(pa, pb)):
        assert_same_bits(x, y, f"param {i}")
    for name, st in ob.state.items():
        assert set(oa.state[name]) == set(st)
        for key, ref in st.items():
            assert_same_bits(oa.state[name][key], ref, f"state {name} {key}")


# --------------------------------------------------------------------------- backends
@pytest.mark.skipif(not OTHERS, reason="only the numpy backend is available")
@pytest.mark.parametrize("backend_", OTHERS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", AF_CASES, ids=str)
def test_adafactor_backends_give_the_references_bits(kw, dtype, backend_):
    ref = _run(fastopt.Adafactor, AF_SHAPES, kw, "numpy", dtype)
    _same_run(_run(fastopt.Adafactor, AF_SHAPES, kw, backend_, dtype), ref)
    start = _params(AF_SHAPES, dtype)
    for s, p in zip(start, ref[0]):  # not a vacuous agreement
        assert not np.array_equal(s, p)


@pytest.mark.skipif(not OTHERS, reason="only the numpy backend is available")
@pytest.mark.parametrize("backend_", OTHERS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", MU_CASES, ids=str)
def test_muon_backends_give_the_references_bits(kw, dtype, backend_):
    ref = _run(fastopt.Muon, MU_SHAPES, dict(lr=0.02, **kw), "numpy", dtype)
    _same_run(_run(fastopt.Muon, MU_SHAPES, dict(lr=0.02, **kw), backend_, dtype), ref)
    for s, p in zip(_params(MU_SHAPES, dtype), ref[0]):
        assert not np.array_equal(s, p)


def test_state_shapes_follow_torch():
    params = _params([(3, 5), (7,), (2, 3, 4), ()], "float32")
    opt = fastopt.Adafactor(params)
    opt.step([np.ones_like(p) for p in params])
    assert {k: v.shape for k, v in opt.state[0].items()} == {"row_var": (3, 1), "col_var": (1, 5)}
    assert {k: v.shape for k, v in opt.state[1].items()} == {"variance": (7,)}
    assert {k: v.shape for k, v in opt.state[2].items()} == {
        "row_var": (2, 3, 1),
        "col_var": (2, 1, 4),
    }
    assert {k: v.shape for k, v in opt.state[3].items()} == {"variance": ()}


# --------------------------------------------------------------------------- torch
DATA = dict(np.load(gen.FIXTURE)) if gen.FIXTURE.exists() else None


def _replay(opt, options, dtype, backend="auto", seed=0):
    """fastopt's run of make_matrix_fixtures.run_torch: same start, same gradients."""
    cls = getattr(fastopt, opt)
    params = gen.initial_params(opt, dtype, seed=seed)
    o = cls(params, backend=backend, **gen.torch_options(options))
    rng = np.random.default_rng(seed + 1)
    snaps = []
    for k in range(gen.STEPS):
        o.step(gen.grads_at(rng, params))
        if k + 1 in gen.SNAP_STEPS:
            snaps.append(np.concatenate([p.ravel() for p in params]))
    return np.stack(snaps)


def _close(got, ref, dtype, label, opt="", options=None):
    rtol, frac = TOL[dtype]
    for i, step in enumerate(gen.SNAP_STEPS):
        atol = frac * float(np.abs(ref[i]).max())
        if opt == "Muon":
            # bfloat16 Newton-Schulz: one bfloat16 ulp (2**-8 relative, |O| <= ~1) of the
            # update per step, times the largest adjusted lr (ratio <= 2 on these shapes).
            atol = max(atol, step * (options or {}).get("lr", 1e-3) * 2 * 2**-8)
        np.testing.assert_allclose(
            got[i], ref[i], rtol=rtol, atol=atol, err_msg=f"{label}: step {step} differs from torch"
        )


def test_fixture_is_complete():
    assert DATA is not None, f"{gen.FIXTURE} is missing; run tests/make_matrix_fixtures.py"
    assert json.loads(str(DATA["cases_json"])) == [list(c) for c in gen.CASES]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(gen.CASES)))
def test_matches_torch_fixture(case, dtype, backend):
    assert DATA is not None
    opt, options = gen.CASES[case]
    ref = DATA[f"case{case}_{dtype}"]
    _close(_replay(opt, options, dtype, backend), ref, dtype, f"{opt}{options}", opt, options)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(gen.CASES)))
def test_live_torch_parity(case, dtype):
    pytest.importorskip("torch")
    opt, options = gen.CASES[case]
    ref = gen.run_torch(opt, options, dtype, seed=7)
    got = _replay(opt, options, dtype, seed=7)
    _close(got, ref, dtype, f"live {opt}{options}", opt, options)


@pytest.mark.parametrize("name", ["Adafactor", "Muon"])
def test_signature_is_torchs(name):
    torch = pytest.importorskip("torch")
    ours = inspect.signature(getattr(fastopt, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    for key, p in theirs.items():
        if key in ("params", "foreach"):
            continue
        assert ours[key].default == p.default, key
        assert ours[key].kind == p.kind, key


def test_bf16_rounding_is_round_to_nearest_even():
    x = np.array(
        [1.0, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, -2.5, np.inf, np.nan, 3.4e38],
        np.float32,
    )
    got = _matrix.bf16_round(x)
    # 1 + 2**-8 is a tie (to even: 1.0); 1 + 3 * 2**-8 a tie to 1 + 2**-6; just above a
    # tie rounds up; 3.4e38 overflows to infinity.
    want = [1.0, 1.0, 1 + 2**-6, 1 + 2**-7, -2.5, np.inf, np.nan, np.inf]
    np.testing.assert_array_equal(got, np.array(want, np.float32))


def test_bf16_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(10000).astype(np.float32) * 1e3
    want = torch.tensor(x).bfloat16().float().numpy()
    assert_same_bits(_matrix.bf16_round(x), want)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("shape", [(7,), (2, 3, 4), ()])
def test_muon_refuses_non_matrices_at_construction(shape):
    with pytest.raises(ValueError, match="2-D"):
        fastopt.Muon([np.zeros((3, 3)), np.zeros(shape)])
    opt = fastopt.Muon([np.zeros((3, 3))])
    with pytest.raises(ValueError, match="2-D"):
        opt.add_param_group({"params": [np.zeros(shape)]})
    assert len(opt.param_groups) == 1 and len(opt.state) == 1


@pytest.mark.parametrize(
    "cls, kw, exc",
    [
        (fastopt.Adafactor, dict(eps=(None, 1e-3, 1.0)), TypeError),
        (fastopt.Adafactor, dict(eps=1e-3), TypeError),
        (fastopt.Adafactor, dict(eps=(-1.0, 1e-3)), ValueError),
        (fastopt.Adafactor, dict(eps=(None, None)), TypeError),
        (fastopt.Adafactor, dict(eps=("a", 1e-3)), TypeError),
        (fastopt.Adafactor, dict(beta2_decay=0.5), ValueError),
        (fastopt.Adafactor, dict(d=0.5), ValueError),
        (fastopt.Adafactor, dict(lr=-1.0), ValueError),
        (fastopt.Adafactor, dict(weight_decay=float("nan")), ValueError),
        (fastopt.Muon, dict(ns_steps=100), ValueError),
        (fastopt.Muon, dict(ns_steps=2.0), TypeError),
        (fastopt.Muon, dict(ns_steps=True), TypeError),
        (fastopt.Muon, dict(adjust_lr_fn="adamw"), ValueError),
        (fastopt.Muon, dict(ns_dtype="float16"), ValueError),
        (fastopt.Muon, dict(ns_coefficients=(1.0, 2.0)), TypeError),
        (fastopt.Muon, dict(momentum=-0.1), ValueError),
        (fastopt.Muon, dict(eps=float("inf")), ValueError),
    ],
)
def test_bad_options_are_refused(cls, kw, exc):
    with pytest.raises(exc):
        cls([np.zeros((3, 3))], **kw)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls, shapes", [(fastopt.Adafactor, AF_SHAPES), (fastopt.Muon, MU_SHAPES)])
def test_bad_step_changes_nothing(cls, shapes, backend):
    params, opt = _run(cls, shapes, {}, backend, "float32", steps=2)
    before = pickle.dumps((params, opt.state_dict()))
    rng = np.random.default_rng(5)
    good = gen.grads_at(rng, params)
    for bad in (
        good[:-1] + [np.zeros(3, np.float32)],  # wrong shape, last
        good[:-1] + [good[-1].astype(np.float64)],  # wrong dtype
        good[:-1] + [params[0]],  # a parameter as a gradient
    ):
        with pytest.raises((TypeError, ValueError)):
            opt.step(bad)
        assert pickle.dumps((params, opt.state_dict())) == before
    nan = [g.copy() for g in good]
    nan[-1][...] = np.nan
    with pytest.raises(fastopt.NonFiniteGradientError):
        opt.step(nan)
    assert pickle.dumps((params, opt.state_dict())) == before
    skip = cls(params, backend=backend, nonfinite="skip")
    skip.step(nan)
    assert skip.skipped_steps == 1 and pickle.dumps(params) == pickle.dumps(pickle.loads(before)[0])


# --------------------------------------------------------------------------- resume
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "cls, shapes, kw",
    [
        (fastopt.Adafactor, AF_SHAPES, dict(weight_decay=0.05)),
        (fastopt.Muon, MU_SHAPES, dict(lr=0.02)),
    ],
)
def test_state_dict_resume_is_bit_identical(cls, shapes, kw, dtype):
    params, opt = _run(cls, shapes, kw, "numpy", dtype, steps=6)
    snap_params = [p.copy() for p in params]
    snap = pickle.loads(pickle.dumps(opt.state_dict()))
    rng = np.random.default_rng(9)
    for _ in range(6):
        opt.step(gen.grads_at(rng, params))
    resumed = [p.copy() for p in snap_params]
    opt2 = cls(resumed, **kw)
    opt2.load_state_dict(snap)
    rng = np.random.default_rng(9)
    for _ in range(6):
        opt2.step(gen.grads_at(rng, resumed))
    _same_run((resumed, opt2), (params, opt))


def test_load_refuses_wrong_factor_shapes_and_changes_nothing():
    params, opt = _run(fastopt.Adafactor, [(3, 5), (7,)], {}, "numpy", "float64", steps=2)
    sd = opt.state_dict()
    bad = pickle.loads(pickle.dumps(sd))
    bad["state"][0]["row_var"] = np.zeros((3, 5))
    fresh = fastopt.Adafactor([p.copy() for p in params])
    before = pickle.dumps(fresh.state_dict())
    with pytest.raises(ValueError, match="row_var"):
        fresh.load_state_dict(bad)
    bad = pickle.loads(pickle.dumps(sd))
    bad["state"][1]["row_var"] = np.zeros((7, 1))  # a vector keeps no factors
    with pytest.raises(ValueError, match="keeps no"):
        fresh.load_state_dict(bad)
    bad = pickle.loads(pickle.dumps(sd))
    del bad["state"][0]["col_var"]
    with pytest.raises(ValueError):
        fresh.load_state_dict(bad)
    assert pickle.dumps(fresh.state_dict()) == before


def test_checkpoint_round_trip(tmp_path):
    params, opt = _run(
        fastopt.Adafactor, [(3, 5), (7,)], dict(eps=(1e-20, 1e-3)), "numpy", "float32", steps=3
    )
    fastopt.save(tmp_path / "ck.npz", opt)
    opt2 = fastopt.Adafactor([p.copy() for p in params], eps=(1e-20, 1e-3))
    fastopt.load(tmp_path / "ck.npz", opt2)
    for name, st in opt.state.items():
        for key, a in st.items():
            assert_same_bits(opt2.state[name][key], a)
    assert opt2.param_groups[0]["eps"] == (1e-20, 1e-3)


# --------------------------------------------------------------------------- schedules
@pytest.mark.parametrize(
    "cls, shapes, option, values",
    [
        (fastopt.Adafactor, AF_SHAPES, "lr", lambda k: 0.01 * (k + 1)),
        (fastopt.Adafactor, AF_SHAPES, "beta2_decay", lambda k: -0.5 - 0.01 * k),
        (fastopt.Adafactor, AF_SHAPES, "d", lambda k: 1.0 + 0.1 * k),
        (fastopt.Muon, MU_SHAPES, "lr", lambda k: 0.01 / (k + 1)),
        (fastopt.Muon, MU_SHAPES, "momentum", lambda k: 0.9 - 0.01 * k),
        (fastopt.Muon, MU_SHAPES, "weight_decay", lambda k: 0.01 * k),
    ],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_schedule_equals_changing_the_option_by_hand(cls, shapes, option, values, dtype):
    a = _params(shapes, dtype)
    b = _params(shapes, dtype)
    oa = cls(a, **{option: values})
    ob = cls(b, **{option: values(0)})
    ra, rb = np.random.default_rng(2), np.random.default_rng(2)
    for k in range(5):
        ob.param_groups[0][option] = values(k)
        oa.step(gen.grads_at(ra, a))
        ob.step(gen.grads_at(rb, b))
    _same_run((a, oa), (b, ob))


def test_scalars_are_torchs_python_floats():
    for t in (1, 2, 7, 1000):
        s = C.ADAFACTOR.scalars({**C.ADAFACTOR.defaults, "lr": 0.3, "weight_decay": 0.2}, t)
        assert s["weight"] == float(t) ** -0.8
        assert s["rho"] == min(0.3, 1 / (float(t) ** 0.5))
        assert s["decay"] == 1 - 0.3 * 0.2
    s = C.MUON.scalars(C.MUON.defaults, 1)
    assert s["weight"] == 1 - 0.95 and s["decay"] == 1 - 1e-3 * 0.1
    assert _matrix.adjusted_lr(0.1, None, (8, 2)) == 0.1 * 2.0
    assert _matrix.adjusted_lr(0.1, "original", (2, 8)) == 0.1
    assert _matrix.adjusted_lr(0.1, "match_rms_adamw", (2, 9)) == 0.1 * 0.2 * 3.0
