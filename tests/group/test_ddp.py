"""`wsss train-cam --model group` and `wsss cam --model group` under torchrun with 2 gloo
processes: without graph dropout (whose draws are per process) they equal one process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fakes import spawn_wsss
from wsss.io.cams import read_cams

TINY = ["--backbone", "small", "--crop", "16", "--long-side", "16", "20", "--group-size", "3",
        "--rounds", "2", "--groups-per-batch", "2", "--lr", "0.01"]  # fmt: skip


@pytest.mark.distributed
def test_two_processes_train_and_infer_like_one(tiny_voc: Path, tmp_path: Path):
    # 9 images, groups of 3: one global batch of 2 groups per epoch, one group per process
    train = ["train-cam", "--root", str(tiny_voc), "--model", "group", "--epochs", "3", *TINY,
             "--no-graph-dropout"]  # fmt: skip
    spawn_wsss([*train, "--out", str(tmp_path / "one")], nproc=1)
    spawn_wsss([*train, "--out", str(tmp_path / "two")], nproc=2)
    one = torch.load(tmp_path / "one" / "final.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "final.pt", weights_only=True)
    start = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    assert start["epoch"] == 3 and start["iteration"] == 3
    for key, value in one["model"].items():
        torch.testing.assert_close(value, two["model"][key], rtol=0, atol=1e-5, msg=key)
    cams = ["cam", "--checkpoint", str(tmp_path / "one"), "--root", str(tiny_voc), "--model",
            "group", "--group-size", "3", "--scales", "1.0"]  # fmt: skip
    spawn_wsss([*cams, "--out", str(tmp_path / "c1")], nproc=1)
    spawn_wsss([*cams, "--out", str(tmp_path / "c2")], nproc=2)
    names = sorted(p.name for p in (tmp_path / "c1").glob("*.npz"))
    assert names == [f"img{i:02d}.npz" for i in range(9)]
    assert names == sorted(p.name for p in (tmp_path / "c2").glob("*.npz"))
    for name in names:
        a, b = read_cams(tmp_path / "c1" / name), read_cams(tmp_path / "c2" / name)
        assert a.keys.tolist() == b.keys.tolist()
        np.testing.assert_allclose(a.cams.astype(np.float32), b.cams.astype(np.float32), atol=2e-3)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_with_graph_dropout_train(tiny_voc: Path, tmp_path: Path):
    train = ["train-cam", "--root", str(tiny_voc), "--model", "group", "--epochs", "2", *TINY,
             "--out", str(tmp_path / "two")]  # fmt: skip
    spawn_wsss(train, nproc=2)
    state = torch.load(tmp_path / "two" / "final.pt", weights_only=True)
    assert state["model_kind"] == "group" and state["config"]["graph_dropout"]
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    log = (tmp_path / "two" / "train.log").read_text().splitlines()
    assert [line.split()[1] for line in log] == ["1/2", "2/2"]
