"""Segmentation networks built from a training configuration, from a trained run, or initialised
from another run's weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from wsss.engine import loop
from wsss.engine.training import load_checkpoint
from wsss.errors import WsssError
from wsss.seg.config import SegConfig
from wsss.seg.deeplab import SegmentationModel
from wsss.seg.registry import create_seg_model

__all__ = ["build_seg_model", "initialise_from", "load_trained"]


def build_seg_model(
    config: SegConfig, num_classes: int, *, pretrained: bool, weights: str | Path | None = None
) -> SegmentationModel:
    """The network of ``config`` (``pretrained`` overrides the config: loading a trained run never
    downloads ImageNet weights)."""
    options: dict[str, Any] = {}
    if config.head_channels is not None:
        options["head_channels"] = config.head_channels
    if config.model == "escrf":
        options |= {"pairwise": config.pairwise, "superpixel": config.superpixel}
    return create_seg_model(config.model, backbone=config.backbone, num_classes=num_classes,
                            pretrained=pretrained, output_stride=config.output_stride,
                            freeze_bn=config.freeze_bn, weights=weights, **options)  # fmt: skip


def initialise_from(model: nn.Module, checkpoint: str | Path) -> int:
    """Copy a trained run's weights into ``model``; returns how many tensors were copied.

    Raises:
        WsssError: the file is missing or unreadable, holds weights ``model`` does not have or
            has in another shape (another network or class count), or shares none with it.
    """
    path = loop.final_path(checkpoint)
    state = load_checkpoint(path)
    weights = state.get("model") if isinstance(state, dict) else None
    if not isinstance(weights, dict):
        raise WsssError("not a trained network (no 'model' weights)", path)
    own = model.state_dict()
    foreign = sorted(k for k in weights if k not in own)
    if foreign:
        raise WsssError(f"{len(foreign)} weights of the checkpoint are not in this network "
                        f"(first: {foreign[0]})", path,
                        hint="initialise from a run of the same or a smaller head")  # fmt: skip
    wrong = [k for k, v in weights.items() if tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise WsssError(f"weight {wrong[0]} has shape {tuple(weights[wrong[0]].shape)}, this "
                        f"network {tuple(own[wrong[0]].shape)} (another class count or "
                        f"backbone?)", path)  # fmt: skip
    if not weights:
        raise WsssError("the checkpoint holds no weights", path)
    model.load_state_dict(weights, strict=False)
    return len(weights)


def load_trained(
    checkpoint: str | Path, device: str | torch.device = "cpu"
) -> tuple[SegmentationModel, SegConfig]:
    """The trained network of a run (eval mode, on ``device``) and its configuration.

    Args:
        checkpoint: ``final.pt``, ``checkpoint.pt``, or a run directory (its ``final.pt``).
        device: Where to put the model.

    Raises:
        WsssError: missing or unreadable file, or not a trained segmentation network.
    """
    path = loop.final_path(checkpoint)
    state = load_checkpoint(path)
    try:
        config = SegConfig.from_dict(state["config"])
        weights = state["model"]
        num_classes = int(state["num_classes"])
        model = build_seg_model(config, num_classes, pretrained=False)
        model.load_state_dict(weights)
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise WsssError(f"not a trained segmentation network ({err})", path) from None
    return model.to(device).eval(), config
