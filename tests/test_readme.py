"""Every ```python block of the README runs verbatim, in order, in one namespace (a reader
pastes them one after the other into one session), in a fresh interpreter whose working
directory is an empty temporary folder (so a block that writes files leaves nothing in the
checkout and cannot rely on one)."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")

# Runs the blocks given as a JSON list on stdin; a failure names the block's first line in
# the README.  Prints a JSON summary of the training-loop example's result at the end.
_DRIVER = textwrap.dedent(
    """
    import json, sys, traceback
    blocks = json.load(sys.stdin)
    import numpy as np
    ns = {"__name__": "__main__"}
    result = {}
    for i, (line, code) in enumerate(blocks):
        try:
            exec(compile("\\n" * (line - 1) + code, "README.md", "exec"), ns)
        except BaseException:
            traceback.print_exc()
            sys.exit(f"README.md: the python block at line {line} failed")
        if i == 0:  # the training loop: how far did it get?
            X, y, params = ns["X"], ns["y"], ns["params"]
            err = X @ params["w"] + params["b"] - y
            result = {"mse": float(np.mean(err ** 2)), "baseline": float(np.mean(y ** 2)),
                      "steps": ns["opt"].step_count}
    print(json.dumps({"blocks": len(blocks), **result}))
    """
)


def python_blocks(text):
    """``[(first line of the code, code)]`` of every fenced ```python block."""
    blocks = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        line = text.count("\n", 0, m.start(1)) + 1
        blocks.append((line, m.group(1)))
    return blocks


# Optional dependencies a block may import: without them that block is left out and the test
# ends as skipped after every other block ran.
OPTIONAL = {"mpi4py": "fastopt[mpi]"}


def test_readme_python_blocks_run_verbatim_in_order(tmp_path):
    with open(README, encoding="utf-8") as f:
        blocks = python_blocks(f.read())
    assert len(blocks) >= 3, "the README's examples were not found"
    missing = [m for m in OPTIONAL if importlib.util.find_spec(m) is None]
    left_out = [
        line
        for line, code in blocks
        if any(re.search(rf"^\s*(import|from) {m}\b", code, re.M) for m in missing)
    ]
    blocks = [(line, code) for line, code in blocks if line not in left_out]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps(blocks),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["blocks"] == len(blocks)
    # The training loop (the first block) trains: 200 steps, and the loss at the end is well
    # below the loss at the zero initialisation.
    assert result["steps"] == 200
    assert result["mse"] < 0.9 * result["baseline"]
    if left_out:
        pytest.skip(
            f"README blocks at lines {left_out} not run: they need {[OPTIONAL[m] for m in missing]}"
        )
