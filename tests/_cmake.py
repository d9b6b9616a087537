"""Builds the Python module from this checkout with CMake, outside pip (for the tests that
need another toolchain's build: static libstdc++, another compiler)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_native(build: Path, env: dict) -> Path:
    """Configures (Release) and builds the _native target into ``build`` with ``env``;
    returns the module's path.  A failure shows the tail of CMake's output."""
    import pybind11

    for cmd in (
        [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            "-DFASTOPT_BUILD_PYTHON=ON",
        ],
        ["cmake", "--build", str(build), "--target", "_native", "-j", "2"],
    ):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    [so] = build.glob("_native*.so")
    return so
