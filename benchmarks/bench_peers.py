#!/usr/bin/env python3
"""fastopt vs its peers: PyTorch fused, DeepSpeed's CPUAdam and Optax under ``jax.jit``.

A standalone script (``make bench-peers``), not a pytest module: ``benchmarks/conftest.py``
lists it in ``collect_ignore`` so ``make bench`` never imports it, and ``make test`` only
looks in ``tests/``.  The peers are optional: a contender whose package is missing, whose
op does not build, or whose result disagrees with fastopt's is left out of the table with
the reason printed (the rest still run).

Contenders, Adam and AdamW, float32, torch's semantics and hyperparameters
(lr=1e-3, betas=(0.9, 0.999), eps=1e-8; weight_decay 0 for Adam, 1e-2 for AdamW):

  fastopt        ``fastopt.Adam/AdamW(backend="native", nonfinite="ignore")``: one
                 ``opt.step(grads)`` (no finiteness check, like every peer)
  fastopt-raise  the same with fastopt's default ``nonfinite="raise"``
  torch-fused    ``torch.optim.Adam/AdamW(fused=True)``; ``opt.step()`` (grads in ``.grad``)
  deepspeed      ``deepspeed.ops.adam.DeepSpeedCPUAdam(bias_correction=True,
                 adamw_mode=<AdamW>, fp32_optimizer_states=True)`` with the same
                 weight_decay: torch's L2 (Adam) or decoupled (AdamW) semantics.  Its op is
                 JIT-built with ninja on first use (-O3 -march=native -fopenmp); the parent
                 process builds/loads it once before the runs, into ``$TORCH_EXTENSIONS_DIR``
                 (the Makefile keeps it in ``.benchmarks/torch_extensions``)
  optax          ``optax.adam`` / ``optax.adamw(weight_decay=wd)`` (Optax's AdamW default
                 decay is 1e-4, so it is passed), update + ``optax.apply_updates`` in one
                 ``jax.jit`` with ``donate_argnums=(0, 1)`` (params and optimizer state
                 donated: XLA writes the new params/moments into the old buffers); a step
                 ends with ``block_until_ready`` on the new params (all outputs of one XLA
                 execution become ready together), so no asynchronous dispatch is hidden
  probe          ``fastopt._native.probe_many`` over params, exp_avg, exp_avg_sq (written)
                 and grads (read): the 28 bytes/element of an Adam step with no arithmetic,
                 same ISA, threads and chunking as fastopt (as in bench_optimizers.py)

Cases: one array of 1e3, 1e5, 1e6, 1.6e7 elements and 1000 arrays of 1e3 (one parameter
group).  Threads: each thread count N runs in its own child process, because XLA sizes its
thread pool and OpenMP its team when they start: ``OMP_NUM_THREADS=N`` (DeepSpeed's
``#pragma omp parallel for``), ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=N``, ``torch.set_num_threads(N)``,
``fastopt.set_num_threads(N)``.  XLA's CPU client (jaxlib 0.10.2) ignores those flags for
these element-wise fusions: it sizes its pool from the CPUs the process may run on and
splits a large fusion over several pool threads (per-thread CPU time in /proc showed 4
threads busy at 1.6e7 with the flags set, one when pinned).  So when N is below the number
of CPUs the child is pinned to the first N of them (``sched_setaffinity``), for every
contender alike; with N = all CPUs nothing is pinned.  The second table shows, per
contender, the process CPU time divided by wall time while it ran (cores it kept busy; less
than N when the shared machine starves the process).

Agreement check, before any timing, for every case and thread count: every contender
starts from the same params and grads, takes 5 steps, and its params, exp_avg and
exp_avg_sq are compared with fastopt's (``nonfinite="ignore"``) elementwise:

    |x - x_fastopt| <= A * ulp(x_fastopt) + B * scale

scale = ``|p_fastopt - p0|`` (the update fastopt made) for params, ``|x_fastopt|`` for the
moments.  ``fastopt-raise``: A = B = 0 (bit-identical: the same kernel).  ``torch-fused``:
A = 2 ulp per step (10), B = 1e-6: float32 rounding of the same formula (fastopt is
written to give torch's for-loop bits; the fused kernel may order or contract the
operations differently).  ``deepspeed``: A = 10, B = 1e-4: it keeps beta1/beta2 as float32,
so ``1 - beta2`` = 1 - float32(0.999) is 1.29e-5 relative too small and exp_avg_sq comes
out 1.3e-5 relative low (its ``1 - beta2^t`` is low by the same factor, so the
bias-corrected step nearly cancels it); it also multiplies by a float32
``1/sqrt(1-beta2^t)`` instead of dividing by ``sqrt(1-beta2^t)``, folds
``-lr/(1-beta1^t)`` into one float32 step size and uses FMAs (``m = b1*m + (1-b1)*g``,
``v = b2*v + (1-b2)*g*g``, ``denom = sqrt(v)*bc2' + eps``, ``p = p + step_size*m/denom``).
``optax``: A = 10, B = 1e-4: the same formula (``eps`` outside the square root, after bias
correction, ``eps_root=0``: ``update = m_hat / (sqrt(v_hat) + eps)`` with
``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``; AdamW adds ``wd * p`` to the update
before ``* -lr``), but the bias corrections ``1 - b^t`` are computed in float32 from
float32(0.999) (``decay**count`` on an int32 count): 1 - 0.999 comes out 1.29e-5 relative
too small, so v_hat is 1.3e-5 and the update ~6.4e-6 relative off at t=1 (shrinking as t
grows); B = 1e-4 leaves margin.
A contender that fails the check, or gives a non-finite value, is dropped for that case
and the reason printed.

Timing: interleaved rounds.  In every round each contender of a case runs once (a
measurement of k steps, k fixed per contender so that one measurement takes at least
``--min-time``), in an order rotated by one each round.  Reported: the median over rounds
of time/step; each speed-up is the median over rounds of the per-round ratio (peer time /
fastopt time, both measured within the same round), so slow drifts of the shared machine
cancel.  Nothing here asserts on time.

Usage:
    make bench-peers            # installs the `peers` extra, builds DeepSpeed's op once
    python benchmarks/bench_peers.py [--threads 1,2] [--rounds 21] [--min-time 0.02]
        [--cases 1e3,1e5,1e6,1.6e7,1000x1e3] [--optimizers adam,adamw]
        [--json .benchmarks/peers.json] [--markdown .benchmarks/peers.md]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from _harness import settle

CASES = ["1e3", "1e5", "1e6", "1.6e7", "1000x1e3"]
OPTIMIZERS = {
    "adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "adamw": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
}
CONTENDERS = ["fastopt", "fastopt-raise", "torch-fused", "deepspeed", "optax", "probe"]
PEERS = ["torch-fused", "deepspeed", "optax"]
BYTES_PER_ELEMENT = 28  # Adam/AdamW float32: read p, g, m, v; write p, m, v
CHECK_STEPS = 5
# (A ulps of the reference, B fraction of the reference's total param update); see above.
TOLERANCE = {
    "fastopt-raise": (0.0, 0.0),
    "torch-fused": (2.0 * CHECK_STEPS, 1e-6),
    "deepspeed": (2.0 * CHECK_STEPS, 1e-4),
    "optax": (2.0 * CHECK_STEPS, 1e-4),
}


def _sizes(case):
    if case == "1000x1e3":
        return [1000] * 1000
    return [int(float(case))]


def _log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- contenders
class _Contender:
    """``step()`` does one optimizer step; ``result()`` gives copies of (params, exp_avg,
    exp_avg_sq) as lists of float32 NumPy arrays (None for the probe)."""

    def result(self):
        return None


class _Fastopt(_Contender):
    def __init__(self, opt_name, hp, params0, grads, nonfinite):
        import fastopt

        cls = fastopt.AdamW if opt_name == "adamw" else fastopt.Adam
        self.params = [p.copy() for p in params0]
        self.grads = grads
        self.opt = cls(self.params, **hp, backend="native", nonfinite=nonfinite)
        opt, g = self.opt, self.grads
        self.step = lambda: opt.step(g)

    def result(self):
        st = list(self.opt.state.values())
        return (
            [p.copy() for p in self.params],
            [s["exp_avg"].copy() for s in st],
            [s["exp_avg_sq"].copy() for s in st],
        )


class _TorchFused(_Contender):
    def __init__(self, opt_name, hp, params0, grads):
        import torch

        self.tp = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params0]
        for t, g in zip(self.tp, grads):
            t.grad = torch.from_numpy(g.copy())
        cls = torch.optim.AdamW if opt_name == "adamw" else torch.optim.Adam
        self.opt = cls(self.tp, **hp, fused=True)
        self.step = self.opt.step

    def result(self):
        st = [self.opt.state[t] for t in self.tp]
        return (
            [t.detach().numpy().copy() for t in self.tp],
            [s["exp_avg"].numpy().copy() for s in st],
            [s["exp_avg_sq"].numpy().copy() for s in st],
        )


class _DeepSpeed(_TorchFused):
    def __init__(self, opt_name, hp, params0, grads):
        import torch
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        self.tp = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params0]
        for t, g in zip(self.tp, grads):
            t.grad = torch.from_numpy(g.copy())
        # Its defaults: bias_correction=True, adamw_mode=True (decoupled decay), wd=0.
        # torch.optim.Adam = L2 decay added to the gradient = adamw_mode=False.
        self.opt = DeepSpeedCPUAdam(
            self.tp,
            lr=hp["lr"],
            betas=hp["betas"],
            eps=hp["eps"],
            weight_decay=hp["weight_decay"],
            bias_correction=True,
            amsgrad=False,
            adamw_mode=(opt_name == "adamw"),
            fp32_optimizer_states=True,
        )
        self.step = self.opt.step


class _Optax(_Contender):
    def __init__(self, opt_name, hp, params0, grads):
        import jax
        import optax

        b1, b2 = hp["betas"]
        if opt_name == "adamw":
            tx = optax.adamw(
                hp["lr"], b1=b1, b2=b2, eps=hp["eps"], eps_root=0.0, weight_decay=hp["weight_decay"]
            )
        else:
            assert hp["weight_decay"] == 0.0
            tx = optax.adam(hp["lr"], b1=b1, b2=b2, eps=hp["eps"], eps_root=0.0)

        def update(p, s, g):
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s

        self.jax = jax
        self.p = [jax.device_put(p.copy()) for p in params0]
        self.g = [jax.device_put(g.copy()) for g in grads]
        self.s = tx.init(self.p)
        self.fn = jax.jit(update, donate_argnums=(0, 1))
        self.donation_warning = None

    def step(self):
        self.p, self.s = self.fn(self.p, self.s, self.g)
        self.p[0].block_until_ready()

    def first_steps(self, n):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            for _ in range(n):
                self.step()
        msgs = [str(x.message) for x in w if "donat" in str(x.message).lower()]
        self.donation_warning = msgs[0] if msgs else None

    def result(self):
        adam_state = self.s[0]
        return (
            [np.asarray(p).copy() for p in self.p],
            [np.asarray(m).copy() for m in adam_state.mu],
            [np.asarray(v).copy() for v in adam_state.nu],
        )


class _Probe(_Contender):
    def __init__(self, opt_name, hp, params0, grads):
        from fastopt import _native

        slots = [
            [p.copy() for p in params0],
            [np.zeros_like(p) for p in params0],
            [np.zeros_like(p) for p in params0],
            grads,
        ]
        self.step = lambda: _native.probe_many(slots, 3)


def _make(name, opt_name, params0, grads):
    hp = dict(OPTIMIZERS[opt_name])
    if name == "fastopt":
        return _Fastopt(opt_name, hp, params0, grads, "ignore")
    if name == "fastopt-raise":
        return _Fastopt(opt_name, hp, params0, grads, "raise")
    if name == "torch-fused":
        return _TorchFused(opt_name, hp, params0, grads)
    if name == "deepspeed":
        return _DeepSpeed(opt_name, hp, params0, grads)
    if name == "optax":
        return _Optax(opt_name, hp, params0, grads)
    if name == "probe":
        return _Probe(opt_name, hp, params0, grads)
    raise ValueError(name)


# ---------------------------------------------------------------------------- agreement
def _agreement(name, res, ref, params0):
    """Compare (params, exp_avg, exp_avg_sq) with fastopt's elementwise:
    ``|x - ref| <= A * ulp(ref) + B * scale``, scale = ``|p_ref - p0|`` (the update fastopt
    made) for params and ``|ref|`` for the moments.  Returns (why, report): ``why`` says why
    it disagrees (None if it agrees); ``report`` has the largest error / tolerance and, per
    quantity, the largest ``|x - ref| / scale``."""
    a, b = TOLERANCE[name]
    rep = {"error_over_tolerance": 0.0, "worst": "", "max_rel": {}}
    for kind, xs, rs in zip(("params", "exp_avg", "exp_avg_sq"), res, ref):
        rep["max_rel"][kind] = 0.0
        for i, (x, r) in enumerate(zip(xs, rs)):
            if x.shape != r.shape or x.dtype != np.float32:
                return f"{kind}[{i}] has shape/dtype {x.shape}/{x.dtype}", rep
            if not np.isfinite(x).all():
                return f"{kind}[{i}] has non-finite values", rep
            r64 = r.astype(np.float64)
            diff = np.abs(x.astype(np.float64) - r64)
            scale = np.abs(r64 - params0[i]) if kind == "params" else np.abs(r64)
            tol = a * np.spacing(np.abs(r)).astype(np.float64) + b * scale
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(diff == 0, 0.0, diff / tol)
                rel = np.where(diff == 0, 0.0, diff / scale)
            rep["max_rel"][kind] = max(rep["max_rel"][kind], float(rel.max()))
            j = int(np.argmax(ratio))
            if ratio[j] > rep["error_over_tolerance"]:
                rep["error_over_tolerance"] = float(ratio[j])
                rep["worst"] = (
                    f"{kind}[{i}][{j}]: {x.flat[j]!r} vs fastopt {r.flat[j]!r} "
                    f"(tolerance {tol.flat[j]:.3g})"
                )
    if rep["error_over_tolerance"] > 1.0:
        return (f"error {rep['error_over_tolerance']:.3g}x the tolerance at {rep['worst']}", rep)
    return None, rep


# ---------------------------------------------------------------------------- timing
def _measure(fn, k):
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(k):
        fn()
    t = time.perf_counter() - t0
    return t / k, (time.process_time() - c0) / t


def _run_case(opt_name, case, rounds, min_time, wanted, notes):
    sizes = _sizes(case)
    rng = np.random.default_rng(1)
    params0 = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [(rng.standard_normal(n) * 0.1).astype(np.float32) for n in sizes]
    out = {
        "optimizer": opt_name,
        "case": case,
        "elements": int(sum(sizes)),
        "arrays": len(sizes),
        "contenders": {},
        "dropped": {},
    }
    live = {}
    for name in wanted:
        if name in notes:  # unavailable in this process
            out["dropped"][name] = notes[name]
            continue
        try:
            live[name] = _make(name, opt_name, params0, grads)
        except Exception as exc:  # a peer that cannot run here: say why, keep the rest
            out["dropped"][name] = f"setup failed: {type(exc).__name__}: {exc}"
            _log(f"  {opt_name} {case}: {name} dropped: {out['dropped'][name]}")
    # agreement check: CHECK_STEPS steps each from the same start, compared to fastopt
    for c in live.values():
        if isinstance(c, _Optax):
            c.first_steps(CHECK_STEPS)
            if c.donation_warning:
                out.setdefault("notes", []).append(f"optax: {c.donation_warning}")
        else:
            for _ in range(CHECK_STEPS):
                c.step()
    ref = live["fastopt"].result()
    p0 = [p.astype(np.float64) for p in params0]
    for name in list(live):
        if name in ("fastopt", "probe"):
            continue
        why, rep = _agreement(name, live[name].result(), ref, p0)
        if why is not None:
            out["dropped"][name] = f"DISAGREES with fastopt after {CHECK_STEPS} steps: {why}"
            _log(f"  {opt_name} {case}: {name} {out['dropped'][name]} -- not timed")
            del live[name]
            continue
        rep["tolerance"] = {"A_ulps": TOLERANCE[name][0], "B": TOLERANCE[name][1]}
        out["contenders"].setdefault(name, {})["check"] = rep
    # calibrate k per contender: one measurement >= min_time
    ks = {}
    for name, c in live.items():
        t1 = min(_measure(c.step, 1)[0] for _ in range(3))
        ks[name] = max(1, int(np.ceil(min_time / max(t1, 1e-9))))
    names = list(live)
    times = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            settle()  # the previous contender's spinning threads (see _harness)
            t, u = _measure(live[name].step, ks[name])
            times[name].append(t)
            cpu[name].append(u)
    for name in names:
        d = out["contenders"].setdefault(name, {})
        d.update(
            median=statistics.median(times[name]),
            times=times[name],
            k=ks[name],
            cpu_per_wall=statistics.median(cpu[name]),
        )
        if name != "fastopt" and "fastopt" in times:
            d["speedup_of_fastopt"] = statistics.median(
                x / f for x, f in zip(times[name], times["fastopt"])
            )
            if "fastopt-raise" in times:
                d["speedup_of_fastopt_raise"] = statistics.median(
                    x / f for x, f in zip(times[name], times["fastopt-raise"])
                )
    del live
    return out


def _child(args):
    n = args.threads[0]
    import fastopt

    fastopt.set_num_threads(n)
    notes = {}
    wanted = [c for c in CONTENDERS if c in args.contenders]
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError as exc:
        for c in ("torch-fused", "deepspeed"):
            notes[c] = f"not installed: {exc}"
    if "deepspeed" in wanted and "deepspeed" not in notes:
        try:
            from deepspeed.ops.op_builder import CPUAdamBuilder

            CPUAdamBuilder().load(verbose=False)
        except Exception as exc:
            notes["deepspeed"] = f"unavailable: {type(exc).__name__}: {exc}"
    if "optax" in wanted:
        try:
            import jax  # noqa: F401
            import optax  # noqa: F401
        except ImportError as exc:
            notes["optax"] = f"not installed: {exc}"
    try:
        from fastopt import _native

        isa = _native.isa()
    except ImportError as exc:
        isa = "none"
        notes["fastopt"] = notes["fastopt-raise"] = notes["probe"] = f"no native backend: {exc}"
    results = []
    for opt_name in args.optimizers:
        for case in args.cases:
            t0 = time.perf_counter()
            res = _run_case(opt_name, case, args.rounds, args.min_time, wanted, notes)
            res["threads"] = n
            res["isa"] = isa
            results.append(res)
            summary = ", ".join(
                f"{k} {v['median'] * 1e6:.1f}us"
                for k, v in res["contenders"].items()
                if "median" in v
            )
            _log(f"  threads={n} {opt_name} {case}: {summary} [{time.perf_counter() - t0:.1f}s]")
    with open(args.child_out, "w") as f:
        json.dump(
            {
                "results": results,
                "notes": notes,
                "cpu_count_affinity": len(os.sched_getaffinity(0)),
            },
            f,
        )


# ---------------------------------------------------------------------------- parent
def _versions():
    import importlib.metadata as md

    out = {}
    for pkg in ("fastopt", "numpy", "torch", "deepspeed", "jax", "jaxlib", "optax"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _build_deepspeed():
    """Build (first time: minutes) or load DeepSpeed's cpu_adam op; returns a note."""
    try:
        t0 = time.perf_counter()
        from deepspeed.ops.op_builder import CPUAdamBuilder

        b = CPUAdamBuilder()
        b.load(verbose=False)
        simd = b.simd_width() if hasattr(b, "simd_width") else "?"
        return True, (
            f"DeepSpeed cpu_adam op loaded in {time.perf_counter() - t0:.0f} s "
            f"(cache {os.environ.get('TORCH_EXTENSIONS_DIR', '~/.cache/torch_extensions')}; "
            f"built with -O3 -march=native -fopenmp {simd.strip()})"
        )
    except Exception as exc:
        return False, f"DeepSpeed unavailable: {type(exc).__name__}: {exc}"


def _fmt_t(s):
    if s is None:
        return "-"
    return f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def _table(data):
    res = data["results"]
    v = data["versions"]
    lines = []
    lines.append(
        f"Machine: {data['cpu']}, {data['cores']} logical CPUs, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; fastopt ISA "
        f"{res[0]['isa'] if res else '?'}; fastopt {v['fastopt']}, numpy {v['numpy']}, torch "
        f"{v['torch']}, DeepSpeed {v['deepspeed']}, jax/jaxlib {v['jax']}/{v['jaxlib']}, "
        f"optax {v['optax']}. {data['deepspeed_note']}. Run {data['date']}, "
        f"{data['rounds']} interleaved rounds, >= {data['min_time'] * 1e3:.0f} ms per "
        f"measurement. Runs with fewer threads than CPUs are pinned to that many CPUs "
        f"(XLA sizes its thread pool from them). Load average (1 min) {data['loadavg'][0]:.1f} "
        f"at the start, {data['loadavg'][1]:.1f} at the end."
    )
    lines.append("")
    lines.append(f"Command: {data['command']}")
    lines.append("")
    lines.append(
        "Speed-ups of fastopt (time of the peer / time of fastopt, median over rounds of the "
        'per-round ratio; > 1 = fastopt faster) with `nonfinite="ignore"` (like the peers: '
        'no finiteness check) and with the default `"raise"`. fastopt/probe = probe time / '
        "fastopt time (1.0 = the bandwidth of a kernel moving the same 28 bytes/element with "
        "no arithmetic). cores = process CPU time / wall time while the contender ran."
    )
    lines.append("")
    lines.append(
        "| optimizer | case | threads | fastopt | GB/s | fastopt/probe | raise/ignore "
        "| vs torch fused | vs DeepSpeed | vs Optax | raise: vs torch fused "
        "| raise: vs DeepSpeed | raise: vs Optax |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def ratio(c, name, key):
        d = c.get(name)
        return f"{d[key]:.2f}" if d and key in d else "-"

    for r in res:
        c = r["contenders"]
        f = c.get("fastopt", {}).get("median")
        gbs = f"{r['elements'] * BYTES_PER_ELEMENT / f / 1e9:.1f}" if f else "-"
        probe = c.get("probe", {}).get("speedup_of_fastopt")
        raise_ = c.get("fastopt-raise", {}).get("speedup_of_fastopt")
        cells = [
            r["optimizer"],
            r["case"],
            str(r["threads"]),
            _fmt_t(f),
            gbs,
            f"{probe:.2f}" if probe else "-",
            f"{raise_:.2f}" if raise_ else "-",
        ]
        cells += [ratio(c, p, "speedup_of_fastopt") for p in PEERS]
        cells += [ratio(c, p, "speedup_of_fastopt_raise") for p in PEERS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Median time per step (and cores used) of every contender, same run:")
    lines.append("")
    lines.append("| optimizer | case | threads | " + " | ".join(CONTENDERS) + " |")
    lines.append("|---|---|---|" + "---|" * len(CONTENDERS))
    for r in res:
        c = r["contenders"]
        cells = []
        for n in CONTENDERS:
            d = c.get(n)
            cells.append(
                f"{_fmt_t(d['median'])} ({d['cpu_per_wall']:.1f})" if d and "median" in d else "-"
            )
        lines.append(
            f"| {r['optimizer']} | {r['case']} | {r['threads']} | " + " | ".join(cells) + " |"
        )
    lines.append("")
    lines.append(
        f"Agreement with fastopt after {CHECK_STEPS} steps from the same start, "
        "checked for every case and thread count before timing (tolerance "
        "A*ulp + B*scale; scale = the update fastopt made for params, the value "
        "for the moments):"
    )
    lines.append("")
    for name in CONTENDERS[1:-1]:
        errs = [
            r["contenders"][name]["check"]
            for r in res
            if name in r["contenders"] and "check" in r["contenders"][name]
        ]
        if errs:
            w = max(e["error_over_tolerance"] for e in errs)
            rel = {k: max(e["max_rel"][k] for e in errs) for k in errs[0]["max_rel"]}
            a, b = TOLERANCE[name]
            lines.append(
                f"- {name} ({len(errs)} runs): largest error {w:.2g} of the tolerance "
                f"(A={a:g} ulp, B={b:g}); params within {rel['params']:.2g} of the update, "
                f"exp_avg within {rel['exp_avg']:.2g} and exp_avg_sq within "
                f"{rel['exp_avg_sq']:.2g} relative"
            )
    dropped = {}
    for r in res:
        for n, why in r["dropped"].items():
            dropped.setdefault((n, why), []).append(
                f"{r['optimizer']} {r['case']} t={r['threads']}"
            )
    for (n, why), where in dropped.items():
        lines.append(
            f"- {n} left out ({len(where)} runs: {', '.join(where[:3])}"
            f"{', ...' if len(where) > 3 else ''}): {why}"
        )
    notes = sorted({x for r in res for x in r.get("notes", [])})
    for x in notes:
        lines.append(f"- note: {x}")
    return "\n".join(lines)


def _peers_requirements():
    """The `peers` extra of pyproject.toml (what `make bench-peers` installs)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "pyproject.toml")
    try:
        import tomllib
    except ImportError:  # Python 3.10: read the one list by hand
        import ast
        import re

        with open(path) as f:
            m = re.search(r"^peers\s*=\s*(\[[^\]]*\])", f.read(), re.M)
        return ast.literal_eval(m.group(1))
    with open(path, "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]["peers"]


def _command(argv):
    cmd = "python " + " ".join([os.path.relpath(__file__)] + list(argv or sys.argv[1:]))
    via = os.environ.get("BENCH_PEERS_COMMAND")  # set by `make bench-peers`
    return f"`{via}` (= `{cmd}`)" if via else f"`{cmd}`"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    csv = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    ap.add_argument("--threads", type=lambda s: [int(x) for x in csv(s)], default=[1, 2])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument(
        "--min-time",
        type=float,
        default=0.02,
        help="seconds per measurement (k steps); default 0.02",
    )
    ap.add_argument("--cases", type=csv, default=CASES)
    ap.add_argument("--optimizers", type=csv, default=list(OPTIMIZERS))
    ap.add_argument("--contenders", type=csv, default=CONTENDERS)
    ap.add_argument("--json", default=None, help="write all measurements here")
    ap.add_argument("--markdown", default=None, help="write the tables here too")
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument(
        "--requirements",
        action="store_true",
        help="print the `peers` extra of pyproject.toml, shell-quoted, and exit",
    )
    args = ap.parse_args(argv)
    if args.requirements:
        import shlex

        print(" ".join(shlex.quote(r) for r in _peers_requirements()))
        return
    for c in args.cases:
        if c not in CASES:
            ap.error(f"unknown case {c!r}; choose from {CASES}")
    for o in args.optimizers:
        if o not in OPTIMIZERS:
            ap.error(f"unknown optimizer {o!r}; choose from {list(OPTIMIZERS)}")
    if "fastopt" not in args.contenders:
        args.contenders = ["fastopt"] + args.contenders  # the reference
    if args.child_out:
        return _child(args)

    ds_ok, ds_note = (
        _build_deepspeed() if "deepspeed" in args.contenders else (False, "DeepSpeed not requested")
    )
    _log(ds_note)
    contenders = [c for c in args.contenders if ds_ok or c != "deepspeed"]
    results, notes = [], {}
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for n in args.threads:
        env = dict(
            os.environ,
            OMP_NUM_THREADS=str(n),
            XLA_FLAGS=f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={n}",
            DS_ACCELERATOR=os.environ.get("DS_ACCELERATOR", "cpu"),
        )
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "out.json")
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--child-out",
                out,
                "--threads",
                str(n),
                "--rounds",
                str(args.rounds),
                "--min-time",
                str(args.min_time),
                "--cases",
                ",".join(args.cases),
                "--optimizers",
                ",".join(args.optimizers),
                "--contenders",
                ",".join(contenders),
            ]
            _log(f"threads={n}: {' '.join(cmd[1:])}")
            avail = sorted(os.sched_getaffinity(0))
            cpus = set(avail[:n]) if n < len(avail) else set(avail)
            subprocess.run(
                cmd, env=env, check=True, preexec_fn=lambda cpus=cpus: os.sched_setaffinity(0, cpus)
            )
            with open(out) as f:
                child = json.load(f)
        results += child["results"]
        notes.update(child["notes"])
    if not ds_ok and "deepspeed" in args.contenders:
        for r in results:
            r["dropped"]["deepspeed"] = ds_note
    data = {
        "results": results,
        "notes": notes,
        "versions": _versions(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "deepspeed_note": ds_note,
        "date": f"{started} to {time.strftime('%H:%M:%SZ', time.gmtime())}",
        "rounds": args.rounds,
        "min_time": args.min_time,
        "loadavg": [load_before[0], os.getloadavg()[0]],
        "command": _command(argv),
    }
    table = _table(data)
    print(table)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    if args.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
