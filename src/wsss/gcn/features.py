"""Node features ``V`` of the GCN (WSGCN sec. 4.1) on the stride-4 grid, one row per node.

=============  ==========================================================================
``rgbxy``      the default when no network is given (ours): the image's colour (0-1,
               centred) and the position ``(y/h, x/w)`` (5 channels)
``colour``     ``rgbxy`` plus the background score ``1 - max CAM`` and the CAMs
               (``6 + C`` channels; ours, the no-network default until issue 14)
``backbone``   the CAM backbone's stage outputs (``forward_stages``), resized to the grid,
               each stage L2-normalised over its channels, concatenated
``affinity``   WSGCN-I: IRNet's 160 edge-branch channels, each scaled by the final 1x1
               weight, averaged with the flipped image
=============  ==========================================================================

Why the CAM planes are no longer in the default (issue 14): the seeds are thresholds of the
CAMs, so with the CAMs among its features the GCN can separate the seeds by the CAM values and
lean little on colour and position (a likely mechanism, not isolated). Measured on the six VOC sample photos with CAMs
made from their ground truth, replacing each photo by its ground truth painted in the VOC
palette (a graph and colours that follow the objects exactly): the Phi-graph GCN gives 88.2
(``rgbxy``) against 52.7 (``colour``) with ``irnet`` CAMs, 92.7 against 75.9 with ``flat`` ones,
the CAM argmax 60.9 and the dense CRF 88.1; on the photos themselves 48.3 against 33.7 and 46.7
against 43.5 (``docs/gcn.md``). The paper's node features are image features of a network
(IRNet's), not CAMs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FEATURE_KINDS", "affinity_features", "backbone_features", "colour_features"]

FEATURE_KINDS: tuple[str, ...] = ("colour", "backbone", "affinity", "rgbxy")


def colour_features(image: np.ndarray | Tensor, cams: Tensor) -> Tensor:
    """``[rgb / 255 - 0.5, y / h, x / w, 1 - max CAM, CAMs]`` per node.

    Shapes:
        image: ``(h, w, 3)`` on the grid; cams: ``(C, h, w)``. Returns ``(h w, 6 + C)`` float32.
    """
    img = torch.as_tensor(np.asarray(image) if not isinstance(image, Tensor) else image)
    h, w = img.shape[:2]
    if tuple(cams.shape[-2:]) != (h, w):
        raise ValueError(f"image {h}x{w} and CAMs {tuple(cams.shape[-2:])} differ")
    rgb = img.to(torch.float32).permute(2, 0, 1) / 255 - 0.5
    ys = torch.arange(h, dtype=torch.float32).view(h, 1).expand(h, w) / max(h - 1, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, w).expand(h, w) / max(w - 1, 1)
    maps = cams.to(torch.float32).cpu()
    bg = 1 - maps.amax(0) if len(maps) else torch.ones(h, w)
    planes = torch.cat([rgb, ys[None], xs[None], bg[None], maps])
    return planes.reshape(len(planes), h * w).transpose(0, 1).contiguous()


@torch.no_grad()
def backbone_features(backbone: nn.Module, image: Tensor, size: tuple[int, int]) -> Tensor:
    """The backbone's stage outputs on the ``size`` grid, each L2-normalised, concatenated.

    Args:
        backbone: A :class:`~wsss.models.backbones.Backbone` (e.g. a trained CAM net's).
        image: The normalised image.
        size: The grid ``(h, w)``.

    Shapes:
        image: ``(3, H, W)``. Returns ``(h w, sum of stage channels)``.
    """
    stages = backbone.forward_stages(image[None])
    parts = [F.normalize(F.interpolate(x, size=size, mode="bilinear", align_corners=False),
                         dim=1) for x in stages]  # fmt: skip
    out = torch.cat(parts, dim=1)[0]
    return out.reshape(out.shape[0], -1).transpose(0, 1).contiguous()


@torch.no_grad()
def affinity_features(model: nn.Module, image: Tensor) -> Tensor:
    """WSGCN-I node features: IRNet's edge-branch channels scaled by the boundary head's
    weights, averaged with those of the flipped image (flipped back).

    Args:
        model: An :class:`~wsss.affinity.irn.IRNetAffinity` (``features`` and ``head``).
        image: The normalised image.

    Shapes:
        image: ``(3, H, W)``. Returns ``(ceil(H/4) ceil(W/4), 160)``.
    """
    feats = model.features(torch.stack([image, image.flip(-1)]))  # type: ignore[operator]
    mean = (feats[0] + feats[1].flip(-1)) / 2
    scaled = mean * model.head.weight[0].reshape(-1, 1, 1)  # type: ignore[union-attr,index]
    return scaled.reshape(scaled.shape[0], -1).transpose(0, 1).contiguous()
