"""pytest-benchmark configuration for fastopt's benchmarks (``make bench``).

Benchmark files are named ``bench_*.py``; this hook makes pytest collect them when it is
pointed at this directory (``pytest benchmarks --benchmark-only``), while a plain
``pytest`` run (testpaths = tests) never does.
"""

import pytest

# bench_peers.py is a standalone script (`make bench-peers`) whose peers (DeepSpeed, JAX,
# Optax) are optional: keep `make bench` from importing it.
collect_ignore = ["bench_peers.py"]


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
