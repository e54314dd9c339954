"""The four trainers on ``--backbone efficientnet_lite0 --pretrained``: their Lite0 presets, and one
tiny step of each (train-cam, train-affinity on its CAM run, train-seg, the group model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fakes import make_voc
from wsss.data.voc import VOCSegmentation
from wsss.io.palette import write_label_png
from wsss.models.efficientnet_lite import lite0_state_dict

LITE0 = "efficientnet_lite0"
TINY = {"epochs": 1, "crop": 32, "long_side": (32, 40)}


def _masks(n: int = 4) -> dict[str, np.ndarray]:
    masks = {}
    for i in range(n):
        mask = np.zeros((32, 36 + 4 * (i % 2)), np.uint8)
        mask[4:20, 6 + i : 24] = 1 + i % 3
        masks[f"img{i:02d}"] = mask
    return masks


@pytest.fixture(scope="module")
def tiny_voc(tmp_path_factory) -> Path:
    return make_voc(tmp_path_factory.mktemp("voc") / "voc", _masks())


@pytest.fixture(scope="module")
def cam_run(tiny_voc, tmp_path_factory) -> Path:
    """A one-step train-cam run on the pretrained Lite0."""
    from wsss.cam.train import resolve_config, train

    out = tmp_path_factory.mktemp("cam")
    config = resolve_config(dataset="voc", root=tiny_voc, backbone=LITE0, batch_size=4, **TINY)
    train(config, out, dataset=VOCSegmentation(tiny_voc), progress=False)
    return out


def test_presets_pick_lite0():
    from wsss.cam.train import resolve_config as cam_config
    from wsss.group.train import resolve_group_config
    from wsss.seg.train import resolve_config as seg_config

    cam = cam_config(dataset="voc", root=None, backbone=LITE0)
    assert (cam.pretrained, cam.output_stride, cam.crop, cam.lr) == (True, 16, 256, 0.01)
    assert cam.freeze_bn and cam.freeze_stem
    group = resolve_group_config(dataset="voc", root=None, backbone=LITE0)
    assert (group.pretrained, group.epochs, group.crop, group.freeze_bn) == (True, 6, 224, True)
    seg = seg_config(dataset="voc", root=None, model="deeplabv3plus", backbone=LITE0,
                     pretrained=True)  # fmt: skip
    assert (seg.batch_size, seg.crop, seg.optimizer, seg.freeze_bn) == (8, 256, "sgd", True)


def test_train_cam_keeps_imagenet_weights_in_frozen_stages(cam_run):
    from wsss.cam.infer import load_trained

    model, config = load_trained(cam_run)
    assert config.backbone == LITE0 and config.pretrained
    state = lite0_state_dict()
    stem = model.backbone.stages[0][0].conv.weight
    torch.testing.assert_close(stem, state["_conv_stem.weight"])  # frozen stem, ImageNet weights
    last = model.backbone.stages[4][0].depthwise_conv.weight  # trained: moved off ImageNet's
    assert not torch.equal(last, state["_blocks.11._depthwise_conv.weight"])
    with torch.no_grad():
        assert model.cams(torch.zeros(1, 3, 32, 48)).shape == (1, 20, 2, 3)


@pytest.mark.parametrize("method", ["irn", "psa"])
def test_train_affinity_on_a_lite0_cam_run(cam_run, tiny_voc, tmp_path, method):
    from wsss.affinity import load_affinity, resolve_config, train

    seeds = tmp_path / "seeds"
    for image_id, mask in _masks().items():
        write_label_png(seeds / f"{image_id}.png", mask)
    config = resolve_config(method=method, cam_checkpoint=cam_run, seeds=seeds, dataset="voc",
                            root=tiny_voc, epochs=1, batch_size=2)  # fmt: skip
    assert (config.crop, config.long_side) == (32, (32, 40))  # from the CAM run
    train(config, tmp_path / "run", dataset=VOCSegmentation(tiny_voc), progress=False)
    model, _ = load_affinity(tmp_path / "run")
    assert len(model.backbone.stages) == 5


def test_train_seg_on_lite0(tiny_voc, tmp_path):
    from wsss.seg.train import load_trained, resolve_config, train

    config = resolve_config(dataset="voc", root=tiny_voc, model="deeplabv3plus", backbone=LITE0,
                            pretrained=True, batch_size=2, **TINY)  # fmt: skip
    train(config, tmp_path, dataset=VOCSegmentation(tiny_voc), progress=False)
    model, _ = load_trained(tmp_path)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 48)).shape == (1, 21, 32, 48)


def test_group_model_on_lite0(tiny_voc, cam_run, tmp_path):
    from wsss.group.train import resolve_group_config, train_group

    config = resolve_group_config(dataset="voc", root=tiny_voc, backbone=LITE0, group_size=2,
                                  steps=1, init=cam_run / "final.pt", **TINY)  # fmt: skip
    assert config.pretrained
    final = train_group(config, tmp_path, dataset=VOCSegmentation(tiny_voc), progress=False)
    assert final.is_file()
