"""The CAM classifier: logits vs CAMs, loss, parameter groups, frozen BatchNorm and stem."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsss.engine.training import make_sgd
from wsss.models.backbones import create_backbone
from wsss.models.cam_net import CamNet, multilabel_loss


def _small_net(num_labels: int = 3) -> CamNet:
    torch.manual_seed(0)
    return CamNet(backbone=create_backbone("small"), num_labels=num_labels)


def test_logits_are_the_mean_of_the_class_maps():
    net = _small_net().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = net.backbone(x)
        maps = torch.einsum("bchw,lc->blhw", features, net.classifier.weight[:, :, 0, 0])
        logits = net(x)
        cams = net.cams(x)
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits, maps.mean(dim=(2, 3)), rtol=1e-5, atol=1e-6)
    assert cams.shape == (2, 3, 4, 4)
    torch.testing.assert_close(cams, maps.clamp(min=0), rtol=1e-5, atol=1e-6)
    assert net.classifier.bias is None


def test_multilabel_loss_by_hand():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])

    def bce(x: float, y: float) -> float:
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = [(bce(2.0, 1) + bce(-1.0, 0)) / 2, (bce(0.5, 0) + bce(0.0, 1)) / 2]
    per = multilabel_loss(logits, labels)
    torch.testing.assert_close(per, torch.tensor(expected))
    torch.testing.assert_close(per.mean(), F.multilabel_soft_margin_loss(logits, labels))
    with pytest.raises(ValueError, match="differ"):
        multilabel_loss(logits, labels[:, :1])


def test_param_groups_classifier_ten_times():
    net = _small_net()
    groups = net.param_groups(0.1)
    assert [g["lr"] for g in groups] == [0.1, pytest.approx(1.0)]
    assert groups[1]["params"] == [net.classifier.weight]
    n_backbone = sum(1 for p in net.backbone.parameters())
    assert len(groups[0]["params"]) == n_backbone


def _bn_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _step(net: CamNet) -> None:
    optimizer = make_sgd(net.param_groups(0.1), momentum=0.9, weight_decay=1e-4)
    net.train()
    x = torch.randn(2, 3, 32, 32)
    loss = multilabel_loss(net(x), torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_frozen_bn_and_stem_really_frozen():
    torch.manual_seed(0)
    backbone = create_backbone("resnet50")
    net = CamNet(backbone=backbone, num_labels=3, freeze_bn=True, frozen_stages=3)
    net.train()
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    assert net.backbone.stages[3].training  # the rest is in training mode
    before = _bn_state(net)
    _step(net)
    after = net.state_dict()
    frozen = [k for k in before if k.startswith(("backbone.stages.0.", "backbone.stages.1.",
                                                  "backbone.stages.2."))]  # fmt: skip
    bn_keys = [k for k in before if any(s in k for s in ("bn", "downsample.1", "stages.0.1."))]
    assert frozen and bn_keys
    for key in frozen + bn_keys:
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["backbone.stages.3.0.conv1.weight"],
                           after["backbone.stages.3.0.conv1.weight"])  # fmt: skip
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    trainable = {id(p) for g in net.param_groups(0.1) for p in g["params"]}
    assert all(id(m.weight) not in trainable for m in bns)


def test_unfrozen_bn_does_change():
    """The test above can fail: without freezing, running stats and the stem move."""
    torch.manual_seed(0)
    net = CamNet(backbone=create_backbone("resnet50"), num_labels=3)
    before = _bn_state(net)
    _step(net)
    after = net.state_dict()
    assert not torch.equal(before["backbone.stages.0.1.running_mean"],
                           after["backbone.stages.0.1.running_mean"])  # fmt: skip
    assert not torch.equal(
        before["backbone.stages.0.0.weight"], after["backbone.stages.0.0.weight"]
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_labels"):
        CamNet(backbone=create_backbone("small"), num_labels=0)
    with pytest.raises(ValueError, match="frozen_stages"):
        CamNet(backbone=create_backbone("small"), num_labels=2, frozen_stages=6)
