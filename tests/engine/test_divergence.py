"""A training that diverges stops at the first non-finite loss or gradient, with a one-line error
naming the stage, the step, the loss and the learning rate, and writes no final model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_runner import run_wsss
from fakes import make_voc
from wsss.engine import loop


def _tiny_voc(root: Path) -> Path:
    rng = np.random.default_rng(0)
    masks = {}
    for i in range(6):
        mask = np.zeros((24, 24), np.uint8)
        y, x = rng.integers(0, 12, 2)
        mask[y : y + 8, x : x + 8] = 1 + i % 3
        masks[f"img{i}"] = mask
    return make_voc(root, masks)


def test_absurd_lr_stops_train_cam_without_a_final_model(tmp_path, monkeypatch, capsys) -> None:
    root, out = _tiny_voc(tmp_path / "voc"), tmp_path / "run"
    args = ["train-cam", "--root", str(root), "--dataset", "voc", "--out", str(out),
            "--backbone", "small", "--epochs", "3", "--batch-size", "3", "--crop", "16",
            "--long-side", "16", "24", "--lr", "1e30"]  # fmt: skip
    assert run_wsss(args, monkeypatch) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert re.search(r"train-cam: training diverged at step \d+ \(epoch 1\): loss nan", err[0])
    assert re.search(r"lr \d\.\d+e\+(29|30)", err[0]), err[0]
    assert "loss" in err[0] and "gradient norm" in err[0]
    assert not (out / loop.FINAL_FILE).exists()
    checkpoint = out / loop.CHECKPOINT_FILE
    if checkpoint.exists():  # an epoch finished before: its weights are finite
        weights = torch.load(checkpoint, weights_only=True)["model"]
        assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_non_finite_weights_are_never_written(tmp_path: Path) -> None:
    module = torch.nn.Linear(2, 1)
    with torch.no_grad():
        module.weight[0, 0] = float("nan")
    job = loop.Training(module=module, optimizer=torch.optim.SGD(module.parameters(), lr=0.1),
                        samples=[], batches=lambda e: [], step=None, set_lr=lambda e, i: 0.0,
                        epochs=1, config={}, stage="test")  # type: ignore[arg-type]  # fmt: skip
    pattern = r"checkpoint\.pt: test: 1 non-finite weights \(first: weight\); not written"
    with pytest.raises(loop.WsssError, match=pattern):
        loop.fit(job, tmp_path, device=torch.device("cpu"), progress=False)
    assert not (tmp_path / loop.FINAL_FILE).exists()
    assert not (tmp_path / loop.CHECKPOINT_FILE).exists()
