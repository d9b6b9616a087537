"""The demo in reduced mode, and the command line."""

import importlib.util
import os

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from fastopt.__main__ import main


def test_demo_quick_writes_pngs_and_table(tmp_path, capsys):
    # TensorBoard logging is an optional extra: without tensorboardX the demo runs without
    # it, everything else is checked, and the test reports the TensorBoard part as skipped.
    has_tbx = importlib.util.find_spec("tensorboardX") is not None
    out, tb = tmp_path / "out", tmp_path / "tb"
    tb_args = ["--tensorboard", str(tb)] if has_tbx else []
    assert main(["demo", "--quick", "--out", str(out), *tb_args, "--no-progress"]) == 0
    text = capsys.readouterr().out
    for png in ("loss_curves.png", "lr_curves.png", "lr_find.png"):
        path = out / png
        assert path.read_bytes()[:4] == b"\x89PNG", png
        assert png in text
    assert str(out) in text
    for word in (
        "optimizer",
        "schedule",
        "suggested lr",
        "test acc",
        "steps/s",
        "AdamW",
        "one-cycle",
        "cosine+warmup",
        "step decay",
        "constant",
    ):
        assert word in text
    assert (out / "results.json").exists()
    if not has_tbx:
        pytest.skip("tensorboardX is not installed: the TensorBoard logs were not checked")
    runs = os.listdir(tb)
    assert len(runs) == 20
    from fastopt.history import read_tensorboard_scalars

    scalars = read_tensorboard_scalars(str(tb / "Adam-one-cycle"))
    assert len(scalars["loss"]) == 40 and "lr" in scalars and "test_accuracy" in scalars


def test_lr_find_subcommand(tmp_path, capsys):
    png = tmp_path / "lr.png"
    assert (
        main(
            [
                "lr-find",
                "--optimizer",
                "SGD",
                "--num-steps",
                "40",
                "--out",
                str(png),
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "suggestion" in text and "restored bit-identically: yes" in text
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_help_and_bench_without_benchmarks(tmp_path, monkeypatch, capsys):
    assert main([]) == 2
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--dir", str(tmp_path / "nowhere")]) == 1
    assert "not available" in capsys.readouterr().err
