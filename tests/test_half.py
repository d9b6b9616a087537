"""Half-precision parameters: float16 and bfloat16 (``ml_dtypes.bfloat16``).

The promise: parameters and gradients in half precision, state arrays in float32, the
arithmetic in float32, and one rounding (to nearest even) per parameter write.  So a half
run equals a float32 run of the NumPy reference whose parameter is rounded to the half
type after every step (and widened back, exactly, for the next one) -- the reference here
never runs a half-precision code path.  Every backend, every option combination of every
optimizer, sizes 1, primes and lengths that are not a multiple of any SIMD width; the
native kernels on every ISA and with the thread pool splitting small arrays.
"""

import contextlib
import subprocess
import sys

import numpy as np
import pytest

import fastopt
from _tolerance import assert_same_bits
from fastopt import _contract as C
from fastopt.backends import numpy as ref_backend
from fastopt.checkpoint import CheckpointError
from optcases import all_cases, case_id

try:
    import ml_dtypes

    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # the "test" extra installs it; without it the bfloat16 cases fail
    BF16 = None

F16 = np.dtype(np.float16)
BACKENDS = fastopt.available_backends()
CASES = all_cases()
SHAPES = [(1,), (7,), (31,), (4099,), (13, 17)]
STEPS = 25


@pytest.fixture(params=["f16", "bf16"])
def half(request):
    if request.param == "f16":
        return F16
    assert BF16 is not None, "ml_dtypes is not installed (pip install 'fastopt[test]')"
    return BF16


def bits(a):
    return np.ascontiguousarray(a).view(np.uint16)


def same_half(got, want, what=""):
    """Same dtype, shape and bits (NaN of any payload equal to NaN)."""
    assert got.dtype == want.dtype, f"{what}: {got.dtype} != {want.dtype}"
    assert got.shape == want.shape
    g32, w32 = got.astype(np.float32), want.astype(np.float32)
    differ = (bits(got) != bits(want)) & ~(np.isnan(g32) & np.isnan(w32))
    assert not differ.any(), (
        f"{what}: {int(differ.sum())} of {got.size} differ; first at "
        f"{int(np.argmax(differ.ravel()))}: {got.ravel()[np.argmax(differ.ravel())]!r} vs "
        f"{want.ravel()[np.argmax(differ.ravel())]!r}"
    )


def grads_for(params, rng, dtype):
    # The gradient depends on the parameters, so that any difference feeds back.
    return [
        (0.5 * p.astype(np.float32) + rng.standard_normal(p.shape)).astype(dtype) for p in params
    ]


def run_half(cls, kw, backend, half, steps=STEPS, seed=0, shapes=SHAPES, **robust):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(half) for s in shapes]
    opt = cls(params, backend=backend, **kw, **robust)
    for _ in range(steps):
        opt.step(grads_for(params, rng, half))
    return params, opt


def run_reference(cls, kw, half, steps=STEPS, seed=0, shapes=SHAPES):
    """The spec: the float32 NumPy reference, its parameter rounded to ``half`` after each
    step, fed the same half gradients (widened exactly)."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(half).astype(np.float32) for s in shapes]
    opt = cls(params, backend="numpy", **kw)
    for _ in range(steps):
        g = grads_for([p.astype(half) for p in params], rng, half)
        opt.step([x.astype(np.float32) for x in g])
        for p in params:
            p[...] = p.astype(half).astype(np.float32)
    return [p.astype(half) for p in params], opt


# The matrix optimizers (fastopt._matrix), on matrices (Muon takes nothing else).
MATRIX_SHAPES = [(1, 1), (7, 13), (31, 5), (17,)]
MATRIX = [
    (fastopt.Adafactor, dict(lr=0.01), MATRIX_SHAPES),
    (fastopt.Adafactor, dict(lr=0.01, weight_decay=0.05, maximize=True), MATRIX_SHAPES),
    (fastopt.Muon, dict(lr=0.02), MATRIX_SHAPES[:3]),
    (fastopt.Muon, dict(lr=0.02, nesterov=False, weight_decay=0.1), MATRIX_SHAPES[:3]),
]
ALL = [(cls, kw, SHAPES) for cls, kw in CASES] + MATRIX


@pytest.mark.parametrize("backend_", BACKENDS)
@pytest.mark.parametrize("case", ALL, ids=[case_id(c[:2]) for c in ALL])
def test_every_optimizer_equals_float32_reference_rounded_once_per_step(case, backend_, half):
    cls, kw, shapes = case
    want, want_opt = run_reference(cls, kw, half, shapes=shapes)
    got, got_opt = run_half(cls, kw, backend_, half, shapes=shapes)
    for i, (g, w) in enumerate(zip(got, want)):
        same_half(g, w, f"param {i}")
    for name, st in want_opt.state.items():
        assert set(got_opt.state[name]) == set(st)
        for key, w in st.items():
            assert got_opt.state[name][key].dtype == np.float32
            assert_same_bits(got_opt.state[name][key], w, f"state {name} {key}")


def test_half_trajectories_move(half):
    """Guard against a vacuous agreement: the half parameters really change, every step
    count reached (a rounding that lost every update would still be 'equal')."""
    for cls, kw, shapes in ALL:
        rng = np.random.default_rng(0)
        start = [rng.standard_normal(s).astype(half) for s in shapes]
        got, _ = run_half(cls, kw, "numpy", half, steps=3, shapes=shapes)
        for s, g in zip(start, got):
            assert not np.array_equal(bits(s), bits(g)), case_id((cls, kw))


# ------------------------------------------------------------------ conversions
def _sgd_scalars(lr, maximize=False):
    return C.SGD.scalars(
        dict(
            lr=lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=maximize
        ),
        1,
    )


@pytest.mark.parametrize("backend_", BACKENDS)
def test_every_bit_pattern_survives_a_zero_step(backend_, half):
    """load then store is the identity on all 65536 patterns (NaN stays NaN)."""
    be = fastopt.backends.resolve(backend_)[1]
    pattern = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    p = pattern.copy().view(half)
    g = np.zeros(p.shape, half)
    with np.errstate(invalid="ignore"):
        be.step("sgd", [p], [g], {}, _sgd_scalars(0.0))
    wide = pattern.view(half).astype(np.float32)
    finite = ~np.isnan(wide)
    np.testing.assert_array_equal(bits(p)[finite], pattern[finite])
    assert np.isnan(p.astype(np.float32)[~finite]).all()
    if backend_ != "numpy":  # NaN payloads as the reference's astype
        ref = pattern.copy().view(half)
        with np.errstate(invalid="ignore"):  # inf - 0 * 0
            ref_backend.step("sgd", [ref], [np.zeros(p.shape, half)], {}, _sgd_scalars(0.0))
        np.testing.assert_array_equal(bits(p), bits(ref))


def _edge_values(half):
    """float32 values at the hard places of a rounding to ``half``: exact ties (to even
    and to odd neighbours), one ulp either side, the largest finite value and the
    overflow threshold, subnormal results, float32 subnormals, zero."""
    f = np.finfo(np.float16) if half == F16 else None
    shift = 13 if half == F16 else 16
    base = np.array([1.0, 1.5, 3.0, 1e-3, 7.0e-6, 6e-8, 0.1, 300.0, 1e30, 2.5e-38], np.float32)
    if f is not None:
        base = np.concatenate([base[base < 6e4], np.float32([65504.0, 65519.0, 65520.0])])
    else:
        base = np.concatenate([base, np.float32([3.389e38, 3.3895e38, 3.4e38])])
    out = [np.float32(0.0), np.float32(1e-45), np.float32(1e-40)]
    for x in base:
        u = np.float32(x).view(np.uint32)
        top = u & ~np.uint32((1 << shift) - 1)
        for delta in (0, 1, (1 << (shift - 1)) - 1, 1 << (shift - 1), (1 << (shift - 1)) + 1):
            for t in (top, top + np.uint32(1 << shift)):
                out.append(np.uint32(t + np.uint32(delta)).view(np.float32))
    vals = np.array(out, np.float32)
    return vals[np.isfinite(vals)]


@pytest.mark.parametrize("backend_", BACKENDS)
def test_store_rounds_to_nearest_even(backend_, half):
    """p = 0 + lr * (+-1) is the float32 ``lr``; stored, it must be NumPy's / ml_dtypes'
    astype of it (round to nearest even, overflow to inf, subnormals)."""
    be = fastopt.backends.resolve(backend_)[1]
    values = _edge_values(half)
    assert len(values) > 100
    for x in values:
        for sign in (1.0, -1.0):
            p = np.zeros(3, half)
            g = np.full(3, sign, half)
            be.step("sgd", [p], [g], {}, _sgd_scalars(float(x), maximize=True))
            with np.errstate(over="ignore"):
                want = np.full(3, np.float32(0) + np.float32(x) * np.float32(sign)).astype(half)
            same_half(p, want, f"{x!r} * {sign}")


# ------------------------------------------------------------------ native dispatch paths
native = fastopt.backends._load("native")


@pytest.mark.skipif(native is None, reason="the compiled backend is not built")
@pytest.mark.parametrize("nt", [1, 2])
def test_native_every_isa_and_split_gives_the_reference_bits(half, nt):
    from fastopt import _native

    old_isa, old_n, old_b = (
        _native.isa(),
        _native.get_num_threads(),
        _native._get_parallel_min_bytes(),
    )
    cases = [
        (fastopt.Adam, dict(lr=0.01, weight_decay=0.05, amsgrad=True)),
        (fastopt.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    ]
    try:
        _native.set_num_threads(nt)
        _native._set_parallel_min_bytes(0)  # split every call, however small
        for isa in _native.supported_isas():
            _native.set_isa(isa)
            for cls, kw in cases:
                want, _ = run_half(cls, kw, "numpy", half, steps=4)
                got, _ = run_half(cls, kw, "native", half, steps=4)
                for g, w in zip(got, want):
                    same_half(g, w, f"{isa} {nt} threads {cls.__name__}")
    finally:
        _native.set_isa(old_isa)
        _native.set_num_threads(old_n)
        _native._set_parallel_min_bytes(old_b)


def same_bits_but_nan_grads(got, want, pb, gb, half, what):
    """Param bits ``got`` equal to ``want`` (all uint16), NaNs included, except where the
    gradient ``gb`` is a NaN: there they may differ as NaNs of any sign and payload.  Such a NaN
    meets the param's (its own, or from the second step the one the gradient made) in an
    addition or product that may return either operand's, and under ``maximize`` its sign
    is not pinned (kernels.hpp, conventions): which operand comes first and how negations
    fold is the compiler's choice, per build and per loop.  Elsewhere a NaN has one origin
    (the param's, or an inf - inf), and its bits are the same in every build."""

    def isnan(b):
        x = b.view(half).astype(np.float32)
        return x != x

    exact = ~isnan(gb)
    np.testing.assert_array_equal(got[exact], want[exact], err_msg=f"{what} (no NaN gradient)")
    met = ~exact & ~(got == want)
    assert (isnan(got[met]) & isnan(want[met])).all(), f"{what}: NaN gradient"


@pytest.mark.skipif(native is None, reason="the compiled backend is not built")
@pytest.mark.parametrize("nt", [1, 2])
def test_native_half_every_isa_gives_the_generic_builds_bits(half, nt):
    """The avx2/avx512 builds convert float16 with F16C / AVX-512F around the float32 kernel,
    in blocks, and the avx2 build bfloat16 likewise with the integer conversions in their
    own loops (run_half_blocked); the other kernels convert in vectors inside their own loop
    (kernels.hpp Vec and each(): float16 in those builds, bfloat16 in the avx512bf16 and
    avx2 builds), every option combination; the generic build converts element by element
    inside the kernel loop.  Every bit pattern (NaN payloads, infinities, subnormals) in the
    param and the grad, sizes 1, primes, around the vector widths and the block (512),
    thread splits: the same param bits as the generic build (same_bits_but_nan_grads), the
    state's NaNs of any payload equal."""
    from fastopt import _native

    old_isa, old_n, old_b = (
        _native.isa(),
        _native.get_num_threads(),
        _native._get_parallel_min_bytes(),
    )
    cases = [
        (fastopt.SGD, dict(lr=0.0)),  # a zero step: load then store
        (fastopt.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
        (fastopt.SGD, dict(lr=0.05, weight_decay=0.1, maximize=True)),
        (fastopt.SGD, dict(lr=0.05, momentum=0.9, dampening=0.25, maximize=True)),
        (fastopt.Adagrad, dict(lr=0.1)),
        (fastopt.Adagrad, dict(lr=0.1, weight_decay=0.05, lr_decay=0.01, maximize=True)),
        (fastopt.Adam, dict(lr=0.01)),
        (fastopt.Adam, dict(lr=0.01, weight_decay=0.05)),
        (fastopt.Adam, dict(lr=0.01, amsgrad=True, maximize=True)),
        (fastopt.Adam, dict(lr=0.01, weight_decay=0.05, amsgrad=True)),
        (fastopt.AdamW, dict(lr=0.01, maximize=True)),
        (fastopt.AdamW, dict(lr=0.01, amsgrad=True)),
        (fastopt.AdamW, dict(lr=0.01, weight_decay=0.0)),
        (fastopt.Rprop, dict(lr=0.01)),
        (fastopt.RMSprop, dict(lr=0.01)),
        (fastopt.RMSprop, dict(lr=0.01, weight_decay=0.05, maximize=True)),
        (fastopt.RMSprop, dict(lr=0.01, centered=True)),
        (fastopt.RMSprop, dict(lr=0.01, momentum=0.5, weight_decay=0.05)),
        (fastopt.RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
        (fastopt.NAdam, dict(lr=0.01, weight_decay=0.05, maximize=True)),
        (fastopt.NAdam, dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True)),
        (fastopt.RAdam, dict(lr=0.01, weight_decay=0.05)),  # rectified from step 6
        (fastopt.RAdam, dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True)),
        (fastopt.Adadelta, dict(lr=0.5, weight_decay=0.05, maximize=True)),
        (fastopt.ASGD, dict(lr=0.01, t0=2)),  # averaging from step 3
        (fastopt.ASGD, dict(lr=0.01, weight_decay=0.05, maximize=True)),
        (fastopt.Adamax, dict(lr=0.01)),
        (fastopt.Adamax, dict(lr=0.01, weight_decay=0.05, maximize=True)),
        (fastopt.Rprop, dict(lr=0.01, etas=(0.3, 1.5), step_sizes=(1e-3, 0.02), maximize=True)),
    ]
    # The element-wise kernels of the matrix optimizers, called directly: (kind, state, scalars).
    direct = [
        ("muon_update", "momentum_buffer", dict(weight=0.05, momentum=0.95, nesterov=True)),
        ("muon_update", "momentum_buffer", dict(weight=0.7, momentum=0.6, nesterov=False)),
        ("decay_add", None, dict(wd=0.1, decay=0.999, step_size=0.01)),
        ("decay_add", None, dict(wd=0.0, decay=1.0, step_size=-0.5)),
        ("adafactor_update", "variance", dict(weight=0.3, eps=1e-6, lerp=True, maximize=True)),
        ("adafactor_update", "variance", dict(weight=0.8, eps=0.5, lerp=True, maximize=False)),
        ("adafactor_update", "variance", dict(weight=0.3, eps=0.5, lerp=False, maximize=False)),
    ]
    sizes = [1, 7, 15, 17, 511, 512, 513, 1031, 1543, 4099, (1 << 16) + 13]
    rng = np.random.default_rng(11)
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)

    def run(isa, cls, kw, pb, gb):
        _native.set_isa(isa)
        p = pb.view(half).copy()
        opt = cls([p], backend="native", nonfinite="ignore", **kw)
        with np.errstate(all="ignore"):
            for _ in range(7 if cls is fastopt.RAdam else 3):
                opt.step([gb.view(half)])
        return bits(p), opt.state_dict()["state"][0]

    def run_direct(isa, kind, state, scalars, pb, gb, st0):
        # A finite state: where two NaNs meet, either's sign and payload may come out.
        _native.set_isa(isa)
        out, st = pb.view(half).copy(), st0.copy()
        with np.errstate(all="ignore"):
            native.step(kind, [out], [gb.view(half)], {state: [st]} if state else {}, scalars)
        return bits(out), st

    try:
        _native.set_num_threads(nt)
        _native._set_parallel_min_bytes(0)  # split every call, however small
        isas = _native.supported_isas()
        assert "generic" in isas
        for n in sizes:
            pb = rng.permutation(np.resize(every, n)) if n < (1 << 16) else np.resize(every, n)
            gb = rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)
            for cls, kw in cases:
                want, want_state = run("generic", cls, kw, pb, gb)
                for isa in isas:
                    got, got_state = run(isa, cls, kw, pb, gb)
                    what = f"{isa} {nt} threads n={n} {cls.__name__} {kw}"
                    same_bits_but_nan_grads(got, want, pb, gb, half, what)
                    for key, w in want_state.items():
                        if isinstance(w, np.ndarray):
                            assert_same_bits(got_state[key], w, f"{what} {key}")
            st0 = np.abs(rng.standard_normal(n)).astype(np.float32)
            for case in direct:
                want, want_st = run_direct("generic", *case, pb, gb, st0)
                for isa in isas:
                    got, got_st = run_direct(isa, *case, pb, gb, st0)
                    what = f"{isa} {nt} threads n={n} {case}"
                    same_bits_but_nan_grads(got, want, pb, gb, half, what)
                    assert_same_bits(got_st, want_st, f"{what} state")
    finally:
        _native.set_isa(old_isa)
        _native.set_num_threads(old_n)
        _native._set_parallel_min_bytes(old_b)


# ------------------------------------------------------------------ master weights
# every optimizer (the first case of each: optimizer, options, shapes)
FIRST = list({cls: (cls, kw, shapes) for cls, kw, shapes in reversed(ALL)}.values())


@pytest.mark.parametrize("backend_", BACKENDS)
@pytest.mark.parametrize("case", FIRST, ids=[c[0].__name__ for c in FIRST])
def test_master_weights_follow_the_float32_run_exactly(case, backend_, half):
    cls, kw, shapes = case
    rng = np.random.default_rng(5)
    start = [rng.standard_normal(s).astype(half) for s in shapes]
    params = [p.copy() for p in start]
    wide = [p.astype(np.float32) for p in start]
    opt = cls(params, backend=backend_, master_weights=True, **kw)
    ref = cls(wide, backend=backend_, **kw)
    for _ in range(STEPS):
        g = grads_for(wide, rng, half)
        opt.step(g)
        ref.step([x.astype(np.float32) for x in g])
    sd = opt.state_dict()
    for i, (p, w) in enumerate(zip(params, wide)):
        assert_same_bits(sd["state"][i]["master_weight"], w, f"master {i}")
        same_half(p, w.astype(half), f"param {i}")  # the rounded copy
        assert not np.array_equal(w, start[i].astype(np.float32))  # the master moved


def test_master_weights_keep_updates_smaller_than_half_a_half_ulp(backend):
    """Why master weights: an update below half an ulp of bfloat16 is lost by a plain
    bfloat16 parameter at every step, and accumulated by the float32 master."""
    assert BF16 is not None
    plain, master = np.ones(3, BF16), np.ones(3, BF16)
    opts = [
        fastopt.SGD([x], backend=backend, lr=1e-3, master_weights=m)
        for x, m in ((plain, False), (master, True))
    ]
    for _ in range(10):
        for o in opts:
            o.step([np.ones(3, BF16)])
    assert (plain.astype(np.float32) == 1).all()  # 1 - 1e-3 rounds back to 1 every step
    assert (master.astype(np.float32) == np.float32(0.98828125)).all()  # 1 - 1e-2, rounded


def test_master_weights_refuse_a_float32_gradient_and_change_nothing(backend, half):
    p = np.linspace(-1, 1, 7).astype(half)
    opt = fastopt.Adam([p], backend=backend, master_weights=True)
    before = bits(p).copy()
    with pytest.raises(TypeError, match="but its parameter has"):
        opt.step([np.ones(7, np.float32)])
    np.testing.assert_array_equal(bits(p), before)
    assert opt.step_count == 0
    # a float32 parameter needs no master copy
    assert (
        "master_weight"
        not in fastopt.Adam([np.ones(3, np.float32)], master_weights=True).state_dict()["state"][0]
    )


def test_master_weights_checked():
    with pytest.raises(TypeError, match="master_weights"):
        fastopt.Adam([np.ones(3, np.float16)], master_weights="yes")


# ------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize("master", [False, True], ids=["plain", "master"])
def test_checkpoint_round_trip_keeps_dtypes_and_resumes_bit_identical(
    tmp_path, backend, half, master
):
    def make(seed):
        rng = np.random.default_rng(seed)
        ps = {f"w{i}": rng.standard_normal(s).astype(half) for i, s in enumerate(SHAPES)}
        return ps, fastopt.AdamW(ps, backend=backend, lr=0.01, amsgrad=True, master_weights=master)

    rng = np.random.default_rng(9)
    grads = [
        {
            k: rng.standard_normal(s).astype(half)
            for k, s in zip([f"w{i}" for i in range(len(SHAPES))], SHAPES)
        }
        for _ in range(6)
    ]
    ps, opt = make(0)
    for g in grads[:3]:
        opt.step(g)
    fastopt.save(tmp_path / "ck.npz", opt)
    ps2, opt2 = make(1)
    fastopt.load(tmp_path / "ck.npz", opt2)
    for k in ps:
        assert ps2[k].dtype == half
        same_half(ps2[k], ps[k], k)
        for key, a in opt2.state[k].items():
            assert a.dtype == np.float32, key
    for g in grads[3:]:
        opt.step(g)
        opt2.step(g)
    for k in ps:
        same_half(ps2[k], ps[k], k)
    sd, sd2 = opt.state_dict(), opt2.state_dict()
    assert sd["param_groups"][0]["dtypes"][0] == ("bfloat16" if half == BF16 else "<f2")
    for k in ps:
        assert set(sd["state"][k]) == set(sd2["state"][k])
        assert ("master_weight" in sd["state"][k]) == master
        for key in sd["state"][k]:
            assert_same_bits(sd2["state"][k][key], sd["state"][k][key], key)


def test_checkpoint_refuses_other_half_type_and_master_mismatch(tmp_path):
    assert BF16 is not None
    p = np.ones(5, BF16)
    opt = fastopt.Adam([p], master_weights=True)
    opt.step([np.ones(5, BF16)])
    fastopt.save(tmp_path / "ck.npz", opt)
    for other in (
        fastopt.Adam([np.ones(5, np.float16)], master_weights=True),
        fastopt.Adam([np.ones(5, np.float32)]),
        fastopt.Adam([np.ones(5, BF16)]),  # no master weights
    ):
        before = other.state_dict()
        with pytest.raises(CheckpointError):
            fastopt.load(tmp_path / "ck.npz", other)
        assert other.step_count == before["step_count"] == 0
    # saved without master weights, loaded into an optimizer that keeps them
    plain = fastopt.Adam([np.ones(5, BF16)])
    plain.step([np.ones(5, BF16)])
    fastopt.save(tmp_path / "plain.npz", plain)
    with pytest.raises(CheckpointError, match="master_weight"):
        fastopt.load(tmp_path / "plain.npz", fastopt.Adam([np.ones(5, BF16)], master_weights=True))


def test_load_state_dict_refuses_half_state_arrays(half):
    p = np.ones(4, half)
    opt = fastopt.Adam([p])
    opt.step([np.ones(4, half)])
    sd = opt.state_dict()
    sd["state"][0]["exp_avg"] = sd["state"][0]["exp_avg"].astype(half)
    with pytest.raises(ValueError, match="its state is float32"):
        opt.load_state_dict(sd)
    sd = opt.state_dict()
    sd["state"][0]["master_weight"] = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="master_weights=True"):
        opt.load_state_dict(sd)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("backend_", BACKENDS)
def test_backends_refuse_mixed_and_half_state_with_one_message(backend_, half):
    be = fastopt.backends.resolve(backend_)[1]
    scalars = C.ADAM.scalars(C.ADAM.defaults, 1)
    p = np.ones(7, half)
    m, v = np.zeros(7, np.float32), np.zeros(7, np.float32)
    before = bits(p).copy()
    messages = {}
    for what, g, st in [
        ("float32 grad", np.ones(7, np.float32), (m, v)),
        ("float64 grad", np.ones(7), (m, v)),
        ("half state", np.ones(7, half), (m.astype(half), v)),
        ("float64 state", np.ones(7, half), (m, v.astype(np.float64))),
    ]:
        with pytest.raises(TypeError) as info:
            be.step("adam", [p], [g], {"exp_avg": [st[0]], "exp_avg_sq": [st[1]]}, scalars)
        messages[what] = str(info.value)
    np.testing.assert_array_equal(bits(p), before)
    assert not m.any() and not v.any()
    assert f"but its parameter has {half}" in messages["float32 grad"]
    assert f"the state of a {half} parameter is float32" in messages["half state"]
    assert "exp_avg_sqs[0] has dtype float64" in messages["float64 state"]
    ref_messages = {}
    for what, g, st in [
        ("float32 grad", np.ones(7, np.float32), (m, v)),
        ("half state", np.ones(7, half), (m.astype(half), v)),
    ]:
        with pytest.raises(TypeError) as info:
            ref_backend.step("adam", [p], [g], {"exp_avg": [st[0]], "exp_avg_sq": [st[1]]}, scalars)
        ref_messages[what] = str(info.value)
        assert ref_messages[what] == messages[what]


def test_optimizer_refuses_float32_gradient_for_half_parameter(backend, half):
    p = np.ones(5, half)
    opt = fastopt.SGD([p], backend=backend, lr=0.1)
    with pytest.raises(
        TypeError, match=f"grads\\[0\\] has dtype float32 but its parameter has {half}"
    ):
        opt.step([np.ones(5, np.float32)])
    assert (p.astype(np.float32) == 1).all() and opt.step_count == 0


def test_other_two_byte_types_are_refused(backend):
    for dt in (np.int16, np.uint16):
        with pytest.raises(TypeError, match="float16 or bfloat16"):
            fastopt.SGD([np.ones(3, dt)], backend=backend)


# ------------------------------------------------------------------ nonfinite, clipping
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_nonfinite_half_gradient_raises_or_skips_and_changes_nothing(backend, half, groups, bad):
    rng = np.random.default_rng(2)
    ps = [rng.standard_normal(n).astype(half) for n in (5, 4099)]
    params = [{"params": [ps[0]]}, {"params": [ps[1]]}] if groups == 2 else ps
    for mode in ("raise", "skip"):
        opt = fastopt.Adam(params, backend=backend, nonfinite=mode)
        opt.step([np.ones(5, half), np.ones(4099, half)])
        snap = _snapshot(opt, ps)
        g = [np.ones(5, half), np.ones(4099, half)]
        g[1][4001] = bad
        skip = mode == "skip"
        expect = pytest.raises(fastopt.NonFiniteGradientError, match="index 4001")
        with contextlib.nullcontext() if skip else expect:
            opt.step(g)
        assert (opt.skipped_steps, opt.last_step_skipped) == (int(skip), skip)
        assert _snapshot(opt, ps) == snap
        assert opt.step_count == 1


def _snapshot(opt, params):
    return [p.tobytes() for p in params] + [
        a.tobytes() for st in opt.state.values() for a in st.values()
    ]


def test_clipping_half_gradients_scales_copies_in_their_dtype(backend, half):
    rng = np.random.default_rng(4)
    g = [rng.standard_normal(n).astype(half) * half.type(3) for n in (7, 31)]
    keep = [bits(x).copy() for x in g]
    start = [rng.standard_normal(n).astype(half) for n in (7, 31)]
    # expected: the norm in float64, the coefficient rounded to the half type, one product
    norm = float(np.sqrt(sum(float((x.astype(np.float64) ** 2).sum()) for x in g)))
    coef = 1.0 / (norm + 1e-6)
    assert coef < 1
    clipped = [(x.astype(np.float32) * np.float32(half.type(coef))).astype(half) for x in g]
    a = [p.copy() for p in start]
    fastopt.SGD(a, backend=backend, lr=0.1, max_grad_norm=1.0).step(g)
    b = [p.copy() for p in start]
    fastopt.SGD(b, backend=backend, lr=0.1).step(clipped)
    for x, y in zip(a, b):
        same_half(x, y)
    for x, k in zip(g, keep):
        np.testing.assert_array_equal(bits(x), k)  # the caller's gradients untouched
    c = [p.copy() for p in start]
    fastopt.SGD(c, backend=backend, lr=0.1, clip_value=0.5).step(g)
    d = [p.copy() for p in start]
    fastopt.SGD(d, backend=backend, lr=0.1).step(
        [np.clip(x.astype(np.float32), -0.5, 0.5).astype(half) for x in g]
    )
    for x, y in zip(c, d):
        same_half(x, y)


def test_clip_functions_take_bfloat16():
    assert BF16 is not None
    g = np.array([3.0, -4.0], BF16)
    assert fastopt.clip_grad_norm([g], 1.0) == pytest.approx(5.0)
    assert g.dtype == BF16 and abs(float(g[0]) - 0.6) < 0.01
    fastopt.clip_grad_value([g], 0.5)
    assert float(g.astype(np.float32).max()) <= 0.5


def test_import_does_not_need_ml_dtypes():
    code = "import sys, fastopt, numpy as np; fastopt.Adam([np.ones(3, np.float16)]); assert 'ml_dtypes' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("backend_", BACKENDS)
@pytest.mark.parametrize(
    "kind, state, scalars",
    [
        ("adafactor_update", "variance", dict(weight=0.3, eps=1e-6, lerp=True, maximize=True)),
        ("muon_update", "momentum_buffer", dict(weight=0.05, momentum=0.95, nesterov=True)),
        ("decay_add", None, dict(wd=0.1, decay=0.999, step_size=0.01)),
    ],
)
def test_matrix_element_wise_kernels_take_half_storage(backend_, half, kind, state, scalars):
    """The element-wise kinds of the matrix optimizers, called directly with half arrays:
    the float32 computation, the written array rounded once."""
    be = fastopt.backends.resolve(backend_)[1]
    rng = np.random.default_rng(8)
    for n in (1, 7, 4099):
        out, g = rng.standard_normal(n).astype(half), rng.standard_normal(n).astype(half)
        st = np.abs(rng.standard_normal(n)).astype(np.float32)
        want, want_st = out.astype(np.float32), st.copy()
        ref_backend.step(
            kind, [want], [g.astype(np.float32)], {state: [want_st]} if state else {}, scalars
        )
        be.step(kind, [out], [g], {state: [st]} if state else {}, scalars)
        same_half(out, want.astype(half), f"{kind} {n}")
        assert_same_bits(st, want_st, f"{kind} state {n}")


@pytest.mark.parametrize("dtype", ["float32", "float64", "f16", "bf16"])
def test_adam_maximize_negates_like_the_reference_on_every_backend_and_isa(dtype):
    """Adam's ``maximize`` is ``-g``, as the NumPy reference and torch.optim: it flips the
    sign of a NaN gradient too (a product with -1 keeps it on x86, and a compiler may fold
    one into the other, so the C++ kernels write the negation out).  NaNs of both signs, in
    the vector body and the scalar remainder, with ``nonfinite="ignore"``: the parameter's
    bits equal the reference's on every backend and ISA."""
    dt = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64), "f16": F16}.get(
        dtype, BF16
    )
    n = 37
    g = np.linspace(-1, 1, n).astype(dt)
    g[[3, 20, 35]] = np.array([np.nan, -np.nan, -np.nan], np.float32).astype(dt)

    def run(backend):
        p = np.linspace(0.5, -0.5, n).astype(dt)
        opt = fastopt.Adam(
            [p], lr=0.1, maximize=True, amsgrad=True, backend=backend, nonfinite="ignore"
        )
        with np.errstate(all="ignore"):
            for _ in range(2):
                opt.step([g])
        return p.view(
            np.uint16 if dt.itemsize == 2 else np.uint32 if dt.itemsize == 4 else np.uint64
        )

    want = run("numpy")
    assert np.signbit(want.view(dt)[[3, 20, 35]].astype(np.float32)).tolist() == [
        True,
        False,
        False,
    ]
    for backend in BACKENDS:
        if backend != "native":
            np.testing.assert_array_equal(run(backend), want, err_msg=backend)
            continue
        from fastopt import _native

        old = _native.isa()
        try:
            for isa in _native.supported_isas():
                _native.set_isa(isa)
                np.testing.assert_array_equal(run("native"), want, err_msg=isa)
        finally:
            _native.set_isa(old)
