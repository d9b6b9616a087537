"""Every dispatch path of the compiled kernels equals the NumPy reference.

For each ISA the CPU supports (generic, AVX2+FMA, AVX-512), 1 and 2 threads (with the
parallel threshold forced to zero so that even small arrays are split), sizes that are not
multiples of any SIMD width, a 2-D array and a multi-array call, and every option
combination of every optimizer: ~20 steps of the native backend against numpy.py.
Every result must be bit-identical to the reference (``tests/_tolerance.py`` says why).
"""

import itertools
import platform
import re
from pathlib import Path

import numpy as np
import pytest

from _tolerance import assert_same_bits
from fastopt import _contract as C
from fastopt.backends import numpy as ref

native = pytest.importorskip("fastopt.backends.native")
_nat = pytest.importorskip("fastopt._native")

ISAS = _nat.supported_isas()
SHAPES = [(1,), (7,), (1000,), (4099,), (100003,), (37, 53)]
STEPS = 20


@pytest.fixture(params=ISAS)
def isa(request):
    before = _nat.isa()
    _nat.set_isa(request.param)
    yield request.param
    _nat.set_isa(before)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before_n, before_b = _nat.get_num_threads(), _nat._get_parallel_min_bytes()
    _nat.set_num_threads(request.param)
    _nat._set_parallel_min_bytes(0)  # split every call, however small
    yield request.param
    _nat.set_num_threads(before_n)
    _nat._set_parallel_min_bytes(before_b)


def _close(a, b, dtype, what):
    assert a.dtype == dtype
    assert_same_bits(a, b, what)


def _arrays(shapes, dtype, nstate, seed, zero_state=False):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(3)]
    scale = 0.0 if zero_state else 0.01
    states = [
        [np.abs(rng.standard_normal(s)).astype(dtype) * dtype(scale) for s in shapes]
        for _ in range(nstate)
    ]
    return params, grads, states


def _copy(xs):
    return [x.copy() for x in xs]


def _run(kernel_call, shapes, dtype, nstate, seed=0, zero_state=False):
    """Run `kernel_call(module, params, grads, states, t)` on both backends; compare."""
    params, grads, states = _arrays(shapes, dtype, nstate, seed, zero_state)
    runs = {}
    for name, mod in (("numpy", ref), ("native", native)):
        p = _copy(params)
        s = [_copy(st) for st in states]
        for t in range(1, STEPS + 1):
            kernel_call(mod, p, grads[t % 3], s, t)
        runs[name] = (p, s)
    (p0, s0), (p1, s1) = runs["numpy"], runs["native"]
    for i in range(len(shapes)):
        _close(p1[i], p0[i], dtype, f"param {i}")
        for k in range(nstate):
            _close(s1[k][i], s0[k][i], dtype, f"state {k} of param {i}")


def _step(mod, spec, p, g, state, t, carried=None, **options):
    """One backend call through the contract's keyword interface.  ``carried``: a dict in
    which the carried group state (``spec.carry``: ASGD's eta and mu) is kept per backend
    from step to step (None: every step starts from the contract's start values)."""
    opts = spec.check_options({**spec.defaults, **options})
    if carried is None:
        scalars = spec.scalars(opts, t)
    else:
        scalars, carried[mod.__name__] = spec.step_scalars(opts, t, carried.get(mod.__name__))
    if spec.lazy_state is not None:  # SGD's momentum buffer, Rprop's step sizes
        scalars["first"] = t == 1
    mod.step(spec.kernel, p, g, state, scalars)


DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
SHAPE = pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))


@DTYPES
@SHAPE
@pytest.mark.parametrize(
    "opts",
    [
        o
        for o in itertools.product([0.0, 0.1], [0.0, 0.9], [0.0, 0.3], [False, True], [False, True])
        if not o[3] or (o[1] > 0 and o[2] == 0)
    ],  # nesterov's rule
    ids=lambda o: f"wd{o[0]}-mom{o[1]}-damp{o[2]}-nest{o[3]}-max{o[4]}",
)
def test_sgd(isa, threads, dtype, shape, opts):
    wd, mom, damp, nesterov, maximize = opts

    def call(mod, p, g, s, t):
        _step(
            mod,
            C.SGD,
            p,
            g,
            {"momentum_buffer": s[0] if mom else None},
            t,
            lr=0.01,
            momentum=mom,
            dampening=damp,
            weight_decay=wd,
            nesterov=nesterov,
            maximize=maximize,
        )

    _run(call, [shape], dtype, 1)


@DTYPES
@SHAPE
@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("maximize", [False, True])
def test_adagrad(isa, threads, dtype, shape, wd, maximize):
    def call(mod, p, g, s, t):
        _step(
            mod,
            C.ADAGRAD,
            p,
            g,
            {"sum": s[0]},
            t,
            lr=0.01,
            lr_decay=0.01,
            weight_decay=wd,
            eps=1e-10,
            maximize=maximize,
        )

    _run(call, [shape], dtype, 1)


@DTYPES
@SHAPE
@pytest.mark.parametrize(
    "opts",
    list(itertools.product([0.0, 0.1], [0.0, 0.5], [False, True], [False, True])),
    ids=lambda o: f"wd{o[0]}-mom{o[1]}-cen{o[2]}-max{o[3]}",
)
def test_rmsprop(isa, threads, dtype, shape, opts):
    wd, mom, centered, maximize = opts

    def call(mod, p, g, s, t):
        _step(
            mod,
            C.RMSPROP,
            p,
            g,
            {
                "square_avg": s[0],
                "grad_avg": s[1] if centered else None,
                "momentum_buffer": s[2] if mom else None,
            },
            t,
            lr=0.01,
            alpha=0.99,
            eps=1e-8,
            weight_decay=wd,
            momentum=mom,
            centered=centered,
            maximize=maximize,
        )

    _run(call, [shape], dtype, 3, zero_state=True)  # centered needs ga**2 <= sq: start at 0


@DTYPES
@SHAPE
@pytest.mark.parametrize(
    "opts",
    list(itertools.product([0.0, 0.1], [False, True], [False, True], [False, True])),
    ids=lambda o: f"wd{o[0]}-decoupled{o[1]}-ams{o[2]}-max{o[3]}",
)
def test_adam(isa, threads, dtype, shape, opts):
    wd, decoupled, amsgrad, maximize = opts
    b1, b2, lr = 0.9, 0.999, 1e-3

    def call(mod, p, g, s, t):
        _step(
            mod,
            C.ADAMW if decoupled else C.ADAM,
            p,
            g,
            {"exp_avg": s[0], "exp_avg_sq": s[1], "max_exp_avg_sq": s[2] if amsgrad else None},
            t,
            lr=lr,
            betas=(b1, b2),
            eps=1e-8,
            weight_decay=wd,
            amsgrad=amsgrad,
            maximize=maximize,
        )

    _run(call, [shape], dtype, 3)


@DTYPES
@SHAPE
@pytest.mark.parametrize("wd,maximize", [(0.0, False), (0.1, True)], ids=["plain", "wd-max"])
def test_adamax(isa, threads, dtype, shape, wd, maximize):
    def call(mod, p, g, s, t):
        _step(
            mod,
            C.ADAMAX,
            p,
            g,
            {"exp_avg": s[0], "exp_inf": s[1]},
            t,
            lr=1e-3,
            betas=(0.9, 0.999),
            weight_decay=wd,
            maximize=maximize,
        )

    _run(call, [shape], dtype, 2)


_DECOUPLED = pytest.mark.parametrize(
    "wd,decoupled,maximize",
    [(0.0, False, False), (0.1, False, True), (0.1, True, False)],
    ids=["plain", "wd-max", "decoupled"],
)


@DTYPES
@SHAPE
@_DECOUPLED
def test_nadam(isa, threads, dtype, shape, wd, decoupled, maximize):
    def call(mod, p, g, s, t):
        _step(
            mod,
            C.NADAM,
            p,
            g,
            {"exp_avg": s[0], "exp_avg_sq": s[1]},
            t,
            lr=1e-3,
            weight_decay=wd,
            decoupled_weight_decay=decoupled,
            maximize=maximize,
        )

    _run(call, [shape], dtype, 2)


@DTYPES
@SHAPE
@_DECOUPLED
def test_radam(isa, threads, dtype, shape, wd, decoupled, maximize):
    # 20 steps of betas (0.9, 0.999): unrectified up to step 5, rectified after
    def call(mod, p, g, s, t):
        _step(
            mod,
            C.RADAM,
            p,
            g,
            {"exp_avg": s[0], "exp_avg_sq": s[1]},
            t,
            lr=1e-3,
            weight_decay=wd,
            decoupled_weight_decay=decoupled,
            maximize=maximize,
        )

    _run(call, [shape], dtype, 2)


@DTYPES
@SHAPE
@pytest.mark.parametrize("wd,maximize", [(0.0, False), (0.1, True)], ids=["plain", "wd-max"])
def test_adadelta(isa, threads, dtype, shape, wd, maximize):
    def call(mod, p, g, s, t):
        _step(
            mod,
            C.ADADELTA,
            p,
            g,
            {"square_avg": s[0], "acc_delta": s[1]},
            t,
            lr=1.0,
            rho=0.9,
            weight_decay=wd,
            maximize=maximize,
        )

    _run(call, [shape], dtype, 2)


# Every kernel kind of the contract that has no test of its own above is run from here, with
# each entry's options and every combination of its flags (C.Spec.flags), every state array
# and its carried group state; test_every_kind_is_covered fails for a kind of C.KERNELS that
# has neither.
CONTRACT_CASES = {
    "rprop": [
        dict(lr=0.01),
        dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.06)),  # clamped at both ends
    ],
    "asgd": [
        dict(lr=0.01),  # t0 = 1e6: no averaging
        dict(lr=0.05, lambd=0.01, alpha=0.5, t0=3.0, weight_decay=0.1),  # averages from step 5
    ],
}


def _contract_cases():
    for kind, variants in CONTRACT_CASES.items():
        spec = C.KERNELS[kind]
        for i, opts in enumerate(variants):
            for flags in itertools.product([False, True], repeat=len(spec.flags)):
                yield pytest.param(
                    spec,
                    {**opts, **dict(zip(spec.flags, flags))},
                    id=f"{kind}{i}" + "".join(f"-{f}" for f, on in zip(spec.flags, flags) if on),
                )


def test_every_kind_is_covered():
    missing = [k for k in C.KERNELS if f"test_{k}" not in globals() and k not in CONTRACT_CASES]
    assert not missing, f"no dispatch-path test for {missing}: add them to CONTRACT_CASES"


@DTYPES
@SHAPE
@pytest.mark.parametrize("spec,opts", list(_contract_cases()))
def test_contract_kind(isa, threads, dtype, shape, spec, opts):
    needed = spec.needed(spec.check_options({**spec.defaults, **opts}))
    carried = {}

    def call(mod, p, g, s, t):
        state = {st.name: s[k] if st.name in needed else None for k, st in enumerate(spec.state)}
        _step(mod, spec, p, g, state, t, carried, **opts)

    _run(call, [shape], dtype, len(spec.state))


@DTYPES
@pytest.mark.parametrize("opt", ["sgd", "adagrad", "rmsprop", "adam", *CONTRACT_CASES])
def test_multi_tensor_call(isa, threads, dtype, opt):
    """One call over many arrays of mixed sizes: the chunks cross array boundaries."""
    shapes = [(1,), (17,), (1000,), (5, 7), (4099,), (0,), (33,), (20011,), (3,)] * 3
    carried = {}

    def call(mod, p, g, s, t):
        if opt == "sgd":
            _step(
                mod,
                C.SGD,
                p,
                g,
                {"momentum_buffer": s[0]},
                t,
                lr=0.01,
                momentum=0.9,
                weight_decay=0.1,
                nesterov=True,
            )
        elif opt == "adagrad":
            _step(mod, C.ADAGRAD, p, g, {"sum": s[0]}, 1, lr=0.01, weight_decay=0.1)
        elif opt == "rmsprop":
            _step(
                mod,
                C.RMSPROP,
                p,
                g,
                {"square_avg": s[0], "momentum_buffer": s[2]},
                t,
                lr=0.01,
                weight_decay=0.1,
                momentum=0.5,
            )
        elif opt in CONTRACT_CASES:
            spec = C.KERNELS[opt]
            state = {st.name: s[k] for k, st in enumerate(spec.state)}
            _step(mod, spec, p, g, state, t, carried, **CONTRACT_CASES[opt][-1], maximize=True)
        else:
            _step(
                mod,
                C.ADAM,
                p,
                g,
                {"exp_avg": s[0], "exp_avg_sq": s[1], "max_exp_avg_sq": s[2]},
                t,
                weight_decay=0.1,
                amsgrad=True,
            )

    _run(call, shapes, dtype, 3)


def test_isa_api():
    assert ISAS[0] == "generic"
    assert _nat.isa() in ISAS
    with pytest.raises(ValueError, match="unknown ISA"):
        _nat.set_isa("sse9")
    before = _nat.isa()
    _nat.set_isa("generic")
    assert _nat.isa() == "generic"
    _nat.set_isa("auto")
    assert _nat.isa() == ISAS[-1]
    _nat.set_isa(before)


def test_isas_nest_and_the_refusal_names_only_compiled_ones():
    """Every ISA a CPU supports is a subset of the next one's (avx512bf16 needs avx512,
    which needs avx2), and the message for an unknown name lists what this build compiled
    (avx512bf16 only where the compiler and assembler knew VCVTNEPS2BF16)."""
    order = ["generic", "avx2", "avx512", "avx512bf16"]
    assert ISAS == order[: len(ISAS)]
    with pytest.raises(ValueError) as info:
        _nat.set_isa("avx9")
    listed = re.findall(r"'([a-z0-9]+)'", str(info.value).split("use one of")[1])
    assert listed[: len(ISAS)] == ISAS and listed[-1] == "auto"
    assert set(listed[:-1]) <= set(order)


@pytest.mark.skipif(
    not Path("/proc/cpuinfo").is_file() or platform.machine() not in ("x86_64", "AMD64"),
    reason="reads the CPU's flags from Linux's /proc/cpuinfo on x86-64",
)
def test_supported_isas_follow_the_cpus_flags():
    """The dispatch reads AVX2, FMA and AVX-512 with __builtin_cpu_supports and F16C and
    AVX512_BF16 with cpuid: the ISAs it offers are those the kernel reports for this CPU
    (its flags f16c and avx512_bf16 among them), for every ISA this build compiled."""
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    with pytest.raises(ValueError) as info:
        _nat.set_isa("avx9")
    compiled = re.findall(r"'([a-z0-9]+)'", str(info.value).split("use one of")[1])[:-1]
    has = {"generic": True}
    has["avx2"] = {"avx2", "fma", "f16c"} <= flags
    has["avx512"] = has["avx2"] and {"avx512f", "avx512vl", "avx512bw", "avx512dq"} <= flags
    has["avx512bf16"] = has["avx512"] and "avx512_bf16" in flags
    assert ISAS == [isa for isa in compiled if has[isa]]


def test_isa_env_var(tmp_path):
    import subprocess
    import sys

    for name in ISAS:
        out = subprocess.run(
            [sys.executable, "-c", "import fastopt._native as n; print(n.isa())"],
            env={**__import__("os").environ, "FASTOPT_ISA": name},
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == name


def test_num_threads_api():
    import fastopt

    before = fastopt.get_num_threads()
    try:
        fastopt.set_num_threads(1)
        assert fastopt.get_num_threads() == 1
        with pytest.raises(ValueError, match=">= 1"):
            fastopt.set_num_threads(0)
        with pytest.raises(TypeError):
            fastopt.set_num_threads(1.5)
    finally:
        fastopt.set_num_threads(before)


def test_flatten():
    import fastopt

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones(4, np.float32)
    buf, (va, vb) = fastopt.flatten([a, b])
    assert buf.shape == (10,) and buf.ctypes.data % 64 == 0
    np.testing.assert_array_equal(va, a)
    np.testing.assert_array_equal(vb, b)
    buf += 1  # one update over everything reaches every view
    np.testing.assert_array_equal(va, a + 1)
    with pytest.raises(TypeError, match="dtypes"):
        fastopt.flatten([a, np.ones(3)])


def test_probe_moves_the_arrays():
    a = np.ones(1000, np.float32)
    b = np.full(1000, 2.0, np.float32)
    g = np.full(1000, 3.0, np.float32)
    _nat.probe([a, b, g], 2)
    np.testing.assert_array_equal(a, 6.0)
    np.testing.assert_array_equal(b, 6.0)
    np.testing.assert_array_equal(g, 3.0)
    ps = [np.ones(n, np.float32) for n in (3, 100, 7)]
    gs = [np.ones(n, np.float32) for n in (3, 100, 7)]
    _nat.probe_many([ps, gs], 1)
    for p in ps:
        np.testing.assert_array_equal(p, 2.0)
