"""DeepLab-v2 and DeepLabV3+ segmentation networks over any :class:`~wsss.models.backbones.Backbone`.

==============  =====================================================================================
DeepLab-v2      four parallel 3x3 convolutions of dilations 6, 12, 18, 24 on the last backbone stage,
                each predicting class scores, summed (Chen et al., TPAMI 2018, "ASPP-L"); the head
                WSGCN and Group-WSSS train on their pseudo labels (ResNet-101, output stride 8).
DeepLabV3+      torchvision's ASPP (1x1, three dilated 3x3, image pooling, 1x1 projection) on the last
                stage, upsampled x4 and joined with the stage-1 features (stride 4) reduced to 48
                channels, two 3x3 convolutions, a 1x1 classifier (Chen et al., ECCV 2018). An optional
                ``refine`` module (ES-CRF) acts on the decoder features right before the classifier.
==============  =====================================================================================

Every model maps a normalised ``(B, 3, H, W)`` batch to ``(B, K, H, W)`` class scores (bilinear
upsampling of the head's output) and has ``param_groups(lr, head_lr_mult)``: the backbone at ``lr``,
everything else at ``lr * head_lr_mult`` (DeepLab: 10).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torchvision.models.segmentation.deeplabv3 import ASPP

from wsss.models.backbones import Backbone
from wsss.seg.dilated import trim_padding_taps

__all__ = ["DeepLabV2", "DeepLabV3Plus", "SegmentationModel", "batchnorm_to_groupnorm"]


def batchnorm_to_groupnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` (in place) by a ``GroupNorm`` of at most 8 groups.

    The ``small`` configuration uses GroupNorm throughout, so that several processes (and batches of
    any size) train exactly like one.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            c = child.num_features
            setattr(module, name, nn.GroupNorm(max(1, min(8, c // 4)), c))
        else:
            batchnorm_to_groupnorm(child)
    return module


class SegmentationModel(nn.Module):
    """Base class: a backbone plus a head; subclasses implement :meth:`scores`.

    Args:
        backbone: The feature extractor.
        num_classes: Number of output classes ``K`` (background included).
        freeze_bn: Keep the backbone's BatchNorm layers in eval mode with fixed affine parameters
            (DeepLab-v2's recipe at small batches).
    """

    #: Whether :meth:`forward` needs a superpixel map (ES-CRF).
    needs_superpixels: bool = False

    def __init__(self, *, backbone: Backbone, num_classes: int, freeze_bn: bool = False) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.freeze_bn = freeze_bn
        if freeze_bn:
            for m in backbone.modules():
                if isinstance(m, _BatchNorm):
                    m.weight.requires_grad_(False)
                    m.bias.requires_grad_(False)

    def train(self, mode: bool = True) -> SegmentationModel:
        super().train(mode)
        if self.freeze_bn:
            for m in self.backbone.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def head_modules(self) -> list[nn.Module]:
        """Every module outside the backbone (trained at ``lr * head_lr_mult``)."""
        return [m for name, m in self.named_children() if name != "backbone"]

    def param_groups(self, lr: float, head_lr_mult: float) -> list[dict[str, Any]]:
        """Backbone parameters at ``lr``, the head's at ``lr * head_lr_mult``."""
        head = [p for m in self.head_modules() for p in m.parameters()]
        return [{"params": list(self.backbone.parameters()), "lr": lr},
                {"params": head, "lr": lr * head_lr_mult}]  # fmt: skip

    def scores(self, images: torch.Tensor, superpixels: torch.Tensor | None) -> torch.Tensor:
        """Class scores at the head's resolution, ``(B, K, h, w)``."""
        raise NotImplementedError

    def forward(
        self, images: torch.Tensor, superpixels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class scores upsampled (bilinear) to the input size.

        Args:
            images: ImageNet-normalised batch.
            superpixels: Superpixel ids per pixel (only models with ``needs_superpixels``).

        Shapes:
            images: ``(B, 3, H, W)``; superpixels: ``(B, H, W)`` int64; output ``(B, K, H, W)``.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) batch, got {tuple(images.shape)}")
        if self.needs_superpixels and superpixels is None:
            raise ValueError(f"{type(self).__name__} needs a (B, H, W) superpixel map")
        out = self.scores(images, superpixels)
        return F.interpolate(out, size=images.shape[-2:], mode="bilinear", align_corners=False)


class DeepLabV2(SegmentationModel):
    """DeepLab-v2: the sum of parallel dilated 3x3 classifiers on the last backbone stage.

    Args:
        backbone: The feature extractor (DeepLab-v2: dilated ResNet-101, output stride 8).
        num_classes: Number of classes ``K``.
        rates: Dilations of the parallel branches (6, 12, 18, 24).
        freeze_bn: See :class:`SegmentationModel`.

    Shapes:
        input ``(B, 3, H, W)`` -> output ``(B, K, H, W)``; head resolution ``H / output_stride``.
    """

    def __init__(self, *, backbone: Backbone, num_classes: int, rates: Sequence[int] = (6, 12, 18, 24),
                 freeze_bn: bool = False) -> None:  # fmt: skip
        super().__init__(backbone=backbone, num_classes=num_classes, freeze_bn=freeze_bn)
        self.aspp = nn.ModuleList(
            nn.Conv2d(backbone.out_channels, num_classes, 3, padding=r, dilation=r) for r in rates
        )
        for conv in self.aspp:  # DeepLab-v2 initialises its classifiers with N(0, 0.01)
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        trim_padding_taps(self.aspp)  # same outputs; skips taps that only read padding

    def scores(self, images: torch.Tensor, superpixels: torch.Tensor | None) -> torch.Tensor:
        x = self.backbone(images)
        return torch.stack([branch(x) for branch in self.aspp]).sum(0)


class DeepLabV3Plus(SegmentationModel):
    """DeepLabV3+: ASPP on the last stage, a decoder with stage-1 features, an optional refiner.

    Args:
        backbone: The feature extractor (ResNet-50/101 at output stride 16, or ``small``).
        num_classes: Number of classes ``K``.
        rates: Dilations of ASPP's three 3x3 branches ((6, 12, 18) at output stride 16).
        aspp_channels: Channels of ASPP (256).
        low_level_channels: Channels the stage-1 features are reduced to (48).
        decoder_channels: Channels of the decoder's 3x3 convolutions (256).
        low_level_stage: Index of the backbone stage giving the low-level features (1: ResNet
            ``layer1``, stride 4).
        refine: A module ``(features, images, superpixels) -> features`` applied to the decoder
            output before the classifier (ES-CRF, :class:`~wsss.seg.escrf.ESCRF`), or None.
        group_norm: Use GroupNorm instead of BatchNorm in the head (``small`` configuration).
        freeze_bn: See :class:`SegmentationModel`.

    Shapes:
        input ``(B, 3, H, W)`` -> output ``(B, K, H, W)``; decoder resolution that of the
        low-level stage (``H / 4``).
    """

    def __init__(
        self, *, backbone: Backbone, num_classes: int, rates: Sequence[int] = (6, 12, 18),
        aspp_channels: int = 256, low_level_channels: int = 48, decoder_channels: int = 256,
        low_level_stage: int = 1, refine: nn.Module | None = None, group_norm: bool = False,
        freeze_bn: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(backbone=backbone, num_classes=num_classes, freeze_bn=freeze_bn)
        self.low_level_stage = low_level_stage
        low_in = backbone.stage_channels[low_level_stage]
        self.aspp = ASPP(backbone.out_channels, list(rates), aspp_channels)
        trim_padding_taps(self.aspp)  # same outputs; skips taps that only read padding
        self.reduce = nn.Sequential(
            nn.Conv2d(low_in, low_level_channels, 1, bias=False),
            nn.BatchNorm2d(low_level_channels), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Conv2d(aspp_channels + low_level_channels, decoder_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(decoder_channels), nn.ReLU(inplace=True),
            nn.Conv2d(decoder_channels, decoder_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(decoder_channels), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.refine = refine
        self.needs_superpixels = bool(getattr(refine, "needs_superpixels", False))
        self.classifier = nn.Conv2d(decoder_channels, num_classes, 1)
        if group_norm:
            for m in (self.aspp, self.reduce, self.decoder):
                batchnorm_to_groupnorm(m)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The decoder features ``F`` (before any refiner), ``(B, decoder_channels, h4, w4)``."""
        stages = self.backbone.forward_stages(images)
        low = self.reduce(stages[self.low_level_stage])
        high = self.aspp(stages[-1])
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.decoder(torch.cat([high, low], dim=1))

    def scores(self, images: torch.Tensor, superpixels: torch.Tensor | None) -> torch.Tensor:
        x = self.features(images)
        if self.refine is not None:
            x = self.refine(x, images, superpixels)
        return self.classifier(x)
