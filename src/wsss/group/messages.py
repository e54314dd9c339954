"""Message aggregation of a node: its neighbours' messages plus its self edge (eq. 8).

``m_i = sum_{j in N_i} m_ji + m_ii`` — the paper's sum, not the concatenation + fusion
convolution of the authors' code (SPEC section 5). ``N_i`` are the images sharing a class with
image ``i`` (the adjacency without its diagonal).

Each ``m_ji`` is a convex combination of image ``j``'s features (eq. 7), so the paper's sum
grows with the number of neighbours: with ``K = 4`` the co-attention part is up to three
feature maps against the single self-edge message, and it is the same for an image whatever
the image's own content (see ``docs/group.md``). Two normalisations are options (not in the
paper); every one weights the per-edge messages by ``w_ij`` at each position ``n``::

    sum    w_ij = 1                                       eq. (8), the default
    mean   w_ij = 1 / |N_i|                               the mean over the neighbours
    joint  w_ij[n] = softmax_{j in N_i}(logsumexp_m e_ij[n, m])

``joint`` is the co-attention softmax taken over the positions of *all* neighbours at once
(one convex combination over the group) instead of within each image: a neighbour with better
matches gets a larger share. ``mean`` and ``joint`` keep the co-attention part on the scale of
one feature map. A node without neighbours gets no co-attention message under every rule.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from wsss.group.adjacency import neighbour_mask
from wsss.group.checks import check_adjacency, check_nodes

__all__ = [
    "MESSAGE_NORMS",
    "MessageNorm",
    "check_norm",
    "masked_softmax",
    "message_sum",
    "neighbour_weights",
]

MessageNorm = Literal["sum", "mean", "joint"]
#: The normalisations of the neighbours' messages (see the module notes); ``sum`` is eq. (8).
MESSAGE_NORMS: tuple[str, ...] = ("sum", "mean", "joint")


def check_norm(where: str, norm: str) -> None:
    """``norm`` must be one of :data:`MESSAGE_NORMS`."""
    if norm not in MESSAGE_NORMS:
        raise ValueError(f"{where}: messages must be one of {', '.join(MESSAGE_NORMS)}, "
                         f"got {norm!r}")  # fmt: skip


def neighbour_weights(adjacency: Tensor, norm: MessageNorm, edges: Tensor | None = None) -> Tensor:
    """The weight ``w_ij`` of each neighbour's message at each position of node ``i``.

    Args:
        adjacency: The group graph; the diagonal and non-edges get weight 0.
        norm: ``sum``, ``mean`` or ``joint`` (module notes).
        edges: The edge embeddings ``e_ij`` (:func:`~wsss.group.coattention.coattention_edges`),
            needed by ``joint`` only.

    Returns:
        ``w[b, i, j, n]``, summing to 1 over ``j`` for ``mean`` and ``joint`` at nodes with a
        neighbour.

    Shapes:
        adjacency: ``(B, K, K)`` bool; edges: ``(B, K, K, N, N)``; output ``(B, K, K, N)``
        (``N = 1`` without edges, for ``sum`` and ``mean``).
    """
    check_norm("neighbour_weights", norm)
    keep = neighbour_mask(adjacency)
    if norm == "joint":
        if edges is None:
            raise ValueError("neighbour_weights: 'joint' needs the edge embeddings")
        mass = torch.logsumexp(edges, dim=-1)  # (B, K, K, N): log partition of each edge
        return masked_softmax(mass, keep[..., None], dim=2)
    weights = keep.to(torch.float32 if edges is None else edges.dtype)
    if norm == "mean":
        weights = weights / weights.sum(dim=2, keepdim=True).clamp_min(1)
    n = 1 if edges is None else edges.shape[-2]
    return weights[..., None].expand(*weights.shape, n)


def masked_softmax(logits: Tensor, keep: Tensor, dim: int) -> Tensor:
    """Softmax over the kept entries of ``dim`` (0 elsewhere; all 0 where none is kept), with
    finite gradients everywhere.

    Shapes:
        logits: any; keep: bool, broadcastable to ``logits``; output: like ``logits``.
    """
    any_kept = keep.any(dim=dim, keepdim=True)
    logits = logits.masked_fill(~(keep | ~any_kept), float("-inf"))
    return torch.softmax(logits, dim=dim) * any_kept


def message_sum(
    cross: Tensor, self_message: Tensor, adjacency: Tensor, weights: Tensor | None = None
) -> Tensor:
    """The message ``m_i`` of every node (eq. 8, or a normalised variant).

    Args:
        cross: Per-edge messages, ``cross[b, i, j] = m_ji`` (:class:`~wsss.group.CoAttention`).
        self_message: The self-edge messages ``m_ii = e_ii`` (:class:`~wsss.group.SelfEdge`).
        adjacency: The group graph; only its off-diagonal edges are summed (the others are
            ignored even when ``cross`` is non-zero there).
        weights: ``w_ij`` per position (:func:`neighbour_weights`); None: 1 (eq. 8).

    Returns:
        ``sum_j adjacency[b, i, j] w_ij cross[b, i, j] + self_message[b, i]`` for ``j != i``.

    Shapes:
        cross: ``(B, K, K, C, H, W)``; self_message: ``(B, K, C, H, W)``; adjacency:
        ``(B, K, K)`` bool; weights: ``(B, K, K, H W)`` or ``(B, K, K, 1)``; output:
        ``(B, K, C, H, W)``.
    """
    check_nodes("message_sum", self_message)
    b, k = self_message.shape[:2]
    if tuple(cross.shape) != (b, k, k, *self_message.shape[2:]):
        raise ValueError(
            f"message_sum: expected cross messages {(b, k, k, *self_message.shape[2:])}, "
            f"got {tuple(cross.shape)}"
        )
    check_adjacency("message_sum", adjacency, self_message)
    keep = neighbour_mask(adjacency).to(cross.dtype)[..., None, None, None]
    if weights is not None:
        height, width = self_message.shape[-2:]
        keep = (
            keep
            * weights.to(cross.dtype)
            .expand(b, k, k, height * width)
            .unflatten(-1, (height, width))[:, :, :, None]
        )
    return (cross * keep).sum(dim=2) + self_message
