"""The segmentation heads by name: a plain dict and :func:`create_seg_model`.

=================  ================================================================================
name               model
=================  ================================================================================
``deeplabv2``      :class:`~wsss.seg.deeplab.DeepLabV2` (WSGCN, Group-WSSS: ResNet-101, stride 8)
``deeplabv3plus``  :class:`~wsss.seg.deeplab.DeepLabV3Plus` (ES-CRF's baseline: ResNet-50/101, 16)
``escrf``          DeepLabV3+ with :class:`~wsss.seg.escrf.ESCRF` on the decoder features
``nonlocal``       DeepLabV3+ with a Non-local block there instead (ES-CRF Table 2)
``jointcrf``       DeepLabV3+ with dense-CRF mean-field layers on its scores (Table 1 "Joint-CRF")
=================  ================================================================================

On the ``small`` backbone every head shrinks to fit a CPU (ASPP 64 channels, decoder 64, low level
16, ES-CRF keys pooled over 2x2 cells with 3 wavelengths per axis from 32 to 512 px, GroupNorm
everywhere; dilations scaled to its 16x16 maps at 128 px).

Optional modules (ES-CRF, Non-local) are built from a generator of their own (:func:`_own_stream`),
so at one seed every head starts with the same shared weights as plain DeepLabV3+.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wsss.models.backbones import DEFAULT_OUTPUT_STRIDES, Backbone, create_backbone
from wsss.seg.comparisons import JointCRF, NonLocal
from wsss.seg.deeplab import DeepLabV2, DeepLabV3Plus, SegmentationModel
from wsss.seg.escrf import ESCRF

__all__ = ["DEFAULT_SEG_OUTPUT_STRIDES", "SEG_MODELS", "create_seg_model"]

#: Output stride per head when none is given (DeepLab-v2: 8; DeepLabV3+: 16; small: 8).
DEFAULT_SEG_OUTPUT_STRIDES: dict[str, int] = {
    "deeplabv2": 8, "deeplabv3plus": 16, "escrf": 16, "nonlocal": 16, "jointcrf": 16,
}  # fmt: skip


#: DeepLabV3's ASPP dilations by output stride: (6, 12, 18) at 16, doubled at 8, halved at 32.
ASPP_RATES: dict[int, tuple[int, int, int]] = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}


def _v3plus_sizes(backbone: Backbone, head_channels: int | None = None) -> dict[str, Any]:
    """DeepLabV3+'s sizes on ``backbone``; ``head_channels`` narrows ASPP and the decoder of a
    full-size backbone (None: the paper's 256)."""
    if backbone.stage_channels[-1] <= 256:  # the small backbone
        return {"rates": (3, 6, 9), "aspp_channels": 64, "low_level_channels": 16,
                "decoder_channels": 64, "group_norm": True}  # fmt: skip
    rates = ASPP_RATES[backbone.output_stride]
    if head_channels is None:
        return {"rates": rates}
    return {"rates": rates, "aspp_channels": head_channels, "decoder_channels": head_channels}


def _deeplabv2(
    backbone: Backbone, num_classes: int, *, freeze_bn: bool, head_channels: int | None = None
) -> SegmentationModel:
    del head_channels  # DeepLab-v2's ASPP-L has no hidden channels
    small = backbone.stage_channels[-1] <= 256
    rates = (3, 6, 9, 12) if small else (6, 12, 18, 24)
    return DeepLabV2(backbone=backbone, num_classes=num_classes, rates=rates, freeze_bn=freeze_bn)


def _deeplabv3plus(
    backbone: Backbone, num_classes: int, *, freeze_bn: bool, head_channels: int | None = None
) -> SegmentationModel:
    return DeepLabV3Plus(backbone=backbone, num_classes=num_classes, freeze_bn=freeze_bn,
                         **_v3plus_sizes(backbone, head_channels))  # fmt: skip


def _own_stream(build: Callable[[], nn.Module]) -> nn.Module:
    """Build an optional module from a generator of its own, leaving the global one untouched.

    The module's initialisation is seeded from ``torch.initial_seed()`` (the seed of the run) and
    the global generator is restored afterwards, so a network with the module and one without it
    start with the same backbone, ASPP, decoder and classifier and draw the same dropout masks:
    the ablation's rows are paired with their baseline.
    """
    seed = int(np.random.SeedSequence([torch.initial_seed(), 1]).generate_state(1)[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _escrf(
    backbone: Backbone, num_classes: int, *, freeze_bn: bool, pairwise: bool = True,
    superpixel: bool = True, chunk: int = 1024, kernel: str = "gaussian",
    head_channels: int | None = None, **options: Any,
) -> SegmentationModel:  # fmt: skip
    sizes = _v3plus_sizes(backbone, head_channels)
    channels = sizes.get("decoder_channels", 256)
    small = channels <= 64
    if kernel == "dot":  # the form before issue 19, for comparison
        defaults: dict[str, Any] = {"embed_channels": 16 if small else 32, "num_frequencies": 8,
                                    "wavelengths": (8.0, 1024.0)}  # fmt: skip
    else:  # shortest wavelength: 4 key pitches (small: stride 4 x 2x2 pooled keys = 8 px)
        defaults = {"num_frequencies": 3, "wavelengths": (32.0, 512.0)} if small else {}
    defaults["key_stride"] = 2 if small else 1
    values = {**defaults, **{k: v for k, v in options.items() if v is not None}}
    refine = _own_stream(lambda: ESCRF(channels=channels, pairwise=pairwise,
                                       superpixel=superpixel, chunk=chunk, kernel=kernel,
                                       **values))  # fmt: skip
    return DeepLabV3Plus(backbone=backbone, num_classes=num_classes, freeze_bn=freeze_bn,
                         refine=refine, **sizes)  # fmt: skip


def _nonlocal(
    backbone: Backbone, num_classes: int, *, freeze_bn: bool, chunk: int = 1024,
    head_channels: int | None = None,
) -> SegmentationModel:  # fmt: skip
    sizes = _v3plus_sizes(backbone, head_channels)
    channels = sizes.get("decoder_channels", 256)
    refine = _own_stream(lambda: NonLocal(channels=channels, chunk=chunk))
    return DeepLabV3Plus(backbone=backbone, num_classes=num_classes, freeze_bn=freeze_bn,
                         refine=refine, **sizes)  # fmt: skip


def _jointcrf(
    backbone: Backbone, num_classes: int, *, freeze_bn: bool, n_iter: int = 5,
    head_channels: int | None = None,
) -> SegmentationModel:  # fmt: skip
    return JointCRF(backbone=backbone, num_classes=num_classes, freeze_bn=freeze_bn,
                    n_iter=n_iter, **_v3plus_sizes(backbone, head_channels))  # fmt: skip


#: Head name -> builder ``(backbone, num_classes, freeze_bn=, **options) -> SegmentationModel``.
SEG_MODELS: dict[str, Callable[..., SegmentationModel]] = {
    "deeplabv2": _deeplabv2,
    "deeplabv3plus": _deeplabv3plus,
    "escrf": _escrf,
    "nonlocal": _nonlocal,
    "jointcrf": _jointcrf,
}


def create_seg_model(
    name: str, *, backbone: str, num_classes: int, pretrained: bool = False,
    output_stride: int | None = None, freeze_bn: bool = False, weights: str | Path | None = None,
    **options: Any,
) -> SegmentationModel:  # fmt: skip
    """Build the segmentation network ``name`` on the backbone ``backbone``.

    Args:
        name: A key of :data:`SEG_MODELS`.
        backbone: A key of :data:`~wsss.models.backbones.BACKBONES`.
        num_classes: Output classes ``K`` (background included).
        pretrained: ImageNet weights for the backbone.
        weights: Their file or folder (default: torch's cache; :mod:`wsss.models.weights`).
        output_stride: 8 or 16; None: the head's default (:data:`DEFAULT_SEG_OUTPUT_STRIDES`),
            and the backbone's own default for ``small``.
        freeze_bn: Keep the backbone's BatchNorm fixed.
        options: Head options (``escrf``: ``pairwise``, ``superpixel``, ``chunk``, ``kernel``
            and any other :class:`~wsss.seg.escrf.ESCRF` argument, e.g. ``key_stride``;
            ``kernel="dot"`` builds the psi_p used before issue 19, for comparison).

    Raises:
        KeyError: unknown name (the message lists the valid ones) or backbone.
    """
    if name not in SEG_MODELS:
        raise KeyError(f"unknown segmentation model {name!r}; valid names: "
                       f"{', '.join(sorted(SEG_MODELS))}")  # fmt: skip
    if output_stride is None:
        small = backbone == "small"
        output_stride = (
            DEFAULT_OUTPUT_STRIDES["small"] if small else DEFAULT_SEG_OUTPUT_STRIDES[name]
        )
    net = create_backbone(
        backbone, pretrained=pretrained, output_stride=output_stride, weights=weights
    )
    return SEG_MODELS[name](net, num_classes, freeze_bn=freeze_bn, **options)
