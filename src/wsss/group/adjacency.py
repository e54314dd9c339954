"""The group graph of Group-WSSS: edges between images sharing a class, plus self edges.

Two nodes ``v_i`` and ``v_j`` are linked only if their image-level labels share at least one
class, and every node has a self edge ``e_ii`` (paper, "Problem Definition"). The relation is
symmetric, so the edges ``i <- j`` and ``j <- i`` exist together.
"""

from __future__ import annotations

import torch
from torch import Tensor


def label_adjacency(labels: Tensor) -> Tensor:
    """Boolean adjacency of each group from its multi-hot labels.

    Args:
        labels: Multi-hot image-level labels (any dtype; non-zero means present).

    Returns:
        ``adjacency[b, i, j]`` is True when images ``i`` and ``j`` of group ``b`` share a class
        or ``i == j`` (the self edge, present even for an image without labels).

    Shapes:
        labels: ``(B, K, L)``; output: ``(B, K, K)`` bool, symmetric, True on the diagonal.

    Example:
        >>> label_adjacency(torch.tensor([[[1, 0], [1, 1], [0, 0]]])).int().tolist()
        [[[1, 1, 0], [1, 1, 0], [0, 0, 1]]]
    """
    if labels.ndim != 3:
        raise ValueError(f"labels: expected multi-hot labels (B, K, L), got {tuple(labels.shape)}")
    present = (labels != 0).to(torch.float32)
    shared = torch.bmm(present, present.transpose(1, 2)) > 0
    eye = torch.eye(labels.shape[1], dtype=torch.bool, device=labels.device)
    return shared | eye


def neighbour_mask(adjacency: Tensor) -> Tensor:
    """The edges to other nodes only: ``adjacency`` without its diagonal, ``(B, K, K)`` bool."""
    eye = torch.eye(adjacency.shape[-1], dtype=torch.bool, device=adjacency.device)
    return adjacency & ~eye
