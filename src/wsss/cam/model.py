"""The CAM classifiers by name, built from a training configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import nn

from wsss.models import backbones
from wsss.models.cam_net import CamNet

if TYPE_CHECKING:
    from wsss.cam.train import TrainConfig

__all__ = ["MODELS", "build_cam_model", "build_model"]


def build_cam_model(config: TrainConfig, num_labels: int, *, pretrained: bool) -> nn.Module:
    """The IRNet CAM classifier of ``config`` (``pretrained`` overrides the config, so that
    loading a trained checkpoint never downloads ImageNet weights)."""
    backbone = backbones.create_backbone(
        config.backbone, pretrained=pretrained, output_stride=config.output_stride
    )
    return CamNet(
        backbone=backbone,
        num_labels=num_labels,
        freeze_bn=config.freeze_bn,
        frozen_stages=backbone.frozen_stages if config.freeze_stem else 0,
    )


#: Model name -> builder ``(config, num_labels, pretrained=) -> module``. A built module has
#: ``forward(images) -> (B, L) logits``, ``cams(images) -> (B, L, h, w)`` and
#: ``param_groups(lr, classifier_lr_mult)``.
MODELS: dict[str, Callable[..., nn.Module]] = {"cam": build_cam_model}


def build_model(config: TrainConfig, num_labels: int, *, pretrained: bool) -> nn.Module:
    """Build ``config.model`` (see :data:`MODELS`)."""
    return MODELS[config.model](config, num_labels, pretrained=pretrained)
