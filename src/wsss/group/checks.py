"""Shape checks shared by the group-wise modules; each raises ``ValueError`` naming what it got."""

from __future__ import annotations

import torch
from torch import Tensor


def check_nodes(name: str, h: Tensor) -> None:
    """``h`` must be a batch of groups of node feature maps ``(B, K, C, H, W)``."""
    if h.ndim != 5:
        raise ValueError(f"{name}: expected node features (B, K, C, H, W), got {tuple(h.shape)}")


def check_adjacency(name: str, adjacency: Tensor, h: Tensor) -> None:
    """``adjacency`` must be a boolean ``(B, K, K)`` matching the nodes ``h`` ``(B, K, ...)``."""
    b, k = h.shape[:2]
    if adjacency.dtype != torch.bool or tuple(adjacency.shape) != (b, k, k):
        raise ValueError(
            f"{name}: expected a bool adjacency of shape {(b, k, k)}, got "
            f"{adjacency.dtype} {tuple(adjacency.shape)}"
        )


def check_matrix(name: str, w: Tensor, shape: tuple[int, ...]) -> None:
    """``w`` must have exactly ``shape``."""
    if tuple(w.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(w.shape)}")
