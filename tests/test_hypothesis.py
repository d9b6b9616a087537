"""Property tests (hypothesis): every backend agrees with the NumPy reference over random
shapes, dtypes, options and hyperparameters; random invalid inputs raise the documented
error type and leave every array bit-identical.

The number of cases run is printed at the end of the module (``-s`` not needed).
"""

import collections
import math

import numpy as np
import pytest

import fastopt
from _tolerance import assert_same_bits
from fastopt import _contract as C

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

BACKENDS = fastopt.available_backends()
OTHERS = [b for b in BACKENDS if b != "numpy"]
CASES = collections.Counter()
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SHAPES = [
    (1,),
    (2,),
    (3,),
    (7,),
    (13,),
    (31,),
    (97,),
    (1021,),
    (1, 1),
    (3, 5),
    (17, 4),
    (2, 3, 5),
    (0,),
]
# Every element-wise optimizer of the contract (a Spec whose kernel is a kind of C.KERNELS),
# so that a new one is drawn as soon as it is in the contract: optimizer_configs and
# FUNCTIONAL_OPTIONS then need its entry (a missing one fails, naming it).
KINDS = [n for n, s in C.SPECS.items() if s.kernel in C.KERNELS]


@pytest.fixture(scope="module", autouse=True)
def _report_counts(pytestconfig):
    yield
    line = (
        "hypothesis cases run: "
        + ", ".join(f"{k}={v}" for k, v in sorted(CASES.items()))
        + f" (total {sum(CASES.values())})"
    )
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print("\n" + line)
    else:  # pragma: no cover
        print(line)


def _unit(lo=0.0, hi=1.0):
    """Floats in [lo, hi], including exact 0 and values so small that they round to 0 in
    float32 (momentum=1e-46 must still take the momentum path on every backend)."""
    if lo == 0.0:
        return st.one_of(
            st.just(0.0), st.just(1e-46), st.floats(0.0, hi, allow_nan=False, allow_infinity=False)
        )
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def optimizer_configs(draw):
    kind = draw(st.sampled_from(KINDS))
    opts = {"lr": draw(st.one_of(st.just(0.0), _unit(1e-6, 1.0)))}
    wd = draw(st.one_of(st.just(0.0), _unit(0.0, 0.2)))
    if kind == "sgd":
        mom = draw(st.one_of(st.just(0.0), _unit(0.0, 0.99)))
        nesterov = mom > 0 and draw(st.booleans())
        opts.update(
            momentum=mom,
            nesterov=nesterov,
            weight_decay=wd,
            dampening=0.0 if nesterov else draw(st.one_of(st.just(0.0), _unit(0, 0.9))),
        )
    elif kind == "adagrad":
        opts.update(
            lr_decay=draw(st.one_of(st.just(0.0), _unit(0, 0.1))),
            weight_decay=wd,
            initial_accumulator_value=draw(st.one_of(st.just(0.0), _unit(0, 1))),
            eps=draw(st.sampled_from([1e-10, 1e-8, 1e-3])),
        )
    elif kind == "rmsprop":
        opts.update(
            alpha=draw(_unit(0.0, 0.999)),
            eps=draw(st.sampled_from([1e-8, 1e-6, 1e-3])),
            weight_decay=wd,
            momentum=draw(st.one_of(st.just(0.0), _unit(0, 0.99))),
            centered=draw(st.booleans()),
        )
    elif kind == "adadelta":
        opts.update(
            rho=draw(_unit(0.0, 1.0)),
            eps=draw(st.sampled_from([1e-6, 1e-3, 0.0])),
            weight_decay=wd,
        )
    elif kind == "rprop":
        smin = draw(st.one_of(st.just(0.0), _unit(0.0, 0.01)))
        opts.update(
            etas=(draw(_unit(0.01, 0.99)), draw(_unit(1.01, 3.0))),
            step_sizes=(smin, draw(st.one_of(st.just(smin), _unit(smin, 1.0)))),
        )
    elif kind == "asgd":
        opts.update(
            lambd=draw(st.one_of(st.just(0.0), _unit(0.0, 0.1))),
            alpha=draw(_unit(0.0, 2.0)),
            t0=draw(st.sampled_from([-1.0, 0.0, 1.0, 2.5, 1e6])),
            weight_decay=wd,
        )
    elif kind in ("adam", "adamw", "adamax", "nadam", "radam"):
        opts.update(
            betas=(draw(_unit(0.0, 0.999)), draw(_unit(0.0, 0.99999))),
            eps=draw(st.sampled_from([1e-8, 1e-6, 1e-3, 0.0])),
            weight_decay=wd,
        )
        if kind in ("adam", "adamw"):
            opts["amsgrad"] = draw(st.booleans())
        if kind in ("nadam", "radam"):
            opts["decoupled_weight_decay"] = draw(st.booleans())
        if kind == "nadam":
            opts["momentum_decay"] = draw(st.one_of(st.just(0.0), _unit(0.0, 0.1)))
    else:
        raise AssertionError(f"optimizer_configs draws no options for {kind}: add them")
    opts["maximize"] = draw(st.booleans())
    robust = {}
    if draw(st.booleans()):
        robust["max_grad_norm"] = draw(_unit(0.01, 10.0))
        robust["norm_type"] = draw(st.sampled_from([2.0, 1.0, math.inf]))
    if draw(st.booleans()):
        robust["clip_value"] = draw(_unit(0.0, 2.0))
    robust["nonfinite"] = draw(st.sampled_from(["raise", "skip", "ignore"]))
    return kind, opts, robust


# The optimizer class of each contract name (fastopt's classes carry their Spec).
CLASSES = {
    c._spec.name: c
    for c in vars(fastopt).values()
    if isinstance(c, type) and issubclass(c, fastopt.Optimizer) and c is not fastopt.Optimizer
}


@settings(max_examples=250, **SETTINGS)
@given(
    cfg=optimizer_configs(),
    shapes=st.lists(st.sampled_from(SHAPES), min_size=1, max_size=3),
    dtype=st.sampled_from([np.float32, np.float64]),
    steps=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    nan_step=st.one_of(st.none(), st.integers(0, 3)),
)
def test_backends_agree_with_numpy_reference(cfg, shapes, dtype, steps, seed, nan_step):
    kind, opts, robust = cfg
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [
        [(rng.standard_normal(s) * rng.choice([0.01, 1, 30])).astype(dtype) for s in shapes]
        for _ in range(steps)
    ]
    if nan_step is not None and nan_step < steps and init[0].size:
        grads[nan_step][0].flat[rng.integers(init[0].size)] = rng.choice([np.nan, np.inf])

    def run(backend):
        params = [p.copy() for p in init]
        opt = CLASSES[kind](params, backend=backend, **opts, **robust)
        outcome = []
        for g in grads:
            try:
                opt.step([x.copy() for x in g])
                outcome.append("skipped" if opt.last_step_skipped else "ok")
            except ValueError as exc:
                outcome.append(type(exc).__name__)
        state = [a for st_ in opt.state.values() for a in st_.values()]
        return params, state, outcome, opt.step_count, opt.skipped_steps

    with np.errstate(all="ignore"):
        ref = run("numpy")
        for backend in OTHERS:
            got = run(backend)
            assert got[2:] == ref[2:], backend
            for a, b in zip(got[0] + got[1], ref[0] + ref[1]):
                assert_same_bits(a, b, f"{backend} vs numpy, {kind} {opts}")
    CASES["agree"] += 1


# ------------------------------------------------------------------------- invalid inputs
INVALID = {
    # name: expected exception type
    "grad_dtype": TypeError,
    "grad_int": TypeError,
    "grad_shape": ValueError,
    "param_noncontiguous": ValueError,
    "param_readonly": ValueError,
    "param_int": TypeError,
    "lr_nan": ValueError,
    "lr_negative": ValueError,
    "lr_string": TypeError,
    "eps_negative": ValueError,
    "beta_out_of_range": ValueError,
    "grad_aliases_param": ValueError,
    "grads_wrong_length": ValueError,
    "state_dtype": TypeError,
    "state_shape": ValueError,
    "state_aliases_param": ValueError,
    "grad_not_array": TypeError,
    "step_zero": ValueError,
}
OPT_INVALID = {
    "nan_grad": ValueError,
    "grads_wrong_length": ValueError,
    "grad_dtype": TypeError,
    "grad_shape": ValueError,
    "grad_aliases_param": ValueError,
    "grad_not_array": TypeError,
    "scheduled_lr_nan": ValueError,
    "unknown_grad_name": ValueError,
}


# The options of each kind's functional call (fastopt.kernels.<kind>) from hp: lr, a
# non-negative real for hp["eps"] (eps, or a decay where the kind has none), betas where the
# kind has them, and flags that make it use every state array.
def _adam_family(hp, **flags):
    return dict(betas=hp["betas"], eps=hp["eps"], **flags)


FUNCTIONAL_OPTIONS = {
    "sgd": lambda hp: dict(momentum=0.9, weight_decay=hp["eps"]),
    "adagrad": lambda hp: dict(eps=hp["eps"]),
    "rmsprop": lambda hp: dict(eps=hp["eps"], momentum=0.5, centered=True),
    "adam": lambda hp: _adam_family(hp, amsgrad=True),
    "adamw": lambda hp: _adam_family(hp, amsgrad=True),
    "adamax": _adam_family,
    "nadam": _adam_family,
    "radam": _adam_family,
    "adadelta": lambda hp: dict(eps=hp["eps"]),
    "rprop": lambda hp: dict(step_sizes=(hp["eps"], 50.0)),
    "asgd": lambda hp: dict(weight_decay=hp["eps"]),
}


def _functional(kind, params, grads, states, hp, backend, step):
    """fastopt.kernels.<kind> with every state array of the contract (``states``, in order)."""
    if kind not in FUNCTIONAL_OPTIONS:
        raise AssertionError(f"FUNCTIONAL_OPTIONS has no entry for {kind}: add one")
    getattr(fastopt.kernels, kind)(
        params,
        grads,
        *states,
        step=step,
        lr=hp["lr"],
        backend=backend,
        **FUNCTIONAL_OPTIONS[kind](hp),
    )


def _snapshot(*groups):
    return [(id(a), a.tobytes()) for g in groups for a in g if isinstance(a, np.ndarray)]


@settings(max_examples=300, **SETTINGS)
@given(
    case=st.sampled_from(sorted(INVALID)),
    kind=st.sampled_from(KINDS),
    backend=st.sampled_from(BACKENDS),
    shapes=st.lists(st.sampled_from([s for s in SHAPES if s != (0,)]), min_size=1, max_size=3),
    dtype=st.sampled_from([np.float32, np.float64]),
    which=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_invalid_functional_inputs_raise_and_change_nothing(
    case, kind, backend, shapes, dtype, which, seed
):
    rng = np.random.default_rng(seed)
    which = which % len(shapes)
    if case == "param_noncontiguous" and math.prod(shapes[which]) < 2:
        shapes = shapes[:which] + [(5,)] + shapes[which + 1 :]  # size-1 views are contiguous
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    states = [
        [np.abs(rng.standard_normal(s)).astype(dtype) for s in shapes] for _ in C.SPECS[kind].state
    ]
    hp = {"lr": 1e-2, "eps": 1e-8, "betas": (0.9, 0.999)}
    step = 3
    other = np.float64 if dtype == np.float32 else np.float32
    keep = []  # arrays that must stay alive and unchanged
    if case == "grad_dtype":
        grads[which] = grads[which].astype(other)
    elif case == "grad_int":
        grads[which] = (grads[which] * 10).astype(np.int32)
    elif case == "grad_shape":
        grads[which] = rng.standard_normal(params[which].size + 1).astype(dtype)
    elif case == "param_noncontiguous":
        big = rng.standard_normal((2 * params[which].size,)).astype(dtype)
        keep.append(big)
        params[which] = big[::2].reshape(params[which].shape)
    elif case == "param_readonly":
        params[which].setflags(write=False)
    elif case == "param_int":
        params[which] = params[which].astype(np.int64)
    elif case == "lr_nan":
        hp["lr"] = float("nan")
    elif case == "lr_negative":
        hp["lr"] = -float(rng.uniform(1e-6, 1))
    elif case == "lr_string":
        hp["lr"] = "0.01"
    elif case == "eps_negative":
        hp["eps"] = -float(rng.uniform(1e-9, 1))
    elif case == "beta_out_of_range":
        if "betas" not in C.SPECS[kind].option:
            hp["lr"] = float("inf")  # the kinds without betas get another bad scalar
        else:
            bad = float(rng.choice([1.0, 1.5, -0.1, np.nan]))
            hp["betas"] = (bad, 0.999) if rng.integers(2) else (0.9, bad)
    elif case == "grad_aliases_param":
        grads[which] = (
            params[which] if rng.integers(2) else params[which].reshape(params[which].shape)
        )
    elif case == "grads_wrong_length":
        grads = grads[:-1] if len(grads) > 1 else grads + [grads[0].copy()]
    elif case == "state_dtype":
        states[0][which] = states[0][which].astype(other)
    elif case == "state_shape":
        states[-1][which] = np.zeros(params[which].size + 2, dtype)
    elif case == "state_aliases_param":
        states[0][which] = params[which]
    elif case == "grad_not_array":
        grads[which] = grads[which].tolist()
    elif case == "step_zero":
        step = 0
    before = _snapshot(params, grads, keep, *states)
    with pytest.raises(INVALID[case]), np.errstate(all="ignore"):
        _functional(kind, params, grads, states, hp, backend, step)
    assert _snapshot(params, grads, keep, *states) == before
    CASES["invalid-functional"] += 1


@settings(max_examples=250, **SETTINGS)
@given(
    case=st.sampled_from(sorted(OPT_INVALID)),
    kind=st.sampled_from(KINDS),
    backend=st.sampled_from(BACKENDS),
    shapes=st.lists(st.sampled_from([s for s in SHAPES if s != (0,)]), min_size=1, max_size=3),
    dtype=st.sampled_from([np.float32, np.float64]),
    which=st.integers(0, 2),
    warm=st.integers(0, 2),
    seed=st.integers(0, 2**16),
    nonfinite=st.sampled_from(["raise", "skip"]),
    clip=st.booleans(),
    groups=st.booleans(),
)
def test_invalid_optimizer_steps_raise_and_change_nothing(
    case, kind, backend, shapes, dtype, which, warm, seed, nonfinite, clip, groups
):
    rng = np.random.default_rng(seed)
    which = which % len(shapes)
    names = [f"p{i}" for i in range(len(shapes))]
    params = {n: rng.standard_normal(s).astype(dtype) for n, s in zip(names, shapes)}
    opts = {"max_grad_norm": 1.0, "clip_value": 0.5} if clip else {}
    if case == "scheduled_lr_nan":  # finite for the first warm + 1 updates, then NaN
        warm += 1

        def lr(k):
            return float("nan") if k >= warm else 1e-2
    else:
        lr = 1e-2
    if groups and len(names) > 1:
        spec = [{"params": {n: params[n]}} for n in names]
    else:
        spec = params
    opt = CLASSES[kind](spec, lr=lr, backend=backend, nonfinite=nonfinite, **opts)

    def fresh():
        return {n: rng.standard_normal(p.shape).astype(dtype) for n, p in params.items()}

    for _ in range(warm):
        opt.step(fresh())
    grads = fresh()
    name = names[which]
    expected = OPT_INVALID[case]
    if case == "nan_grad":
        grads[name].flat[rng.integers(grads[name].size)] = rng.choice([np.nan, np.inf, -np.inf])
        if nonfinite == "skip":
            expected = None
    elif case == "grads_wrong_length":
        grads = list(grads.values())
        grads = grads[:-1] if len(grads) > 1 else grads * 2
        expected = TypeError  # params are named: a list is refused whatever its length (#9)
    elif case == "grad_dtype":
        grads[name] = grads[name].astype(np.float64 if dtype == np.float32 else np.float32)
    elif case == "grad_shape":
        grads[name] = np.zeros(params[name].size + 1, dtype)
    elif case == "grad_aliases_param":
        grads[name] = params[name]
    elif case == "grad_not_array":  # None freezes the parameter: tests/test_frozen.py
        grads[name] = grads[name].tolist()
    elif case == "unknown_grad_name":
        grads["nope"] = grads.pop(name)
    arrays = (
        list(params.values())
        + [a for s in opt.state.values() for a in s.values()]
        + [
            g
            for g in (grads.values() if isinstance(grads, dict) else grads)
            if isinstance(g, np.ndarray)
        ]
    )
    before = [a.tobytes() for a in arrays]
    counters = (opt.step_count, [dict(g) for g in opt._group_state])
    if expected is None:
        opt.step(grads)
        assert opt.last_step_skipped and opt.skipped_steps == 1
    else:
        with pytest.raises(expected):
            opt.step(grads)
    assert [a.tobytes() for a in arrays] == before
    assert (opt.step_count, [dict(g) for g in opt._group_state]) == counters
    CASES["invalid-optimizer"] += 1
