"""master_weights=True on the native backend: one fused call (``_native.step(...,
masters=...)``) updates each float32 master from the half gradient (widened block by block)
and writes the half parameter as the master rounded to nearest even.

The reference is the numpy backend's path (the masters updated by the float32 rule on
``g.astype(np.float32)``, then ``p[...] = master``): the same bits for the parameters, the
masters and every state array, for every optimizer with an element-wise kernel and every
option combination, float16 and bfloat16, every ISA, one thread and the pool splitting
every call.  The ``masters`` argument is checked like every other array of the call before
anything is written."""

import contextlib
import re

import numpy as np
import pytest

import fastopt
from _tolerance import assert_same_bits
from fastopt import _contract as C
from optcases import all_cases, case_id

ml_dtypes = pytest.importorskip("ml_dtypes")

native = fastopt.backends._load("native")
pytestmark = pytest.mark.skipif(native is None, reason="the compiled backend is not built")

F16, BF16 = np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)
CASES = all_cases()
SHAPES = [(1,), (7,), (31,), (513,), (13, 17)]
STEPS = 8


@pytest.fixture(params=["f16", "bf16"])
def half(request):
    return F16 if request.param == "f16" else BF16


@pytest.fixture
def native_settings():
    """Restores the ISA, the thread count and the parallel threshold."""
    from fastopt import _native

    old = _native.isa(), _native.get_num_threads(), _native._get_parallel_min_bytes()
    yield _native
    _native.set_isa(old[0])
    _native.set_num_threads(old[1])
    _native._set_parallel_min_bytes(old[2])


def bits(a):
    return np.ascontiguousarray(a).view(np.uint16)


def run(cls, kw, backend, half, shapes, steps=STEPS, seed=3):
    """A master_weights run; the gradients depend on the parameters (a difference feeds
    back).  One float32 parameter among the half ones: a row without a master."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(half) for s in shapes]
    params.append(rng.standard_normal(5).astype(np.float32))
    opt = cls(params, backend=backend, master_weights=True, **kw)
    for _ in range(steps):
        opt.step(
            [
                (0.5 * p.astype(np.float32) + rng.standard_normal(p.shape)).astype(p.dtype)
                for p in params
            ]
        )
    return params, opt.state_dict()["state"]


def assert_same_run(got, want, what):
    (gp, gs), (wp, ws) = got, want
    for i, (g, w) in enumerate(zip(gp, wp)):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(
            bits(g) if g.itemsize == 2 else g,
            bits(w) if w.itemsize == 2 else w,
            err_msg=f"{what} param {i}",
        )
    assert set(gs) == set(ws)
    for i in ws:
        assert set(gs[i]) == set(ws[i]), f"{what} state {i}"
        for key, w in ws[i].items():
            if isinstance(w, np.ndarray):
                assert_same_bits(gs[i][key], w, f"{what} state {i} {key}")


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_fused_masters_give_the_numpy_paths_bits(case, half):
    cls, kw = case
    want = run(cls, kw, "numpy", half, SHAPES)
    assert any("master_weight" in st for st in want[1].values())
    got = run(cls, kw, "native", half, SHAPES)
    assert_same_run(got, want, case_id(case))


# every optimizer (the first case of each)
FIRST = list({cls: (cls, kw) for cls, kw in reversed(CASES)}.values())


@pytest.mark.parametrize("nt", [1, 2])
def test_fused_masters_every_isa_and_thread_split(native_settings, half, nt):
    """Sizes 1, primes, around the block (512) and past one thread's threshold, every ISA,
    the pool splitting every call (chunk edges inside blocks)."""
    _native = native_settings
    shapes = [(1,), (7,), (511,), (513,), (1031,), (70001,)]
    _native.set_num_threads(nt)
    _native._set_parallel_min_bytes(0)
    for cls, kw in FIRST:
        want = run(cls, kw, "numpy", half, shapes, steps=4)
        for isa in _native.supported_isas():
            _native.set_isa(isa)
            got = run(cls, kw, "native", half, shapes, steps=4)
            assert_same_run(got, want, f"{isa} {nt} threads {cls.__name__}")


def test_native_optimizers_take_the_fused_path(monkeypatch, half):
    """The native backend gets the half gradients and the masters in one call; the numpy
    backend keeps the float32 path."""
    calls = []
    p = np.linspace(-1, 1, 9).astype(half)
    opt = fastopt.Adam([p], backend="native", master_weights=True, nonfinite="ignore")
    kernel = opt._kernel
    monkeypatch.setattr(
        opt, "_kernel", lambda *a: calls.append([x for x in a if isinstance(x, list)]) or kernel(*a)
    )
    opt.step([np.ones(9, half)])
    (lists,) = calls
    params, grads, masters = lists[0], lists[1], lists[-1]
    assert params[0] is p and grads[0].dtype == half
    assert masters[0].dtype == np.float32 and masters[0] is opt._masters[0][0]
    assert not fastopt.Adam([np.ones(3, half)], backend="numpy", master_weights=True)._fused_masters


# ------------------------------------------------------------------ nonfinite
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("nt", [1, 2])
def test_nonfinite_with_masters_writes_nothing(native_settings, half, groups, nt):
    native_settings.set_num_threads(nt)
    rng = np.random.default_rng(2)
    ps = [rng.standard_normal(n).astype(half) for n in (5, 70001)]
    params = [{"params": [ps[0]]}, {"params": [ps[1]]}] if groups == 2 else ps
    for mode in ("raise", "skip"):
        opt = fastopt.Adam(params, backend="native", nonfinite=mode, master_weights=True)
        opt.step([np.ones(5, half), np.ones(70001, half)])
        snap = [p.tobytes() for p in ps] + [
            a.tobytes() for st in opt.state_dict()["state"].values() for a in st.values()
        ]
        g = [np.ones(5, half), np.ones(70001, half)]
        g[1][60001] = np.inf
        skip = mode == "skip"
        expect = pytest.raises(fastopt.NonFiniteGradientError, match="index 60001")
        with contextlib.nullcontext() if skip else expect:
            opt.step(g)
        assert [p.tobytes() for p in ps] + [
            a.tobytes() for st in opt.state_dict()["state"].values() for a in st.values()
        ] == snap
        assert opt.step_count == 1 and opt.skipped_steps == int(skip)


# ------------------------------------------------------------------ bad masters
SCALARS = C.ADAM.scalars(C.ADAM.defaults, 1)


def _call(p, g, m, v, masters, check=False):
    return native.step(
        "adam",
        p,
        g,
        {"exp_avg": m, "exp_avg_sq": v},
        SCALARS,
        None,
        check,
        masters,
    )


def _rows(half, n=7):
    rng = np.random.default_rng(0)
    p = [rng.standard_normal(n).astype(half) for _ in range(2)]
    g = [rng.standard_normal(n).astype(half) for _ in range(2)]
    m = [np.zeros(n, np.float32) for _ in range(2)]
    v = [np.zeros(n, np.float32) for _ in range(2)]
    w = [x.astype(np.float32) for x in p]
    return p, g, m, v, w


def _overlapping(half, n=7):
    """A half array and a float32 array of n elements over the same bytes."""
    buf = np.zeros(4 * n, np.uint8)
    return buf[: 2 * n].view(half), buf.view(np.float32)


def _bad_masters(half):
    """(what, build(p, g, m, v, w) -> the call's lists with row 1 broken, exception, message)."""
    n = 7

    def alias_param(p, g, m, v, w):
        a, b = _overlapping(half, n)
        return [p[0], a], g, m, v, [w[0], b]

    def alias_grad(p, g, m, v, w):
        a, b = _overlapping(half, n)
        return p, [g[0], a], m, v, [w[0], b]

    def with_(k, value):
        def build(p, g, m, v, w):
            w = list(w)
            w[1] = value(p, g, m, v, w)
            return p, g, m, v, w

        return build

    ro = np.zeros(n, np.float32)
    ro.setflags(write=False)
    unaligned = np.zeros(4 * n + 1, np.uint8)[1:].view(np.float32)
    return [
        ("aliases its param", alias_param, ValueError, "shares memory with params[1]"),
        ("aliases its grad", alias_grad, ValueError, "shares memory with"),
        ("is a state array", with_(1, lambda p, g, m, v, w: m[1]), ValueError, "shares memory"),
        ("is another row's", with_(1, lambda p, g, m, v, w: w[0]), ValueError, "shares memory"),
        ("float64", with_(1, lambda *a: np.zeros(n)), TypeError, "is float32"),
        ("half", with_(1, lambda *a: np.zeros(n, half)), TypeError, "is float32"),
        ("wrong length", with_(1, lambda *a: np.zeros(n - 1, np.float32)), ValueError, "shape"),
        ("wrong shape", with_(1, lambda *a: np.zeros((n, 1), np.float32)), ValueError, "shape"),
        ("read-only", with_(1, lambda *a: ro), ValueError, "read-only"),
        ("strided", with_(1, lambda *a: np.zeros(2 * n, np.float32)[::2]), ValueError, "C-contig"),
        ("unaligned", with_(1, lambda *a: unaligned), ValueError, "not aligned"),
        ("a list", with_(1, lambda *a: [0.0] * n), TypeError, "must be a numpy array"),
        (
            "a subclass",
            with_(1, lambda *a: np.zeros(n, np.float32).view(np.ma.MaskedArray)),
            TypeError,
            "subclass",
        ),
    ]


@pytest.mark.parametrize("check", [False, True], ids=["ignore", "check"])
@pytest.mark.parametrize("nt", [1, 2])
def test_bad_masters_are_refused_before_any_write(native_settings, half, check, nt):
    native_settings.set_num_threads(nt)
    native_settings._set_parallel_min_bytes(0)
    for what, build, exc, fragment in _bad_masters(half):
        p, g, m, v, w = build(*_rows(half))
        arrays = [*p, *g, *m, *v] + [x for x in w if isinstance(x, np.ndarray)]
        before = [a.tobytes() for a in arrays]
        with pytest.raises(exc, match=re.escape(fragment)):
            _call(p, g, m, v, w, check)
        assert [a.tobytes() for a in arrays] == before, what


def test_masters_list_and_rows_checked(half):
    p, g, m, v, w = _rows(half)
    with pytest.raises(ValueError, match="masters has 1 arrays but params has 2"):
        _call(p, g, m, v, w[:1])
    with pytest.raises(TypeError, match="masters must be a list"):
        _call(p, g, m, v, {0: w[0], 1: w[1]})
    # a master for a float32 parameter
    p32 = [x.astype(np.float32) for x in p]
    g32 = [x.astype(np.float32) for x in g]
    before = [a.tobytes() for a in p32 + m + v + w]
    with pytest.raises(
        TypeError, match=r"masters\[1\] is given but its parameter has dtype float32"
    ):
        _call(p32, g32, m, v, [None, w[1]])
    assert [a.tobytes() for a in p32 + m + v + w] == before
    # the grad of a row with a master has the half param's dtype
    with pytest.raises(TypeError, match=r"grads\[0\] has dtype float32 but its parameter has"):
        _call(p, [g32[0], g[1]], m, v, w)


def test_masters_none_rows_and_direct_call_bits(half):
    """A direct call: row 0 with a master, row 1 without; the flagged-rows answer of the
    check; the bits of the float32 rule on the master, the param its rounding."""
    p, g, m, v, w = _rows(half, 1031)
    want_w, want_m, want_v = w[0].copy(), m[0].copy(), v[0].copy()
    fastopt.backends.resolve("numpy")[1].step(
        "adam",
        [want_w],
        [g[0].astype(np.float32)],
        {"exp_avg": [want_m], "exp_avg_sq": [want_v]},
        SCALARS,
    )
    want_p1, want_m1, want_v1 = p[1].copy(), m[1].copy(), v[1].copy()
    fastopt.backends.resolve("numpy")[1].step(
        "adam", [want_p1], [g[1]], {"exp_avg": [want_m1], "exp_avg_sq": [want_v1]}, SCALARS
    )
    keep = w[1].copy()
    bad = [x.copy() for x in g]
    bad[0][1000] = np.nan
    assert _call(p, bad, m, v, [w[0], None], check=True) == [0]
    assert not m[0].any() and not m[1].any()
    assert _call(p, g, m, v, [w[0], None], check=True) is None
    assert_same_bits(w[0], want_w, "master")
    np.testing.assert_array_equal(bits(p[0]), bits(want_w.astype(half)))
    assert_same_bits(m[0], want_m, "exp_avg")
    assert_same_bits(v[0], want_v, "exp_avg_sq")
    np.testing.assert_array_equal(bits(p[1]), bits(want_p1))
    assert_same_bits(m[1], want_m1, "exp_avg 1")
    np.testing.assert_array_equal(w[1], keep)  # not passed: untouched
