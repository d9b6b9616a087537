"""The native pool's default thread count follows a container's CPU quota: the cgroup's
``cpu.max`` (v2) or ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` (v1), at the process's cgroup
and every parent, rounded up, when it is lower than the affinity mask.  The parser is fed
fake cgroup trees; the real default is checked against the affinity mask."""

import os

import pytest

import fastopt

pytestmark = pytest.mark.skipif(
    "native" not in fastopt.available_backends(), reason="the compiled backend is not built"
)


def _limit(proc, root):
    from fastopt import _native

    return _native._cgroup_cpu_limit(proc, str(root))


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_quota_rounded_up(tmp_path):
    _write(tmp_path / "kubepods" / "pod1" / "cpu.max", "150000 100000\n")
    assert _limit("0::/kubepods/pod1\n", tmp_path) == 2


def test_v2_parent_limit_counts(tmp_path):
    _write(tmp_path / "a" / "b" / "cpu.max", "max 100000\n")
    _write(tmp_path / "a" / "cpu.max", "100000 100000\n")
    _write(tmp_path / "cpu.max", "800000 100000\n")
    assert _limit("0::/a/b\n", tmp_path) == 1


def test_v2_no_limit(tmp_path):
    _write(tmp_path / "x" / "cpu.max", "max 100000\n")
    assert _limit("0::/x\n", tmp_path) == 0
    assert _limit("0::/\n", tmp_path) == 0  # no cpu.max at the root


@pytest.mark.parametrize("mount", ["cpu", "cpu,cpuacct"])
def test_v1_quota(tmp_path, mount):
    _write(tmp_path / mount / "docker" / "c1" / "cpu.cfs_quota_us", "250000\n")
    _write(tmp_path / mount / "docker" / "c1" / "cpu.cfs_period_us", "100000\n")
    proc = f"5:memory:/docker/c1\n3:{mount}:/docker/c1\n0::/\n"
    assert _limit(proc, tmp_path) == 3


def test_v1_namespaced_root_and_unlimited(tmp_path):
    _write(tmp_path / "cpu" / "cpu.cfs_quota_us", "50000\n")
    _write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert _limit("1:cpu:/\n", tmp_path) == 1  # half a CPU: one thread
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert _limit("1:cpu:/\n", tmp_path) == 0


@pytest.mark.parametrize(
    "proc", ["", "garbage\n", "0::\n", "7:cpuset:/x\n", "1:cpuacct:/\n", "0::relative/path\n"]
)
def test_nothing_to_read_means_no_limit(tmp_path, proc):
    _write(tmp_path / "cpu" / "cpu.cfs_quota_us", "100000\n")
    _write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert _limit(proc, tmp_path) == 0


def test_default_is_within_the_affinity_mask():
    from fastopt import _native

    n = _native.default_num_threads()
    assert 1 <= n <= len(os.sched_getaffinity(0))
    with open("/proc/self/cgroup") as f:
        quota = _limit(f.read(), "/sys/fs/cgroup")
    if quota:
        assert n == min(quota, len(os.sched_getaffinity(0)))
    else:
        assert n == len(os.sched_getaffinity(0))
