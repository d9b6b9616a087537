"""The C++ API, the C ABI and the CMake package, used from outside Python.

Builds (once per session, with CMake) the consumers of tests/embedding -- a C++ and a C test
driver, and the examples of examples/cpp and examples/c -- against fastopt (a) from this
checkout with ``add_subdirectory`` and (b) as installed with the wheel (``find_package`` with
``-Dfastopt_DIR=fastopt.get_cmake_dir()``); the C++ driver also with ``-O3 -march=native``
(and on GCC without the target's options at all).  The drivers run every optimizer, float32
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

import numpy as np
import pytest

import fastopt

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


def _build_env():
    # Under `make sanitize` the Python process preloads libasan; the build tools need not.
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def _cmake(args, cwd=None):
    r = subprocess.run(["cmake", *args], cwd=cwd, env=_build_env(), capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"cmake {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r


def _configure_build(src, build, *defs):
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    _cmake(["-S", str(src), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Release", *defs])
    _cmake(["--build", str(build), "-j", "2"])
    return build


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """{mode: build dir}: 'subdir' (add_subdirectory of the checkout) and 'installed'
    (find_package from the installed wheel)."""
    base = tmp_path_factory.mktemp("embedding")
    return {
        "subdir": _configure_build(
            CONSUMERS, base / "subdir", f"-DFASTOPT_CHECKOUT={ROOT}", "-DFASTOPT_TEST_NATIVE=ON"
        ),
        "installed": _configure_build(
            CONSUMERS, base / "installed", f"-Dfastopt_DIR={fastopt.get_cmake_dir()}"
        ),
    }


# ------------------------------------------------------------------ cases
OPT_IDS = {"sgd": 0, "adagrad": 1, "rmsprop": 2, "adam": 3, "adamw": 4}
# The driver's option layout (tests/embedding/driver.cpp): doubles, then flags.
D_NAMES = {
    "sgd": ["lr", "momentum", "dampening", "weight_decay"],
    "adagrad": ["lr", "lr_decay", "weight_decay", "eps"],
    "rmsprop": ["lr", "alpha", "eps", "weight_decay", "momentum"],
    "adam": ["lr", "beta1", "beta2", "eps", "weight_decay"],
    "adamw": ["lr", "beta1", "beta2", "eps", "weight_decay"],
}
B_NAMES = {
    "sgd": ["nesterov", "maximize"],
    "adagrad": ["maximize"],
    "rmsprop": ["centered", "maximize"],
    "adam": ["amsgrad", "maximize", "decoupled_weight_decay"],
    "adamw": ["amsgrad", "maximize"],
}
DEFAULTS = {  # torch's, as fastopt.kernels has them
    "sgd": dict(
        lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False
    ),
    "adagrad": dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False),
    "rmsprop": dict(
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        maximize=False,
    ),
    "adam": dict(
        lr=1e-3,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        maximize=False,
        decoupled_weight_decay=False,
    ),
    "adamw": dict(
        lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False
    ),
}

# (optimizer, options, state arrays passed (True) or null, first step, steps)
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
]
SIZES = [1, 13, 37]  # one element, a prime, not a multiple of any SIMD width
DTYPES = [np.float32, np.float64]


def _initial_state(name, opts, n, dtype, rng, step0):
    a = np.zeros((4, n), dtype)
    a[0] = rng.standard_normal(n)
    if name == "sgd" and step0 > 1:
        a[1] = rng.standard_normal(n)
    elif name == "adagrad":
        a[1] = np.abs(rng.standard_normal(n))
    elif name == "rmsprop":
        a[1] = np.abs(rng.standard_normal(n)) + 0.5
        a[2] = 0.1 * rng.standard_normal(n)
        a[3] = rng.standard_normal(n) if step0 > 1 else 0.0
    elif name in ("adam", "adamw") and step0 > 1:
        a[1] = 0.1 * rng.standard_normal(n)
        a[2] = 0.01 * np.abs(rng.standard_normal(n))
        a[3] = a[2] + 0.01 * np.abs(rng.standard_normal(n))
    return a


def _pack(case):
    name, opts, dtype, n, step0, nsteps, has, a, g = case
    o = {**DEFAULTS[name], **opts}
    d = [float(o[k]) for k in D_NAMES[name]] + [0.0] * (6 - len(D_NAMES[name]))
    b = [int(o[k]) for k in B_NAMES[name]] + [0] * (4 - len(B_NAMES[name]))
    head = struct.pack(
        "=5q6d4q5q",
        OPT_IDS[name],
        np.dtype(dtype).itemsize,
        n,
        step0,
        nsteps,
        *d,
        *b,
        *[int(h) for h in has],
    )
    return head + a.tobytes() + g.tobytes()


def _reference(name, opts, has, a, g, step0):
    """Run fastopt.kernels (NumPy backend) on copies; return the 4 arrays."""
    a = a.copy()
    if a.shape[1] == 0:  # n == 0 with null pointers: nothing to update
        return a
    o = {**DEFAULTS[name], **opts}
    p = a[0]
    s = [a[k + 1] if has[k + 2] else None for k in range(3)]
    for i, gi in enumerate(g):
        t = step0 + i
        if name == "sgd":
            fastopt.kernels.sgd(p, gi, s[0], step=t, backend="numpy", **o)
        elif name == "adagrad":
            fastopt.kernels.adagrad(p, gi, s[0], step=t, backend="numpy", **o)
        elif name == "rmsprop":
            fastopt.kernels.rmsprop(p, gi, s[0], s[1], s[2], step=t, backend="numpy", **o)
        else:
            o2 = dict(o)
            betas = (o2.pop("beta1"), o2.pop("beta2"))
            fn = fastopt.kernels.adam if name == "adam" else fastopt.kernels.adamw
            fn(p, gi, s[0], s[1], s[2], step=t, betas=betas, backend="numpy", **o2)
    return a


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(20261128)
    out = []
    for name, opts, state_has, step0, nsteps in VALID:
        for dtype in DTYPES:
            for n in SIZES:
                a = _initial_state(name, opts, n, dtype, rng, step0)
                g = rng.standard_normal((nsteps, n)).astype(dtype)
                out.append((name, opts, dtype, n, step0, nsteps, (1, 1, *state_has), a, g))
    for name, opts, has, step, _ in INVALID:
        for dtype in DTYPES:
            a = _initial_state(name, opts, 5, dtype, rng, 2)
            g = rng.standard_normal((1, 5)).astype(dtype)
            out.append((name, opts, dtype, 5, step, 1, has, a, g))
    # n == 0: nothing to do, null pointers allowed
    for name in OPT_IDS:
        out.append(
            (name, {}, np.float64, 0, 1, 1, (0, 0, 0, 0, 0), np.zeros((4, 0)), np.zeros((1, 0)))
        )
    return out


def _run_driver(exe, cases, tmp_path):
    inp, outp = tmp_path / f"{exe.name}.in", tmp_path / f"{exe.name}.out"
    inp.write_bytes(struct.pack("=q", len(cases)) + b"".join(_pack(c) for c in cases))
    subprocess.run([str(exe), str(inp), str(outp)], check=True, timeout=60)
    data = outp.read_bytes()
    results, pos = [], 0
    for c in cases:
        dtype, n = c[2], c[3]
        rc = struct.unpack_from("=q", data, pos)[0]
        msg = data[pos + 8 : pos + 264].split(b"\0", 1)[0].decode()
        pos += 264
        nbytes = 4 * n * np.dtype(dtype).itemsize
        arrays = np.frombuffer(data[pos : pos + nbytes], dtype).reshape(4, n)
        pos += nbytes
        results.append((rc, msg, arrays))
    assert pos == len(data)
    return results


def _label(c):
    name, opts, dtype, n, step0, nsteps, has = c[:7]
    return (
        f"{name}({opts}) {np.dtype(dtype).name} n={n} steps {step0}..{step0 + nsteps - 1} has={has}"
    )


DRIVERS = [
    ("subdir", "driver_cpp"),
    ("subdir", "driver_c"),
    ("subdir", "driver_cpp_native"),
    ("subdir", "driver_cpp_pragma"),
    ("installed", "driver_cpp"),
    ("installed", "driver_c"),
]


@pytest.mark.parametrize("mode,driver", DRIVERS, ids=[f"{m}-{d}" for m, d in DRIVERS])
def test_driver_bits_equal_kernels(builds, cases, tmp_path, mode, driver):
    exe = builds[mode] / driver
    if driver == "driver_cpp_pragma" and not exe.exists():
        pytest.skip("the pragma-only build is GCC's")
    results = _run_driver(exe, cases, tmp_path)
    nvalid = len(VALID) * len(DTYPES) * len(SIZES)
    bad = []
    for i, (c, (rc, msg, got)) in enumerate(zip(cases, results)):
        name, opts, _dtype, _n, step0, _nsteps, has, a, g = c
        if nvalid <= i < nvalid + len(INVALID) * len(DTYPES):
            want_part = INVALID[(i - nvalid) // len(DTYPES)][4]
            if rc != 1 or want_part not in msg:
                bad.append(
                    f"{_label(c)}: rc={rc} msg={msg!r}, expected a refusal about {want_part}"
                )
            elif got.tobytes() != a.tobytes():
                bad.append(f"{_label(c)}: refused ({msg}) but wrote")
            continue
        if rc != 0:
            bad.append(f"{_label(c)}: rc={rc} {msg}")
            continue
        want = _reference(name, opts, has, a, g, step0)
        if got.tobytes() != want.tobytes():
            diff = np.nonzero(got.view(f"u{got.itemsize}") != want.view(f"u{want.itemsize}"))
            bad.append(
                f"{_label(c)}: differs at {list(zip(*diff))[:4]}: {got[diff][:4]} vs {want[diff][:4]}"
            )
    assert not bad, f"{len(bad)} of {len(cases)} cases wrong:\n" + "\n".join(bad[:30])


@pytest.mark.parametrize(
    "mode,driver", DRIVERS[:2] + DRIVERS[4:], ids=[f"{m}-{d}" for m, d in DRIVERS[:2] + DRIVERS[4:]]
)
def test_driver_self_check(builds, mode, driver):
    """Overlapping arrays refused with nothing written, NULL options, torch's defaults."""
    r = subprocess.run(
        [str(builds[mode] / driver), "--self-check"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stdout == "ok\n", r.stdout + r.stderr


def test_invalid_options_are_python_rules(cases):
    """The refused option values are refused by fastopt.kernels too (same rules)."""
    for name, opts, has, step, _ in INVALID:
        if not all(has) and not opts and step >= 1:
            continue  # null pointers: no Python counterpart
        if name == "sgd" and opts == dict(momentum=0.9):
            continue
        a = np.zeros((4, 3))
        o = {**DEFAULTS[name], **opts}
        if name in ("adam", "adamw"):
            o["betas"] = (o.pop("beta1"), o.pop("beta2"))
        args = {
            "sgd": (a[0], a[1], a[2]),
            "adagrad": (a[0], a[1], a[2]),
            "rmsprop": (a[0], a[1], a[2], a[3] if has[3] else None, a[3] if has[4] else None),
            "adam": (a[0], a[1], a[2], a[3], a[3] if has[4] else None),
            "adamw": (a[0], a[1], a[2], a[3], a[3] if has[4] else None),
        }[name]
        with pytest.raises((ValueError, TypeError)):
            getattr(fastopt.kernels, name)(*args, step=step, backend="numpy", **o)


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
