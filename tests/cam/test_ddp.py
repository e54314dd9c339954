"""`wsss train-cam` and `wsss cam` under torchrun with 2 gloo processes equal one process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fakes import make_voc, spawn_wsss
from wsss.cam.train import FINAL_FILE, build_model, resolve_config
from wsss.engine.training import save_checkpoint
from wsss.io.cams import read_cams


def _tiny_voc(root: Path) -> Path:
    rng = np.random.default_rng(1)
    masks = {}
    for i in range(10):
        mask = np.zeros((24, 24), np.uint8)
        y, x = rng.integers(0, 12, 2)
        mask[y : y + 9, x : x + 9] = 1 + i % 3
        masks[f"s{i:02d}"] = mask
    return make_voc(root, masks)


@pytest.mark.distributed
def test_two_processes_train_and_infer_like_one(tmp_path: Path):
    root = _tiny_voc(tmp_path / "voc")
    # Global batch 3 splits 2 + 1 over two ranks: the loss weighting must make that exact.
    train = ["train-cam", "--root", str(root), "--backbone", "small", "--epochs", "2",
             "--batch-size", "3", "--crop", "16", "--long-side", "16", "30", "--lr", "0.05"]  # fmt: skip
    spawn_wsss([*train, "--out", str(tmp_path / "one")], nproc=1)
    spawn_wsss([*train, "--out", str(tmp_path / "two")], nproc=2)
    one = torch.load(tmp_path / "one" / "final.pt", weights_only=True)["model"]
    two = torch.load(tmp_path / "two" / "final.pt", weights_only=True)["model"]
    initial = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    assert initial["epoch"] == 2 and initial["iteration"] == 2 * (10 // 3)
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=0, atol=1e-5, msg=key)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_write_the_same_cams(tmp_path: Path):
    root = _tiny_voc(tmp_path / "voc")
    config = resolve_config(dataset="voc", root=root, backbone="small")
    torch.manual_seed(0)
    model = build_model(config, 20, pretrained=False)
    save_checkpoint(tmp_path / "run" / FINAL_FILE, {"model": model.state_dict(),
                                                    "config": config.to_dict()})  # fmt: skip
    cams = ["cam", "--checkpoint", str(tmp_path / "run"), "--root", str(root),
            "--scales", "1.0,0.5"]  # fmt: skip
    spawn_wsss([*cams, "--out", str(tmp_path / "cams1")], nproc=1)
    spawn_wsss([*cams, "--out", str(tmp_path / "cams2")], nproc=2)
    names = sorted(p.name for p in (tmp_path / "cams1").glob("*.npz"))
    assert len(names) == 10
    assert names == sorted(p.name for p in (tmp_path / "cams2").glob("*.npz"))
    for name in names:
        a, b = read_cams(tmp_path / "cams1" / name), read_cams(tmp_path / "cams2" / name)
        assert a.keys.tolist() == b.keys.tolist()
        np.testing.assert_allclose(a.cams.astype(np.float32), b.cams.astype(np.float32), atol=2e-3)
