"""`wsss train-seg` and `wsss predict` under torchrun with 2 gloo processes equal one process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fakes import spawn_wsss


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_train_and_predict_like_one(tiny_voc: Path, tmp_path: Path):
    # DeepLab-v2 has no dropout, so the weights must agree; a global batch of 3 splits 2 + 1 and
    # the loss is normalised by the labelled pixels of the global batch.
    train = ["train-seg", "--root", str(tiny_voc), "--model", "deeplabv2", "--backbone", "small",
             "--epochs", "2", "--batch-size", "3", "--crop", "16", "--long-side", "16", "28"]  # fmt: skip
    spawn_wsss([*train, "--out", str(tmp_path / "one")], nproc=1)
    spawn_wsss([*train, "--out", str(tmp_path / "two")], nproc=2)
    one = torch.load(tmp_path / "one" / "final.pt", weights_only=True)["model"]
    two = torch.load(tmp_path / "two" / "final.pt", weights_only=True)["model"]
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=0, atol=1e-5, msg=key)
    predict = ["predict", "--checkpoint", str(tmp_path / "one"), "--root", str(tiny_voc),
               "--split", "train"]  # fmt: skip
    spawn_wsss([*predict, "--out", str(tmp_path / "p1")], nproc=1)
    spawn_wsss([*predict, "--out", str(tmp_path / "p2")], nproc=2)
    for png in sorted((tmp_path / "p1").glob("*.png")):
        assert png.read_bytes() == (tmp_path / "p2" / png.name).read_bytes(), png.name
    assert len(list((tmp_path / "p2").glob("*.png"))) == 8
