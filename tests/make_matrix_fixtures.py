"""Golden torch.optim trajectories of the matrix optimizers (Adafactor, Muon), whose shapes
differ from ``make_torch_fixtures.py``'s: Adafactor factors parameters of 2 or more
dimensions, Muon takes 2-D parameters only.  Writes ``fixtures/matrix_torch.npz``; needs
torch==2.13.  ``tests/test_matrix_optim.py`` replays the cases on every backend, without
torch.

    python3 tests/make_matrix_fixtures.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "matrix_torch.npz"
STEPS = 20
SNAP_STEPS = (1, 5, 20)
SHAPES = {
    "Adafactor": [(7,), (3, 5), (1,), (2, 3, 4), (13, 1), ()],
    "Muon": [(7, 3), (3, 5), (1, 1), (13, 17)],
}
CASES = [
    ("Adafactor", {}),
    ("Adafactor", {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    ("Adafactor", {"eps": [1e-30, 1e-2], "d": 1.5, "beta2_decay": -0.5}),
    ("Muon", {}),
    ("Muon", {"lr": 0.02, "nesterov": False, "adjust_lr_fn": "match_rms_adamw"}),
    ("Muon", {"momentum": 0.5, "weight_decay": 0.0, "ns_steps": 3, "eps": 1e-3}),
]


def initial_params(opt: str, dtype: str, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(s), dtype=dtype) for s in SHAPES[opt]]


def grads_at(rng: np.random.Generator, params: list[np.ndarray]) -> list[np.ndarray]:
    """Gradients that depend on the parameters (differences feed back)."""
    return [np.asarray(0.5 * p + rng.standard_normal(p.shape), dtype=p.dtype) for p in params]


def torch_options(options: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def run_torch(opt: str, options: dict, dtype: str, seed: int = 0) -> np.ndarray:
    import torch

    params = [torch.tensor(p) for p in initial_params(opt, dtype, seed)]
    o = getattr(torch.optim, opt)(params, **torch_options(options))
    rng = np.random.default_rng(seed + 1)
    snaps = []
    for k in range(STEPS):
        for t, g in zip(params, grads_at(rng, [t.detach().numpy() for t in params])):
            t.grad = torch.tensor(g)
        o.step()
        if k + 1 in SNAP_STEPS:
            snaps.append(np.concatenate([t.detach().numpy().ravel() for t in params]))
    return np.stack(snaps)


def main() -> None:
    import torch

    assert torch.__version__.startswith("2.13"), torch.__version__
    out = {"cases_json": np.asarray(json.dumps(CASES))}
    for i, (opt, options) in enumerate(CASES):
        for dtype in ("float32", "float64"):
            out[f"case{i}_{dtype}"] = run_torch(opt, options, dtype)
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, **out)
    print(f"wrote {FIXTURE} ({len(CASES)} cases)")


if __name__ == "__main__":
    main()
