"""The README's training-loop example runs as written and trains."""
import os
import re

import numpy as np

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def test_readme_training_loop_runs_and_trains():
    text = open(README, encoding="utf-8").read()
    block = re.search(r"## A training loop\s+```python\n(.*?)```", text, re.S).group(1)
    ns = {}
    exec(compile(block, "README.md", "exec"), ns)
    X, y, params = ns["X"], ns["y"], ns["params"]
    err = X @ params["w"] + params["b"] - y
    baseline = np.mean(y ** 2)  # the loss at the zero initialisation
    assert np.mean(err ** 2) < 0.9 * baseline
    assert ns["opt"].step_count == 200
