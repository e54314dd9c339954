"""Affinity labels of pixel pairs from seeds, and the class-balanced affinity loss (SPEC s. 3).

For every pair of seed pixels closer than the radius (IRNet 10 at stride 4, AffinityNet 5 at
stride 8), both labelled (not 255):

* background-positive: both background (0);
* foreground-positive: the same foreground class;
* negative: different labels.

The loss (AffinityNet eq. 4-6, IRNet eq. 3): ``L = L_bg+ / 4 + L_fg+ / 4 + L_- / 2`` with
``L_+ = mean(-log(a + eps))`` and ``L_- = mean(-log(1 + eps - a))``, each mean over its pairs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from wsss.graph.window import shift_map, window_mask, window_offsets
from wsss.io.palette import IGNORE_INDEX

__all__ = ["EPS", "PairLabels", "affinity_loss", "downsample_labels", "pair_labels"]

#: Added inside the logarithms of the loss (both authors' codes).
EPS = 1e-5


class PairLabels(NamedTuple):
    """Boolean masks over (offset, source pixel) pairs, each ``(B, K, h, w)``."""

    bg_pos: torch.Tensor
    fg_pos: torch.Tensor
    neg: torch.Tensor


def downsample_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resampling of label maps (pixel centres), as the authors reduce the
    seeds to the feature stride.

    Shapes:
        labels: ``(B, H, W)`` integer. Returns ``(B, *size)`` of the same dtype.
    """
    if labels.ndim != 3:
        raise ValueError(f"expected (B, H, W) labels, got {tuple(labels.shape)}")
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    out = F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")
    return out[:, 0].to(labels.dtype)


def pair_labels(labels: torch.Tensor, radius: float) -> PairLabels:
    """The pair labels of :mod:`~wsss.affinity.pairs` for every (offset, source pixel).

    Args:
        labels: Seeds at the feature stride: class ids, 0 background, 255 unlabelled.
        radius: Window radius (offsets of :func:`~wsss.graph.window.window_offsets`).

    Shapes:
        labels: ``(B, h, w)``. Each mask ``(B, K, h, w)``.

    Example:
        >>> seeds = torch.tensor([[[0, 0, 1, 255]]])
        >>> p = pair_labels(seeds, 2)  # offsets (0,1) (1,-1) (1,0) (1,1); only (0, 1) fits
        >>> p.bg_pos[0, 0, 0].tolist(), p.neg[0, 0, 0].tolist()
        ([True, False, False, False], [False, True, False, False])
    """
    if labels.ndim != 3:
        raise ValueError(f"expected (B, h, w) labels, got {tuple(labels.shape)}")
    h, w = labels.shape[-2:]
    inside = window_mask(h, w, radius, device=labels.device)
    offsets = window_offsets(radius).tolist()
    src = labels.long()
    dst = torch.stack([shift_map(src, dy, dx, fill=IGNORE_INDEX) for dy, dx in offsets], dim=1)
    src = src[:, None]
    valid = (src != IGNORE_INDEX) & (dst != IGNORE_INDEX) & inside
    same = valid & (src == dst)
    return PairLabels(bg_pos=same & (src == 0), fg_pos=same & (src != 0), neg=valid & (src != dst))


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample mean over ``mask`` (0 where a sample has no such pair); ``(B,)``."""
    m = mask.flatten(1).to(values.dtype)
    return (values.flatten(1) * m).sum(1) / (m.sum(1) + EPS)


def affinity_loss(affinity: torch.Tensor, labels: PairLabels) -> torch.Tensor:
    """Per-sample class-balanced affinity loss ``L_bg+/4 + L_fg+/4 + L_-/2``.

    Each term is averaged over the sample's own pairs (the authors average over the batch's
    pairs; per sample, the loss of a batch split over processes equals the one-process loss).

    Shapes:
        affinity: ``(B, K, h, w)`` in [0, 1]; masks as :class:`PairLabels`. Returns ``(B,)``.
    """
    if affinity.shape != labels.bg_pos.shape:
        raise ValueError(
            f"affinity {tuple(affinity.shape)} and pair labels {tuple(labels.bg_pos.shape)} differ"
        )
    pos = -torch.log(affinity + EPS)
    neg = -torch.log(1.0 + EPS - affinity)
    bg, fg = _masked_mean(pos, labels.bg_pos), _masked_mean(pos, labels.fg_pos)
    return bg / 4 + fg / 4 + _masked_mean(neg, labels.neg) / 2


def feature_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """``(ceil(H / stride), ceil(W / stride))``."""
    return math.ceil(size[0] / stride), math.ceil(size[1] / stride)
