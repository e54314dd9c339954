"""The multi-label CAM classifier (IRNet recipe, SPEC section 1).

Training path: backbone -> global average pooling -> bias-free 1x1 convolution (one logit per
label), multilabel soft-margin loss. CAM path: ReLU of the same 1x1 convolution applied at every
position of the feature map. Since the classifier is linear and bias-free, the logits equal the
spatial mean of the pre-ReLU class maps.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.backbones import Backbone


class CamNet(nn.Module):
    """Backbone + GAP + bias-free 1x1 classifier.

    Args:
        backbone: The feature extractor.
        num_labels: Number of image-level labels ``L`` (background excluded).
        freeze_bn: Keep every BatchNorm in eval mode (running statistics fixed) and its affine
            parameters untrained. IRNet's ResNet recipe does this (its code still trains the
            affine parameters of layer3/4; here they stay frozen). Use it only with pretrained
            weights: from scratch the statistics would stay at their initial values.
        frozen_stages: Number of leading backbone stages left untrained (IRNet: 3 for ResNet,
            i.e. conv1/bn1, layer1 and layer2). Their BatchNorms are kept in eval mode too.

    Shapes:
        input: ``(B, 3, H, W)``; :meth:`forward`: ``(B, L)`` logits; :meth:`cams`:
        ``(B, L, h, w)`` with ``h, w`` the feature-map size.
    """

    def __init__(
        self,
        *,
        backbone: Backbone,
        num_labels: int,
        freeze_bn: bool = False,
        frozen_stages: int = 0,
    ) -> None:
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"num_labels must be positive, got {num_labels}")
        if not 0 <= frozen_stages <= len(backbone.stages):
            raise ValueError(
                f"frozen_stages must lie in [0, {len(backbone.stages)}], got {frozen_stages}"
            )
        self.backbone = backbone
        self.classifier = nn.Conv2d(backbone.out_channels, num_labels, 1, bias=False)
        self.num_labels = num_labels
        self.freeze_bn = freeze_bn
        self.frozen_stages = frozen_stages
        for stage in backbone.stages[:frozen_stages]:
            stage.requires_grad_(False)
        for bn in self._frozen_bns():
            bn.requires_grad_(False)
        self.train()

    def _frozen_bns(self) -> list[nn.modules.batchnorm._BatchNorm]:
        scope = self.backbone if self.freeze_bn else self.backbone.stages[: self.frozen_stages]
        return [m for m in scope.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True) -> CamNet:
        """Set the training mode, keeping frozen BatchNorms in eval mode."""
        super().train(mode)
        for bn in self._frozen_bns():
            bn.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        pooled = features.mean(dim=(2, 3), keepdim=True)
        return self.classifier(pooled).flatten(1)

    def cams(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU class activation maps at the backbone's output stride, one per label."""
        return F.relu(self.classifier(self.backbone(x)))

    def param_groups(self, lr: float, classifier_lr_mult: float = 10.0) -> list[dict[str, Any]]:
        """Trainable parameters: the backbone's at ``lr``, the classifier's at ``lr * mult``."""
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        groups = [{"params": list(self.classifier.parameters()), "lr": lr * classifier_lr_mult}]
        if backbone:
            groups.insert(0, {"params": backbone, "lr": lr})
        return groups


def multilabel_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample multilabel soft-margin loss (mean over labels), shape ``(B,)``.

    Its batch mean is ``F.multilabel_soft_margin_loss(logits, labels)``.
    """
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ")
    return F.multilabel_soft_margin_loss(logits, labels, reduction="none")
