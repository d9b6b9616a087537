"""The C++ API, the C ABI and the CMake package, used from outside Python.

Builds (once per session, with CMake) the consumers of tests/embedding -- a C++ and a C test
driver, and the examples of examples/cpp and examples/c -- against fastopt (a) from this
checkout with ``add_subdirectory`` and (b) as installed with the wheel (``find_package`` with
``-Dfastopt_DIR=fastopt.get_cmake_dir()``); the C++ driver also with ``-O3 -march=native``
(and on GCC without the target's options at all); where Clang is installed, (a) again with
Clang.  The drivers run every optimizer, float32
and float64, several steps with non-trivial options, and the results must equal
``fastopt.kernels`` (NumPy backend) bit for bit; invalid options must be refused with
nothing written.  A last test installs the checkout with ``cmake --install`` and builds the
examples against that prefix.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

import fastopt
from fastopt import _contract as C

ROOT = Path(__file__).resolve().parent.parent
CONSUMERS = ROOT / "tests" / "embedding"


def _tools_missing():
    if shutil.which("cmake") is None:
        return "cmake is not installed"
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        return "no C++ compiler (c++, g++ or clang++) on PATH"
    if not any(shutil.which(c) for c in ("cc", "gcc", "clang")):
        return "no C compiler (cc, gcc or clang) on PATH"
    return None


pytestmark = pytest.mark.skipif(
    _tools_missing() is not None,
    reason=f"embedding tests need CMake and compilers: {_tools_missing()}",
)


def _build_env(**extra):
    # Under `make sanitize` the Python process preloads libasan; the build tools need not.
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.update(extra)
    return env


def _cmake(args, cwd=None, env=None):
    r = subprocess.run(
        ["cmake", *args], cwd=cwd, env=env or _build_env(), capture_output=True, text=True
    )
    if r.returncode != 0:
        raise AssertionError(f"cmake {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r


def _configure_build(src, build, *defs, env=None):
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    _cmake(["-S", str(src), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Release", *defs], env=env)
    _cmake(["--build", str(build), "-j", "2"], env=env)
    return build


# Clang builds the checkout's consumers too where it is installed (.ci/run installs it when
# Debian's registry answers); its driver tests skip without it.
HAVE_CLANG = shutil.which("clang") is not None and shutil.which("clang++") is not None


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """{mode: build dir}: 'subdir' (add_subdirectory of the checkout), 'installed'
    (find_package from the installed wheel) and, where Clang is installed, 'clang' (the
    checkout's consumers, fastopt::c included, compiled by Clang)."""
    base = tmp_path_factory.mktemp("embedding")
    clang = {}
    if HAVE_CLANG:
        clang["clang"] = _configure_build(
            CONSUMERS,
            base / "clang",
            f"-DFASTOPT_CHECKOUT={ROOT}",
            "-DFASTOPT_TEST_NATIVE=ON",
            env=_build_env(CC="clang", CXX="clang++"),
        )
    return {
        **clang,
        "subdir": _configure_build(
            CONSUMERS, base / "subdir", f"-DFASTOPT_CHECKOUT={ROOT}", "-DFASTOPT_TEST_NATIVE=ON"
        ),
        "installed": _configure_build(
            CONSUMERS, base / "installed", f"-Dfastopt_DIR={fastopt.get_cmake_dir()}"
        ),
    }


# ------------------------------------------------------------------ cases
# The optimizers of the C/C++ API: every element-wise optimizer of the contract, that is every
# Spec whose kernel is a kind of C.KERNELS (one per-element loop of fastopt/kernels.hpp, which
# fastopt.hpp calls after computing the derived scalars).  An optimizer whose step also
# reduces or multiplies whole arrays (a matrix optimizer: Adafactor's factored moments,
# Muon's Newton-Schulz products) has no such loop and is not in the API.
EMBEDDED = [n for n, s in C.SPECS.items() if s.kernel in C.KERNELS]
# The state arrays of each function of the C/C++ API, in order: fastopt.kernels' argument
# names, singular (fastopt.kernels takes the same arrays in the same order); adamw is
# fastopt::adamw / fastopt_adam_* with AdamW's defaults.  The drivers pass options by name,
# state and carried values (C.Spec.carry: NAdam's mu_product, ASGD's eta and mu) by role.
STATE = {n: tuple(s.arg.removesuffix("s") for s in C.SPECS[n].state) for n in EMBEDDED}
SIGNED_STATE = {"exp_avg", "momentum_buffer", "grad_avg", "prev", "ax"}


def _c_options(name):
    """The fields of the C/C++ options struct of `name` with torch's defaults, from the
    contract (python/fastopt/_contract.py): a pair by its elements' names (betas as beta1,
    beta2; etas as etaminus, etaplus; ...); Adagrad's initial_accumulator_value (a const) is
    not an option there (the caller fills state_sum); Adam's struct has
    decoupled_weight_decay (AdamW: true)."""
    out = {}
    for o in C.SPECS[name].options:
        if o.kind == "pair":
            out.update(zip(o.rules, o.default))
        elif o.kind != "const":
            out[o.name] = o.default
    if name in ("adam", "adamw"):
        out["decoupled_weight_decay"] = name == "adamw"
    return out


# (optimizer, options, state arrays passed (True) or null, first step, steps); the pseudo
# options named by C.Spec.carry (NAdam's mu_product, ASGD's eta and mu) are the carried
# values before the first step (default: the contract's start, C.Spec.group_state; None:
# null).
VALID = [
    ("sgd", {}, (False, False, False), 1, 3),
    (
        "sgd",
        dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
        (True, False, False),
        1,
        4,
    ),
    (
        "sgd",
        dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True),
        (True, False, False),
        1,
        4,
    ),
    ("sgd", dict(lr=0.1, momentum=0.5, weight_decay=1e-4), (True, False, False), 7, 3),
    ("sgd", dict(lr=0.1, weight_decay=0.1), (True, False, False), 1, 2),  # buffer unused
    ("adagrad", {}, (True, False, False), 1, 3),
    (
        "adagrad",
        dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, eps=1e-6, maximize=True),
        (True, False, False),
        5,
        4,
    ),
    ("rmsprop", {}, (True, False, False), 1, 3),
    (
        "rmsprop",
        dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.9, centered=True),
        (True, True, True),
        1,
        4,
    ),
    ("rmsprop", dict(centered=True, maximize=True), (True, True, False), 3, 3),
    ("rmsprop", dict(momentum=0.5), (True, True, True), 2, 3),  # grad_avg passed, unused
    ("adam", {}, (True, True, False), 1, 3),
    (
        "adam",
        dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.01, amsgrad=True),
        (True, True, True),
        1,
        4,
    ),
    (
        "adam",
        dict(lr=0.01, weight_decay=0.1, maximize=True, decoupled_weight_decay=True),
        (True, True, True),
        1,
        3,
    ),  # max_exp_avg_sq passed, unused
    (
        "adam",
        dict(lr=3e-3, amsgrad=True, weight_decay=0.05, decoupled_weight_decay=True),
        (True, True, True),
        100,
        3,
    ),
    ("adam", dict(beta1=0.0, beta2=0.5), (True, True, False), 1, 3),
    ("adamw", {}, (True, True, False), 1, 3),
    (
        "adamw",
        dict(lr=0.02, weight_decay=0.1, amsgrad=True, maximize=True),
        (True, True, True),
        2,
        3,
    ),
    ("adamax", {}, (True, True, False), 1, 3),
    (
        "adamax",
        dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.01, maximize=True),
        (True, True, False),
        1,
        4,
    ),
    ("adamax", dict(lr=0.02, weight_decay=0.1, beta1=0.0), (True, True, False), 50, 3),
    ("nadam", {}, (True, True, False), 1, 4),
    (
        "nadam",
        dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.01, momentum_decay=0.01),
        (True, True, False),
        1,
        4,
    ),
    (
        "nadam",
        dict(weight_decay=0.05, decoupled_weight_decay=True, maximize=True, mu_product=0.3),
        (True, True, False),
        5,
        3,
    ),
    (
        "nadam",
        dict(momentum_decay=0.0, weight_decay=0.1, mu_product=0.9),
        (True, True, False),
        2,
        3,
    ),
    ("radam", {}, (True, True, False), 1, 8),  # rho_t <= 5 up to step 5, rectified after
    (
        "radam",
        dict(lr=0.01, beta1=0.8, beta2=0.9, eps=1e-6, weight_decay=0.01),
        (True, True, False),
        3,
        4,
    ),
    (
        "radam",
        dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
        (True, True, False),
        100,
        3,
    ),
    ("radam", dict(beta2=0.0), (True, True, False), 1, 3),  # never rectified
    ("adadelta", {}, (True, True, False), 1, 3),
    (
        "adadelta",
        dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.01, maximize=True),
        (True, True, False),
        4,
        4,
    ),
    ("adadelta", dict(rho=1.0), (True, True, False), 2, 2),  # the closed end of [0, 1]
    ("adadelta", dict(rho=0.0, weight_decay=0.1), (True, True, False), 1, 2),
    ("rprop", {}, (True, True, False), 1, 5),  # step 1 sets the step sizes to lr
    (
        "rprop",
        dict(lr=0.05, etaminus=0.3, etaplus=1.5, step_size_min=1e-3, step_size_max=0.06),
        (True, True, False),
        1,
        5,
    ),  # lr * etaplus clamped to step_size_max
    ("rprop", dict(maximize=True, step_size_min=0.02), (True, True, False), 100, 3),
    ("rprop", dict(step_size_min=0.04, step_size_max=0.04), (True, True, False), 2, 3),
    ("rprop", dict(lr=0.0, step_size_min=0.0), (True, True, False), 1, 2),
    ("asgd", {}, (True, False, False), 1, 4),  # t0 = 1e6: ax = p
    (
        "asgd",
        dict(lr=0.05, lambd=0.01, alpha=0.5, t0=0.5, weight_decay=0.01),
        (True, False, False),
        1,
        5,
    ),  # averaging from step 2, mu = 1 / 1.5 rounded to float32
    (
        "asgd",
        dict(maximize=True, t0=-3.0, weight_decay=0.1, eta=0.004, mu=0.25),
        (True, False, False),
        7,
        3,
    ),
    ("asgd", dict(lambd=0.0, alpha=0.0, eta=123.0, mu=0.5), (True, False, False), 1, 3),
    (
        "asgd",
        dict(lr=0.3, lambd=2.0, alpha=3.0, t0=1.0, eta=0.01, mu=0.3),
        (True, False, False),
        40,
        3,
    ),
]
NAN, INF = float("nan"), float("inf")
# (optimizer, options, arrays passed (param, grad, state 0..2), step, expected message part)
INVALID = [
    ("sgd", dict(lr=-1.0), (1, 1, 1, 0, 0), 1, "lr"),
    ("sgd", dict(momentum=0.9, dampening=0.1, nesterov=True), (1, 1, 1, 0, 0), 1, "nesterov"),
    ("sgd", dict(nesterov=True), (1, 1, 1, 0, 0), 1, "nesterov"),
    ("sgd", dict(momentum=0.9), (1, 1, 0, 0, 0), 1, "momentum_buffer"),
    ("sgd", dict(dampening=INF), (1, 1, 1, 0, 0), 1, "dampening"),
    ("sgd", {}, (1, 1, 1, 0, 0), 0, "step"),
    ("adagrad", dict(eps=NAN), (1, 1, 1, 0, 0), 1, "eps"),
    ("adagrad", dict(lr_decay=-0.5), (1, 1, 1, 0, 0), 1, "lr_decay"),
    ("adagrad", {}, (1, 1, 0, 0, 0), 1, "state_sum"),
    ("rmsprop", dict(alpha=-0.1), (1, 1, 1, 1, 1), 1, "alpha"),
    ("rmsprop", dict(centered=True), (1, 1, 1, 0, 1), 1, "grad_avg"),
    ("rmsprop", dict(momentum=0.9), (1, 1, 1, 1, 0), 1, "momentum_buffer"),
    ("rmsprop", dict(weight_decay=-1.0), (1, 1, 1, 1, 1), 1, "weight_decay"),
    ("adam", dict(beta1=1.0), (1, 1, 1, 1, 1), 1, "beta1"),
    ("adam", dict(beta2=-0.1), (1, 1, 1, 1, 1), 1, "beta2"),
    ("adam", dict(amsgrad=True), (1, 1, 1, 1, 0), 1, "max_exp_avg_sq"),
    ("adam", dict(weight_decay=INF), (1, 1, 1, 1, 1), 1, "weight_decay"),
    ("adam", dict(lr=NAN), (1, 1, 1, 1, 1), 1, "lr"),
    ("adam", {}, (0, 1, 1, 1, 1), 1, "param"),
    ("adam", {}, (1, 0, 1, 1, 1), 1, "grad"),
    ("adam", {}, (1, 1, 1, 0, 1), 1, "exp_avg_sq"),
    ("adamw", dict(eps=-1e-8), (1, 1, 1, 1, 1), 1, "eps"),
    ("adam", {}, (1, 1, 1, 1, 1), -3, "step"),
    ("adamax", dict(beta2=1.0), (1, 1, 1, 1, 0), 1, "beta2"),
    ("adamax", dict(eps=-1.0), (1, 1, 1, 1, 0), 1, "eps"),
    ("adamax", {}, (1, 1, 1, 0, 0), 1, "exp_inf"),
    ("adamax", {}, (1, 1, 1, 1, 0), 0, "step"),
    ("nadam", dict(momentum_decay=-0.1), (1, 1, 1, 1, 0), 1, "momentum_decay"),
    ("nadam", dict(beta1=NAN), (1, 1, 1, 1, 0), 1, "beta1"),
    ("nadam", dict(mu_product=1.5), (1, 1, 1, 1, 0), 1, "mu_product"),
    ("nadam", dict(mu_product=NAN), (1, 1, 1, 1, 0), 1, "mu_product"),
    ("nadam", dict(mu_product=None), (1, 1, 1, 1, 0), 1, "mu_product"),
    ("nadam", {}, (1, 1, 0, 1, 0), 1, "exp_avg"),
    ("radam", dict(weight_decay=-1.0), (1, 1, 1, 1, 0), 1, "weight_decay"),
    ("radam", dict(beta2=1.0), (1, 1, 1, 1, 0), 1, "beta2"),
    ("radam", dict(lr=INF), (1, 1, 1, 1, 0), 1, "lr"),
    ("radam", {}, (1, 1, 1, 0, 0), 1, "exp_avg_sq"),
    ("adadelta", dict(rho=1.5), (1, 1, 1, 1, 0), 1, "rho"),
    ("adadelta", dict(rho=-0.1), (1, 1, 1, 1, 0), 1, "rho"),
    ("adadelta", dict(weight_decay=NAN), (1, 1, 1, 1, 0), 1, "weight_decay"),
    ("adadelta", {}, (1, 1, 1, 0, 0), 1, "acc_delta"),
    ("rprop", dict(etaminus=1.0), (1, 1, 1, 1, 0), 1, "etaminus"),
    ("rprop", dict(etaminus=0.0), (1, 1, 1, 1, 0), 1, "etaminus"),
    ("rprop", dict(etaplus=1.0), (1, 1, 1, 1, 0), 1, "etaplus"),
    ("rprop", dict(etaplus=INF), (1, 1, 1, 1, 0), 2, "etaplus"),
    ("rprop", dict(step_size_min=-1e-6), (1, 1, 1, 1, 0), 1, "step_size_min"),
    ("rprop", dict(step_size_max=NAN), (1, 1, 1, 1, 0), 1, "step_size_max"),
    ("rprop", dict(step_size_min=1.0, step_size_max=0.5), (1, 1, 1, 1, 0), 3, "min <= max"),
    ("rprop", dict(lr=-0.01), (1, 1, 1, 1, 0), 1, "lr"),
    ("rprop", {}, (1, 1, 1, 0, 0), 1, "step_size_buffer"),  # not read on step 1, written
    ("rprop", {}, (1, 1, 0, 1, 0), 2, "prev"),
    ("rprop", {}, (1, 1, 1, 1, 0), 0, "step"),
    ("asgd", dict(lambd=-1e-4), (1, 1, 1, 0, 0), 1, "lambd"),
    ("asgd", dict(alpha=NAN), (1, 1, 1, 0, 0), 1, "alpha"),
    ("asgd", dict(t0=INF), (1, 1, 1, 0, 0), 1, "t0"),
    ("asgd", dict(lr=-0.1), (1, 1, 1, 0, 0), 1, "lr"),
    ("asgd", dict(weight_decay=-1.0), (1, 1, 1, 0, 0), 1, "weight_decay"),
    ("asgd", dict(eta=-0.1), (1, 1, 1, 0, 0), 2, "eta"),
    ("asgd", dict(eta=INF), (1, 1, 1, 0, 0), 2, "eta"),
    ("asgd", dict(eta=-0.1), (1, 1, 1, 0, 0), 1, "eta"),  # checked, though not read on step 1
    ("asgd", dict(mu=1.5), (1, 1, 1, 0, 0), 2, "mu"),
    ("asgd", dict(mu=NAN), (1, 1, 1, 0, 0), 2, "mu"),
    ("asgd", dict(eta=None), (1, 1, 1, 0, 0), 2, "eta"),
    ("asgd", dict(mu=None), (1, 1, 1, 0, 0), 1, "mu"),
    ("asgd", {}, (1, 1, 0, 0, 0), 1, "ax"),
    ("asgd", {}, (1, 0, 1, 0, 0), 1, "grad"),
    # (1 + lambd lr t) ** alpha beyond double (Python's float ** raises OverflowError)
    ("asgd", dict(lr=1e10, lambd=1.0, alpha=40.0), (1, 1, 1, 0, 0), 1, "out of range"),
]
SIZES = [1, 13, 37]  # one element, a prime, not a multiple of any SIMD width
DTYPES = [np.float32, np.float64]


class Case(NamedTuple):
    name: str
    opts: dict[str, Any]
    dtype: Any
    n: int
    step0: int
    nsteps: int
    has: tuple[int, ...]  # param, grad, state slot 0..2 passed or null
    a: np.ndarray  # param and state slots 0..2, (4, n)
    g: np.ndarray  # (nsteps, n)

    @property
    def carried(self):
        """The carried values before the first step, by role (None: passed as null)."""
        spec = C.SPECS[self.name]
        return {k: self.opts.get(k, spec.group_state[k]) for k in spec.carry}

    def carried_in(self):
        """The two carried values as the driver gets them (0.0 for a null or unused one)."""
        v = [0.0 if x is None else float(x) for x in self.carried.values()]
        return v + [0.0] * (2 - len(v))

    def options(self):
        o = {**_c_options(self.name), **self.opts}
        for k in C.SPECS[self.name].carry:
            o.pop(k, None)
        return o


def _initial_state(name, n, dtype, rng, step0):
    """param, then each state slot: zero before the first step (Adagrad's sum at its
    initial_accumulator_value, here random), a running average after."""
    a = np.zeros((4, n), dtype)
    a[0] = rng.standard_normal(n)
    if step0 > 1 or name == "adagrad":
        for k, role in enumerate(STATE[name]):
            x = 0.1 * rng.standard_normal(n)
            a[k + 1] = x if role in SIGNED_STATE else np.abs(x)
    if name == "rmsprop":
        a[1] += 0.5  # square_avg >= grad_avg**2 (centered)
    return a


def _pack(c):
    o = c.options()
    roles = [r.encode() for r in STATE[c.name]] + [b""] * (3 - len(STATE[c.name]))
    carried = list(c.carried.items()) + [("", None)] * (2 - len(c.carried))
    head = struct.pack(
        "=16s12q2d24s24s24s24s24s",
        c.name.encode(),
        np.dtype(c.dtype).itemsize,
        c.n,
        c.step0,
        c.nsteps,
        len(o),
        *c.has,
        *(int(v is not None) for _, v in carried),
        *c.carried_in(),
        *roles,
        *(k.encode() for k, _ in carried),
    )
    opts = b"".join(struct.pack("=24sd", k.encode(), float(v)) for k, v in o.items())
    return head + opts + c.a.tobytes() + c.g.tobytes()


def _reference(c):
    """Run fastopt.kernels (NumPy backend) on copies; return the 4 arrays and the carried
    values after the steps (as the driver returns them)."""
    a = c.a.copy()
    o = c.options()
    spec = C.SPECS[c.name]
    for opt in spec.options:
        if opt.kind == "pair":
            o[opt.name] = tuple(o.pop(r) for r in opt.rules)
    if c.name == "adamw":
        del o["decoupled_weight_decay"]
    fn = getattr(fastopt.kernels, c.name)
    # n == 0: the C/C++ call takes null pointers; the kernels take empty arrays
    state = [a[k + 1] if c.has[k + 2] or c.n == 0 else None for k in range(len(STATE[c.name]))]
    carried = c.carried
    for i, gi in enumerate(c.g):
        after = fn(a[0], gi, *state, step=c.step0 + i, backend="numpy", **o, **carried)
        if spec.carry:
            carried = dict(zip(spec.carry, after if len(spec.carry) > 1 else (after,)))
    return a, [*carried.values(), *[0.0] * (2 - len(carried))]


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(20261128)
    out = []
    for name, opts, state_has, step0, nsteps in VALID:
        for dtype in DTYPES:
            for n in SIZES:
                a = _initial_state(name, n, dtype, rng, step0)
                g = rng.standard_normal((nsteps, n)).astype(dtype)
                has = (1, 1, *map(int, state_has))
                out.append(Case(name, opts, dtype, n, step0, nsteps, has, a, g))
    for name, opts, has, step, _ in INVALID:
        for dtype in DTYPES:
            a = _initial_state(name, 5, dtype, rng, 2)
            g = rng.standard_normal((1, 5)).astype(dtype)
            out.append(Case(name, opts, dtype, 5, step, 1, has, a, g))
    # n == 0: nothing to do, null pointers allowed (NAdam's product still advances)
    for name in STATE:
        z = np.zeros((4, 0))
        out.append(Case(name, {}, np.float64, 0, 1, 1, (0, 0, 0, 0, 0), z, np.zeros((1, 0))))
    return out


def _run_driver(exe, cases, tmp_path):
    inp, outp = tmp_path / f"{exe.name}.in", tmp_path / f"{exe.name}.out"
    inp.write_bytes(struct.pack("=q", len(cases)) + b"".join(_pack(c) for c in cases))
    r = subprocess.run([str(exe), str(inp), str(outp)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    data = outp.read_bytes()
    results, pos = [], 0
    for c in cases:
        rc, msg, *carried = struct.unpack_from("=q256s2d", data, pos)
        pos += 280
        nbytes = 4 * c.n * np.dtype(c.dtype).itemsize
        arrays = np.frombuffer(data[pos : pos + nbytes], c.dtype).reshape(4, c.n)
        pos += nbytes
        results.append((rc, msg.split(b"\0", 1)[0].decode(), carried, arrays))
    assert pos == len(data)
    return results


def _label(c):
    return (
        f"{c.name}({c.opts}) {np.dtype(c.dtype).name} n={c.n} "
        f"steps {c.step0}..{c.step0 + c.nsteps - 1} has={c.has}"
    )


def _same(x, y):
    return struct.pack(f"={len(x)}d", *x) == struct.pack(f"={len(y)}d", *y)


DRIVERS = [
    ("subdir", "driver_cpp"),
    ("subdir", "driver_c"),
    ("subdir", "driver_cpp_native"),
    ("subdir", "driver_cpp_pragma"),
    ("installed", "driver_cpp"),
    ("installed", "driver_c"),
    ("clang", "driver_cpp"),
    ("clang", "driver_c"),
    ("clang", "driver_cpp_native"),
]


def _exe(builds, mode, driver):
    if mode == "clang" and not HAVE_CLANG:
        pytest.skip("clang/clang++ are not installed")
    return builds[mode] / driver


@pytest.mark.parametrize("mode,driver", DRIVERS, ids=[f"{m}-{d}" for m, d in DRIVERS])
def test_driver_bits_equal_kernels(builds, cases, tmp_path, mode, driver):
    exe = _exe(builds, mode, driver)
    if driver == "driver_cpp_pragma" and not exe.exists():
        pytest.skip("the pragma-only build is GCC's")
    results = _run_driver(exe, cases, tmp_path)
    nvalid = len(VALID) * len(DTYPES) * len(SIZES)
    bad = []
    for i, (c, (rc, msg, carried, got)) in enumerate(zip(cases, results)):
        if nvalid <= i < nvalid + len(INVALID) * len(DTYPES):
            want_part = INVALID[(i - nvalid) // len(DTYPES)][4]
            if rc != 1 or want_part not in msg:
                bad.append(
                    f"{_label(c)}: rc={rc} msg={msg!r}, expected a refusal about {want_part}"
                )
            elif got.tobytes() != c.a.tobytes() or not _same(carried, c.carried_in()):
                bad.append(f"{_label(c)}: refused ({msg}) but wrote")
            continue
        if rc != 0:
            bad.append(f"{_label(c)}: rc={rc} {msg}")
            continue
        want, want_carried = _reference(c)
        if got.tobytes() != want.tobytes():
            diff = np.nonzero(got.view(f"u{got.itemsize}") != want.view(f"u{want.itemsize}"))
            bad.append(
                f"{_label(c)}: differs at {list(zip(*diff))[:4]}: {got[diff][:4]} vs {want[diff][:4]}"
            )
        elif not _same(carried, want_carried):
            bad.append(f"{_label(c)}: carried {carried!r}, expected {want_carried!r}")
    assert not bad, f"{len(bad)} of {len(cases)} cases wrong:\n" + "\n".join(bad[:30])


@pytest.mark.parametrize(
    "mode,driver", DRIVERS[:2] + DRIVERS[4:], ids=[f"{m}-{d}" for m, d in DRIVERS[:2] + DRIVERS[4:]]
)
def test_driver_self_check(builds, mode, driver):
    """Overlapping arrays (and carried values inside an array or each other) refused with
    nothing written,
    NULL options, the layout of the C structs of the first release."""
    r = subprocess.run(
        [str(_exe(builds, mode, driver)), "--self-check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout == "ok\n", r.stdout + r.stderr


@pytest.mark.parametrize(
    "mode,driver", DRIVERS[:2] + DRIVERS[4:], ids=[f"{m}-{d}" for m, d in DRIVERS[:2] + DRIVERS[4:]]
)
def test_defaults_are_the_contracts(builds, mode, driver):
    """Every default options struct (C: fastopt_<name>_default_options, C++: the struct's
    initialisers) holds exactly the contract's options with torch's defaults, and every
    element-wise optimizer of the contract (EMBEDDED) is in the API."""
    r = subprocess.run(
        [str(_exe(builds, mode, driver)), "--defaults"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    got: dict[str, dict[str, float]] = {}
    for line in r.stdout.splitlines():
        name, option, value = line.split()
        got.setdefault(name, {})[option] = float(value)
    assert sorted(got) == sorted(EMBEDDED), (
        "the C/C++ API must have every element-wise optimizer of the contract (a Spec whose "
        "kernel is in C.KERNELS): add the missing ones to cpp/include/fastopt/optimizers.h "
        "(docs/embedding.md)"
    )
    for name, fields in got.items():
        assert fields == {k: float(v) for k, v in _c_options(name).items()}, name


def test_invalid_options_are_python_rules():
    """The refused option values are refused by fastopt.kernels too (same rules)."""
    checked = 0
    for name, opts, _has, step, part in INVALID:
        c = Case(name, opts, np.float64, 3, step, 1, (1,) * 5, np.zeros((4, 3)), np.zeros((1, 3)))
        if part in ("param", "grad", *STATE[name]) or None in c.carried.values():
            continue  # null pointers: no Python counterpart
        with pytest.raises((ValueError, TypeError, OverflowError), match=part):
            _reference(c)
        checked += 1
    assert checked >= 45


# ------------------------------------------------------------------ the examples
def _parse_w(out):
    return [float.fromhex(v) for v in re.findall(r"^w\[\d+\] = (\S+)", out, re.M)]


def _fit_line_reference():
    """examples/cpp/main.cpp in Python: the same sums in the same order, then fastopt.kernels."""
    N = 16
    x = [k / 8.0 - 1.0 for k in range(N)]
    y = [2.0 * xk - 1.0 for xk in x]
    w, m, v = np.zeros(2), np.zeros(2), np.zeros(2)
    for t in range(1, 301):
        g0 = g1 = 0.0
        for k in range(N):
            err = float(w[0]) * x[k] + float(w[1]) - y[k]
            g0 += err * x[k]
            g1 += err
        fastopt.kernels.adam(w, np.array([g0 / N, g1 / N]), m, v, step=t, lr=0.05, backend="numpy")
    return list(w)


def _quadratic_reference():
    """examples/c/main.c in Python (float32)."""
    n = 5
    a = (1.0 + np.arange(n)).astype(np.float32)
    c = (np.arange(n) - 2.0).astype(np.float32)
    w, buf = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for t in range(1, 101):
        g = a * (w - c)
        fastopt.kernels.sgd(
            w,
            g,
            buf,
            step=t,
            lr=0.05,
            momentum=0.9,
            nesterov=True,
            weight_decay=1e-3,
            backend="numpy",
        )
    return [float(x) for x in w]


def _run(exe):
    return subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=60).stdout


@pytest.mark.parametrize("mode", ["subdir", "installed"])
def test_examples(builds, mode):
    out = _run(builds[mode] / "example_cpp" / "fit_line")
    assert _parse_w(out) == _fit_line_reference(), out
    assert "rejected: beta1 must be in [0, 1)" in out
    out = _run(builds[mode] / "example_c" / "quadratic")
    assert _parse_w(out) == _quadratic_reference(), out
    assert "rejected: lr must be >= 0" in out


def test_cmake_install_prefix(tmp_path):
    """`cmake --install` of the checkout (no Python) gives a prefix that the examples find."""
    build = _configure_build(
        ROOT, tmp_path / "lib", f"-DCMAKE_INSTALL_PREFIX={tmp_path / 'prefix'}"
    )
    cache = (build / "CMakeCache.txt").read_text()
    assert "pybind11_DIR" not in cache and "FASTOPT_BUILD_PYTHON:BOOL=OFF" in cache
    _cmake(["--install", str(build)])
    prefix = tmp_path / "prefix"
    assert (prefix / "include" / "fastopt" / "fastopt.hpp").is_file()
    assert (prefix / "include" / "fastopt" / "fastopt.h").is_file()
    for ex, exe, ref in [("c", "quadratic", _quadratic_reference)]:
        b = _configure_build(ROOT / "examples" / ex, tmp_path / ex, f"-DCMAKE_PREFIX_PATH={prefix}")
        assert _parse_w(_run(b / exe)) == ref()


def test_paths():
    inc = Path(fastopt.get_include())
    assert (inc / "fastopt" / "fastopt.hpp").is_file() and (inc / "fastopt" / "fastopt.h").is_file()
    cmake_dir = Path(fastopt.get_cmake_dir())
    assert (cmake_dir / "fastoptConfig.cmake").is_file()
    assert (cmake_dir / "fastoptConfigVersion.cmake").is_file()
    assert (
        f'PACKAGE_VERSION "{fastopt.__version__}"'
        in (cmake_dir / "fastoptConfigVersion.cmake").read_text()
    )
