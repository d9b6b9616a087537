"""Generate tests/fixtures/onecycle_training_torch.npz: the loss curve of the MLP in mlp.py
trained with torch.optim.SGD + OneCycleLR (momentum cycling on).  Run with PyTorch installed:

    python tests/make_training_fixture.py
"""

import os

import numpy as np
import torch

from mlp import torch_onecycle_losses

STEPS, MAX_LR = 80, 0.5

if __name__ == "__main__":
    losses = torch_onecycle_losses(STEPS, MAX_LR)
    out = os.path.join(os.path.dirname(__file__), "fixtures", "onecycle_training_torch.npz")
    np.savez(out, losses=losses, steps=STEPS, max_lr=MAX_LR, torch_version=torch.__version__)
    print(f"wrote {out}: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
