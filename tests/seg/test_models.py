"""The segmentation heads: output shapes per registry entry, parameter groups, the ResNet forms."""

from __future__ import annotations

import pytest
import torch

from wsss.errors import WsssError
from wsss.seg.config import resolve_config
from wsss.seg.deeplab import DeepLabV2, DeepLabV3Plus
from wsss.seg.escrf import ESCRF
from wsss.seg.registry import SEG_MODELS, create_seg_model


@pytest.mark.parametrize("name", sorted(SEG_MODELS))
def test_small_heads_shapes_and_groups(name: str):
    torch.manual_seed(0)
    model = create_seg_model(name, backbone="small", num_classes=5)
    images = torch.randn(2, 3, 40, 36)
    spx = torch.randint(0, 7, (2, 40, 36))
    out = model(images, spx)
    assert out.shape == (2, 5, 40, 36) and torch.isfinite(out).all()
    groups = model.param_groups(0.1, 10.0)
    assert [g["lr"] for g in groups] == [0.1, pytest.approx(1.0)]
    seen = {id(p) for g in groups for p in g["params"]}
    assert seen == {id(p) for p in model.parameters()}
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.backbone.parameters()}
    assert model.needs_superpixels == (name == "escrf")


def test_escrf_model_needs_superpixels():
    model = create_seg_model("escrf", backbone="small", num_classes=3)
    with pytest.raises(ValueError, match="superpixel"):
        model(torch.randn(1, 3, 32, 32))
    ablated = create_seg_model("escrf", backbone="small", num_classes=3, superpixel=False)
    assert not ablated.needs_superpixels
    assert ablated(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    assert isinstance(ablated.refine, ESCRF) and ablated.refine.pairwise


def test_unknown_head_lists_names():
    with pytest.raises(KeyError, match="deeplabv3plus"):
        create_seg_model("pspnet", backbone="small", num_classes=3)


def test_deeplabv3plus_resnet50_tiny_input():
    torch.manual_seed(0)
    model = create_seg_model("deeplabv3plus", backbone="resnet50", num_classes=4).eval()
    assert isinstance(model, DeepLabV3Plus)
    assert model.backbone.output_stride == 16
    rates = [m.convs[1 + i][0].dilation for i, m in enumerate([model.aspp] * 3)]
    assert rates == [(6, 6), (12, 12), (18, 18)]
    assert model.reduce[0].in_channels == 256  # low-level = layer1 (stride 4)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 33, 35))
    assert out.shape == (1, 4, 33, 35)
    v2 = create_seg_model("deeplabv2", backbone="resnet50", num_classes=4, freeze_bn=True)
    assert isinstance(v2, DeepLabV2) and v2.backbone.output_stride == 8
    assert [c.dilation[0] for c in v2.aspp] == [6, 12, 18, 24]
    v2.train()
    bn = v2.backbone.stages[0][1]
    assert not bn.training and not bn.weight.requires_grad


@pytest.mark.parametrize(
    ("stride", "rates"), [(8, (12, 24, 36)), (16, (6, 12, 18)), (32, (3, 6, 9))]
)
def test_deeplabv3plus_lite0_aspp_rates_follow_the_output_stride(stride: int, rates: tuple):
    model = create_seg_model("deeplabv3plus", backbone="efficientnet_lite0", num_classes=3,
                             output_stride=stride, head_channels=16).eval()  # fmt: skip
    assert model.backbone.output_stride == stride
    assert tuple(model.aspp.convs[1 + i][0].dilation[0] for i in range(3)) == rates
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_output_stride_32_only_where_the_backbone_has_it(tmp_path):
    config = resolve_config(dataset="synthetic", root=tmp_path, backbone="efficientnet_lite0",
                            output_stride=32)  # fmt: skip
    assert config.output_stride == 32
    with pytest.raises(WsssError, match="'resnet50' has no output stride 32; valid: 8, 16"):
        resolve_config(dataset="synthetic", root=tmp_path, backbone="resnet50", output_stride=32)
    with pytest.raises(WsssError, match="no output stride 4; valid: 8, 16, 32"):
        resolve_config(dataset="synthetic", root=tmp_path, backbone="efficientnet_lite0",
                       output_stride=4)  # fmt: skip


def test_cam_and_group_recipes_check_the_output_stride_too(tmp_path):
    from wsss.cam.train import resolve_config as cam_config
    from wsss.group.config import resolve_group_config

    assert cam_config(dataset="synthetic", root=tmp_path, backbone="efficientnet_lite0",
                      output_stride=32).output_stride == 32  # fmt: skip
    with pytest.raises(WsssError, match="'resnet50' has no output stride 32"):
        cam_config(dataset="synthetic", root=tmp_path, backbone="resnet50", output_stride=32)
    with pytest.raises(WsssError, match="'vgg16' has no output stride 32"):
        resolve_group_config(dataset="synthetic", root=tmp_path, backbone="vgg16",
                             output_stride=32)  # fmt: skip
