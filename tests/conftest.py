import numpy as np
import pytest

import fastopt

BACKENDS = fastopt.available_backends()


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
