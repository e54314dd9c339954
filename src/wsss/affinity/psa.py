"""AffinityNet (PSA, Ahn & Kwak 2018): affinities from learned features at stride 8 (SPEC s. 3).

Head (PSA sec. 3.2): 1x1 convolutions to 64, 128 and 256 channels (ELU) on the backbone's last
three stages, resized to stride 8, concatenated (448) -> 1x1 convolution -> ELU: the affinity
feature map ``f``. Affinity (eq. 3): ``a_ij = exp(-||f_i - f_j||_1)``; the authors' code takes the
*mean* absolute difference over channels instead of the sum (``distance="mean"``), which only
rescales ``f``. With the sum, the last convolution's output is multiplied by a fixed 1/448 before
its ELU, so that the initial affinities are not all ~0 (where ``exp`` has no gradient). The factor
is a constant of the forward pass, not a smaller initial weight: a weight started 1/448 as large
receives a gradient as large as before, and the first SGD step at the head's learning rate grew it
~100x, every affinity underflowed to 0 and training stopped for good (issue 12).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from wsss.affinity.pairs import feature_size
from wsss.graph.window import window_offsets
from wsss.models.backbones import Backbone

__all__ = ["AffinityNet", "feature_to_affinity"]


def feature_to_affinity(
    features: torch.Tensor, radius: float, *, distance: Literal["l1", "mean"] = "l1"
) -> torch.Tensor:
    """``exp(-||f_i - f_j||_1)`` (or the mean absolute difference) for every (offset, pixel).

    Pairs whose destination leaves the map are computed against zero padding; select the valid
    ones with :func:`~wsss.graph.window.gather_window`.

    Shapes:
        features: ``(B, C, h, w)``. Returns ``(B, K, h, w)``.

    Example:
        >>> f = torch.tensor([[[[0.0, 0.0, 2.0]]]])
        >>> feature_to_affinity(f, 2)[0, 0, 0]  # offset (0, 1)
        tensor([1.0000, 0.1353, 0.1353])
    """
    if features.ndim != 4:
        raise ValueError(f"expected (B, C, h, w) features, got {tuple(features.shape)}")
    if distance not in ("l1", "mean"):
        raise ValueError(f"distance must be 'l1' or 'mean', got {distance!r}")
    offsets = window_offsets(radius).tolist()
    reach = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    h, w = features.shape[-2:]
    padded = F.pad(features, (reach, reach, 0, reach))
    maps = []
    for dy, dx in offsets:
        diff = (features - padded[..., dy : dy + h, reach + dx : reach + dx + w]).abs()
        maps.append(diff.sum(1) if distance == "l1" else diff.mean(1))
    return torch.exp(-torch.stack(maps, dim=1))


class AffinityNet(nn.Module):
    """Backbone + PSA affinity head.

    Args:
        backbone: A :class:`~wsss.models.backbones.Backbone` (e.g. the trained CAM backbone, which
            this network fine-tunes unless ``freeze_backbone``).
        radius: Radius of the training pairs (PSA: 5).
        distance: ``l1`` (paper, eq. 3) or ``mean`` (the authors' code).
        widths: Output channels of the convolutions on the last three stages (PSA 64, 128, 256).
        freeze_backbone: Keep the backbone fixed (eval mode, no gradient).
        freeze_bn: Keep the backbone's BatchNorms in eval mode with fixed parameters.

    Shapes:
        images: ``(B, 3, H, W)``; :meth:`features`: ``(B, sum(widths), ceil(H/8), ceil(W/8))``;
        :meth:`forward`: ``(B, K, ceil(H/8), ceil(W/8))``.
    """

    stride = 8

    def __init__(
        self,
        *,
        backbone: Backbone,
        radius: float = 5,
        distance: Literal["l1", "mean"] = "l1",
        widths: tuple[int, int, int] = (64, 128, 256),
        freeze_backbone: bool = False,
        freeze_bn: bool = False,
    ) -> None:
        super().__init__()
        if len(backbone.stages) < 3:
            raise ValueError(f"need at least 3 backbone stages, got {len(backbone.stages)}")
        self.backbone = backbone
        self.radius = radius
        self.distance = distance
        self.freeze_backbone = freeze_backbone
        self.freeze_bn = freeze_bn
        tapped = backbone.stage_channels[-3:]
        self.branches = nn.ModuleList(
            nn.Conv2d(c, width, 1, bias=False) for c, width in zip(tapped, widths, strict=True)
        )
        self.head = nn.Conv2d(sum(widths), sum(widths), 1, bias=False)
        for conv in [*self.branches, self.head]:
            nn.init.kaiming_normal_(conv.weight)
        #: Fixed factor on the last convolution's output (see the module docstring).
        self.head_scale = 1.0 / sum(widths) if distance == "l1" else 1.0
        if freeze_backbone:
            backbone.requires_grad_(False)
        for bn in self._frozen_bns():
            bn.requires_grad_(False)
        self.num_offsets = len(window_offsets(radius))

    def _frozen_bns(self) -> list[nn.Module]:
        if not (self.freeze_bn or self.freeze_backbone):
            return []
        return [
            m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]

    def train(self, mode: bool = True) -> AffinityNet:
        """Set the mode; a frozen backbone (or frozen BatchNorms) stays in eval mode."""
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        for bn in self._frozen_bns():
            bn.eval()
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The affinity feature map ``f`` at stride 8."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
        size = feature_size(images.shape[-2:], self.stride)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            stages = self.backbone.forward_stages(images)[-3:]
        outs = []
        for branch, x in zip(self.branches, stages, strict=True):
            y = branch(x)
            if tuple(y.shape[-2:]) != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            outs.append(F.elu(y))
        return F.elu(self.head(torch.cat(outs, dim=1)) * self.head_scale)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Affinities of all (offset, pixel) pairs within :attr:`radius`, ``(B, K, h, w)``."""
        return feature_to_affinity(self.features(images), self.radius, distance=self.distance)

    def param_groups(self, lr: float, head_lr_mult: float = 10.0) -> list[dict[str, object]]:
        """Backbone at ``lr`` (if trained), the head at ``lr * head_lr_mult`` (PSA: 10)."""
        head = [*self.branches.parameters(), *self.head.parameters()]
        groups: list[dict[str, object]] = [{"params": head, "lr": lr * head_lr_mult}]
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        if backbone:
            groups.insert(0, {"params": backbone, "lr": lr})
        return groups
