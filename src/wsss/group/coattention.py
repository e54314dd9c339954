"""Low-rank co-attention between the images of a group (Group-WSSS eqs. 5 and 7).

The edge ``i <- j`` of round ``t`` is the dense matching ``e_ij = h_i P Q^T h_j^T`` (eq. 5, the
low-rank form of the bilinear eq. 4, with ``P, Q`` of shape ``(C, C / d)``), and the message it
carries is ``m_ji = softmax_r(e_ij) h_j`` (eq. 7): every position of image ``i`` reads a convex
combination of the positions of image ``j``. Positions are flattened row-major, ``N = H W``.
Messages only flow along edges of the adjacency (images sharing a class); the self edge has its
own embedding (:mod:`wsss.group.self_attention`), so the diagonal carries no co-attention message.

:func:`aggregated_messages` gives ``sum_j m_ji`` of every node (the co-attention part of eq. 8,
or its ``mean`` / ``joint`` normalisation, :mod:`wsss.group.messages`) without materialising the
per-edge messages: the ``K`` images' positions are concatenated, so that the edges and the
message sum are one matrix product each (the GNN's path).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from wsss.group.adjacency import neighbour_mask
from wsss.group.checks import check_adjacency, check_matrix, check_nodes
from wsss.group.messages import MessageNorm, check_norm, masked_softmax

__all__ = ["CoAttention", "aggregated_messages", "coattention_edges", "edge_attention",
           "row_softmax_messages"]  # fmt: skip


def coattention_edges(h: Tensor, p: Tensor, q: Tensor) -> Tensor:
    """Edge embeddings ``e_ij = h_i P Q^T h_j^T`` for every ordered pair of a group (eq. 5).

    Args:
        h: Node embeddings.
        p: Left low-rank factor ``P``.
        q: Right low-rank factor ``Q``.

    Returns:
        ``e[b, i, j]``, the ``(N, N)`` matching of image ``i``'s positions (rows) with image
        ``j``'s (columns). Every ordered pair uses the same formula, so the result does not
        depend on the order of the images; the paper's ``e_ji = e_ij^T`` (below eq. 4) then
        holds exactly when ``W = P Q^T`` is symmetric (e.g. ``P = Q``).

    Shapes:
        h: ``(B, K, C, H, W)``; p, q: ``(C, C_r)``; output: ``(B, K, K, N, N)``, ``N = H W``.
    """
    check_nodes("coattention_edges", h)
    c = h.shape[2]
    check_matrix("coattention_edges: P", p, (c, p.shape[-1]))
    check_matrix("coattention_edges: Q", q, p.shape)
    flat = h.flatten(3).transpose(2, 3)  # (B, K, N, C)
    left, right = flat @ p, flat @ q  # (B, K, N, C_r)
    return torch.einsum("binr,bjmr->bijnm", left, right)


def edge_attention(edges: Tensor, adjacency: Tensor) -> Tensor:
    """Row-wise softmax of each edge embedding, zero on pairs that are not edges (eq. 7).

    Args:
        edges: Edge embeddings from :func:`coattention_edges`.
        adjacency: The group graph (:func:`~wsss.group.adjacency.label_adjacency`); its
            diagonal is ignored (self edges use self-attention).

    Returns:
        ``softmax_r(e_ij)`` for every edge ``i <- j`` with ``i != j`` (each row sums to 1), and
        zeros for the diagonal and for images that share no class.

    Shapes:
        edges: ``(B, K, K, N, N)``; adjacency: ``(B, K, K)`` bool; output: like ``edges``.
    """
    if edges.ndim != 5 or edges.shape[1] != edges.shape[2] or edges.shape[3] != edges.shape[4]:
        raise ValueError(
            f"edge_attention: expected edges (B, K, K, N, N), got {tuple(edges.shape)}"
        )
    check_adjacency("edge_attention", adjacency, edges)
    weights = torch.softmax(edges, dim=-1)
    keep = neighbour_mask(adjacency).to(weights.dtype)
    return weights * keep[..., None, None]


def row_softmax_messages(h: Tensor, edges: Tensor, adjacency: Tensor) -> Tensor:
    """The message of every edge, ``m_ji = softmax_r(e_ij) h_j`` (eq. 7).

    Args:
        h: Node embeddings ``h^{t-1}``.
        edges: Their edge embeddings ``e^{t-1}`` (:func:`coattention_edges`).
        adjacency: The group graph; non-edges and the diagonal give zero messages.

    Returns:
        ``m[b, i, j]``: the message from image ``j`` to image ``i``, reshaped to a feature map.

    Shapes:
        h: ``(B, K, C, H, W)``; edges: ``(B, K, K, N, N)``; adjacency: ``(B, K, K)``;
        output: ``(B, K, K, C, H, W)``.
    """
    check_nodes("row_softmax_messages", h)
    b, k, c, height, width = h.shape
    n = height * width
    if tuple(edges.shape) != (b, k, k, n, n):
        raise ValueError(
            f"row_softmax_messages: expected edges {(b, k, k, n, n)} for nodes "
            f"{tuple(h.shape)}, got {tuple(edges.shape)}"
        )
    attention = edge_attention(edges, adjacency)
    flat = h.flatten(3).transpose(2, 3)  # (B, K, N, C)
    messages = torch.einsum("bijnm,bjmc->bijcn", attention, flat)
    return messages.reshape(b, k, k, c, height, width)


def aggregated_messages(
    h: Tensor, p: Tensor, q: Tensor, adjacency: Tensor, norm: MessageNorm = "sum"
) -> Tensor:
    """``sum_j w_ij m_ji`` over the neighbours ``j != i`` of every node (eqs. 5, 7 and the first
    sum of eq. 8), equal to :func:`~wsss.group.messages.message_sum` of
    :func:`row_softmax_messages` with :func:`~wsss.group.messages.neighbour_weights`.

    Args:
        h: Node embeddings ``h^{t-1}``.
        p: Left low-rank factor ``P``.
        q: Right low-rank factor ``Q``.
        adjacency: The group graph; its diagonal is ignored.
        norm: ``sum`` (eq. 8), ``mean`` over the neighbours, or ``joint`` (one softmax over the
            positions of all neighbours; see :mod:`wsss.group.messages`).

    Returns:
        The co-attention message of every node, as a feature map.

    Shapes:
        h: ``(B, K, C, H, W)``; p, q: ``(C, C_r)``; adjacency: ``(B, K, K)`` bool;
        output: ``(B, K, C, H, W)``.
    """
    check_nodes("aggregated_messages", h)
    check_adjacency("aggregated_messages", adjacency, h)
    check_norm("aggregated_messages", norm)
    b, k, c, height, width = h.shape
    check_matrix("aggregated_messages: P", p, (c, p.shape[-1]))
    check_matrix("aggregated_messages: Q", q, p.shape)
    n = height * width
    flat = h.flatten(3).transpose(2, 3).reshape(b, k * n, c)  # all positions of the group
    edges = ((flat @ p) @ (flat @ q).transpose(1, 2)).view(b, k, n, k, n)  # e_ij as blocks
    keep = neighbour_mask(adjacency)[:, :, None, :, None]  # (B, K, 1, K, 1)
    if norm == "joint":  # one softmax over the positions of all neighbours
        joint = keep.expand(b, k, 1, k, n).reshape(b, k, 1, k * n)
        weights = masked_softmax(edges.reshape(b, k, n, k * n), joint, dim=-1)
    else:  # row softmax within each block (eq. 7), summed or averaged over the neighbours
        weights = torch.softmax(edges, dim=-1) * keep
        if norm == "mean":
            count = neighbour_mask(adjacency).sum(dim=2).clamp_min(1)  # (B, K)
            weights = weights / count[:, :, None, None, None].to(weights.dtype)
    summed = weights.reshape(b, k * n, k * n) @ flat  # (B, KN, C)
    return summed.view(b, k, n, c).transpose(2, 3).reshape(b, k, c, height, width)


class CoAttention(nn.Module):
    """Eqs. (5) and (7): low-rank co-attention messages along the edges of a group graph.

    Args:
        channels: Node channels ``C``.
        reduction: The reduction ratio ``d`` (> 1 in the paper; 4 by default), ``C_r = C // d``.

    Shapes:
        forward: h ``(B, K, C, H, W)``, adjacency ``(B, K, K)`` bool ->
        ``(B, K, K, C, H, W)`` messages (``[b, i, j]`` from ``j`` to ``i``).

    Example:
        >>> layer = CoAttention(channels=8, reduction=4)
        >>> h = torch.randn(1, 3, 8, 2, 2)
        >>> adjacency = torch.ones(1, 3, 3, dtype=torch.bool)
        >>> layer(h, adjacency).shape
        torch.Size([1, 3, 3, 8, 2, 2])
    """

    def __init__(self, *, channels: int, reduction: int = 4) -> None:
        super().__init__()
        if channels < 1 or reduction < 1 or channels // reduction < 1:
            raise ValueError(
                f"need channels >= reduction >= 1, got channels={channels}, reduction={reduction}"
            )
        self.channels, self.reduction = channels, reduction
        self.p = nn.Parameter(torch.empty(channels, channels // reduction))
        self.q = nn.Parameter(torch.empty(channels, channels // reduction))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``P`` and ``Q`` uniform in ``+-1 / sqrt(C)`` (``nn.Linear``'s default bound)."""
        bound = 1 / math.sqrt(self.channels)
        nn.init.uniform_(self.p, -bound, bound)
        nn.init.uniform_(self.q, -bound, bound)

    def edges(self, h: Tensor) -> Tensor:
        """Edge embeddings (eq. 5), ``(B, K, K, N, N)``."""
        return coattention_edges(h, self.p, self.q)

    def aggregate(self, h: Tensor, adjacency: Tensor, norm: MessageNorm = "sum") -> Tensor:
        """The neighbours' message of every node, ``(B, K, C, H, W)``
        (:func:`aggregated_messages`)."""
        return aggregated_messages(h, self.p, self.q, adjacency, norm)

    def forward(self, h: Tensor, adjacency: Tensor) -> Tensor:
        check_nodes("CoAttention", h)
        check_adjacency("CoAttention", adjacency, h)
        return row_softmax_messages(h, self.edges(h), adjacency)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"
