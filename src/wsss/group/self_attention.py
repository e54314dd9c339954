"""The self edge of each node: self-attention with a residual connection (Group-WSSS eq. 6).

``e_ii = softmax(phi_f(h_i) phi_g(h_i)^T) phi_h(h_i) + h_i``, the ``phi`` being 1x1 convolutions
(a non-local block, Wang et al. 2018); the softmax runs over the attended positions (rows sum
to 1). ``phi_f`` and ``phi_g`` project to ``C_r`` channels, ``phi_h`` keeps ``C`` so that the
residual can be added. The self-edge message is ``m_ii = e_ii`` (paper, "Message Passing").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wsss.group.checks import check_nodes

__all__ = ["SelfEdge", "self_edge_attention"]


def self_edge_attention(
    h: Tensor, w_f: Tensor, w_g: Tensor, w_h: Tensor, b_f: Tensor | None = None,
    b_g: Tensor | None = None, b_h: Tensor | None = None,
) -> Tensor:  # fmt: skip
    """Self-edge embeddings ``e_ii`` of every node (eq. 6).

    Args:
        h: Node embeddings.
        w_f: Weight of the query 1x1 convolution ``phi_f`` as a matrix.
        w_g: Weight of the key 1x1 convolution ``phi_g``.
        w_h: Weight of the value 1x1 convolution ``phi_h``.
        b_f: Optional bias of ``phi_f``.
        b_g: Optional bias of ``phi_g``.
        b_h: Optional bias of ``phi_h``.

    Returns:
        ``softmax(f g^T) v + h`` per node, the softmax over the attended positions.

    Shapes:
        h: ``(B, K, C, H, W)``; w_f, w_g: ``(C_r, C)``; w_h: ``(C, C)``; biases ``(C_r,)`` and
        ``(C,)``; output: ``(B, K, C, H, W)``.
    """
    check_nodes("self_edge_attention", h)
    b, k, c, height, width = h.shape
    if w_f.shape != w_g.shape or w_f.ndim != 2 or w_f.shape[1] != c or tuple(w_h.shape) != (c, c):
        raise ValueError(
            f"self_edge_attention: expected weights (C_r, {c}), (C_r, {c}), ({c}, {c}), got "
            f"{tuple(w_f.shape)}, {tuple(w_g.shape)}, {tuple(w_h.shape)}"
        )
    x = h.reshape(b * k, c, height * width)
    query, key, value = (_conv1x1(x, w, bias) for w, bias in ((w_f, b_f), (w_g, b_g), (w_h, b_h)))
    attention = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # (BK, N, N), rows sum to 1
    out = (value @ attention.transpose(1, 2)).reshape(b, k, c, height, width)
    return out + h


def _conv1x1(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """A 1x1 convolution of flattened maps ``(M, C, N)`` with a ``(C', C)`` matrix."""
    out = weight @ x
    return out if bias is None else out + bias[:, None]


class SelfEdge(nn.Module):
    """Eq. (6): self-attention with residual, the embedding (and message) of each self edge.

    Args:
        channels: Node channels ``C``.
        reduction: ``C_r = C // reduction`` channels for the query and key projections.

    Shapes:
        forward: ``(B, K, C, H, W)`` -> ``(B, K, C, H, W)``.

    Example:
        >>> SelfEdge(channels=8)(torch.randn(2, 3, 8, 4, 4)).shape
        torch.Size([2, 3, 8, 4, 4])
    """

    def __init__(self, *, channels: int, reduction: int = 4) -> None:
        super().__init__()
        if channels < 1 or reduction < 1 or channels // reduction < 1:
            raise ValueError(
                f"need channels >= reduction >= 1, got channels={channels}, reduction={reduction}"
            )
        self.phi_f = nn.Conv2d(channels, channels // reduction, 1)
        self.phi_g = nn.Conv2d(channels, channels // reduction, 1)
        self.phi_h = nn.Conv2d(channels, channels, 1)

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation of the three convolutions."""
        for conv in (self.phi_f, self.phi_g, self.phi_h):
            conv.reset_parameters()

    def forward(self, h: Tensor) -> Tensor:
        convs = (self.phi_f, self.phi_g, self.phi_h)
        w_f, w_g, w_h = (conv.weight.flatten(1) for conv in convs)
        return self_edge_attention(h, w_f, w_g, w_h, *(conv.bias for conv in convs))
