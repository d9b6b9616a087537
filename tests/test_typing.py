"""The public API type-checks: a user script in the README's style passes ``mypy --strict``
and pyright against the installed package (which ships ``py.typed``), and wrong uses fail.

The checkers run in a subprocess from an empty folder (no project configuration) on the
installed fastopt.  mypy comes with the test extra; pyright (a Node.js program behind a
PyPI wrapper that fetches it on first use) with the lint extra, and its tests skip when it
cannot run here.
"""

import importlib.util
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a type checker run takes 10-60 s

needs_mypy = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed (it is in the test extra: pip install 'fastopt[test]')",
)

USER_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import numpy.typing as npt

    import fastopt
    from fastopt import schedules

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5))
    y = X @ rng.standard_normal(5)

    # dict params, a schedule as the rate
    params = {"w": np.zeros(5), "b": np.zeros(1)}
    opt = fastopt.Adam(params, lr=fastopt.schedules.cosine(0.05, total_steps=20))
    history = fastopt.History().attach(opt)
    grads: dict[str, npt.NDArray[np.float64]] = {}
    for step in range(20):
        err = X @ params["w"] + params["b"] - y
        grads = {"w": X.T @ err / len(y), "b": np.array([err.mean()])}
        opt.step(grads)
        history.log_loss(float(np.mean(err**2)))
    rates: list[float] = opt.last_lr
    losses: npt.NDArray[np.float64] = history["loss"]
    history.record(val_loss=0.5)

    # list params, a lambda as the rate, momentum from a schedule
    ws = [np.zeros(3, np.float32), np.zeros((2, 2), np.float32)]
    sgd = fastopt.SGD(ws, lr=lambda k: 0.1 * 0.5 ** (k // 10), momentum=0.9)
    sgd.step([np.ones(3, np.float32), np.ones((2, 2), np.float32)])
    cycle = schedules.one_cycle(0.5, total_steps=1000)
    sgd2 = fastopt.SGD(ws, lr=cycle, momentum=cycle.momentum(0.85, 0.95))

    # parameter groups
    groups = fastopt.AdamW(
        [{"params": [np.zeros(2)], "lr": 0.1}, {"params": [np.zeros(3)], "weight_decay": 0.0}],
        lr=1e-3,
    )

    # schedules: a number for a step, an array for an array of steps
    lr_now: float = cycle(10)
    lr_all: npt.NDArray[np.float64] = cycle(np.arange(100))
    warm = schedules.warmup(schedules.cosine(0.1, total_steps=90), warmup_steps=10)
    scaled: schedules.Schedule = 0.5 * warm + 1e-5
    plateau = schedules.ReduceOnPlateau(0.1, patience=2)
    new_lr: float = plateau.observe(1.0)

    # checkpoints, clipping, threads, the functional kernels
    fastopt.save("checkpoint.npz", opt)
    fastopt.load("checkpoint.npz", opt)
    norm: float = fastopt.clip_grad_norm(grads, max_norm=1.0)
    fastopt.clip_grad_value(list(grads.values()), 0.5)
    fastopt.set_num_threads(1)
    n: int = fastopt.get_num_threads()
    w, g = np.zeros(4), np.ones(4)
    m, v = np.zeros_like(w), np.zeros_like(w)
    fastopt.kernels.adam(w, g, m, v, step=1, lr=1e-3)
    backends: list[str] = fastopt.available_backends()
    version: str = fastopt.__version__
    try:
        opt.step({"w": np.full(5, np.nan), "b": np.zeros(1)})
    except fastopt.NonFiniteGradientError as exc:
        message: str = str(exc)
    """
)

# Each line is a type error mypy must report: proof that the package's hints are used
# (an untyped or unfound package would make everything Any and this pass silently).
WRONG = {
    "schedule_value_is_float": "x: str = fastopt.schedules.cosine(0.1, total_steps=10)(3)",
    "clip_returns_float": "y: str = fastopt.clip_grad_norm([np.ones(3)], 1.0)",
    "version_is_str": "z: int = fastopt.__version__",
}


def _mypy(tmp_path, source):
    script = tmp_path / "user_script.py"
    script.write_text(source)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--no-error-summary",
            script.name,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )


@needs_mypy
def test_readme_style_script_passes_mypy_strict(tmp_path):
    r = _mypy(tmp_path, USER_SCRIPT)
    assert r.returncode == 0, f"mypy --strict reported:\n{r.stdout}{r.stderr}"


@needs_mypy
def test_wrong_types_are_reported(tmp_path):
    r = _mypy(tmp_path, _WRONG_SOURCE)
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    assert r.returncode == 1 and len(errors) == len(WRONG), r.stdout + r.stderr


_WRONG_SOURCE = "import numpy as np\nimport fastopt\n" + "\n".join(WRONG.values()) + "\n"


def _pyright():
    exe = Path(sys.executable).with_name("pyright")
    exe = str(exe) if exe.exists() else shutil.which("pyright")
    if exe is None:
        pytest.skip("pyright is not installed (it is in the lint extra)")
    try:
        probe = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"pyright cannot run here: {exc}")
    if probe.returncode != 0:
        pytest.skip(f"pyright cannot run here (it needs Node.js): {probe.stderr[-500:]}")
    return exe


def _run_pyright(tmp_path, source):
    exe = _pyright()
    (tmp_path / "user_script.py").write_text(source)
    return subprocess.run(
        [exe, "--pythonpath", sys.executable, "user_script.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )


def test_readme_style_script_passes_pyright(tmp_path):
    r = _run_pyright(tmp_path, USER_SCRIPT)
    assert r.returncode == 0, f"pyright reported:\n{r.stdout}{r.stderr}"


def test_wrong_types_are_reported_by_pyright(tmp_path):
    r = _run_pyright(tmp_path, _WRONG_SOURCE)
    errors = [line for line in r.stdout.splitlines() if " - error:" in line]
    assert r.returncode == 1 and len(errors) == len(WRONG), r.stdout + r.stderr
