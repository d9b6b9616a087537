"""The native backend's fused finiteness check (``step(..., check_finite=True)``, used by
``nonfinite="raise"``/``"skip"``) and its per-call thread choice.

A non-finite gradient in any row (first, middle, last array; inf or NaN; float32 or float64;
sizes that the thread pool splits) changes nothing and is reported with the right array and
index; the thread count a call picks from its size never changes a bit."""

import numpy as np
import pytest

import fastopt
from fastopt import _native
from fastopt._contract import ADAM
from fastopt.optim import NonFiniteGradientError

pytestmark = pytest.mark.skipif(
    "native" not in fastopt.available_backends(), reason="the compiled backend is not built"
)

BIG = 2**20 + 3  # threaded on 2+ threads, and not a multiple of any chunk


@pytest.fixture
def threads():
    old = _native.get_num_threads()
    yield _native.set_num_threads
    _native.set_num_threads(old)


def _problem(dtype, sizes, seed=0):
    rng = np.random.default_rng(seed)
    params = {f"w{i}": rng.standard_normal(n).astype(dtype) for i, n in enumerate(sizes)}
    grads = {k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()}
    return params, grads


def _snap(opt, params):
    out = {n: p.tobytes() for n, p in params.items()}
    for n, st in opt.state.items():
        out.update({f"{n}/{k}": a.tobytes() for k, a in st.items()})
    out["counters"] = (opt.step_count, [dict(g) for g in opt._group_state])
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("row", [0, 1, 2], ids=["first", "middle", "last"])
@pytest.mark.parametrize("nt", [1, 2])
def test_nonfinite_in_any_row_changes_nothing(threads, dtype, bad, row, nt):
    threads(nt)
    sizes = (BIG, 1000, BIG) if row != 1 else (1000, BIG, 37)
    params, grads = _problem(dtype, sizes)
    opt = fastopt.Adam(params, backend="native", amsgrad=True)
    opt.step(grads)
    before = _snap(opt, params)
    name = f"w{row}"
    n = params[name].size
    where = [0, n // 2 + 1, n - 1][row]
    g = {k: v * 2 for k, v in grads.items()}
    g[name][where] = bad
    g[name][-1] = np.nan  # a later bad element: the first is reported
    if where == n - 1:
        g[name][-1] = bad
    with pytest.raises(NonFiniteGradientError, match=rf"grads\['{name}'\].* at index {where} "):
        opt.step(g)
    assert _snap(opt, params) == before
    skip = fastopt.Adam(params, backend="native", nonfinite="skip")
    skip.load_state_dict(opt.state_dict())
    skip.step(g)
    assert skip.last_step_skipped and skip.skipped_steps == 1
    assert _snap(skip, params) == before
    g[name][...] = 0.5
    opt.step(g)  # and the next finite step goes through
    assert opt.step_count == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_native_step_returns_flagged_rows_and_writes_nothing(threads, dtype):
    threads(2)
    params, grads = _problem(dtype, (BIG, 5, 0, BIG))
    ps, gs = list(params.values()), list(grads.values())
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    sc = ADAM.scalars(ADAM.defaults, 1)
    state = {"exp_avg": m, "exp_avg_sq": v}
    gs[1][4] = np.inf
    gs[3][BIG // 3] = np.nan
    before = [a.tobytes() for a in ps + m + v]
    assert _native.step("adam", ps, gs, state, sc, check_finite=True) == [1, 3]
    assert [a.tobytes() for a in ps + m + v] == before
    gs[1][4] = gs[3][BIG // 3] = 0.0
    assert _native.step("adam", ps, gs, state, sc, check_finite=True) is None
    assert all(a.tobytes() != b for a, b in zip(ps, before) if a.size)  # updated


def test_noncontiguous_gradient_is_checked(threads):
    threads(2)
    p = np.zeros(BIG, np.float32)
    g = np.ones(2 * BIG, np.float32)[::2]
    g[BIG - 2] = np.nan
    opt = fastopt.Adam([p], backend="native")
    with pytest.raises(NonFiniteGradientError, match=f"at index {BIG - 2} "):
        opt.step([g])
    assert not p.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_thread_choice_gives_the_bits_of_one_thread(threads, dtype):
    """Every call size from serial to split over many threads, with the per-thread threshold
    lowered so that 3, 5 and 8 threads are all used on small arrays: bit-identical to one
    thread."""
    old = _native._get_parallel_min_bytes()
    sizes = (1, 63, 1000, 4097, 30001, 2**17 + 5)
    results = {}
    try:
        for nt, min_bytes in ((1, old), (2, old), (3, 4096), (5, 4096), (8, 1024)):
            threads(nt)
            _native._set_parallel_min_bytes(min_bytes)
            params, grads = _problem(dtype, sizes, seed=3)
            opt = fastopt.Adam(params, backend="native", weight_decay=0.1, amsgrad=True)
            for k in range(3):
                opt.step({n: g * (k + 1) for n, g in grads.items()})
            results[nt] = [p.tobytes() for p in params.values()] + [
                a.tobytes() for st in opt.state.values() for a in st.values()
            ]
    finally:
        _native._set_parallel_min_bytes(old)
    for nt, r in results.items():
        assert r == results[1], f"{nt} threads differ from 1"


@pytest.mark.parametrize("mode", ["raise", "skip", "ignore"])
def test_a_step_is_one_pool_job(threads, mode):
    """The check and the update share one pool job (one wake-up, one join), finite or not."""
    threads(2)
    params, grads = _problem(np.float32, (BIG, 1000, BIG))
    opt = fastopt.Adam(params, backend="native", nonfinite=mode)
    opt.step(grads)
    for bad in (False, True):
        g = {k: v.copy() for k, v in grads.items()}
        if bad:
            g["w2"][-1] = np.inf
        before = _native._pool_jobs()
        try:
            opt.step(g)
        except NonFiniteGradientError:
            assert mode == "raise"
        assert _native._pool_jobs() - before == 1, (mode, bad)


@pytest.mark.parametrize("nt", [2, 3, 8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_bad_value_in_the_last_chunk_stops_every_write(threads, nt, dtype):
    """Many small chunks on more threads than cores: whichever worker checks the last chunk,
    and however late, no worker writes a chunk before every chunk is checked."""
    old = _native._get_parallel_min_bytes()
    threads(nt)
    _native._set_parallel_min_bytes(0)  # every thread, 16 chunks per thread
    try:
        n = 2**20 + 7
        params, grads = _problem(dtype, (n,), seed=1)
        ps, gs = list(params.values()), list(grads.values())
        m, v = [np.zeros_like(ps[0])], [np.zeros_like(ps[0])]
        sc = ADAM.scalars(ADAM.defaults, 1)
        state = {"exp_avg": m, "exp_avg_sq": v}
        before = [a.tobytes() for a in ps + m + v]
        for k in range(60):
            gs[0][n - 1 - k] = np.nan if k % 2 else np.inf
            assert _native.step("adam", ps, gs, state, sc, check_finite=True) == [0]
            assert [a.tobytes() for a in ps + m + v] == before, k
            gs[0][n - 1 - k] = 1.0
        assert _native.step("adam", ps, gs, state, sc, check_finite=True) is None
        assert ps[0].tobytes() != before[0]
    finally:
        _native._set_parallel_min_bytes(old)


@pytest.mark.parametrize("nt", [2, 3, 8])
def test_bad_value_in_any_workers_run_stops_every_write(threads, nt):
    """Each worker owns a run of chunks (and the others take from it once out of their own):
    a non-finite value at the first or last element of any chunk, or between, in any worker's
    run, stops the writes of every worker."""
    old = _native._get_parallel_min_bytes()
    threads(nt)
    _native._set_parallel_min_bytes(0)  # every thread, 16 chunks per thread
    try:
        n = 2**18 + 11
        params, grads = _problem(np.float32, (n,), seed=2)
        ps, gs = list(params.values()), list(grads.values())
        m, v = [np.zeros_like(ps[0])], [np.zeros_like(ps[0])]
        sc = ADAM.scalars(ADAM.defaults, 1)
        state = {"exp_avg": m, "exp_avg_sq": v}
        before = [a.tobytes() for a in ps + m + v]
        nchunks = 16 * nt
        where = {0, n - 1}
        for c in range(1, nchunks):
            edge = c * n // nchunks
            where.update({edge - 1, edge, edge + 1, edge + 40})
        for i in sorted(w for w in where if 0 <= w < n):
            gs[0][i] = np.inf
            assert _native.step("adam", ps, gs, state, sc, check_finite=True) == [0], i
            assert [a.tobytes() for a in ps + m + v] == before, i
            gs[0][i] = 0.5
        assert _native.step("adam", ps, gs, state, sc, check_finite=True) is None
        assert ps[0].tobytes() != before[0]
    finally:
        _native._set_parallel_min_bytes(old)
