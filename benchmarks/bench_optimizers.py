"""fastopt vs hand-written NumPy vs PyTorch's CPU optimizers, next to a bandwidth probe.

One benchmark group per (optimizer, case); in each group one benchmark per implementation:

  native       fastopt, compiled backend: one ``opt.step(grads)`` (one native call per group),
               ``nonfinite="ignore"`` like PyTorch (which does not look for NaN/inf)
  native-raise the same with fastopt's default ``nonfinite="raise"`` (an extra read of the
               gradients in optim.py, single-threaded NumPy ``g.sum()``)
  numba        fastopt, Numba backend, ``nonfinite="ignore"``
  numpy        what a user writes without fastopt (NumPy expressions, temporaries)
  torch        ``torch.optim`` for-loop implementation (``foreach=False``)
  torch-foreach  ``foreach=True``
  torch-fused  ``fused=True`` where PyTorch has it on CPU
  probe        ``fastopt._native.probe_many``: reads and writes exactly the bytes of the
               step (docs/design.md, memory traffic) with no arithmetic, same ISA/threads/chunking

Cases: float32, one array of 1e3, 1e5, 1e6, 1.6e7 elements; 1000 arrays of 1e3; 100 arrays
with log-uniform sizes in [1e2, 2e5].  ``benchmarks/report.py`` turns the JSON into GB/s
and ratios.  Run: ``make bench`` (or the pytest command in benchmarks/README.md).
"""

import numpy as np
import pytest

import fastopt

try:
    from fastopt import _native
except ImportError:  # pragma: no cover
    _native = None

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

# optimizer -> (fastopt class, kwargs, torch class name, torch kwargs, bytes/element, probe
# (arrays written, arrays read only))
OPTIMIZERS = {
    "sgd_momentum": (
        fastopt.SGD,
        dict(lr=0.01, momentum=0.9),
        "SGD",
        dict(lr=0.01, momentum=0.9),
        20,
        2,
    ),
    "adagrad": (fastopt.Adagrad, dict(lr=0.01), "Adagrad", dict(lr=0.01), 20, 2),
    "rmsprop": (fastopt.RMSprop, dict(lr=0.01), "RMSprop", dict(lr=0.01), 20, 2),
    "adam": (fastopt.Adam, dict(lr=1e-3), "Adam", dict(lr=1e-3), 28, 3),
    # torch has no fused Adamax/NAdam/RAdam/Adadelta: torch-fused skips, foreach is its best
    "adamax": (fastopt.Adamax, dict(lr=2e-3), "Adamax", dict(lr=2e-3), 28, 3),
    "nadam": (fastopt.NAdam, dict(lr=2e-3), "NAdam", dict(lr=2e-3), 28, 3),
    "radam": (fastopt.RAdam, dict(lr=1e-3), "RAdam", dict(lr=1e-3), 28, 3),
    "adadelta": (fastopt.Adadelta, dict(lr=1.0), "Adadelta", dict(lr=1.0), 28, 3),
    # nor Rprop/ASGD; ASGD with t0=0 averages from its second step (reads and writes ax)
    "rprop": (fastopt.Rprop, dict(lr=0.01), "Rprop", dict(lr=0.01), 28, 3),
    "asgd": (fastopt.ASGD, dict(lr=0.01, t0=0.0), "ASGD", dict(lr=0.01, t0=0.0), 20, 2),
}


def _sizes(case):
    if case == "1000x1e3":
        return [1000] * 1000
    if case == "100xlog":
        rng = np.random.default_rng(0)
        return [int(x) for x in np.exp(rng.uniform(np.log(1e2), np.log(2e5), 100))]
    return [int(float(case))]


CASES = ["1e3", "1e5", "1e6", "1.6e7", "1000x1e3", "100xlog"]
IMPLS = [
    "native",
    "native-raise",
    "numba",
    "numpy",
    "torch",
    "torch-foreach",
    "torch-fused",
    "probe",
]


def _numpy_step(name):
    """The hand-written NumPy optimizer a user would write (state in a dict)."""
    if name == "sgd_momentum":

        def step(ps, gs, st, t):
            bufs = st.setdefault("buf", [None] * len(ps))
            for i, (p, g) in enumerate(zip(ps, gs)):
                if bufs[i] is None:
                    bufs[i] = g.copy()
                else:
                    bufs[i] = 0.9 * bufs[i] + g
                p -= 0.01 * bufs[i]
    elif name == "adagrad":

        def step(ps, gs, st, t):
            sums = st.setdefault("sum", [np.zeros_like(p) for p in ps])
            for p, g, s in zip(ps, gs, sums):
                s += g * g
                p -= 0.01 * g / (np.sqrt(s) + 1e-10)
    elif name == "rmsprop":

        def step(ps, gs, st, t):
            sqs = st.setdefault("sq", [np.zeros_like(p) for p in ps])
            for p, g, sq in zip(ps, gs, sqs):
                sq *= 0.99
                sq += 0.01 * g * g
                p -= 0.01 * g / (np.sqrt(sq) + 1e-8)
    elif name == "adamax":

        def step(ps, gs, st, t):
            ms = st.setdefault("m", [np.zeros_like(p) for p in ps])
            us = st.setdefault("u", [np.zeros_like(p) for p in ps])
            for p, g, m, u in zip(ps, gs, ms, us):
                m *= 0.9
                m += 0.1 * g
                np.maximum(0.999 * u, np.abs(g) + 1e-8, out=u)
                p -= 2e-3 / (1 - 0.9**t) * m / u
    elif name == "nadam":

        def step(ps, gs, st, t):
            ms = st.setdefault("m", [np.zeros_like(p) for p in ps])
            vs = st.setdefault("v", [np.zeros_like(p) for p in ps])
            mu = 0.9 * (1 - 0.5 * 0.96 ** (t * 4e-3))
            mu_next = 0.9 * (1 - 0.5 * 0.96 ** ((t + 1) * 4e-3))
            prod = st["prod"] = st.get("prod", 1.0) * mu
            for p, g, m, v in zip(ps, gs, ms, vs):
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                v += 0.001 * g * g
                denom = np.sqrt(v / (1 - 0.999**t)) + 1e-8
                p -= 2e-3 * (1 - mu) / (1 - prod) * g / denom
                p -= 2e-3 * mu_next / (1 - prod * mu_next) * m / denom
    elif name == "radam":

        def step(ps, gs, st, t):
            ms = st.setdefault("m", [np.zeros_like(p) for p in ps])
            vs = st.setdefault("v", [np.zeros_like(p) for p in ps])
            rho_inf = 2 / (1 - 0.999) - 1
            rho_t = rho_inf - 2 * t * 0.999**t / (1 - 0.999**t)
            for p, g, m, v in zip(ps, gs, ms, vs):
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                v += 0.001 * g * g
                mhat = m / (1 - 0.9**t)
                if rho_t > 5:
                    r = np.sqrt(
                        (rho_t - 4)
                        * (rho_t - 2)
                        * rho_inf
                        / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                    )
                    p -= 1e-3 * mhat * r * np.sqrt(1 - 0.999**t) / (np.sqrt(v) + 1e-8)
                else:
                    p -= 1e-3 * mhat
    elif name == "adadelta":

        def step(ps, gs, st, t):
            vs = st.setdefault("v", [np.zeros_like(p) for p in ps])
            us = st.setdefault("u", [np.zeros_like(p) for p in ps])
            for p, g, v, u in zip(ps, gs, vs, us):
                v *= 0.9
                v += 0.1 * g * g
                delta = np.sqrt(u + 1e-6) / np.sqrt(v + 1e-6) * g
                u *= 0.9
                u += 0.1 * delta * delta
                p -= delta
    elif name == "rprop":

        def step(ps, gs, st, t):
            prevs = st.setdefault("prev", [np.zeros_like(p) for p in ps])
            sizes = st.setdefault("size", [np.full_like(p, 0.01) for p in ps])
            for p, g, prev, size in zip(ps, gs, prevs, sizes):
                s = np.sign(g * prev)
                size *= np.where(s > 0, 1.2, np.where(s < 0, 0.5, 1.0))
                np.clip(size, 1e-6, 50, out=size)
                g = np.where(s < 0, 0.0, g)
                p -= np.sign(g) * size
                prev[...] = g
    elif name == "asgd":

        def step(ps, gs, st, t):
            axs = st.setdefault("ax", [np.zeros_like(p) for p in ps])
            eta, mu = st.get("eta", 0.01), st.get("mu", 1.0)
            for p, g, ax in zip(ps, gs, axs):
                p *= 1 - 1e-4 * eta
                p -= eta * g
                if mu != 1:
                    ax += (p - ax) * mu
                else:
                    ax[...] = p
            st["eta"] = 0.01 / (1 + 1e-4 * 0.01 * t) ** 0.75
            st["mu"] = 1 / max(1, t)
    else:

        def step(ps, gs, st, t):
            ms = st.setdefault("m", [np.zeros_like(p) for p in ps])
            vs = st.setdefault("v", [np.zeros_like(p) for p in ps])
            for p, g, m, v in zip(ps, gs, ms, vs):
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                v += 0.001 * g * g
                mhat = m / (1 - 0.9**t)
                vhat = v / (1 - 0.999**t)
                p -= 1e-3 * mhat / (np.sqrt(vhat) + 1e-8)

    return step


def _make(impl, name, case):
    """Return a zero-argument callable doing one optimizer step, or skip."""
    cls, kw, tname, tkw, _bpe, nwrite = OPTIMIZERS[name]
    sizes = _sizes(case)
    rng = np.random.default_rng(1)
    params = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [(rng.standard_normal(n) * 0.1).astype(np.float32) for n in sizes]

    if impl in ("native", "numba", "native-raise"):
        backend = impl.split("-")[0]
        if backend not in fastopt.available_backends():
            pytest.skip(f"{backend} backend not available")
        extra = {} if impl == "native-raise" else {"nonfinite": "ignore"}
        opt = cls(params, backend=backend, **kw, **extra)
        opt.step(grads)  # state allocation and JIT warm-up outside the timing
        return lambda: opt.step(grads)
    if impl == "numpy":
        step, st, t = _numpy_step(name), {}, [0]

        def run():
            t[0] += 1
            step(params, grads, st, t[0])

        run()
        return run
    if impl == "probe":
        if _native is None:
            pytest.skip("compiled extension not available")
        states = [[np.zeros_like(p) for p in params] for _ in range(nwrite - 1)]
        slots = [params] + states + [grads]
        return lambda: _native.probe_many(slots, nwrite)
    # PyTorch
    if torch is None:
        pytest.skip("PyTorch not installed")
    tparams = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params]
    for tp, g in zip(tparams, grads):
        tp.grad = torch.from_numpy(g.copy())
    flag = {
        "torch": dict(foreach=False),
        "torch-foreach": dict(foreach=True),
        "torch-fused": dict(fused=True),
    }[impl]
    try:
        topt = getattr(torch.optim, tname)(tparams, **tkw, **flag)
        topt.step()
    except (RuntimeError, TypeError, ValueError) as exc:
        pytest.skip(f"torch.optim.{tname}({flag}) unavailable on CPU: {exc}")
    return topt.step


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step(benchmark, name, case, impl):
    fn = _make(impl, name, case)
    sizes = _sizes(case)
    benchmark.group = f"{name}-{case}"
    benchmark.extra_info.update(
        optimizer=name,
        case=case,
        impl=impl,
        arrays=len(sizes),
        elements=int(sum(sizes)),
        bytes=int(sum(sizes)) * OPTIMIZERS[name][4],
        threads=fastopt.get_num_threads(),
        isa=_native.isa() if _native is not None else "none",
        torch_threads=torch.get_num_threads() if torch is not None else 0,
    )
    benchmark(fn)
