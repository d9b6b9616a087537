"""Checkpoints: exact resume, atomic saves, no pickles, mismatch reports."""

import glob
import json
import os

import numpy as np
import pytest

import fastopt
from fastopt import checkpoint
from fastopt.checkpoint import CheckpointError

BACKENDS = fastopt.available_backends()

# (name, class, kwargs): every optimizer, with every kind of state array.
OPTIMIZERS = [
    ("sgd", fastopt.SGD, dict(weight_decay=1e-3)),
    ("sgd-nesterov", fastopt.SGD, dict(momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("sgd-dampening", fastopt.SGD, dict(momentum=0.8, dampening=0.3)),
    (
        "adagrad",
        fastopt.Adagrad,
        dict(lr_decay=1e-3, weight_decay=1e-3, initial_accumulator_value=0.1),
    ),
    ("rmsprop", fastopt.RMSprop, dict(weight_decay=1e-3)),
    ("rmsprop-centered-mom", fastopt.RMSprop, dict(centered=True, momentum=0.9)),
    ("adam", fastopt.Adam, dict(weight_decay=1e-3)),
    ("adam-amsgrad", fastopt.Adam, dict(amsgrad=True, maximize=True)),
    ("adamw", fastopt.AdamW, dict(amsgrad=True)),
    ("adamax", fastopt.Adamax, dict(weight_decay=1e-3, maximize=True)),
    ("nadam", fastopt.NAdam, dict(weight_decay=1e-3, betas=(lambda k: 0.9 - 0.3 / (k + 1), 0.99))),
    ("nadam-decoupled", fastopt.NAdam, dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("radam", fastopt.RAdam, dict(weight_decay=1e-3)),
    ("radam-decoupled", fastopt.RAdam, dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("adadelta", fastopt.Adadelta, dict(rho=0.8, weight_decay=1e-3)),
    ("rprop", fastopt.Rprop, dict(etas=(0.4, 1.3), step_sizes=(1e-4, 0.5), maximize=True)),
    ("asgd", fastopt.ASGD, dict(lambd=0.01, alpha=0.6, t0=5, weight_decay=1e-3)),
]


def _schedules():
    from fastopt import schedules as S

    out = {"constant": lambda: 0.01}
    out["warmup-cosine"] = lambda: S.warmup_cosine(0.02, warmup_steps=10, decay_steps=100)
    out["step-decay"] = lambda: S.step_decay(0.01, step_size=30, gamma=0.5)
    out["cyclic"] = lambda: S.cyclic(0.001, 0.02, step_size_up=15)
    out["plateau"] = lambda: S.ReduceOnPlateau(0.01, factor=0.5, patience=1)
    return out


SCHEDULES = _schedules()


def _make(cls, kwargs, sched, backend, init_seed):
    rng = np.random.default_rng(init_seed)
    w = rng.standard_normal((7, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    v = rng.standard_normal(11)
    lr = sched()
    groups = [{"params": {"w": w, "b/bias": b}}, {"params": {"v": v}, "lr": 0.005}]
    opt = cls(groups, lr=lr, backend=backend, **kwargs)
    return opt, {"w": w, "b/bias": b, "v": v}, lr


def _grads(params, k):
    return {n: (np.cos(p * 1.3 + 0.1 * k) + 0.01 * k).astype(p.dtype) for n, p in params.items()}


def _train(opt, params, lr, k0, k1):
    for k in range(k0, k1):
        opt.step(_grads(params, k))
        if hasattr(lr, "observe") and k % 5 == 4:
            lr.observe(1.0)  # a flat metric: the plateau schedule reduces every few calls


def _snapshot(opt, params):
    out = {n: p.tobytes() for n, p in params.items()}
    for n, st in opt.state.items():
        for key, a in st.items():
            out[f"{n}/{key}"] = a.tobytes()
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sched", sorted(SCHEDULES))
@pytest.mark.parametrize("name,cls,kwargs", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_resume_is_bit_identical(tmp_path, name, cls, kwargs, sched, backend):
    make = SCHEDULES[sched]
    ref, ref_params, ref_lr = _make(cls, kwargs, make, backend, 0)
    _train(ref, ref_params, ref_lr, 0, 100)

    first, params1, lr1 = _make(cls, kwargs, make, backend, 0)
    _train(first, params1, lr1, 0, 50)
    path = tmp_path / "run.npz"
    fastopt.save(path, first)
    del first, params1

    # A fresh process would build everything anew, with other initial values.
    second, params2, lr2 = _make(cls, kwargs, make, backend, 123)
    fastopt.load(path, second)
    assert second.step_count == 50
    _train(second, params2, lr2, 50, 100)

    assert second.step_count == ref.step_count == 100
    assert _snapshot(second, params2) == _snapshot(ref, ref_params)
    if hasattr(ref_lr, "state_dict"):
        assert lr2.state_dict() == ref_lr.state_dict()
        assert ref_lr.value < 0.01  # the plateau did reduce, on both sides of the save


def test_checkpoint_loads_without_pickle_and_is_plain(tmp_path):
    opt, params, lr = _make(fastopt.Adam, dict(amsgrad=True), lambda: 0.01, "numpy", 0)
    _train(opt, params, lr, 0, 3)
    path = tmp_path / "c.npz"
    fastopt.save(path, opt)
    with np.load(path, allow_pickle=False) as z:
        for k in z.files:
            a = z[k]
            assert a.dtype != object
            assert a.dtype.kind in "fU"
        meta = json.loads(str(z["__fastopt__"][()]))
    assert meta["kind"] == "Adam" and meta["step_count"] == 3
    assert [g["names"] for g in meta["param_groups"]] == [["w", "b/bias"], ["v"]]
    np.testing.assert_array_equal(np.load(path)["param/0"], params["w"])
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]


def test_int_names_and_schedule_without_state(tmp_path):
    ps = [np.arange(4, dtype=np.float32), np.ones((2, 2))]
    opt = fastopt.SGD(ps, lr=lambda k: 0.1 / (k + 1), momentum=0.5)
    for k in range(3):
        opt.step([np.ones(4, np.float32), np.full((2, 2), float(k))])
    fastopt.save(tmp_path / "c.npz", opt)
    qs = [np.zeros(4, np.float32), np.zeros((2, 2))]
    opt2 = fastopt.SGD(qs, lr=lambda k: 0.1 / (k + 1), momentum=0.5)
    fastopt.load(tmp_path / "c.npz", opt2)
    for a, b in zip(ps, qs):
        np.testing.assert_array_equal(a, b)
    g = [np.full(4, 0.5, np.float32), np.full((2, 2), -1.0)]
    opt.step(g)
    opt2.step(g)
    for a, b in zip(ps, qs):
        assert a.tobytes() == b.tobytes()


def _trained(tmp_path, steps):
    opt, params, lr = _make(fastopt.Adam, {}, lambda: 0.01, "numpy", 0)
    _train(opt, params, lr, 0, steps)
    return opt, params


class _Boom(RuntimeError):
    pass


def test_fault_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    opt, params = _trained(tmp_path, 5)
    fastopt.save(path, opt)
    good = path.read_bytes()
    _train(opt, params, 0.01, 5, 10)

    real = checkpoint._write_npz

    def dying_writer(f, arrays):
        # Write part of the archive, then die as a full disk or a kill would.
        half = dict(list(arrays.items())[: len(arrays) // 2])
        real(f, half)
        f.flush()
        raise _Boom("injected fault in the middle of a save")

    monkeypatch.setattr(checkpoint, "_write_npz", dying_writer)
    with pytest.raises(_Boom):
        fastopt.save(path, opt)
    monkeypatch.undo()

    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # the temporary file was removed
    fresh, _fresh_params, _ = _make(fastopt.Adam, {}, lambda: 0.01, "numpy", 9)
    fastopt.load(path, fresh)
    assert fresh.step_count == 5


def test_fault_at_rename_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    opt, params = _trained(tmp_path, 2)
    fastopt.save(path, opt)
    good = path.read_bytes()
    _train(opt, params, 0.01, 2, 4)

    def no_replace(src, dst):
        raise OSError("injected: rename failed")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(OSError, match="injected"):
        fastopt.save(path, opt)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_leftover_temp_file_from_hard_kill_is_harmless(tmp_path):
    path = tmp_path / "ckpt.npz"
    opt, _params = _trained(tmp_path, 2)
    fastopt.save(path, opt)
    (tmp_path / "ckpt.npz.abc.tmp").write_bytes(path.read_bytes()[:100])  # a killed save
    fastopt.save(path, opt)
    fresh, _, _ = _make(fastopt.Adam, {}, lambda: 0.01, "numpy", 9)
    fastopt.load(path, fresh)
    assert fresh.step_count == 2


def test_damaged_or_foreign_files_raise(tmp_path):
    opt, params = _trained(tmp_path, 2)
    path = tmp_path / "ckpt.npz"
    fastopt.save(path, opt)
    before = _snapshot(opt, params)
    (tmp_path / "trunc.npz").write_bytes(path.read_bytes()[:-200])
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    np.savez(tmp_path / "pickled.npz", __fastopt__=np.array([{"x": 1}], dtype=object))
    for bad in ("trunc.npz", "junk.npz", "other.npz", "pickled.npz"):
        with pytest.raises(CheckpointError):
            fastopt.load(tmp_path / bad, opt)
        assert _snapshot(opt, params) == before
    with pytest.raises(FileNotFoundError):
        fastopt.load(tmp_path / "missing.npz", opt)


def _mismatch_cases():
    f32, f64 = np.float32, np.float64

    def layout(w_shape=(7, 3), b_dtype=f32, names=("w", "b/bias")):
        return [
            {"params": {names[0]: np.zeros(w_shape, f32), names[1]: np.zeros(5, b_dtype)}},
            {"params": {"v": np.zeros(11, f64)}},
        ]

    return {
        "kind": (lambda: fastopt.SGD(layout(), momentum=0.9), "Adam optimizer, this is a SGD"),
        "kind-adamw": (lambda: fastopt.AdamW(layout()), "this is a AdamW"),
        "groups": (lambda: fastopt.Adam(layout()[:1]), "2 parameter groups, the optimizer has 1"),
        "names": (lambda: fastopt.Adam(layout(names=("w", "bias"))), "parameters"),
        "shape": (lambda: fastopt.Adam(layout(w_shape=(3, 7))), "float32(7, 3) in the checkpoint"),
        "dtype": (lambda: fastopt.Adam(layout(b_dtype=f64)), "float64(5,) in the optimizer"),
    }
    # Other options (Adam(amsgrad=True) loading an amsgrad=False checkpoint) are no mismatch:
    # the optimizer takes the checkpoint's options, as torch does (test_load_hardening.py).


@pytest.mark.parametrize("case", sorted(_mismatch_cases()))
def test_mismatch_says_what_differs_and_changes_nothing(tmp_path, case):
    opt, _params = _trained(tmp_path, 3)
    path = tmp_path / "ckpt.npz"
    fastopt.save(path, opt)
    build, message = _mismatch_cases()[case]
    other = build()
    for g in other.param_groups:
        for p in g["params"]:
            p[...] = 7.0
    other_params = {n: p for g in other.param_groups for n, p in zip(g["names"], g["params"])}
    before = _snapshot(other, other_params)
    with pytest.raises(CheckpointError, match="does not match") as info:
        fastopt.load(path, other)
    assert message in str(info.value)
    assert _snapshot(other, other_params) == before
    assert other.step_count == 0


def test_skipped_steps_and_counters_are_saved(tmp_path):
    w = np.ones(3)
    opt = fastopt.Adam([w], nonfinite="skip")
    opt.step([np.ones(3)])
    opt.step([np.array([1.0, np.nan, 0.0])])
    opt.step([np.ones(3)])
    assert opt.skipped_steps == 1 and opt.step_count == 2
    fastopt.save(tmp_path / "c.npz", opt)
    opt2 = fastopt.Adam([np.zeros(3)], nonfinite="skip")
    fastopt.load(tmp_path / "c.npz", opt2)
    assert opt2.skipped_steps == 1 and opt2.step_count == 2
    assert opt2.param_groups[0]["params"][0].tobytes() == w.tobytes()


def test_save_rejects_non_optimizer(tmp_path):
    with pytest.raises(TypeError):
        fastopt.save(tmp_path / "x.npz", {"not": "an optimizer"})
    with pytest.raises(TypeError):
        fastopt.load(tmp_path / "x.npz", None)
    assert not glob.glob(str(tmp_path / "*"))
