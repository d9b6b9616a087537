import numpy as np
import pytest

import fastopt

BACKENDS = fastopt.available_backends()

# Every optimizer with non-default options that exercise its state, for the bad-input and
# hardening tests.
OPTIMIZERS = [
    (fastopt.SGD, dict(lr=0.1, momentum=0.9)),
    (fastopt.Adagrad, dict(lr=0.1)),
    (fastopt.RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
    (fastopt.Adam, dict(lr=0.01, amsgrad=True)),
    (fastopt.AdamW, dict(lr=0.01)),
    (fastopt.Adamax, dict(lr=0.01)),
    (fastopt.NAdam, dict(lr=0.01, weight_decay=0.1)),
    (fastopt.RAdam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    (fastopt.Adadelta, dict(lr=0.5)),
    (fastopt.Rprop, dict(lr=0.01, etas=(0.4, 1.3))),
    (fastopt.ASGD, dict(lr=0.01, t0=1, weight_decay=0.1)),
]
IDS = [c.__name__ for c, _ in OPTIMIZERS]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Every backend that imports on this machine."""
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


def snapshot(arrays):
    """Bytes of every array, to assert that a failed call changed nothing."""
    return [a.tobytes() for a in arrays]
