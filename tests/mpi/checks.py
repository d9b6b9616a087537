"""fastopt.distributed under MPI: run as ``mpiexec -n N python -m mpi4py tests/mpi/checks.py``.

Every check compares the distributed optimizers with a single-process optimizer fed the
averaged gradients ``((g_0 + g_1) + ...) / N`` (summed in rank order, as ``order="rank"``
does), and checks that every rank holds the same bits.  ``order="mpi"`` is bit-identical
for N = 2 (IEEE addition is commutative) and within float rounding of a N-term sum
otherwise.  Rank 0 prints ``ok <check>`` per check and ``ALL OK`` at the end; any failure
raises, and ``python -m mpi4py`` aborts every rank (no hang).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile

import numpy as np
from mpi4py import MPI

import fastopt
from fastopt.distributed import (
    DistributedOptimizer,
    ShardedOptimizer,
    allreduce_gradients,
    broadcast_parameters,
)
from fastopt.optim import NonFiniteGradientError

COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.rank, COMM.size
SHAPES = [(5, 3), (7,), (2, 2, 2), (1,), (33,)]  # 63 elements: arrays split between ranks
DTYPES = [np.float32, np.float64, np.float32, np.float64, np.float32]


def say(msg: str) -> None:
    if RANK == 0:
        print(msg, flush=True)


def digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def assert_same_everywhere(arrays, what: str) -> None:
    ds = COMM.allgather(digest(arrays))
    assert len(set(ds)) == 1, f"{what}: ranks differ"


def init_params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, DTYPES)]


def grads_of(step, rank, shapes=SHAPES, dtypes=DTYPES, scale=1.0):
    rng = np.random.default_rng(10_000 * step + rank + 1)
    return [(scale * rng.standard_normal(s)).astype(d) for s, d in zip(shapes, dtypes)]


def average(all_grads):
    """((g_0 + g_1) + g_2 ...) / N, per array, in the arrays' dtype."""
    out = []
    for i in range(len(all_grads[0])):
        acc = all_grads[0][i].copy()
        for g in all_grads[1:]:
            acc = acc + g[i]
        out.append(acc / acc.dtype.type(len(all_grads)))
    return out


def compare(got, want, exact: bool, what: str) -> None:
    for i, (a, b) in enumerate(zip(got, want)):
        if exact:
            assert a.tobytes() == b.tobytes(), (
                f"{what}: array {i} differs by {np.abs(a.astype(float) - b).max()} (want exact)"
            )
        else:
            tol = 1e-4 if a.dtype == np.float32 else 1e-11
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=what)


CASES = [
    (fastopt.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (fastopt.Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    (fastopt.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
    (fastopt.Adam, dict(lr=0.05, amsgrad=True, weight_decay=0.01)),
    (fastopt.AdamW, dict(lr=0.05, betas=(0.8, 0.99))),
]


def groups_of(params, cls):
    """Two parameter groups (list-given), the second with other options and a schedule."""
    sched = fastopt.schedules.warmup_cosine(0.02, 2, 10)
    return [{"params": params[:2]}, {"params": params[2:], "lr": sched}]


def check_allreduce() -> None:
    for order in ("mpi", "rank"):
        for bucket in (None, 64, 24):  # 24 bytes: 3 doubles / 6 floats: arrays split
            base = grads_of(0, RANK)
            base[0] = np.asfortranarray(base[0])  # non-contiguous is fine here
            g = [x.copy() for x in base]
            allreduce_gradients(g, average=True, bucket_bytes=bucket, order=order)
            want = average([grads_of(0, r) for r in range(SIZE)])
            compare(g, want, order == "rank" or SIZE <= 2, f"allreduce {order} {bucket}")
            assert_same_everywhere(g, "allreduce")
            d = {f"w{i}": x.copy() for i, x in enumerate(base)}
            # insertion order differs between ranks: reduced by sorted key
            d = dict(reversed(list(d.items()))) if RANK % 2 else d
            allreduce_gradients(d, average=False, bucket_bytes=bucket, order=order)
            sums = [x * x.dtype.type(SIZE) for x in want]
            compare([d[f"w{i}"] for i in range(len(base))], sums, False, "sum")
    # bad input on one rank: every rank raises, nothing modified
    for bad, etype in (
        ("shape", ValueError),
        ("dtype", TypeError),
        ("readonly", ValueError),
        ("none", TypeError),
    ):
        if SIZE == 1 and bad == "shape":
            continue  # one rank: nothing to disagree with
        g = grads_of(1, RANK)
        keep = digest(g)
        if RANK == SIZE - 1:
            if bad == "shape":
                g[1] = np.zeros(8, np.float32)
            elif bad == "dtype":
                g[1] = g[1].astype(np.float16)
            elif bad == "none":
                g[1] = None
            else:
                g[1].setflags(write=False)
        try:
            allreduce_gradients(g)
        except etype as e:
            assert bad != "none" or "not supported across ranks" in str(e), e
        else:
            raise AssertionError(f"allreduce_gradients with bad {bad} on one rank did not raise")
        if RANK != SIZE - 1:
            assert digest(g) == keep
    say("ok allreduce_gradients (list, dict, buckets, orders, bad input on one rank)")


def run_pair(cls, options, order, make, steps=6, groups=True, nonfinite_step=None, grad_scale=1.0):
    """Distributed optimizer (``make``) vs single-process reference; returns both."""
    ref_p = init_params()
    ref = cls(groups_of(ref_p, cls) if groups else ref_p, **options)
    mine_p = init_params()
    if RANK != 0:  # broadcast at construction fixes this
        mine_p = [x + 1 for x in mine_p]
    opt = make(cls, groups_of(mine_p, cls) if groups else mine_p, options, order)
    for k in range(steps):
        all_g = [grads_of(k, r, scale=grad_scale) for r in range(SIZE)]
        ref.step(average(all_g))
        opt.step(all_g[RANK])
    return ref, ref_p, opt, mine_p


def make_dp(cls, params, options, order):
    return DistributedOptimizer(cls(params, **options), order=order)


def make_sharded(cls, params, options, order):
    return ShardedOptimizer(cls, params, order=order, **options)


def check_equality() -> None:
    for cls, options in CASES:
        for make in (make_dp, make_sharded):
            for order in ("rank", "mpi"):
                ref, ref_p, opt, mine_p = run_pair(cls, options, order, make)
                what = f"{cls.__name__} {make.__name__} {order}"
                compare(mine_p, ref_p, order == "rank" or SIZE <= 2, what)
                assert_same_everywhere(mine_p, what)
                assert opt.step_count == ref.step_count and opt.last_lr == ref.last_lr, what
                if order == "rank":
                    sd, rsd = opt.state_dict(), ref.state_dict()
                    for nm in rsd["state"]:
                        compare(
                            [sd["state"][nm][k] for k in sorted(rsd["state"][nm])],
                            [rsd["state"][nm][k] for k in sorted(rsd["state"][nm])],
                            True,
                            what + " state",
                        )
                    assert [g["step"] for g in sd["param_groups"]] == [
                        g["step"] for g in rsd["param_groups"]
                    ]
        say(
            f"ok {cls.__name__}: DistributedOptimizer and ShardedOptimizer == single process "
            f"(groups, schedule, mixed dtypes; bit-identical with order='rank'"
            f"{' and mpi' if SIZE <= 2 else ''})"
        )


def check_clipping() -> None:
    clip_cases = [
        dict(max_grad_norm=1.0),
        dict(max_grad_norm=0.5, clip_scope="group"),
        dict(max_grad_norm=2.0, norm_type=float("inf")),
        dict(clip_value=0.3, max_grad_norm=1.5, norm_type=1.0),
    ]
    for extra in clip_cases:
        options = dict(lr=0.05, **extra)
        for make in (make_dp, make_sharded):
            _ref, ref_p, _opt, mine_p = run_pair(fastopt.Adam, options, "rank", make, grad_scale=3)
            # DistributedOptimizer clips the full averaged gradient, as the reference: exact.
            # Sharded: the norm's float64 partial sums are added in another order: the
            # scaling factor may differ in its last bit (float rounding).
            compare(mine_p, ref_p, make is make_dp, f"clip {extra} {make.__name__}")
            assert_same_everywhere(mine_p, "clip")
    say("ok clipping (global norm across ranks, per group, inf and 1-norms, clip_value)")


def check_memory() -> None:
    n = 10_000
    params = [np.zeros(n, np.float32), np.zeros(3 * n + 7, np.float64)]
    full = fastopt.Adam([p.copy() for p in params], amsgrad=True)
    full_bytes = sum(a.nbytes for st in full.state.values() for a in st.values())
    opt = ShardedOptimizer(fastopt.Adam, params, amsgrad=True)
    mine = opt.state_nbytes()
    total = COMM.allreduce(mine)
    assert total == full_bytes, (total, full_bytes)
    assert mine <= full_bytes / SIZE + 3 * 8 * 2, (mine, full_bytes / SIZE)
    elems = sum(b - a for _, a, b in opt.shard)
    assert abs(elems - (4 * n + 7) / SIZE) <= 2
    say(
        f"ok state memory: {mine} bytes on rank 0 of {full_bytes} ({mine / full_bytes:.3f} "
        f"of the whole, 1/{SIZE} = {1 / SIZE:.3f})"
    )


def check_nonfinite() -> None:
    for make in (make_dp, make_sharded):
        for where in range(SIZE):  # the NaN/inf on each rank in turn, in varied arrays
            for policy in ("skip", "raise"):
                params = init_params()
                opt = make(
                    fastopt.Adam,
                    groups_of(params, fastopt.Adam),
                    dict(lr=0.1, nonfinite=policy),
                    "mpi",
                )
                g = grads_of(0, RANK)
                if RANK == where:
                    g[where % len(g)].reshape(-1)[where % 3] = np.nan if where % 2 == 0 else np.inf
                before = digest(params)
                try:
                    opt.step(g)
                except NonFiniteGradientError:
                    assert policy == "raise"
                else:
                    assert policy == "skip", "a NaN on one rank did not raise"
                    assert opt.skipped_steps == 1 and opt.last_step_skipped
                assert digest(params) == before and opt.step_count == 0
                opt.step(grads_of(1, RANK))  # the next step works everywhere
                assert opt.step_count == 1 and not opt.last_step_skipped
                assert_same_everywhere(params, "after nonfinite")
    say(
        "ok non-finite gradient on one rank: every rank skips / raises "
        "NonFiniteGradientError, nothing updated, next step works"
    )


def check_bad_input() -> None:
    for make in (make_dp, make_sharded):
        params = init_params()
        opt = make(fastopt.Adam, {f"w{i}": p for i, p in enumerate(params)}, dict(lr=0.1), "mpi")
        for bad, etype in (
            ("shape", ValueError),
            ("dtype", TypeError),
            ("missing", ValueError),
            ("none", TypeError),
            ("list", TypeError),
        ):
            g = {f"w{i}": x for i, x in enumerate(grads_of(0, RANK))}
            if RANK == SIZE - 1:
                if bad == "shape":
                    g["w1"] = np.zeros(6, np.float64)
                elif bad == "dtype":
                    g["w1"] = g["w1"].astype(np.float32)
                elif bad == "missing":
                    del g["w2"]
                elif bad == "none":
                    g["w0"] = None
                else:
                    g["w0"] = g["w0"].tolist()
            before = digest(params)
            try:
                opt.step(g)
            except etype as e:
                assert bad != "none" or "not supported across ranks" in str(e), e
            else:
                raise AssertionError(f"bad {bad} on one rank: no {etype.__name__}")
            assert digest(params) == before and opt.step_count == 0
        opt.step({f"w{i}": x for i, x in enumerate(grads_of(0, RANK))})
        assert opt.step_count == 1
        assert_same_everywhere(params, "after bad input")
        if make is make_sharded:
            # a single-process state_dict whose parameters have different step counts (a
            # None gradient there) cannot be sharded: refused on every rank, nothing changed
            solo = fastopt.Adam({f"w{i}": p.copy() for i, p in enumerate(params)}, lr=0.1)
            solo.step({f"w{i}": (x if i else None) for i, x in enumerate(grads_of(0, 0))})
            before = (digest(params), repr(opt.state_dict()))
            try:
                opt.load_state_dict(solo.state_dict())
            except ValueError as e:
                assert "differs between the parameters" in str(e), e
            else:
                raise AssertionError("per-parameter step counts were not refused")
            assert (digest(params), repr(opt.state_dict())) == before
    # construction with a different layout on one rank
    p = [np.zeros(4 if RANK == SIZE - 1 and SIZE > 1 else 3)]
    for ctor in (
        lambda: ShardedOptimizer(fastopt.SGD, p),
        lambda: DistributedOptimizer(fastopt.SGD(p)),
    ):
        try:
            ctor()
        except ValueError:
            pass
        else:
            assert SIZE == 1, "different shapes on one rank were not detected"
    say(
        "ok bad input on one rank: every rank raises the single-process type "
        "(ValueError/TypeError), nothing updated, next step works"
    )


def check_hooks_and_delegation() -> None:
    params = init_params()
    seen = []
    for make in (make_dp, make_sharded):
        opt = make(fastopt.SGD, params, dict(lr=0.1), "mpi")
        h = opt.register_step_post_hook(lambda o, g: seen.append(o.step_count))
        opt.step(grads_of(0, RANK))
        h.remove()
        opt.step(grads_of(1, RANK))
        opt.param_groups[0]["lr"] = 0.5
        opt.step(grads_of(2, RANK))
        assert opt.last_lr == [0.5], opt.last_lr
    assert seen == [1, 1], seen
    a = {"x": np.full(3, float(RANK)), "y": np.full((2, 2), RANK, np.float32)}
    broadcast_parameters(a, root=SIZE - 1)
    assert np.all(a["x"] == SIZE - 1) and np.all(a["y"] == SIZE - 1)
    say("ok hooks, param_groups edits, last_lr, broadcast_parameters")


def check_tiny() -> None:
    """Fewer elements than ranks: some ranks own nothing of a group (a 0-size stand-in keeps
    the inner optimizer's groups aligned); still equal to one process, save/load works."""
    d = COMM.bcast(tempfile.mkdtemp(prefix="fastopt-mpi-") if RANK == 0 else None)

    def make(seed):
        ps = [np.full(2, 0.5, np.float32), np.full(1, -1.0, np.float64)]
        groups = [{"params": ps[:1]}, {"params": ps[1:], "lr": 0.3, "momentum": 0.5}]
        return ps, groups

    ref_p, ref_groups = make(0)
    ref = fastopt.SGD(ref_groups, lr=0.1, momentum=0.9)
    ps, groups = make(0)
    opt = ShardedOptimizer(fastopt.SGD, groups, order="rank", lr=0.1, momentum=0.9)
    for k in range(3):
        g = [np.full(2, 0.1 * (k + r + 1), np.float32) for r in range(SIZE)]
        h = [np.full(1, -0.2 * (k + r + 1), np.float64) for r in range(SIZE)]
        ref.step(average([[a, b] for a, b in zip(g, h)]))
        opt.step([g[RANK], h[RANK]])
    compare(ps, ref_p, True, "tiny")
    fastopt.save(os.path.join(d, "tiny.npz"), opt)
    ps2, groups2 = make(1)
    opt2 = ShardedOptimizer(fastopt.SGD, groups2, lr=0.1, momentum=0.9)
    fastopt.load(os.path.join(d, "tiny.npz"), opt2)
    compare(ps2, ref_p, True, "tiny load")
    sd, rsd = opt2.state_dict(), ref.state_dict()
    for nm in rsd["state"]:
        compare(
            [sd["state"][nm]["momentum_buffer"]],
            [rsd["state"][nm]["momentum_buffer"]],
            True,
            "tiny state",
        )
    # DistributedOptimizer.add_param_group: collective, broadcast from rank 0
    w = [np.zeros(3)]
    dopt = DistributedOptimizer(fastopt.SGD(w, lr=0.1))
    extra = np.full(4, float(RANK))
    dopt.add_param_group({"params": [extra], "lr": 0.5})
    assert np.all(extra == 0.0)
    dopt.step([np.ones(3), np.full(4, float(RANK))])
    assert_same_everywhere([w[0], extra], "add_param_group")
    assert np.allclose(extra, -0.5 * (SIZE - 1) / 2)
    say("ok fewer elements than ranks (empty shards), add_param_group")


def check_backends() -> None:
    """Every backend, every optimizer: the shard's update (slices of arrays, 0-size
    stand-ins for groups with no element on a rank) is bit-identical to one process."""
    for be in fastopt.available_backends():
        for cls, kw in [
            (fastopt.Adam, dict(amsgrad=True)),
            (fastopt.RMSprop, dict(centered=True, momentum=0.5)),
            (fastopt.Adagrad, {}),
            (fastopt.SGD, dict(momentum=0.9)),
        ]:

            def build(ps):
                return [{"params": ps[:1]}, {"params": ps[1:2], "lr": 0.3}, {"params": ps[2:]}]

            ps = [
                np.full(2, 0.5, np.float32),
                np.full(1, -1.0, np.float64),
                np.ones((3, 3), np.float32),
            ]
            ref_p = [p.copy() for p in ps]
            opt = ShardedOptimizer(cls, build(ps), backend=be, order="rank", lr=0.1, **kw)
            ref = cls(build(ref_p), backend=be, lr=0.1, **kw)
            for k in range(3):
                g = [
                    [np.full(p.shape, 0.1 * (k + q + 1), p.dtype) for p in ps] for q in range(SIZE)
                ]
                opt.step(g[RANK])
                ref.step(average(g))
            compare(ps, ref_p, True, f"{be} {cls.__name__}")
    say(f"ok backends {fastopt.available_backends()}: sharded updates bit-identical")


def check_checkpoint_same_size() -> None:
    d = COMM.bcast(tempfile.mkdtemp(prefix="fastopt-mpi-") if RANK == 0 else None)
    for make in (make_dp, make_sharded):
        path = os.path.join(d, f"{make.__name__}.npz")
        ref, ref_p, opt, _mine_p = run_pair(fastopt.Adam, dict(lr=0.05), "rank", make, steps=3)
        fastopt.save(path, opt)
        single = fastopt.Adam(groups_of(init_params(5), fastopt.Adam), lr=0.05)
        fastopt.load(path, single)  # every rank: the file is the single-process format
        compare([p for g in single.param_groups for p in g["params"]], ref_p, True, "load 1")
        params2 = init_params(7)
        opt2 = make(fastopt.Adam, groups_of(params2, fastopt.Adam), dict(lr=0.05), "rank")
        fastopt.load(path, opt2)
        for k in range(3, 5):
            all_g = [grads_of(k, r) for r in range(SIZE)]
            ref.step(average(all_g))
            opt2.step(all_g[RANK])
        compare(params2, ref_p, True, f"resume {make.__name__}")
        assert_same_everywhere(params2, "resume")
        try:  # a missing file: every rank raises
            fastopt.load(os.path.join(d, "missing.npz"), opt2)
        except FileNotFoundError:
            pass
        else:
            raise AssertionError("no FileNotFoundError")
        other = make(fastopt.SGD, init_params(), dict(lr=0.1), "mpi")
        try:  # wrong optimizer kind: CheckpointError everywhere
            fastopt.load(path, other)
        except fastopt.checkpoint.CheckpointError:
            pass
        else:
            raise AssertionError("no CheckpointError")
    say("ok checkpoints: save/load collective, single-process format, errors on every rank")


def check_training() -> None:
    """Linear least squares, the data split between ranks: the distributed runs follow
    the single-process full-batch run (same mean gradient) and the loss falls."""
    rng = np.random.default_rng(42)
    n, d = 64 * 4, 10
    x = rng.standard_normal((n, d))
    y = x @ rng.standard_normal(d) + 0.01 * rng.standard_normal(n)
    mine = slice(RANK * n // SIZE, (RANK + 1) * n // SIZE)

    def grad(w, xs, ys):
        return [2 * xs.T @ (xs @ w[0] - ys) / len(ys)]

    w_ref = [np.zeros(d)]
    ref = fastopt.Adam(w_ref, lr=0.2)
    runs = []
    for make in (make_dp, make_sharded):
        w = [np.zeros(d)]
        runs.append((make(fastopt.Adam, w, dict(lr=0.2), "mpi"), w))
    loss0 = float(np.mean((x @ w_ref[0] - y) ** 2))
    for _ in range(60):
        ref.step(grad(w_ref, x, y))
        for opt, w in runs:
            opt.step(grad(w, x[mine], y[mine]))
    loss = float(np.mean((x @ w_ref[0] - y) ** 2))
    assert loss < 0.01 * loss0, (loss0, loss)
    for _, w in runs:
        np.testing.assert_allclose(w[0], w_ref[0], rtol=1e-6, atol=1e-8)
        assert_same_everywhere(w, "training")
    say(f"ok training run: loss {loss0:.3g} -> {loss:.3g} in 60 steps, equal to one process")


if __name__ == "__main__":
    only = sys.argv[1:]
    checks = [
        check_allreduce,
        check_equality,
        check_clipping,
        check_memory,
        check_nonfinite,
        check_bad_input,
        check_hooks_and_delegation,
        check_tiny,
        check_backends,
        check_checkpoint_same_size,
        check_training,
    ]
    for check in checks:
        if not only or check.__name__ in only:
            check()
            COMM.Barrier()
    say(f"ALL OK on {SIZE} ranks")
