"""Backbones: output shapes and strides of every registry entry, dilation, weights wiring."""

from __future__ import annotations

import pytest
import torch
import torchvision.models
from torch import nn

from wsss.models.backbones import (
    BACKBONES,
    DEFAULT_OUTPUT_STRIDES,
    create_backbone,
    resnet_backbone,
    vgg16_backbone,
)


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_shapes_and_strides(name: str, output_stride: int):
    torch.manual_seed(0)
    backbone = create_backbone(name, output_stride=output_stride).eval()
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        stages = backbone.forward_stages(x)
        out = backbone(x)
    assert len(stages) == len(backbone.stages) == 5
    assert backbone.output_stride == output_stride
    for feat, channels, stride in zip(
        stages, backbone.stage_channels, backbone.stage_strides, strict=True
    ):
        assert feat.shape == (2, channels, 32 // stride, 48 // stride)
    assert out.shape == (2, backbone.out_channels, 32 // output_stride, 48 // output_stride)
    assert torch.equal(out, stages[-1])


def test_default_output_strides():
    assert DEFAULT_OUTPUT_STRIDES == {"resnet50": 16, "resnet101": 16, "vgg16": 8, "small": 8,
                                      "efficientnet_lite0": 16}  # fmt: skip
    assert create_backbone("small").output_stride == 8
    assert create_backbone("vgg16").output_stride == 8


def test_unknown_name_lists_valid_ones():
    with pytest.raises(KeyError, match="efficientnet_lite0, resnet101, resnet50, small, vgg16"):
        create_backbone("resnet18")


def test_bad_stride_and_pretrained_small():
    with pytest.raises(ValueError, match="output_stride"):
        create_backbone("small", output_stride=32)
    with pytest.raises(ValueError, match="no pretrained"):
        create_backbone("small", pretrained=True)


def test_resnet_dilation():
    dilated = resnet_backbone(50, output_stride=16)
    assert dilated.stages[4][1].conv2.dilation == (2, 2)
    assert dilated.stages[3][1].conv2.dilation == (1, 1)
    os8 = resnet_backbone(50, output_stride=8)
    assert os8.stages[3][1].conv2.dilation == (2, 2)
    assert os8.stages[4][1].conv2.dilation == (4, 4)
    plain = resnet_backbone(50, output_stride=16, dilate=False).eval()  # IRNet's own ResNet
    assert plain.stages[4][0].conv2.stride == (1, 1)
    assert plain.stages[4][1].conv2.dilation == (1, 1)
    with torch.no_grad():
        assert plain(torch.zeros(1, 3, 64, 64)).shape == (1, 2048, 4, 4)


def test_vgg16_is_deeplab_dilated():
    vgg = vgg16_backbone(output_stride=8)
    conv5 = [m for m in vgg.stages[4].modules() if isinstance(m, nn.Conv2d)]
    assert [c.dilation for c in conv5] == [(2, 2)] * 3
    pools = [m for m in vgg.stages[4].modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 1), (3, 1)]  # pool4, pool5


def test_small_uses_groupnorm_only():
    backbone = create_backbone("small")
    kinds = {type(m) for m in backbone.modules()}
    assert nn.GroupNorm in kinds
    assert not any(issubclass(k, nn.modules.batchnorm._BatchNorm) for k in kinds)


@pytest.mark.parametrize(
    "name, builder, weights",
    [
        ("resnet50", "resnet50", torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
        ("resnet101", "resnet101", torchvision.models.ResNet101_Weights.IMAGENET1K_V1),
        ("vgg16", "vgg16", torchvision.models.VGG16_Weights.IMAGENET1K_V1),
    ],
)
def test_pretrained_asks_torchvision_for_imagenet_weights(monkeypatch, name, builder, weights):
    """The weights enum reaches torchvision only with pretrained=True (no download here)."""
    real = getattr(torchvision.models, builder)
    seen = []

    def fake(*, weights=None, **kwargs):
        seen.append(weights)
        return real(weights=None, **kwargs)

    monkeypatch.setattr(torchvision.models, builder, fake)
    create_backbone(name, pretrained=True)
    create_backbone(name, pretrained=False)
    assert seen == [weights, None]
