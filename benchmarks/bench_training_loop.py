"""A real training loop: NumPy MLP forward + backward (multithreaded BLAS) + optimizer step.

One benchmark group, "training loop", one benchmark per way of doing the step, all on the
same model, batch and gradients (an MLP 512-1024-512-256-10, 1.18e6 float32 parameters,
batch 128: big enough that OpenBLAS runs its matmuls on its threads):

  none           forward + backward only (what the step adds is measured against this)
  fastopt        ``fastopt.Adam(..., nonfinite="ignore")`` (like PyTorch: no NaN/inf check)
  fastopt-raise  ``fastopt.Adam`` with its default finiteness check
  probe          ``fastopt._native.probe_many`` at the place of the step: reads and writes
                 the bytes of Adam's step (params, exp_avg, exp_avg_sq written, grads read)
                 with no arithmetic, same threads and chunking (it writes sums, so it
                 works on a copy of the parameters, not on the model's)
  torch-fused    ``torch.optim.Adam(fused=True)`` over tensors that share the NumPy arrays
  numpy          the hand-written NumPy Adam update a user writes without fastopt

torch is imported before fastopt (the order the issue asks for; since fastopt loads no
OpenMP runtime the order no longer matters).  In the loop, the optimizer's step meets cold
caches and BLAS threads that have just finished; the probe sees the same, so "step added /
probe added" is the number to look at, not an isolated warm-cache step.

pytest-benchmark (``make bench`` collects this file)::

    python -m pytest benchmarks/bench_training_loop.py --benchmark-only

Script mode, the interleaved table of benchmarks/README.md (loop median, time added by the
step = paired difference to ``none`` in the same repetition, median over repetitions)::

    python benchmarks/bench_training_loop.py [--reps 40] [--iters 5] [--batch 128]
"""

import argparse
import os
import platform
import random
import sys
import time

import numpy as np
import pytest

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

import itertools

import fastopt

try:
    from fastopt import _native
except ImportError:  # pragma: no cover
    _native = None

LAYERS = (512, 1024, 512, 256, 10)
IMPLS = ["none", "fastopt", "fastopt-raise", "probe", "torch-fused", "numpy"]


class MLP:
    """ReLU MLP with MSE loss; ``grads`` are preallocated and rewritten by ``backward``."""

    def __init__(self, batch, seed=0):
        rng = np.random.default_rng(seed)
        self.params, self.grads = [], []
        for fan_in, fan_out in itertools.pairwise(LAYERS):
            w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
            b = np.zeros(fan_out, np.float32)
            self.params += [w, b]
            self.grads += [np.zeros_like(w), np.zeros_like(b)]
        self.x = rng.standard_normal((batch, LAYERS[0])).astype(np.float32)
        self.y = rng.standard_normal((batch, LAYERS[-1])).astype(np.float32)

    @property
    def size(self):
        return sum(p.size for p in self.params)

    def forward_backward(self):
        acts, h = [self.x], self.x
        n = len(self.params) // 2
        for i in range(n):
            z = h @ self.params[2 * i]
            z += self.params[2 * i + 1]
            if i < n - 1:
                np.maximum(z, 0, out=z)
            acts.append(z)
            h = z
        d = (h - self.y) * np.float32(2.0 / h.size)
        for i in reversed(range(n)):
            np.matmul(acts[i].T, d, out=self.grads[2 * i])
            np.sum(d, axis=0, out=self.grads[2 * i + 1])
            if i:
                d = d @ self.params[2 * i].T
                d *= acts[i] > 0


def _numpy_adam(params, grads):
    """The NumPy Adam a user writes (bench_optimizers.py's, bias-corrected)."""
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    t = [0]

    def step():
        t[0] += 1
        for p, g, m, v in zip(params, grads, ms, vs):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            mhat = m / (1 - 0.9 ** t[0])
            vhat = v / (1 - 0.999 ** t[0])
            p -= 1e-3 * mhat / (np.sqrt(vhat) + 1e-8)

    return step


def make_step(impl, model):
    """A zero-argument callable doing the step of ``impl`` on ``model``; None if unavailable."""
    ps, gs = model.params, model.grads
    if impl == "none":
        return lambda: None
    if impl in ("fastopt", "fastopt-raise"):
        extra = {"nonfinite": "ignore"} if impl == "fastopt" else {}
        opt = fastopt.Adam(ps, lr=1e-3, **extra)
        return lambda: opt.step(gs)
    if impl == "probe":
        if _native is None:
            return None
        # the probe writes sums, so its "params" are copies (one array the loop did not just
        # read: if anything, the probe is a little slower than a step on the real params)
        slots = [
            [p.copy() for p in ps],
            [np.zeros_like(p) for p in ps],
            [np.zeros_like(p) for p in ps],
            gs,
        ]
        return lambda: _native.probe_many(slots, 3)
    if impl == "torch-fused":
        if torch is None:
            return None
        tps = [torch.nn.Parameter(torch.from_numpy(p)) for p in ps]  # same memory
        for tp, g in zip(tps, gs):
            tp.grad = torch.from_numpy(g)
        try:
            topt = torch.optim.Adam(tps, lr=1e-3, fused=True)
        except (RuntimeError, TypeError, ValueError):  # pragma: no cover - old torch
            return None
        return topt.step
    if impl == "numpy":
        return _numpy_adam(ps, gs)
    raise ValueError(impl)


def _setup_threads(n):
    fastopt.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


@pytest.mark.parametrize("impl", IMPLS)
def test_training_loop(benchmark, impl):
    model = MLP(128)
    _setup_threads(fastopt.get_num_threads())
    step = make_step(impl, model)
    if step is None:
        pytest.skip(f"{impl} not available (needs the compiled extension or PyTorch)")

    def loop():
        model.forward_backward()
        step()

    loop()
    benchmark.group = "training loop"
    benchmark.extra_info.update(
        impl=impl,
        parameters=model.size,
        batch=128,
        threads=fastopt.get_num_threads(),
        torch_threads=torch.get_num_threads() if torch else 0,
    )
    benchmark(loop)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=40, help="interleaved repetitions")
    ap.add_argument("--iters", type=int, default=5, help="loop iterations per block")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=fastopt.get_num_threads())
    ap.add_argument("--impls", default=",".join(IMPLS))
    a = ap.parse_args(argv)
    _setup_threads(a.threads)
    model = MLP(a.batch)
    impls = [i for i in a.impls.split(",") if i]
    if "none" not in impls:
        impls.insert(0, "none")
    steps = {i: make_step(i, model) for i in impls}
    steps = {i: s for i, s in steps.items() if s is not None}
    loop_t = {i: [] for i in steps}
    added = {i: [] for i in steps}
    rng = random.Random(0)
    for i in steps:  # warm-up: state allocation, first touches
        for _ in range(3):
            model.forward_backward()
            steps[i]()
    for _ in range(a.reps):
        order = list(steps)
        rng.shuffle(order)
        block = {}
        for i in order:
            s = steps[i]
            ts = []
            for _ in range(a.iters):
                t0 = time.perf_counter()
                model.forward_backward()
                s()
                ts.append(time.perf_counter() - t0)
            block[i] = float(np.median(ts))
            loop_t[i] += ts
        for i in steps:
            added[i].append(block[i] - block["none"])
    med = {i: float(np.median(v)) for i, v in loop_t.items()}
    add = {i: float(np.median(v)) for i, v in added.items()}
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, "
        f"torch {torch.__version__ if torch else '-'}; threads: fastopt "
        f"{fastopt.get_num_threads()}, torch {torch.get_num_threads() if torch else '-'}; "
        f"MLP {'-'.join(map(str, LAYERS))} ({model.size / 1e6:.2f}e6 params), batch {a.batch}; "
        f"{a.reps} interleaved repetitions x {a.iters} iterations"
    )
    print()
    print(
        "| step | loop (median) | added by the step | added / probe added "
        "| added / torch fused added |"
    )
    print("|---|---|---|---|---|")
    for i in steps:
        rp = add[i] / add["probe"] if "probe" in add and add["probe"] > 0 else float("nan")
        rt = (
            add[i] / add["torch-fused"]
            if "torch-fused" in add and add["torch-fused"] > 0
            else float("nan")
        )
        print(
            f"| {i} | {med[i] * 1e3:.3f} ms | {add[i] * 1e6:.0f} us | {rp:.2f} | {rt:.2f} |"
            if i != "none"
            else f"| none (forward + backward) | {med[i] * 1e3:.3f} ms | - | - | - |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
