"""Tiny train-affinity runs of both networks: loss goes down, resume equals an uninterrupted run,
the run loads back; configuration and input errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from wsss.affinity import load_affinity, resolve_config, train
from wsss.affinity.train import read_seed
from wsss.data.voc import VOCSegmentation
from wsss.engine.training import load_checkpoint
from wsss.errors import WsssError
from wsss.io.palette import write_label_png


class _Interrupt(Exception):
    pass


def _stop(line: str) -> None:
    raise _Interrupt(line)


def _config(run: dict[str, Path], method: str, **overrides):
    values = {"method": method, "cam_checkpoint": run["cam"], "seeds": run["seeds"],
              "dataset": "voc", "root": run["root"], "epochs": 2, "batch_size": 3,
              "crop": 24, "long_side": (24, 36)}  # fmt: skip
    values.update(overrides)
    return resolve_config(**values)


@pytest.mark.parametrize("method", ["irn", "psa"])
def test_train_resume_and_load(tiny_run, tmp_path, method):
    config = _config(tiny_run, method)
    assert config.radius == (10.0 if method == "irn" else 5.0)
    data = VOCSegmentation(tiny_run["root"])
    train(config, tmp_path / "a", dataset=data, progress=False)
    with pytest.raises(_Interrupt):
        train(config, tmp_path / "b", dataset=data, progress=False, report=_stop)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1
    assert not (tmp_path / "b" / "final.pt").exists()
    train(config, tmp_path / "b", dataset=data, progress=False)  # resumes at epoch 2
    a = load_checkpoint(tmp_path / "a" / "final.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "final.pt")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log = (tmp_path / "b" / "train.log").read_text().splitlines()
    assert [line.split()[1] for line in log] == ["1/2", "2/2"]
    assert all(math.isfinite(float(line.split()[3])) for line in log)
    model, loaded = load_affinity(tmp_path / "a")
    assert loaded == config and not model.training
    # the edge branch / head was trained, the IRNet backbone was not
    cam = load_checkpoint(tiny_run["cam"] / "final.pt")["model"]
    backbone_key = next(k for k in cam if k.startswith("backbone.") and k.endswith("weight"))
    same = torch.equal(a[backbone_key], cam[backbone_key])
    assert same if method == "irn" else not same


def test_irn_loss_decreases(tiny_run, tmp_path):
    config = _config(tiny_run, "irn", epochs=6, lr=0.1)
    train(config, tmp_path / "run", dataset=VOCSegmentation(tiny_run["root"]), progress=False)
    losses = [
        float(line.split()[3]) for line in (tmp_path / "run" / "train.log").read_text().splitlines()
    ]
    assert losses[-1] < losses[0]


def test_config_errors(tiny_run, tmp_path):
    with pytest.raises(WsssError, match="unknown affinity method"):
        _config(tiny_run, "gcn")
    with pytest.raises(WsssError, match="distance"):
        _config(tiny_run, "psa", distance="l2")
    with pytest.raises(WsssError, match="missing checkpoint"):
        _config(tiny_run, "irn", cam_checkpoint=tmp_path / "nothing")
    data = VOCSegmentation(tiny_run["root"])
    with pytest.raises(WsssError, match="seed folder"):
        train(_config(tiny_run, "irn", seeds=tmp_path / "none"), tmp_path / "x", dataset=data,
              progress=False)  # fmt: skip
    train(_config(tiny_run, "irn", epochs=1), tmp_path / "y", dataset=data, progress=False)
    with pytest.raises(WsssError, match="another configuration"):
        train(_config(tiny_run, "irn", epochs=2), tmp_path / "y", dataset=data, progress=False)


def test_read_seed_sizes(tmp_path):
    full = np.zeros((9, 10), np.uint8)
    full[:4] = 255
    write_label_png(tmp_path / "full.png", full)
    assert np.array_equal(read_seed(tmp_path / "full.png", (9, 10), 21), full)
    small = np.array([[1, 2, 3], [0, 0, 255], [4, 4, 4]], np.uint8)
    write_label_png(tmp_path / "small.png", small)
    up = read_seed(tmp_path / "small.png", (9, 10), 21)
    assert up.shape == (9, 10) and up[0, 0] == 1 and up[8, 9] == 4
    with pytest.raises(WsssError, match="small.png: seed is 3x3"):
        read_seed(tmp_path / "small.png", (20, 20), 21)
    with pytest.raises(WsssError, match="missing seed"):
        read_seed(tmp_path / "none.png", (9, 10), 21)
