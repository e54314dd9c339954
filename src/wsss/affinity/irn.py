"""IRNet's inter-pixel relation network: a class-boundary map from a frozen backbone (SPEC s. 3).

Edge branch (IRNet sec. 3.2, Ahn et al. 2019): on each of the backbone's five stages a 1x1
convolution to 32 channels, GroupNorm(4), resized to stride 4, ReLU; the 160 concatenated channels
-> 1x1 convolution (with bias) -> boundary logit ``B``. Affinity of pixels ``i, j`` (eq. 2):
``a_ij = 1 - max_{k in path(i, j)} sigmoid(B_k)``, the path being the pixels on the segment between
them (:func:`~wsss.graph.window.line_paths`). The backbone is frozen (eval mode, no gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsss.affinity.pairs import feature_size
from wsss.graph.window import line_paths, window_offsets
from wsss.models.backbones import Backbone

__all__ = ["IRNetAffinity", "boundary_to_affinity"]


def boundary_to_affinity(boundary: torch.Tensor, radius: float) -> torch.Tensor:
    """``a = 1 - max(boundary on the path)`` for every (offset, source pixel) (IRNet eq. 2).

    Pairs whose destination leaves the map get values computed from zero padding; select the
    valid ones with :func:`~wsss.graph.window.gather_window`.

    Args:
        boundary: Boundary probabilities in [0, 1].
        radius: Window radius.

    Shapes:
        boundary: ``(B, h, w)``. Returns ``(B, K, h, w)``.

    Example:
        >>> wall = torch.zeros(1, 3, 4)
        >>> wall[:, :, 2] = 1.0  # a vertical wall in column 2
        >>> a = boundary_to_affinity(wall, 2)  # offset 0 is (0, 1)
        >>> a[0, 0, 0].tolist()  # (0,0)-(0,1) within, (0,1)-(0,2) and (0,2)-(0,3) touch the wall
        [1.0, 0.0, 0.0, 1.0]
    """
    if boundary.ndim != 3:
        raise ValueError(f"expected a (B, h, w) boundary map, got {tuple(boundary.shape)}")
    paths = line_paths(radius).tolist()
    reach = max(abs(v) for path in paths for point in path for v in point)
    h, w = boundary.shape[-2:]
    padded = F.pad(boundary, (reach, reach, 0, reach))
    maps = []
    for path in paths:
        points = {tuple(p) for p in path}
        views = [padded[:, dy : dy + h, reach + dx : reach + dx + w] for dy, dx in points]
        maps.append(torch.stack(views, dim=1).amax(dim=1))
    return 1.0 - torch.stack(maps, dim=1)


class IRNetAffinity(nn.Module):
    """Frozen backbone + IRNet edge branch; affinities from the boundary map.

    Args:
        backbone: A :class:`~wsss.models.backbones.Backbone` with five stages (e.g. the trained
            CAM backbone); frozen here.
        radius: Radius of the training pairs (IRNet: 10).
        branch_channels: Channels per stage in the edge branch (IRNet: 32).
        groups: GroupNorm groups (IRNet: 4).

    Shapes:
        images: ``(B, 3, H, W)``; :meth:`boundary_logits`: ``(B, 1, ceil(H/4), ceil(W/4))``;
        :meth:`forward`: ``(B, K, ceil(H/4), ceil(W/4))`` affinities at ``radius``.
    """

    stride = 4

    def __init__(
        self, *, backbone: Backbone, radius: float = 10, branch_channels: int = 32, groups: int = 4
    ) -> None:
        super().__init__()
        if len(backbone.stages) != 5:
            raise ValueError(f"the edge branch needs 5 backbone stages, got {len(backbone.stages)}")
        self.backbone = backbone.requires_grad_(False)
        self.radius = radius
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c, branch_channels, 1, bias=False), nn.GroupNorm(groups, branch_channels)
            )
            for c in backbone.stage_channels
        )
        self.head = nn.Conv2d(5 * branch_channels, 1, 1, bias=True)
        self.num_offsets = len(window_offsets(radius))

    def train(self, mode: bool = True) -> IRNetAffinity:
        """Set the mode of the edge branch; the frozen backbone stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The 160 concatenated edge-branch channels at stride 4 (after ReLU).

        Shapes:
            images: ``(B, 3, H, W)``. Returns ``(B, 5 * branch_channels, ceil(H/4), ceil(W/4))``.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
        size = feature_size(images.shape[-2:], self.stride)
        with torch.no_grad():
            stages = [s.detach() for s in self.backbone.forward_stages(images)]
        outs = []
        for branch, x in zip(self.branches, stages, strict=True):
            y = branch(x)
            if tuple(y.shape[-2:]) != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            outs.append(F.relu(y))
        return torch.cat(outs, dim=1)

    def boundary_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The boundary logit ``B`` at stride 4, ``(B, 1, h, w)``."""
        return self.head(self.features(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Affinities of all (offset, pixel) pairs within :attr:`radius`, ``(B, K, h, w)``."""
        boundary = torch.sigmoid(self.boundary_logits(images))[:, 0]
        return boundary_to_affinity(boundary, self.radius)

    @torch.no_grad()
    def boundary(self, image: torch.Tensor) -> torch.Tensor:
        """The inference boundary map of one image: sigmoid of the mean of the logits of the image
        and of its flip (flipped back), as IRNet infers.

        Shapes:
            image: ``(3, H, W)``. Returns ``(ceil(H/4), ceil(W/4))``.
        """
        logits = self.boundary_logits(torch.stack([image, image.flip(-1)]))
        return torch.sigmoid((logits[0, 0] + logits[1, 0].flip(-1)) / 2)

    def param_groups(self, lr: float) -> list[dict[str, object]]:
        """The edge branch's parameters at ``lr`` (the backbone is frozen)."""
        return [{"params": [*self.branches.parameters(), *self.head.parameters()], "lr": lr}]
