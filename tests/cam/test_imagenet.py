"""CAMs from an ImageNet head: each combination by hand on a tiny head, the CAM files it writes,
and (on the real VOC photos) CAMs well above all-background."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from fakes import make_voc
from wsss.cam.imagenet import COMBINES, ImageNetCams, infer_imagenet_cams
from wsss.data.registry import create_dataset
from wsss.errors import WsssError
from wsss.io.cams import read_cams
from wsss.metrics.evaluate import evaluate_cams
from wsss.models.backbones import Backbone


def _tiny(combine: str) -> ImageNetCams:
    """A 2-channel identity backbone and a 4-class head: logits ``W f + b`` by hand."""
    backbone = Backbone([nn.Conv2d(3, 2, 1, bias=False)], stage_channels=(2,), stage_strides=(1,))
    with torch.no_grad():
        backbone.stages[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])[:, :, None, None])
    head = nn.Linear(2, 4)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0], [0, 1.0], [-1.0, -1.0], [2.0, -1.0]]))
        head.bias.copy_(torch.tensor([0.5, -0.5, 0.0, 1.0]))
    return ImageNetCams(backbone=backbone, classifier=head, synsets=[(0, 1), (3,), ()],
                        combine=combine)  # fmt: skip


@pytest.mark.parametrize("combine", COMBINES)
def test_combinations_by_hand(combine):
    x = torch.tensor([[[[1.0, -2.0]], [[3.0, 0.5]], [[0.0, 0.0]]]])  # f at two positions
    f = x[0, :2, 0].T  # (2 positions, 2 channels)
    w = torch.tensor([[1.0, 0], [0, 1.0], [-1.0, -1.0], [2.0, -1.0]])
    b = torch.tensor([0.5, -0.5, 0.0, 1.0])
    z = f @ w.T + b  # (positions, 4)
    if combine == "prob":
        p = z.softmax(dim=1)
        expected = [p[:, 0] + p[:, 1], p[:, 3]]
    elif combine == "max":
        expected = [(z - b)[:, :2].amax(1).relu(), (z - b)[:, 3].relu()]
    elif combine == "sum":
        expected = [(z - b)[:, :2].sum(1).relu(), (z - b)[:, 3].relu()]
    else:
        expected = [z[:, :2].logsumexp(1).relu(), z[:, 3].relu()]
    model = _tiny(combine)
    cams = model.cams(x)
    assert cams.shape == (1, 3, 1, 2)
    torch.testing.assert_close(cams[0, :2, 0], torch.stack(expected))
    assert torch.equal(cams[0, 2], torch.zeros(1, 2))  # a label without synsets
    assert (cams >= 0).all()
    torch.testing.assert_close(model(x)[0], z.mean(0))  # the head on pooled features


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown combine"):
        _tiny("mean")
    backbone = Backbone([nn.Identity()], stage_channels=(3,), stage_strides=(1,))
    with pytest.raises(ValueError, match="out of range"):
        ImageNetCams(backbone=backbone, classifier=nn.Linear(3, 4), synsets=[(4,)])
    with pytest.raises(ValueError, match="channels"):
        ImageNetCams(backbone=backbone, classifier=nn.Linear(2, 4), synsets=[(0,)])


def test_refuses_a_dataset_without_voc_classes(tmp_path):
    masks = {"a": np.zeros((8, 8), np.uint8)}
    root = make_voc(tmp_path / "voc", masks)
    (root / "meta.json").write_text('{"classes": ["background", "disc", "ring"]}')
    data = create_dataset("synthetic", root=root, split="train")
    with pytest.raises(WsssError, match="20 VOC classes"):
        infer_imagenet_cams(data, tmp_path / "cams", progress=False)


def test_real_photos(voc_samples, tmp_path):
    """CAM files of the labelled classes, and a CAM mIoU far above all-background (single scale
    to stay fast; docs/imagenet.md has the multi-scale figures)."""
    data = create_dataset("voc", root=voc_samples, split="samples")
    done = infer_imagenet_cams(data, tmp_path, scales=(1.0,), progress=False)
    assert done == {"shard": 6, "written": 6}
    cam = read_cams(tmp_path / "2007_001763.npz")
    assert cam.keys.tolist() == [8, 12, 18, 20]  # cat, dog, sofa, tvmonitor
    assert cam.cams.shape == (4, math.ceil(375 / 4), 125) and cam.high_res.shape == (4, 375, 500)
    scores = evaluate_cams(data, tmp_path, progress=False)
    assert scores["best"]["miou"] > 30.0  # measured 39.3; all background: 5.2 (52.1 / 10 classes)
    assert scores["best"]["iou"]["person"] > 30.0  # 60.7, from the clothes and person synsets
    assert infer_imagenet_cams(data, tmp_path, scales=(1.0,), progress=False)["written"] == 0
