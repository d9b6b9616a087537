"""Resharding round trips: one leg of a run that is saved and resumed on other rank counts.

    python tests/mpi/reshard.py --kind plain --phases 4:2 --save A
    mpiexec -n 4 python -m mpi4py tests/mpi/reshard.py --kind sharded --phases 4:2,4:2 \
        --load A --save B
    mpiexec -n 2 python -m mpi4py tests/mpi/reshard.py --kind dp --phases 4:2,4:2,2:2 --load B ...

``--phases`` is the run's history, ``ranks:steps`` per leg, this leg last: the script
replays the whole history with single-process optimizers (fed the rank-order average of
the ranks' gradients) and checks that the loaded-and-continued optimizers (``plain``: a
single-process optimizer fed the same averages) hold bit-identical parameters, state and
counters (``order="rank"``).  Two optimizers per leg: Adam (two groups, a schedule,
float32 and float64) and SGD with momentum.  Rank 0 prints ``RESHARD OK``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import fastopt

SHAPES = [(6, 5), (3,), (17,), (2, 2)]
DTYPES = [np.float32, np.float64, np.float32, np.float64]


def params(seed):
    rng = np.random.default_rng(seed)
    return {
        f"p{i}": rng.standard_normal(s).astype(d) for i, (s, d) in enumerate(zip(SHAPES, DTYPES))
    }


def grads(step, rank):
    rng = np.random.default_rng(7919 * step + rank)
    return {
        f"p{i}": rng.standard_normal(s).astype(d) for i, (s, d) in enumerate(zip(SHAPES, DTYPES))
    }


def average(step, nranks):
    all_g = [grads(step, r) for r in range(nranks)]
    out = {}
    for k in all_g[0]:
        acc = all_g[0][k].copy()
        for g in all_g[1:]:
            acc = acc + g[k]
        out[k] = acc / acc.dtype.type(nranks)
    return out


def make_args(ps, which):
    if which == "adam":
        sched = fastopt.schedules.warmup_cosine(0.05, 3, 20)
        groups = [
            {"params": {k: ps[k] for k in ("p0", "p1")}},
            {"params": {k: ps[k] for k in ("p2", "p3")}, "lr": sched, "weight_decay": 0.01},
        ]
        return fastopt.Adam, groups, dict(lr=0.02, amsgrad=True)
    return fastopt.SGD, ps, dict(lr=0.01, momentum=0.9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["plain", "dp", "sharded"], required=True)
    ap.add_argument("--phases", required=True)
    ap.add_argument("--load")
    ap.add_argument("--save")
    a = ap.parse_args()
    phases = [tuple(int(x) for x in ph.split(":")) for ph in a.phases.split(",")]
    start = sum(n for _, n in phases[:-1])
    nranks, nsteps = phases[-1]
    if a.kind == "plain":
        rank, size, comm = 0, 1, None
    else:
        from mpi4py import MPI

        from fastopt.distributed import DistributedOptimizer, ShardedOptimizer

        comm = MPI.COMM_WORLD
        rank, size = comm.rank, comm.size
        assert size == nranks, f"--phases says {nranks} ranks, running on {size}"
    for which in ("adam", "sgd"):
        # the reference: the whole history, single process
        ref_p = params(0)
        cls, groups, opts = make_args(ref_p, which)
        ref = cls(groups, **opts)
        k = 0
        for pr, n in phases:
            for _ in range(n):
                ref.step(average(k, pr))
                k += 1
        # this leg: load (into other initial values), continue, compare
        mine_p = params(1 + rank) if a.load else params(0)
        cls, groups, opts = make_args(mine_p, which)
        if a.kind == "plain":
            opt = cls(groups, **opts)
        elif a.kind == "dp":
            opt = DistributedOptimizer(cls(groups, **opts), order="rank")
        else:
            opt = ShardedOptimizer(cls, groups, order="rank", **opts)
        if a.load:
            fastopt.load(f"{a.load}-{which}.npz", opt)
            assert opt.step_count == start, (opt.step_count, start)
        else:
            assert start == 0, "the first leg must not have earlier phases"
        for k in range(start, start + nsteps):
            opt.step(average(k, nranks) if a.kind == "plain" else grads(k, rank))
        for name in ref_p:
            assert mine_p[name].tobytes() == ref_p[name].tobytes(), (
                f"{which}: parameter {name} differs after {a.phases} ({a.kind})"
            )
        sd, rsd = opt.state_dict(), ref.state_dict()
        assert sd["step_count"] == rsd["step_count"] and sd["last_lr"] == rsd["last_lr"]
        for name, st in rsd["state"].items():
            for key, arr in st.items():
                assert sd["state"][name][key].tobytes() == arr.tobytes(), (
                    f"{which}: state {key} of {name} differs after {a.phases} ({a.kind})"
                )
        if a.save:
            fastopt.save(f"{a.save}-{which}.npz", opt)
    if rank == 0:
        print(f"RESHARD OK {a.kind} on {size} ranks after {a.phases}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
