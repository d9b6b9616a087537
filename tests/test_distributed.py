"""fastopt.distributed under real MPI: each test launches ``mpiexec -n N`` on a script in
tests/mpi/ (with a timeout; the whole process group is killed on expiry) and checks its
output.  Skipped, with the reason, only if mpi4py is missing or ``mpiexec`` cannot start
two ranks on this machine.  Ranks may outnumber cores (MPICH allows oversubscription);
each rank runs its kernels on one thread."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MPI_DIR = ROOT / "tests" / "mpi"
ENV = dict(
    os.environ, FASTOPT_NUM_THREADS="1", OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONPATH=""
)


def _run(cmd, timeout, cwd=ROOT):
    """Run ``cmd`` in its own process group; kill the group on timeout."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(
            f"timed out after {timeout} s (a deadlock?): {' '.join(map(str, cmd))}\n{out[-4000:]}"
        )
    return proc.returncode, out


def _mpiexec():
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


@pytest.fixture(scope="module")
def mpirun():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("MPI cannot start: mpi4py is not installed (pip install 'fastopt[mpi]')")
    exe = _mpiexec()
    if exe is None:
        pytest.skip(
            "MPI cannot start: no mpiexec next to the Python executable or on PATH "
            "(pip install mpich)"
        )
    probe = [
        exe,
        "-n",
        "2",
        sys.executable,
        "-c",
        "from mpi4py import MPI; c = MPI.COMM_WORLD; "
        "n = c.allreduce(1); print(n if c.rank == 0 else '', flush=True)",
    ]
    try:
        proc = subprocess.run(probe, env=ENV, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"MPI cannot start: {' '.join(probe)}: {exc}")
    if proc.returncode != 0 or proc.stdout.split() != ["2"]:
        pytest.skip(
            f"MPI cannot start two ranks: {' '.join(probe)} exited "
            f"{proc.returncode}: {(proc.stdout + proc.stderr)[-1000:]}"
        )

    def run(n, *args, timeout=120, cwd=ROOT):
        cmd = [exe, "-n", str(n), sys.executable, "-m", "mpi4py", *map(str, args)]
        rc, out = _run(cmd, timeout, cwd)
        assert rc == 0, f"{' '.join(cmd)} exited {rc}:\n{out[-6000:]}"
        return out

    return run


def test_import_fastopt_does_not_import_mpi4py():
    code = (
        "import sys, numpy as np, fastopt; o = fastopt.Adam([np.zeros(3)]); "
        "o.step([np.ones(3)]); import fastopt.checkpoint, fastopt.clip; "
        "print('mpi4py' in sys.modules)"
    )
    rc, out = _run([sys.executable, "-c", code], 60)
    assert rc == 0 and out.split()[-1] == "False", out


@pytest.mark.parametrize("n", [2, 4])
def test_mpi_checks(mpirun, n):
    out = mpirun(n, MPI_DIR / "checks.py")
    assert f"ALL OK on {n} ranks" in out, out
    for what in (
        "allreduce_gradients",
        "SGD",
        "Adagrad",
        "RMSprop",
        "Adam",
        "AdamW",
        "clipping",
        "state memory",
        "non-finite",
        "bad input",
        "checkpoints",
        "fewer elements than ranks",
        "backends",
        "training run",
    ):
        assert f"ok {what}" in out, (what, out)


# The legs of the resharding test, in order: (ranks, None for one plain process; kind; the
# phases this leg runs after those of the checkpoint it loads; load from; save to).
RESHARD_LEGS = [
    (None, "plain", "4:2", None, "single"),
    (4, "sharded", "4:2", "single", "four"),
    (None, "plain", "1:1", "four", None),  # 4 -> single process
    (2, "sharded", "2:2", "four", "two"),
    (1, "sharded", "1:1", "four", None),  # 4 -> 1 rank
    (2, "dp", "2:1", "four", None),  # 4 -> 2, data parallel
    (8, "sharded", "8:1", "four", None),  # 4 -> 8 ranks
    (4, "sharded", "4:1", "two", None),  # 2 -> 4
]


def test_resharding_round_trips(mpirun, tmp_path):
    """Save on one rank count, load on another (or in a single process), continue: every
    leg bit-identical to the single-process history (order="rank")."""
    saved: dict[str, str] = {}  # checkpoint -> the phases that made it
    out = []
    for ranks, kind, phase, load, save in RESHARD_LEGS:
        phases = f"{saved[load]},{phase}" if load else phase
        args = [MPI_DIR / "reshard.py", "--kind", kind, "--phases", phases]
        if load:
            args += ["--load", tmp_path / load]
        if save:
            args += ["--save", tmp_path / save]
            saved[save] = phases
        if ranks is None:
            rc, text = _run([sys.executable, *args], 60)
            assert rc == 0, text
        else:
            text = mpirun(ranks, *args)
        out.append(text)
    text = "".join(out)
    assert text.count("RESHARD OK") == len(RESHARD_LEGS) == 8, text


def test_readme_scaling_out_example(mpirun, tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Scaling out\n.*?```python\n(.*?)```", text, re.S).group(1)
    assert len(block.strip().splitlines()) <= 20
    (tmp_path / "train.py").write_text(block)
    out = mpirun(2, tmp_path / "train.py", cwd=tmp_path)
    assert "w = [0. 1. 2. 3. 4. 5. 6. 7.]" in out, out
    assert (tmp_path / "ckpt.npz").exists()
    import numpy as np

    import fastopt

    w = np.zeros(8)
    opt = fastopt.Adam([w], lr=0.1)
    fastopt.load(tmp_path / "ckpt.npz", opt)  # the sharded run's file, in one process
    assert opt.step_count == 500 and np.allclose(w, np.arange(8.0), atol=1e-2)
