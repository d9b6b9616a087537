"""The compiled module built by Clang gives the bits of the installed one (GCC's, in CI).

fastopt's C++ is for GCC or Clang (cpp/include/fastopt/fastopt.hpp).  Where ``clang++`` is
on PATH, this builds the Python module with it (CMake, Release, as the wheel is built) and
runs the same steps with both builds on every ISA both compiled (7 steps of 11 optimizers): float32 parameters with
finite values, and float16/bfloat16 parameters holding every bit pattern.  The parameter
bits must be equal; where a NaN gradient met a NaN, both must be NaNs
(test_half.same_bits_but_nan_grads says why).  Without ``clang++`` the test is skipped:
.ci/run installs Debian's clang when it can.  (Clang 14 used to stop the build:
``__builtin_cpu_supports`` knows neither "f16c" nor "avx512bf16" there.)
"""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from _cmake import build_native
from test_half import BF16, F16, same_bits_but_nan_grads

# Runs the steps with the installed module, or with the one in argv[2], and saves the bits.
STEPS = textwrap.dedent(
    """
    import sys
    import numpy as np
    if len(sys.argv) > 2:
        sys.path.insert(0, sys.argv[2])
        import _native
        sys.modules["fastopt._native"] = _native
    import fastopt
    from fastopt import _native
    import ml_dtypes

    cases = [
        (fastopt.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
        (fastopt.Adagrad, dict(lr=0.1, weight_decay=0.05, maximize=True)),
        (fastopt.RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
        (fastopt.Adam, dict(lr=0.01, weight_decay=0.05, amsgrad=True)),
        (fastopt.AdamW, dict(lr=0.01, maximize=True)),
        (fastopt.Adamax, dict(lr=0.01, weight_decay=0.05)),
        (fastopt.NAdam, dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.05)),
        (fastopt.RAdam, dict(lr=0.01)),
        (fastopt.Adadelta, dict(lr=0.5, weight_decay=0.05)),
        (fastopt.Rprop, dict(lr=0.01)),
        (fastopt.ASGD, dict(lr=0.01, t0=2)),
    ]
    rng = np.random.default_rng(5)
    n = 4099
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    pb = rng.permutation(np.resize(every, n))
    gb = rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)
    p32 = rng.standard_normal(n).astype(np.float32)
    g32 = rng.standard_normal(n).astype(np.float32)
    out = {"isas": np.array(_native.supported_isas()), "pb": pb, "gb": gb}
    for isa in _native.supported_isas():
        _native.set_isa(isa)
        for cls, kw in cases:
            for dt in (np.float32, np.float16, ml_dtypes.bfloat16):
                if dt is np.float32:
                    p, g = p32.copy(), g32
                else:
                    p, g = pb.view(dt).copy(), gb.view(dt)
                opt = cls([p], backend="native", nonfinite="ignore", **kw)
                with np.errstate(all="ignore"):
                    for _ in range(7):
                        opt.step([g])
                out[f"{isa} {cls.__name__} {np.dtype(dt).name}"] = p.view(
                    np.uint32 if dt is np.float32 else np.uint16
                )
    np.savez(sys.argv[1], **out)
    """
)


def run_steps(tmp_path, name, module_dir=None):
    out = tmp_path / f"{name}.npz"
    args = [sys.executable, "-c", STEPS, str(out)] + ([str(module_dir)] if module_dir else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return np.load(out)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("clang++") is None, reason="no clang++ on PATH")
def test_clang_build_gives_the_gcc_builds_bits(tmp_path):
    assert BF16 is not None, "ml_dtypes is not installed (pip install 'fastopt[test]')"
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "CXXFLAGS", "CFLAGS")}
    env.update(CC="clang", CXX="clang++")
    build = tmp_path / "build"
    build_native(build, env)
    cache = (build / "CMakeCache.txt").read_text()
    assert "clang" in next(x for x in cache.splitlines() if x.startswith("CMAKE_CXX_COMPILER:"))

    gcc = run_steps(tmp_path, "installed")
    clang = run_steps(tmp_path, "clang", build)
    assert list(clang["isas"]) == list(gcc["isas"])
    keys = [k for k in gcc.files if k not in ("isas", "pb", "gb")]
    assert sorted(keys) == sorted(k for k in clang.files if k not in ("isas", "pb", "gb"))
    assert len(keys) > 33
    pb, gb = gcc["pb"], gcc["gb"]  # the half patterns the steps started from
    for k in keys:
        if k.endswith("float32"):
            np.testing.assert_array_equal(clang[k], gcc[k], err_msg=k)
        else:
            half = BF16 if k.endswith("bfloat16") else F16
            same_bits_but_nan_grads(clang[k], gcc[k], pb, gb, half, k)
