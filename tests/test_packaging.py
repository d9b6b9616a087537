"""The installed package: version, metadata, shipped files, an install without Numba, and a
wheel built from a read-only copy of the source tree."""

import importlib.metadata
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import fastopt

ROOT = Path(__file__).resolve().parent.parent


def _run(code, *args):
    env = {k: v for k, v in os.environ.items() if k != "FASTOPT_BACKEND"}
    return subprocess.run(
        [sys.executable, *args, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


# ---------------------------------------------------------------------------- version
def test_version_is_single_sourced():
    from fastopt._version import __version__

    assert fastopt.__version__ == __version__ == importlib.metadata.version("fastopt")


@pytest.mark.parametrize(
    "cmd",
    [[sys.executable, "-m", "fastopt"], ["fastopt"]],
    ids=["python -m fastopt", "fastopt script"],
)
def test_version_on_the_command_line(cmd):
    if cmd == ["fastopt"]:
        script = Path(sys.executable).with_name("fastopt")
        if not script.exists():
            pytest.skip(f"the fastopt script is not installed next to {sys.executable}")
        cmd = [str(script)]
    r = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"fastopt {fastopt.__version__}"


# ---------------------------------------------------------------------------- metadata
def test_metadata_license_urls_and_dependencies():
    meta = importlib.metadata.metadata("fastopt")
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert "LICENSE" in (meta.get_all("License-File") or [])
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Issues"} <= set(urls)
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    # NumPy is the only runtime dependency; numba is the extra fastopt[numba].
    requires = importlib.metadata.requires("fastopt") or []
    plain = [r for r in requires if "extra ==" not in r]
    assert [r.split(">")[0].split("=")[0].strip() for r in plain] == ["numpy"]
    assert any(r.startswith("numba") and 'extra == "numba"' in r for r in requires)


def test_py_typed_and_license_are_installed():
    dist = importlib.metadata.distribution("fastopt")
    names = {Path(str(f)).name: f for f in dist.files or []}
    assert "py.typed" in names, "py.typed is not installed: type checkers ignore the hints"
    assert "LICENSE" in names
    assert "BSD 3-Clause" in Path(dist.locate_file(names["LICENSE"])).read_text()
    assert Path(fastopt.__file__).with_name("py.typed").exists()


# ---------------------------------------------------------------------------- without numba
# `sys.modules[name] = None` makes every later `import name` raise ImportError, as if the
# package were not installed.
_BLOCK_NUMBA = "import sys; sys.modules['numba'] = None\n"
_BLOCK_NATIVE = "sys.modules['fastopt._native'] = None\n"


def test_everything_works_without_numba():
    code = _BLOCK_NUMBA + (
        "import numpy as np, fastopt\n"
        "assert fastopt.available_backends() == ['native', 'numpy'], fastopt.available_backends()\n"
        "p = np.ones(3); opt = fastopt.Adam([p], lr=0.1); opt.step([np.ones(3)])\n"
        "assert opt.backend == 'native' and np.all(p < 1)\n"
        "fastopt.kernels.sgd(p, np.ones(3), step=1, lr=0.1, backend='numpy')\n"
        "try:\n"
        "    fastopt.SGD([np.ones(2)], backend='numba')\n"
        "except ImportError as exc:\n"
        "    print('error:', exc)\n"
        "else:\n"
        "    raise SystemExit('backend=numba did not raise')\n"
    )
    r = _run(code, "-W", "error")  # no warning at all: the compiled kernels are there
    assert r.returncode == 0, r.stderr
    assert "fastopt[numba]" in r.stdout


def test_without_numba_and_extension_falls_back_to_numpy_and_says_how_to_fix():
    code = (
        _BLOCK_NUMBA
        + _BLOCK_NATIVE
        + (
            "import numpy as np, fastopt\n"
            "assert fastopt.available_backends() == ['numpy']\n"
            "p = np.ones(3); opt = fastopt.Adam([p], lr=0.1); opt.step([np.ones(3)])\n"
            "print(opt.backend, p)\n"
        )
    )
    r = _run(code, "-W", "always")
    assert r.returncode == 0, r.stderr
    assert "numpy [0.9 0.9 0.9]" in r.stdout
    assert r.stderr.count("RuntimeWarning") == 1
    assert "'numpy' backend" in r.stderr and "fastopt[numba]" in r.stderr


# ---------------------------------------------------------------------------- read-only build
def _git_files():
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [f for f in out.decode().split("\0") if f]


@pytest.mark.slow
def test_wheel_builds_from_a_read_only_source_tree(tmp_path):
    """`pip install` from a read-only checkout (an unpacked sdist in a system directory, a
    read-only container mount) must not write into the source tree: no build directory
    there.  Builds a wheel (no isolation: the build requirements come from the test extra)
    from a read-only copy of the tracked files and checks what the wheel ships."""
    pytest.importorskip("scikit_build_core", reason="needs the test extra (scikit-build-core)")
    pytest.importorskip("pybind11", reason="needs the test extra (pybind11)")
    files = _git_files()
    if files is None:
        pytest.skip("not a git checkout: cannot list the source files")
    src, out = tmp_path / "src", tmp_path / "wheels"
    for f in files:
        if not (ROOT / f).is_file():
            continue  # deleted in the working tree but still tracked
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    before = sorted(str(p.relative_to(src)) for p in src.rglob("*"))
    # chmod -R a-w.  Root may write anyway, so the tree is also compared before and after.
    for p in [*src.rglob("*"), src]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--no-cache-dir",
                "-w",
                str(out),
                str(src),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    finally:
        for p in [src, *src.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    (wheel,) = out.glob("fastopt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fastopt/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert any(n.startswith("fastopt/_native") for n in names)
    after = sorted(str(p.relative_to(src)) for p in src.rglob("*"))
    assert after == before, f"the build wrote into the source tree: {set(after) - set(before)}"
