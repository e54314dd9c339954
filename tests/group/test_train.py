"""Training the group classifier on a tiny VOC-layout dataset: determinism, resume, files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes import make_voc
from wsss.data.voc import VOCSegmentation
from wsss.engine.training import load_checkpoint
from wsss.errors import WsssError
from wsss.group.sampler import GreedyGroupSampler
from wsss.group.train import dataset_labels, epoch_batches, resolve_group_config, train_group


def _tiny_voc(root: Path, n: int = 8, size: int = 20) -> Path:
    """``n`` random images, each with one rectangle of class 1 + i % 3."""
    masks = {}
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        mask[2:10, 3 + i % 4 : 12] = 1 + i % 3
        masks[f"img{i:02d}"] = mask
    return make_voc(root, masks)


def _config(root: Path, **overrides):
    values = {"dataset": "voc", "root": root, "backbone": "small", "epochs": 2,
              "group_size": 2, "steps": 2, "crop": 16, "long_side": (16, 20), "lr": 0.01}  # fmt: skip
    values.update(overrides)
    return resolve_group_config(**values)


class _Interrupt(Exception):
    pass


def _stop(line: str) -> None:
    raise _Interrupt(line)


def test_dataset_labels_and_epoch_batches(tmp_path: Path):
    data = VOCSegmentation(_tiny_voc(tmp_path / "voc"))
    labels = dataset_labels(data)
    assert labels.shape == (8, 20)
    assert labels.sum(1).tolist() == [1.0] * 8 and labels[:, :3].sum(0).tolist() == [3, 3, 2]
    sampler = GreedyGroupSampler(labels, group_size=2, seed=0)
    batches = epoch_batches(sampler, 0, groups_per_batch=3)
    assert len(batches) == 1 and len(batches[0]) == 3  # 4 groups of 2, one batch of 3 groups
    assert epoch_batches(sampler, 1, 1) != epoch_batches(sampler, 0, 1)


def test_train_is_deterministic_and_resumes(tmp_path: Path):
    root = _tiny_voc(tmp_path / "voc")
    data = VOCSegmentation(root)
    config = _config(root)
    train_group(config, tmp_path / "a", dataset=data, progress=False)
    with pytest.raises(_Interrupt):
        train_group(config, tmp_path / "b", dataset=data, progress=False, report=_stop)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1
    train_group(config, tmp_path / "b", dataset=data, progress=False)
    a, b = (load_checkpoint(tmp_path / r / "final.pt") for r in "ab")
    assert set(a) == {"model", "config", "classes", "num_labels", "model_kind"}
    assert a["num_labels"] == 20 and a["model_kind"] == "group"
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    log = (tmp_path / "a" / "train.log").read_text().splitlines()
    assert [line.split()[1] for line in log] == ["1/2", "2/2"]
    assert all(math.isfinite(float(line.split()[3])) for line in log)
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["config"] == config.to_dict()
    with pytest.raises(WsssError, match="another configuration"):
        train_group(_config(root, lam=0.5), tmp_path / "a", dataset=data, progress=False)


def test_config_checks(tmp_path: Path):
    config = _config(tmp_path)
    assert config.pretrained is False and config.group_size == 2
    paper = resolve_group_config(dataset="voc", root=None, pretrained=False)
    assert (paper.backbone, paper.group_size, paper.steps, paper.reduction, paper.lam) == \
        ("vgg16", 4, 3, 4, 0.4)  # fmt: skip
    assert (paper.epochs, paper.lr, paper.gnn_lr_mult, paper.crop, paper.output_stride) == \
        (15, 1e-3, 10.0, 224, 8)  # fmt: skip
    with pytest.raises(WsssError, match="drop mode"):
        _config(tmp_path, drop_mode="soft")
    with pytest.raises(WsssError, match="unknown backbone"):
        _config(tmp_path, backbone="vgg19")
    # without init the saved dict has no "init" key, as runs written before the field existed
    assert "init" not in config.to_dict()
    assert type(config).from_dict(config.to_dict()) == config


def test_init_from_a_single_image_classifier(tmp_path: Path, single_run: Path, group_run: Path):
    from wsss.group.train import build_group_model, checkpoint_kind, init_from_cam

    config = _config(tmp_path, init=single_run / "final.pt")
    assert config.init == str((single_run / "final.pt").resolve())
    model = build_group_model(config, 20, pretrained=False)
    init_from_cam(model, config.init)
    single = load_checkpoint(single_run / "final.pt")["model"]
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, single[f"backbone.{key}"]), key
    for readout in (model.intermediate_readout, model.graph_readout):
        assert torch.equal(readout.classifier.weight, single["classifier.weight"])
    assert checkpoint_kind(load_checkpoint(single_run / "final.pt")) == "single"
    assert checkpoint_kind(load_checkpoint(group_run / "final.pt")) == "group"
    with pytest.raises(WsssError, match="needs a single-image CAM checkpoint"):
        init_from_cam(model, group_run / "final.pt")
    with pytest.raises(WsssError, match=r"the group model needs \(10, 128, 1, 1\)"):
        init_from_cam(build_group_model(config, 10, pretrained=False), config.init)
    with pytest.raises(WsssError, match="init checkpoint not found"):
        _config(tmp_path, init=tmp_path / "missing.pt")
