"""The group classifier built from a training configuration, or started from a single-image one."""

from __future__ import annotations

from pathlib import Path

import torch

from wsss.engine.training import load_checkpoint
from wsss.errors import WsssError
from wsss.group.config import GroupTrainConfig, checkpoint_kind
from wsss.group.model import GroupClassifier
from wsss.models import backbones

__all__ = ["build_group_model", "init_from_cam"]


def build_group_model(
    config: GroupTrainConfig, num_labels: int, *, pretrained: bool
) -> GroupClassifier:
    """The :class:`~wsss.group.model.GroupClassifier` of ``config``."""
    backbone = backbones.create_backbone(
        config.backbone, pretrained=pretrained, output_stride=config.output_stride
    )
    return GroupClassifier(
        backbone=backbone, num_labels=num_labels, reduction=config.reduction, steps=config.steps,
        gru_kernel=config.gru_kernel, graph_dropout=config.graph_dropout, delta_r=config.delta_r,
        delta_d=config.delta_d, drop_mode=config.drop_mode,  # type: ignore[arg-type]
        freeze_bn=config.freeze_bn,
    )  # fmt: skip


def init_from_cam(model: GroupClassifier, checkpoint: str | Path) -> None:
    """Copy a single-image CAM classifier into ``model``: backbone to backbone, 1x1 classifier to
    both readouts (so that the intermediate output starts as that classifier's).

    Raises:
        WsssError: not a single-image CAM checkpoint, or another backbone or label count.
    """
    path = Path(checkpoint)
    state = load_checkpoint(path)
    if checkpoint_kind(state) != "single":
        raise WsssError(
            "--init needs a single-image CAM checkpoint, this holds a group model", path
        )
    weights = state.get("model", {})
    prefix = "backbone."
    backbone = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    classifier = weights.get("classifier.weight")
    expected = model.intermediate_readout.classifier.weight.shape
    if classifier is None or tuple(classifier.shape) != tuple(expected):
        got = None if classifier is None else tuple(classifier.shape)
        raise WsssError(f"init checkpoint's classifier is {got}, the group model needs "
                        f"{tuple(expected)}", path)  # fmt: skip
    try:
        model.backbone.load_state_dict(backbone)
    except RuntimeError as err:
        raise WsssError(f"init checkpoint has another backbone ({str(err)[:200]})", path) from None
    with torch.no_grad():
        for readout in (model.intermediate_readout, model.graph_readout):
            readout.classifier.weight.copy_(classifier)
