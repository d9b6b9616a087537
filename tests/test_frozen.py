"""None gradients freeze their parameter, as torch skips a parameter whose .grad is None:
its array, its state and its own counters (the step of the bias corrections, NAdam's
mu_product, SGD's momentum_ready) stay as they were, and it later steps with its own
counters."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fastopt
from _tolerance import assert_same_bits
from make_legacy_fixtures import LEGACY_CASES, LEGACY_STEPS, legacy_grads, legacy_params, legacy_run

BACKENDS = fastopt.available_backends()
SIZES = (1, 7, 13, 33)  # 1, primes, not a multiple of any SIMD width
STEPS = 9
CASES = [
    (fastopt.Adam, dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.05)),
    (fastopt.Adam, dict(lr=0.01, betas=(0.8, 0.95), amsgrad=True)),
    (fastopt.AdamW, dict(lr=0.01, betas=(0.8, 0.95))),
    (fastopt.NAdam, dict(lr=0.01, betas=(0.8, 0.95), momentum_decay=0.01)),
    (fastopt.RAdam, dict(lr=0.01, betas=(0.8, 0.95))),  # both branches within 9 steps
    (fastopt.Adamax, dict(lr=0.01, betas=(0.8, 0.95))),
    (fastopt.Adagrad, dict(lr=0.05, lr_decay=0.05)),
    (fastopt.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    (fastopt.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (fastopt.RMSprop, dict(lr=0.005, alpha=0.9, momentum=0.5, centered=True)),
    (fastopt.Adadelta, dict(lr=0.5)),
    (fastopt.Rprop, dict(lr=0.01, etas=(0.4, 1.3))),  # step_size starts at the first use
    (fastopt.ASGD, dict(lr=0.05, lambd=0.01, t0=2.0)),  # averaging starts within the run
    (fastopt.Adafactor, dict(lr=0.05, weight_decay=0.01)),  # its own step: beta2_t, rho_t
]
IDS = [f"{c.__name__}-{i}" for i, (c, _) in enumerate(CASES)]


def frozen(t, i):
    """Whether parameter ``i`` has no gradient at step ``t``: parameter 0 from step 0 (its
    lazy buffers start late), the others on different steps, and all of them at step 4."""
    return t == 4 or (i == 0 and t < 2) or (i > 0 and (t + i) % 3 == 0)


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) for n in SIZES]


def grads_at(t, dtype):
    rng = np.random.default_rng(1000 + t)
    return [
        None if frozen(t, i) else (rng.standard_normal(n) + 0.1).astype(dtype)
        for i, n in enumerate(SIZES)
    ]


def run(cls, kw, backend, dtype, steps=STEPS, start=0, opt=None, groups=False):
    params = make_params(dtype)
    if opt is None:
        spec = (
            [{"params": params[:2]}, {"params": params[2:], "lr": kw["lr"] / 2}]
            if groups
            else params
        )
        opt = cls(spec, backend=backend, **kw)
    else:
        params = [p for g in opt.param_groups for p in g["params"]]
    for t in range(start, steps):
        opt.step(grads_at(t, dtype))
    return opt, params


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("groups", [False, True])
def test_none_gradients_match_torch(case, dtype, groups):
    torch = pytest.importorskip("torch")
    cls, kw = case
    tkw = {k: v for k, v in kw.items()}
    for backend in BACKENDS:
        opt, params = run(cls, kw, backend, dtype, groups=groups)
        tp = [torch.tensor(p) for p in make_params(dtype)]
        for q in tp:
            q.requires_grad_(True)
        spec = [{"params": tp[:2]}, {"params": tp[2:], "lr": kw["lr"] / 2}] if groups else tp
        topt = getattr(torch.optim, cls.__name__)(spec, **tkw)
        for t in range(STEPS):
            for q, g in zip(tp, grads_at(t, dtype)):
                q.grad = None if g is None else torch.tensor(g)
            topt.step()
        rtol, atol = (1e-10, 1e-12) if dtype == np.float64 else (1e-5, 3e-6)
        for i, (p, q) in enumerate(zip(params, tp)):
            want = q.detach().numpy()
            np.testing.assert_allclose(p, want, rtol=rtol, atol=atol * np.abs(want).max())
            tstate = topt.state[q]
            if "step" in tstate:  # not kept by torch's SGD
                assert opt.counters()[i]["step"] == int(tstate["step"]), (backend, i)
            for key, a in opt.state[i].items():
                if key in tstate:  # torch makes a buffer at its first use
                    t_a = tstate[key].detach().numpy()
                    np.testing.assert_allclose(a, t_a, rtol=rtol, atol=atol * np.abs(t_a).max())
            for key in ("mu_product", "eta", "mu"):  # torch's float32 0-d tensors
                if key in tstate:
                    assert opt.counters()[i][key] == float(tstate[key]), (backend, i, key)
            if "momentum_buffer" in opt.state[i] and cls is fastopt.SGD:
                assert ("momentum_buffer" in tstate and tstate["momentum_buffer"] is not None) == (
                    opt.counters()[i]["momentum_ready"]
                )


def _own_steps(i):
    return [t for t in range(STEPS) if not frozen(t, i)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_frozen_parameter_steps_with_its_own_counters(case, dtype):
    """Without torch: each parameter ends exactly (bit for bit) where an optimizer holding it
    alone, stepped only at the steps where it had a gradient, leaves it; on every backend,
    which all equal the NumPy reference."""
    cls, kw = case
    ref, ref_params = run(cls, kw, "numpy", dtype)
    for backend in BACKENDS:
        opt, params = run(cls, kw, backend, dtype)
        for i, p in enumerate(params):
            assert_same_bits(p, ref_params[i], f"{backend} param {i}")
            for key, a in opt.state[i].items():
                assert_same_bits(a, ref.state[i][key], f"{backend} {key} {i}")
            alone = make_params(dtype)[i]
            solo = cls([alone], backend=backend, **kw)
            rng_steps = _own_steps(i)
            for t in rng_steps:
                solo.step([grads_at(t, dtype)[i]])
            assert_same_bits(p, alone, f"{backend} param {i} vs alone")
            assert opt.counters()[i] == solo.counters()[0]
            assert opt.counters()[i]["step"] == len(rng_steps)


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_none_step_counts_the_call_only(backend):
    params = make_params(np.float64)
    opt = fastopt.Adam(
        {f"p{i}": p for i, p in enumerate(params)}, lr=lambda k: 0.1 / (k + 1), backend=backend
    )
    seen = []
    opt.register_step_post_hook(lambda o, g: seen.append(o.step_count))
    opt.step({f"p{i}": np.full_like(p, 0.1) for i, p in enumerate(params)})
    before = [p.copy() for p in params], json.dumps(opt.counters(), default=str)
    opt.step({f"p{i}": None for i in range(len(params))})
    assert opt.step_count == 2 and seen == [1, 2]
    assert opt.last_lr == [0.1 / 2]  # the schedule was evaluated at step_count 1
    for p, q in zip(params, before[0]):
        assert_same_bits(p, q)
    assert json.dumps(opt.counters(), default=str) == before[1]
    assert not opt._split  # all counters still equal: the next step is one backend call


@pytest.mark.parametrize("via", ["state_dict", "save"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_resume_mid_run_is_bit_identical(case, via, tmp_path):
    cls, kw = case
    backend = BACKENDS[-1]
    whole, whole_params = run(cls, kw, backend, np.float32, groups=True)
    first, _ = run(cls, kw, backend, np.float32, steps=6, groups=True)
    assert first._split  # the counters differ between parameters at the cut
    resumed, _ = run(cls, kw, backend, np.float32, steps=0, groups=True)
    if via == "save":
        fastopt.save(tmp_path / "ck.npz", first)
        fastopt.load(tmp_path / "ck.npz", resumed)
    else:
        resumed.load_state_dict(first.state_dict())
        for g_from, g_to in zip(first.param_groups, resumed.param_groups):
            for a, b in zip(g_from["params"], g_to["params"]):
                np.copyto(b, a)
    assert resumed.counters() == first.counters()
    run(cls, kw, backend, np.float32, start=6, opt=resumed)
    got = [p for g in resumed.param_groups for p in g["params"]]
    for i, (p, q) in enumerate(zip(got, whole_params)):
        assert_same_bits(p, q, f"param {i}")
        for key, a in whole.state[i].items():
            assert_same_bits(resumed.state[i][key], a, f"{key} {i}")
    assert resumed.counters() == whole.counters()


@pytest.mark.parametrize("kind", sorted(LEGACY_CASES))
def test_legacy_checkpoint_resumes_bit_identically(kind):
    """A file saved by fastopt before per-parameter counters (made by
    tests/make_legacy_fixtures.py): its group counters become every parameter's, and the
    run continues exactly as the uninterrupted run of the current code."""
    path = f"{__file__.rsplit('/', 1)[0]}/fixtures/legacy_{kind}.npz"
    meta = json.loads(str(np.load(path)["__fastopt__"]))
    assert not isinstance(meta["param_groups"][0]["step"], list)  # the old format
    whole = legacy_run(kind, LEGACY_STEPS + 3)
    opt = getattr(fastopt, kind)(legacy_params(), backend="numpy", **LEGACY_CASES[kind])
    fastopt.load(path, opt)
    assert all(c["step"] == LEGACY_STEPS for c in opt.counters().values())
    # the same legacy group values through load_state_dict
    sd = opt.state_dict()
    for key in ("step", *opt._spec.group_state):
        sd["param_groups"][0][key] = sd["param_groups"][0][key][0]
    again = getattr(fastopt, kind)(legacy_params(), backend="numpy", **LEGACY_CASES[kind])
    again.load_state_dict(sd)
    assert again.counters() == opt.counters()
    for t in range(LEGACY_STEPS, LEGACY_STEPS + 3):
        opt.step(legacy_grads(t))
    for nm in whole.state:
        g0 = dict(zip(opt.param_groups[0]["names"], opt.param_groups[0]["params"]))
        w0 = dict(zip(whole.param_groups[0]["names"], whole.param_groups[0]["params"]))
        assert_same_bits(g0[nm], w0[nm], nm)
        for key, a in whole.state[nm].items():
            assert_same_bits(opt.state[nm][key], a, f"{key} {nm}")
    assert opt.counters() == whole.counters()


BAD_COUNTERS = [
    ("step", [3, 2], None, ValueError, "has 2 values, the group has 3"),
    ("step", [3, -1, 2], None, ValueError, "non-negative"),
    ("step", [3, True, 2], None, TypeError, "non-negative integer"),
    ("step", [3, 2.0, 2], None, TypeError, "non-negative integer"),
    ("step", "3", None, TypeError, "non-negative integer"),
    ("mu_product", [0.5, 2.0, 0.5], fastopt.NAdam, ValueError, "mu_product"),
    ("mu_product", [0.5, "x", 0.5], fastopt.NAdam, TypeError, "mu_product"),
    ("momentum_ready", [True, 1, True], fastopt.SGD, TypeError, "momentum_ready"),
]


@pytest.mark.parametrize("key,value,cls,exc,fragment", BAD_COUNTERS)
def test_bad_per_parameter_counters_change_nothing(key, value, cls, exc, fragment):
    cls = cls or fastopt.Adam
    kw = {"lr": 0.1, "momentum": 0.9} if cls is fastopt.SGD else {"lr": 0.1}
    params = make_params(np.float64)[:3]
    opt = cls(params, backend="numpy", **kw)
    opt.step([np.full_like(p, 0.3) for p in params])
    opt.step([None, np.full_like(params[1], 0.2), None])
    sd = opt.state_dict()
    before = repr(sd), [p.copy() for p in params], opt.counters()
    bad = opt.state_dict()
    bad["param_groups"][0][key] = value
    with pytest.raises(exc, match=fragment):
        opt.load_state_dict(bad)
    assert repr(opt.state_dict()) == before[0] and opt.counters() == before[2]
    for p, q in zip(params, before[1]):
        assert_same_bits(p, q)


def test_momentum_ready_per_parameter_needs_its_buffer():
    """A parameter whose momentum buffer is 'ready' must have one saved; a frozen one
    (not ready) may lack it."""
    params = make_params(np.float64)[:2]
    opt = fastopt.SGD(params, lr=0.1, momentum=0.9, backend="numpy")
    opt.step([np.ones_like(params[0]), None])
    assert [c["momentum_ready"] for c in opt.counters().values()] == [True, False]
    sd = opt.state_dict()
    del sd["state"][1]["momentum_buffer"], sd["state"][0]["momentum_buffer"]
    with pytest.raises(ValueError, match="lacks 'momentum_buffer' for parameter 0"):
        opt.load_state_dict(sd)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scope", ["all", "group"])
def test_clipping_ignores_none_gradients_like_torch(backend, scope):
    torch = pytest.importorskip("torch")
    params = make_params(np.float64)
    groups = [{"params": params[:2]}, {"params": params[2:]}]
    opt = fastopt.SGD(
        groups, lr=0.1, max_grad_norm=0.5, clip_value=0.8, clip_scope=scope, backend=backend
    )
    grads = [None if i == 1 else np.linspace(-2, 3, p.size) for i, p in enumerate(params)]
    tp = [torch.tensor(p, requires_grad=True) for p in make_params(np.float64)]
    for q, g in zip(tp, grads):
        q.grad = None if g is None else torch.tensor(g)
    torch.nn.utils.clip_grad_value_(tp, 0.8)
    for part in [tp] if scope == "all" else [tp[:2], tp[2:]]:
        torch.nn.utils.clip_grad_norm_(part, 0.5)
    torch.optim.SGD(tp, lr=0.1).step()
    opt.step(grads)
    for p, q in zip(params, tp):
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-12, atol=1e-15)
    assert grads[1] is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["raise", "skip"])
def test_nonfinite_next_to_a_none_changes_nothing(backend, mode):
    params = make_params(np.float32)
    opt = fastopt.Adam(
        {f"p{i}": p for i, p in enumerate(params)}, lr=0.1, nonfinite=mode, backend=backend
    )
    opt.step({f"p{i}": None if i == 2 else np.ones_like(p) for i, p in enumerate(params)})
    before = [p.copy() for p in params], opt.counters(), repr(opt.state_dict())
    grads = {f"p{i}": None if i == 0 else np.ones_like(p) for i, p in enumerate(params)}
    grads["p3"][5] = np.nan
    if mode == "raise":
        with pytest.raises(fastopt.NonFiniteGradientError, match="p3"):
            opt.step(grads)
    else:
        opt.step(grads)
        assert opt.skipped_steps == 1 and opt.last_step_skipped
        opt.skipped_steps = 0
    for p, q in zip(params, before[0]):
        assert_same_bits(p, q)
    assert opt.counters() == before[1] and repr(opt.state_dict()) == before[2]
    assert opt.step_count == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_none_with_a_bad_gradient_elsewhere_changes_nothing(backend):
    params = make_params(np.float64)
    opt = fastopt.NAdam([{"params": params[:2]}, {"params": params[2:]}], backend=backend)
    opt.step([None, np.ones(7), np.ones(13), None])
    before = [p.copy() for p in params], opt.counters(), repr(opt.state_dict())
    for bad, exc in (
        ("a string", TypeError),
        (np.ones(3), ValueError),
        (np.ones(33, np.float32), TypeError),
        (params[0], ValueError),
    ):
        with pytest.raises(exc):
            opt.step([None, np.ones(7), None, bad])
        for p, q in zip(params, before[0]):
            assert_same_bits(p, q)
        assert opt.counters() == before[1] and repr(opt.state_dict()) == before[2]
    assert opt.step_count == 1
