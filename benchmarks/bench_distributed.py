"""Step time and per-rank memory of fastopt.distributed on 1, 2, 4 ranks, plus an α-β model.

    python benchmarks/bench_distributed.py                 # launches mpiexec -n 1, 2, 4
    python benchmarks/bench_distributed.py --params 4e6 --steps 20 --ranks 1,2,4

For each rank count it runs (float32 Adam, ``--params`` elements in 8 arrays):

* ``Adam``: the single-process optimizer (1 rank only): the baseline;
* ``allreduce``: ``allreduce_gradients`` alone (the communication of data parallelism);
* ``DistributedOptimizer``: average + full Adam step on every rank;
* ``ShardedOptimizer``: reduce-scatter + Adam on 1/size of the elements + all-gather
  (``order="mpi"`` and ``"rank"``).

Step time = median over ``--steps`` steps of the slowest rank's time (a barrier before
each step).  Memory = bytes of optimizer state on rank 0 and of fastopt.distributed's own
buffers (counted from the arrays).  Every figure in the first table is measured on this machine; the
second table is the α-β model (see ``model``), with its constants stated.

Not collected by ``make bench`` as a benchmark (no test functions); a script.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


# ----------------------------------------------------------------------------- worker
def worker(nparams: int, steps: int) -> None:
    from mpi4py import MPI

    import fastopt
    from fastopt.distributed import DistributedOptimizer, ShardedOptimizer, allreduce_gradients

    comm = MPI.COMM_WORLD
    rank, size = comm.rank, comm.size
    sizes = [nparams // 8 + (1 if i < nparams % 8 else 0) for i in range(8)]
    rng = np.random.default_rng(rank)
    grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    results = {}

    def timeit(fn):
        fn()  # warm-up (allocations, first-touch)
        times = []
        for _ in range(steps):
            comm.Barrier()
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            times.append(comm.allreduce(dt, op=MPI.MAX))
        return float(np.median(times))

    def state_bytes(opt):
        st = opt.state
        return int(sum(a.nbytes for s in st.values() for a in s.values()))

    def extra_bytes(opt):
        """fastopt.distributed's own buffers (flat gradient buffers, shard, scratch)."""
        seen, total = set(), 0
        for attr in ("_flat", "_grad_shard", "_scratch"):
            for v in getattr(opt, "__dict__", {}).get(attr, {}).values():
                a = v[2] if isinstance(v, tuple) else v
                if id(a) not in seen:
                    seen.add(id(a))
                    total += a.nbytes
        return total

    def record(name, fn, opt=None):
        t = timeit(fn)
        results[name] = {
            "time": t,
            "state": state_bytes(opt) if opt is not None else 0,
            "extra": extra_bytes(opt) if opt is not None else 0,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }

    def params():
        return [np.zeros(n, np.float32) for n in sizes]

    def run(name, opt, g=grads):
        record(name, lambda: opt.step(g), opt)

    if size == 1:
        run("Adam", fastopt.Adam(params(), lr=1e-3))
    g2 = [g.copy() for g in grads]
    record("allreduce", lambda: allreduce_gradients(g2))
    run("DistributedOptimizer", DistributedOptimizer(fastopt.Adam(params(), lr=1e-3)))
    for order in ("mpi", "rank"):
        run(
            f"ShardedOptimizer[{order}]",
            ShardedOptimizer(fastopt.Adam, params(), lr=1e-3, order=order),
        )
    if rank == 0:
        print(
            "RESULT " + json.dumps({"ranks": size, "params": nparams, "results": results}),
            flush=True,
        )


# ----------------------------------------------------------------------------- model
def model(
    P: float,
    p: int,
    *,
    bytes_per: int = 4,
    alpha: float = 5e-6,
    bandwidth: float = 12.5e9,
    adam_ns: float = 0.32,
    add_ns: float = 0.15,
    state_per: int = 8,
) -> dict:
    """α-β cost of one step for ``P`` float parameters on ``p`` ranks (seconds, bytes),
    with the reduction's arithmetic as a γ term.

    ``n = bytes_per * P`` bytes of gradients (and of parameters), ``β = 1/bandwidth``,
    ``γ = add_ns`` per element addition.  Reduce-scatter (recursive halving or ring):
    ``log2(p) α + (p-1)/p · n β + (p-1)/p · P γ``; all-gather:
    ``log2(p) α + (p-1)/p · n β``.

    * ``DistributedOptimizer``: allreduce = reduce-scatter + all-gather of the gradients
      (``2 log2(p) α + 2 (p-1)/p n β + (p-1)/p P γ``), then the optimizer over all ``P``
      elements (``adam_ns`` per element); state ``state_per · P`` per rank.
    * ``ShardedOptimizer`` (ZeRO-1): reduce-scatter of the gradients + all-gather of the
      parameters: the same communication, and the optimizer over ``P/p`` elements; state
      ``state_per · P / p``.
    * ``order="rank"``: the reduce-scatter is an Alltoall (``(p-1) α``, not
      ``log2(p) α``; the same bytes, the same additions, done by NumPy in rank order) and
      one more gradient-sized receive buffer.

    Extra buffers: what fastopt.distributed allocates besides the caller's parameters and
    gradients (the flat gradient buffer, the shard's gradient; for ``"rank"`` also the
    Alltoall receive buffer).
    """
    n = bytes_per * P
    lg = math.log2(p) if p > 1 else 0.0
    vol = 2 * (p - 1) / p * n / bandwidth + (p - 1) / p * P * add_ns * 1e-9
    return {
        "DistributedOptimizer": dict(
            comm=2 * lg * alpha + vol, step=P * adam_ns * 1e-9, state=state_per * P, extra=n
        ),
        "ShardedOptimizer[mpi]": dict(
            comm=2 * lg * alpha + vol,
            step=P / p * adam_ns * 1e-9,
            state=state_per * P / p,
            extra=n + n / p,
        ),
        "ShardedOptimizer[rank]": dict(
            comm=(lg + p - 1) * alpha + vol,
            step=P / p * adam_ns * 1e-9,
            state=state_per * P / p,
            extra=2 * n + n / p,
        ),
    }


def fmt_t(t):
    return f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.2f} s"


def fmt_b(b):
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= k:
            return f"{b / k:.1f} {unit}"
    return f"{b:.0f} B"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", type=float, default=4e6)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--ranks", default="1,2,4")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(int(a.params), a.steps)
        return
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    if not os.path.exists(mpiexec):
        mpiexec = "mpiexec"
    env = dict(os.environ, FASTOPT_NUM_THREADS="1", OMP_NUM_THREADS="1")
    rows = []
    for n in [int(x) for x in a.ranks.split(",")]:
        cmd = [
            mpiexec,
            "-n",
            str(n),
            sys.executable,
            "-m",
            "mpi4py",
            str(HERE),
            "--worker",
            "--params",
            str(a.params),
            "--steps",
            str(a.steps),
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if out.returncode or not line:
            sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
        rows.append(json.loads(line[0][7:]))
    P = int(a.params)
    cpus = len(os.sched_getaffinity(0))
    print(
        f"Measured: {P:.3g} float32 parameters (8 arrays), Adam, {a.steps} steps, median "
        f"of the slowest rank; {cpus} CPUs, 1 kernel thread per rank, MPICH shared memory"
        f" (ranks > CPUs are oversubscribed).\n"
    )
    print("| ranks | optimizer | step time | optimizer state per rank | extra buffers per rank |")
    print("|---|---|---|---|---|")
    for row in rows:
        for name, r in row["results"].items():
            print(
                f"| {row['ranks']} | {name} | {fmt_t(r['time'])} | {fmt_b(r['state'])} | "
                f"{fmt_b(r['extra'])} |"
            )
    rss = ", ".join(
        f"{max(x['rss_mb'] for x in r['results'].values()):.0f} MB on {r['ranks']}" for r in rows
    )
    print(
        f"\n(state and buffers: bytes of the arrays on rank 0, counted; peak RSS of rank 0 "
        f"over the whole run: {rss} rank(s))"
    )
    print(
        "\nModelled (α-β, not measured): 64 ranks × 1e9 float32 parameters, α = 5 µs, "
        "B = 12.5 GB/s per rank (100 Gb/s network; assumed), Adam 0.32 ns/element (measured "
        "here: the 1.6e7-element native step, benchmarks/README.md), γ = 0.15 ns per addition "
        "(assumed: 12 bytes at ~80 GB/s).\n"
    )
    print(
        "| optimizer | communication | optimizer step | total | state per rank | "
        "extra buffers per rank |"
    )
    print("|---|---|---|---|---|---|")
    for name, m in model(1e9, 64).items():
        print(
            f"| {name} | {fmt_t(m['comm'])} | {fmt_t(m['step'])} | "
            f"{fmt_t(m['comm'] + m['step'])} | {fmt_b(m['state'])} | {fmt_b(m['extra'])} |"
        )


if __name__ == "__main__":
    main()
