"""Readout of Group-WSSS: class-aware 1x1 convolution + global average pooling (eq. 9).

``l_i = GAP(phi_r(h_i))``. The convolution is bias-free, as the CAM classifier's
(:class:`~wsss.models.cam_net.CamNet`), so the logits are the spatial means of the class maps
and the CAMs are their ReLU. The model has two readouts: on ``h^0`` (intermediate output ``l^m``)
and on ``h^T`` (graph output ``l^g``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from wsss.group.checks import check_nodes

__all__ = ["Readout", "readout_logits"]


def readout_logits(h: Tensor, weight: Tensor) -> Tensor:
    """Image-level logits ``GAP(phi_r(h))`` of every node (eq. 9).

    Args:
        h: Node features.
        weight: The 1x1 class convolution as a matrix.

    Returns:
        One logit per label and node.

    Shapes:
        h: ``(B, K, C, H, W)``; weight: ``(L, C)``; output: ``(B, K, L)``.
    """
    check_nodes("readout_logits", h)
    if weight.ndim != 2 or weight.shape[1] != h.shape[2]:
        raise ValueError(
            f"readout_logits: expected weight (L, {h.shape[2]}), got {tuple(weight.shape)}"
        )
    return h.mean(dim=(3, 4)) @ weight.T


class Readout(nn.Module):
    """Eq. (9): bias-free 1x1 class convolution + GAP, with CAMs.

    Args:
        channels: Node channels ``C``.
        num_labels: Labels ``L`` (background excluded).

    Shapes:
        forward: ``(B, K, C, H, W)`` -> ``(B, K, L)`` logits; :meth:`cams`:
        ``(B, K, L, H, W)``.
    """

    def __init__(self, *, channels: int, num_labels: int) -> None:
        super().__init__()
        if channels < 1 or num_labels < 1:
            raise ValueError(
                f"channels and num_labels must be positive, got {channels}, {num_labels}"
            )
        self.classifier = nn.Conv2d(channels, num_labels, 1, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        return readout_logits(h, self.classifier.weight.flatten(1))

    def cams(self, h: Tensor) -> Tensor:
        """ReLU class maps ``relu(phi_r(h))`` of every node."""
        check_nodes("Readout.cams", h)
        b, k = h.shape[:2]
        return F.relu(self.classifier(h.flatten(0, 1))).unflatten(0, (b, k))
