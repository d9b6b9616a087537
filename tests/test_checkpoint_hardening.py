"""Checkpoints against a hostile environment: other threads, killed saves, symbolic links,
crafted files (issue: hardening).  Each test failed before its fix."""

import json
import os
import threading
import time
import zipfile

import numpy as np
import pytest

import fastopt
from fastopt import checkpoint
from fastopt.checkpoint import CheckpointError


def _sgd(n=64):
    w = np.zeros(n)
    return fastopt.SGD([w], lr=1.0, backend="numpy"), w


def test_snapshots_are_never_torn_by_a_concurrent_step(tmp_path):
    # SGD with lr=1 and unit gradients: after k steps every parameter is exactly -k, so a
    # checkpoint is consistent iff its parameters equal -step_count.
    opt, w = _sgd(200_000)
    g = [np.ones_like(w)]
    stop = threading.Event()
    refused = {"step": 0}

    def stepper():
        while not stop.is_set():
            try:
                opt.step(g)
            except RuntimeError:
                refused["step"] += 1
            time.sleep(0.0005)  # leave the saver a window between steps

    t = threading.Thread(target=stepper)
    t.start()
    saved = 0
    try:
        deadline = time.monotonic() + 30
        i = 0
        while saved < 15 and time.monotonic() < deadline:
            i += 1
            path = tmp_path / f"c{i}.npz"
            try:
                fastopt.save(path, opt)
            except RuntimeError as exc:
                assert "two threads at once" in str(exc)
                time.sleep(0.0003)
                continue
            saved += 1
            fresh, fw = _sgd(200_000)
            fastopt.load(path, fresh)
            assert np.all(fw == -float(fresh.step_count)), "checkpoint mixes two steps"
            try:
                sd = opt.state_dict()
            except RuntimeError:
                continue
            assert sd["step_count"] >= 0
    finally:
        stop.set()
        t.join()
    assert saved == 15


def test_load_and_state_dict_refuse_while_another_thread_steps(tmp_path):
    opt, w = _sgd(10)
    fastopt.save(tmp_path / "c.npz", opt)
    inside, release = threading.Event(), threading.Event()

    def hold(o, g):
        inside.set()
        assert release.wait(10)

    h = opt.register_step_pre_hook(hold)
    t = threading.Thread(target=opt.step, args=([np.ones(10)],))
    t.start()
    assert inside.wait(10)
    try:
        for call in (
            lambda: fastopt.load(tmp_path / "c.npz", opt),
            lambda: fastopt.save(tmp_path / "d.npz", opt),
            opt.state_dict,
        ):
            with pytest.raises(RuntimeError, match="two threads at once"):
                call()
    finally:
        release.set()
        t.join()
    h.remove()
    assert not (tmp_path / "d.npz").exists()
    assert opt.step_count == 1 and np.all(w == -1.0)


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path):
    opt, _ = _sgd()
    path = tmp_path / "ckpt.npz"
    host = checkpoint._host()
    # A pid that does not exist (pid_max on Linux is at most 2**22).
    dead = [tmp_path / f"ckpt.npz.{host}-{4_194_304 + i}-x{i}.tmp" for i in range(19)]
    alive = tmp_path / f"ckpt.npz.{host}-{os.getppid()}-y.tmp"  # a concurrent save
    other_host = tmp_path / "ckpt.npz.elsewhere-123-z.tmp"  # shared file system
    foreign = tmp_path / "notes.tmp"
    for f in dead + [alive, other_host, foreign]:
        f.write_bytes(b"partial")
    fastopt.save(path, opt)
    left = sorted(os.listdir(tmp_path))
    assert left == sorted(["ckpt.npz", alive.name, other_host.name, foreign.name])


def test_save_through_a_symlink_keeps_the_link(tmp_path):
    opt, w = _sgd()
    real_dir = tmp_path / "store"
    real_dir.mkdir()
    target = real_dir / "latest.npz"
    link = tmp_path / "ckpt.npz"
    link.symlink_to(target)
    opt.step([np.ones_like(w)])
    fastopt.save(link, opt)
    assert link.is_symlink() and target.is_file()
    opt.step([np.ones_like(w)])
    fastopt.save(link, opt)
    assert link.is_symlink()
    assert os.listdir(real_dir) == ["latest.npz"]
    fresh, fw = _sgd()
    fastopt.load(link, fresh)
    assert fresh.step_count == 2 and np.all(fw == -2.0)


def test_huge_compressed_member_is_refused_before_reading(tmp_path):
    opt, w = _sgd(10)
    path = tmp_path / "c.npz"
    fastopt.save(path, opt)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.startswith("param/"):
                with dst.open(info.filename, "w", force_zip64=True) as f:
                    f.write(data)
                    chunk = bytes(1 << 20)
                    for _ in range(256):  # 256 MB of zeros, a few hundred KB on disk
                        f.write(chunk)
            else:
                dst.writestr(info, data)
    assert bomb.stat().st_size < 2 << 20
    before = w.tobytes()
    with pytest.raises(CheckpointError, match="refusing to read"):
        fastopt.load(bomb, opt)
    assert w.tobytes() == before


def _with_meta(tmp_path, edit):
    opt, _w = _sgd(5)
    opt.step([np.ones(5)])
    path = tmp_path / "c.npz"
    fastopt.save(path, opt)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__fastopt__"][()]))
    edit(meta)
    arrays["__fastopt__"] = np.array(json.dumps(meta))
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    return bad


CRAFTED = {
    "no-groups": lambda m: m.pop("param_groups"),
    "groups-not-list": lambda m: m.update(param_groups={"a": 1}),
    "group-not-dict": lambda m: m.update(param_groups=[5]),
    "names-missing": lambda m: m["param_groups"][0].pop("names"),
    "indices-missing": lambda m: m["param_groups"][0].pop("indices"),
    "index-string": lambda m: m["param_groups"][0].update(indices=["0"]),
    "step-float": lambda m: m.update(step_count=2.7),
    "step-string": lambda m: m.update(step_count="x"),
    "step-negative": lambda m: m.update(step_count=-1),
    "kind-none": lambda m: m.update(kind=None),
    "last-lr-string": lambda m: m.update(last_lr="x"),
    "schedules-list": lambda m: m.update(schedules=[1]),
    "shapes-junk": lambda m: m["param_groups"][0].update(shapes=[["a"]]),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_metadata_gives_checkpoint_error_and_changes_nothing(tmp_path, case):
    bad = _with_meta(tmp_path, CRAFTED[case])
    opt, w = _sgd(5)
    w[...] = 3.0
    with pytest.raises(CheckpointError):
        fastopt.load(bad, opt)
    assert np.all(w == 3.0) and opt.step_count == 0
