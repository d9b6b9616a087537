"""Issue 9, R1/R2/R3 and opt.state: loads are checked whole before anything is copied and
take the snapshot's options (as torch does); options changed after construction are checked
again and their state starts as torch's; opt.state cannot be assigned to silently.
Every test here failed before its fix."""

import copy
import json
import math

import numpy as np
import pytest

import fastopt
from fastopt.checkpoint import CheckpointError

BACKENDS = fastopt.available_backends()


def _grads(n, steps, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) for _ in range(steps)]


def _snapshot(opt):
    """Everything a load could change: arrays (bytes), options, counters."""
    return (
        opt.step_count,
        opt.skipped_steps,
        list(opt.last_lr),
        [
            copy.deepcopy({k: v for k, v in g.items() if k not in ("params",)})
            for g in opt.param_groups
        ],
        [dict(s) for s in opt._group_state],
        {nm: {k: a.tobytes() for k, a in st.items()} for nm, st in opt.state.items()},
        [p.tobytes() for g in opt.param_groups for p in g["params"]],
    )


def _adam(backend="numpy", **kw):
    w = np.linspace(-1, 1, 5)
    opt = fastopt.Adam([w], backend=backend, **{"lr": 0.01, **kw})
    for g in _grads(5, 3):
        opt.step([g])
    return opt


# ----------------------------------------------------------------------------- R1
@pytest.mark.parametrize(
    "change, exc",
    [
        (lambda sd: sd["param_groups"][0].__setitem__("betas", (0.9,)), (TypeError, ValueError)),
        (lambda sd: sd["param_groups"][0].__setitem__("step", "x"), TypeError),
        (lambda sd: sd["param_groups"][0].__setitem__("step", 2.7), TypeError),
        (lambda sd: sd["param_groups"][0].__setitem__("step", True), TypeError),
        (lambda sd: sd["param_groups"][0].__setitem__("step", -1), ValueError),
        (lambda sd: sd.__setitem__("step_count", 3.0), TypeError),
        (lambda sd: sd.__setitem__("step_count", "3"), TypeError),
        (lambda sd: sd.__setitem__("skipped_steps", -2), ValueError),
        (lambda sd: sd["state"][0].__setitem__("bogus", np.zeros(5)), ValueError),
        (lambda sd: sd["state"][0].__setitem__("exp_avg", [0.0] * 5), ValueError),
        (lambda sd: sd.__setitem__("last_lr", ["a"]), TypeError),
    ],
    ids=[
        "betas-arity",
        "step-str",
        "step-float",
        "step-bool",
        "step-negative",
        "step_count-float",
        "step_count-str",
        "skipped-negative",
        "unknown-state",
        "state-not-array",
        "last_lr-str",
    ],
)
def test_partial_load_refused_with_nothing_changed(change, exc):
    src = _adam()
    sd = src.state_dict()
    for key in ("exp_avg", "exp_avg_sq"):
        sd["state"][0][key] = sd["state"][0][key] + 1.0  # differs from dst: a copy would show
    sd["param_groups"][0]["step"] = 7
    change(sd)
    dst = _adam(lr=0.02)
    before = _snapshot(dst)
    with pytest.raises(exc):
        dst.load_state_dict(sd)
    assert _snapshot(dst) == before


@pytest.mark.parametrize(
    "value", [math.nan, -1.0, "abc", None, [1, 2]], ids=["nan", "negative", "str", "none", "list"]
)
@pytest.mark.parametrize("option", ["lr", "eps", "weight_decay", "beta1", "beta2", "amsgrad"])
def test_crafted_option_values_refused(option, value):
    if option == "amsgrad" and value == -1.0:
        value = 2
    sd = _adam().state_dict()
    if option.startswith("beta"):
        b = list(sd["param_groups"][0]["betas"])
        b[int(option[-1]) - 1] = 1.5 if value == -1.0 else value
        sd["param_groups"][0]["betas"] = tuple(b)
    else:
        sd["param_groups"][0][option] = value
    dst = _adam(lr=0.02)
    before = _snapshot(dst)
    with pytest.raises((TypeError, ValueError)):
        dst.load_state_dict(sd)
    assert _snapshot(dst) == before


def _rewrite_meta(path, edit):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__fastopt__"][()]))
    edit(meta)
    arrays["__fastopt__"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["param_groups"][0].__setitem__("betas", [0.9]),
        lambda m: m["param_groups"][0].__setitem__("step", "x"),
        lambda m: m["param_groups"][0].__setitem__("step", 2.7),
        lambda m: m["param_groups"][0].__setitem__("lr", "abc"),
        lambda m: m["param_groups"][0].__setitem__("eps", None),
        lambda m: m["param_groups"][0].__setitem__("betas", [1.5, 0.9]),
        lambda m: m["param_groups"][0].__setitem__("amsgrad", "yes"),
        lambda m: m["param_groups"][0].pop("step"),
    ],
    ids=[
        "betas-arity",
        "step-str",
        "step-float",
        "lr-str",
        "eps-null",
        "beta1-1.5",
        "amsgrad-str",
        "no-step",
    ],
)
def test_crafted_checkpoint_metadata_gives_checkpoint_error(tmp_path, edit):
    path = tmp_path / "c.npz"
    fastopt.save(path, _adam())
    _rewrite_meta(path, edit)
    dst = _adam(lr=0.02)
    before = _snapshot(dst)
    with pytest.raises(CheckpointError):
        fastopt.load(path, dst)
    assert _snapshot(dst) == before


# ----------------------------------------------------------------------------- R2
R2_CASES = [
    (fastopt.SGD, dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.0)),
    (fastopt.SGD, dict(lr=0.1, momentum=0.0), dict(lr=0.1, momentum=0.9)),
    (fastopt.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), dict(lr=0.1)),
    (fastopt.Adam, dict(lr=0.01, amsgrad=True), dict(lr=0.01, amsgrad=False)),
    (fastopt.Adam, dict(lr=0.01, amsgrad=False), dict(lr=0.01, amsgrad=True)),
    (fastopt.AdamW, dict(lr=0.01, amsgrad=True, betas=(0.8, 0.9)), dict(lr=0.02)),
    (fastopt.RMSprop, dict(lr=0.01, centered=True, momentum=0.5), dict(lr=0.01)),
    (fastopt.RMSprop, dict(lr=0.01), dict(lr=0.01, centered=True, momentum=0.5)),
    (fastopt.Adagrad, dict(lr=0.1, lr_decay=0.01), dict(lr=0.1, initial_accumulator_value=0.5)),
]


@pytest.mark.parametrize("via", ["state_dict", "checkpoint"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "cls, saved_kw, other_kw",
    R2_CASES,
    ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(R2_CASES)],
)
def test_load_takes_the_checkpoints_options(tmp_path, cls, saved_kw, other_kw, backend, via):
    gs = _grads(6, 8, seed=3)
    ref = cls([np.linspace(-1, 1, 6)], backend=backend, **saved_kw)
    for g in gs[:4]:
        ref.step([g])
    dst = cls([np.zeros(6)], backend=backend, **other_kw)
    dst.step([gs[0]])
    if via == "state_dict":
        dst.load_state_dict(ref.state_dict())
        dst.param_groups[0]["params"][0][...] = ref.param_groups[0]["params"][0]
    else:
        fastopt.save(tmp_path / "c.npz", ref)
        fastopt.load(tmp_path / "c.npz", dst)
    for key, value in saved_kw.items():
        assert dst.param_groups[0][key] == (tuple(value) if isinstance(value, list) else value)
    for g in gs[4:]:
        ref.step([g])
        dst.step([g])
    assert dst.param_groups[0]["params"][0].tobytes() == ref.param_groups[0]["params"][0].tobytes()
    assert sorted(dst.state[0]) == sorted(ref.state[0])
    for key in ref.state[0]:
        assert dst.state[0][key].tobytes() == ref.state[0][key].tobytes()


# ----------------------------------------------------------------------------- R3
def _two_groups(cls, backend, **kw):
    return cls(
        [{"params": [np.linspace(-1, 1, 4)]}, {"params": [np.linspace(1, 2, 3)]}],
        backend=backend,
        **kw,
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "cls, key, value",
    [
        (fastopt.SGD, "momentum", 0.9),
        (fastopt.RMSprop, "momentum", 0.5),
        (fastopt.RMSprop, "centered", True),
        (fastopt.Adam, "amsgrad", True),
    ],
)
def test_option_switched_on_after_construction(cls, key, value, backend):
    opt = _two_groups(cls, backend, lr=0.01)
    g = [np.ones(4), np.full(3, 0.5)]
    opt.step(g)
    opt.param_groups[1][key] = value
    opt.step(g)
    opt.step(g)
    assert [s["step"] for s in opt._group_state] == [3, 3]
    assert opt.param_groups[1][key] == value


def test_sgd_momentum_switched_on_matches_torch():
    torch = pytest.importorskip("torch")
    w0 = [np.linspace(-1, 1, 4), np.linspace(1, 2, 3)]
    gs = [[np.sin(np.arange(4.0) + k), np.cos(np.arange(3.0) * k)] for k in range(6)]
    tp = [torch.tensor(w.copy(), requires_grad=True) for w in w0]
    topt = torch.optim.SGD([{"params": [tp[0]]}, {"params": [tp[1]]}], lr=0.1)
    opt = fastopt.SGD([{"params": [w0[0].copy()]}, {"params": [w0[1].copy()]}], lr=0.1)
    for k, g in enumerate(gs):
        if k == 2:
            topt.param_groups[1]["momentum"] = 0.9
            opt.param_groups[1]["momentum"] = 0.9
        if k == 4:
            topt.param_groups[0]["momentum"] = 0.5
            topt.param_groups[0]["dampening"] = 0.1
            opt.param_groups[0]["momentum"] = 0.5
            opt.param_groups[0]["dampening"] = 0.1
        for t, gi in zip(tp, g):
            t.grad = torch.tensor(gi)
        topt.step()
        opt.step(g)
        for t, p in zip(tp, [opt.param_groups[0]["params"][0], opt.param_groups[1]["params"][0]]):
            np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "cls, key, value",
    [
        (fastopt.Adam, "maximize", "yes"),
        (fastopt.Adam, "amsgrad", 1),
        (fastopt.Adam, "betas", (0.9,)),
        (fastopt.Adam, "betas", (0.9, 1.5)),
        (fastopt.SGD, "nesterov", True),  # with momentum 0: refused
        (fastopt.SGD, "momentum", -1.0),
        (fastopt.RMSprop, "centered", None),
        (fastopt.Adagrad, "eps", float("nan")),
    ],
)
def test_bad_option_after_construction_refused_before_any_group(cls, key, value, backend):
    opt = _two_groups(cls, backend, lr=0.01)
    g = [np.ones(4), np.full(3, 0.5)]
    opt.step(g)
    opt.param_groups[1][key] = value
    before = _snapshot(opt)
    with pytest.raises((TypeError, ValueError)):
        opt.step(g)
    assert _snapshot(opt) == before
    assert [s["step"] for s in opt._group_state] == [1, 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_betas_list_mutated_in_place_is_seen(backend):
    w, ref = np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)
    m, v = np.zeros(5), np.zeros(5)
    opt = fastopt.Adam([w], lr=0.01, backend=backend)
    betas = [0.9, 0.999]
    opt.param_groups[0]["betas"] = betas
    for t, g in enumerate(_grads(5, 4), start=1):
        if t == 3:
            betas[0] = 0.5  # in place: the cached plan must notice
        opt.step([g])
        fastopt.kernels.adam(ref, g, m, v, step=t, lr=0.01, betas=tuple(betas), backend="numpy")
        assert w.tobytes() == ref.tobytes()


# ----------------------------------------------------------------------------- opt.state
def test_state_is_a_live_read_only_view():
    opt = _adam()
    st = opt.state
    with pytest.raises(TypeError):
        st[0] = {"exp_avg": np.zeros(5)}
    with pytest.raises(TypeError):
        st[0]["exp_avg"] = np.zeros(5)
    with pytest.raises(TypeError):
        del st[0]
    assert st[0]["exp_avg"] is opt._buffers[0]["exp_avg"][0]  # the live array
    st[0]["exp_avg"][...] = 0.0  # in place: allowed, and seen by the optimizer
    assert not opt._buffers[0]["exp_avg"][0].any()
    assert list(st) == [0] and len(st) == 1 and 0 in st
    opt2 = fastopt.SGD([np.zeros(3)], lr=0.1)
    view = opt2.state
    opt2.param_groups[0]["momentum"] = 0.9
    opt2.step([np.ones(3)])
    assert "momentum_buffer" in view[0]  # live: created lazily, seen through the old view
