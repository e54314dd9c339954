"""The graph dropout layer of Group-WSSS (eqs. 10-11), applied to every node after each round.

With ``o`` the channel mean of a node's features and ``r`` uniform in ``[0, 1)``::

    s = sigmoid(o)                         if r < delta_r   (importance map)
    s = 1(o < delta_d * max(o))            otherwise        (drop the most activated regions)
    h_hat = h * s                          (eq. 11, spatial-wise)

The drop branch reads eq. (10) as a binary mask (``mode="binary"``, the default): the paper's
prose ("drops the highly activated semantic regions"), SPEC section 5 and the ADL layer it
follows (Choe & Shim 2019) all use the indicator alone. Eq. (10) as printed multiplies the
indicator by ``o``; ``mode="scaled"`` gives that literal form. One ``r`` is drawn per node and
round. The layer is the identity in evaluation mode.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from wsss.group.checks import check_nodes

__all__ = ["DropMode", "GraphDropout", "graph_dropout"]

DropMode = Literal["binary", "scaled"]


def graph_dropout(
    h: Tensor, r: Tensor, *, delta_r: float = 0.8, delta_d: float = 0.7, mode: DropMode = "binary"
) -> Tensor:
    """Eqs. (10)-(11) with given random numbers ``r``.

    Args:
        h: Node features ``h_i^t``.
        r: One number in ``[0, 1)`` per node; ``r < delta_r`` selects the importance map.
        delta_r: Drop-rate threshold ``delta_r`` (0.8).
        delta_d: Drop threshold ``delta_d`` (0.7), relative to each node's maximum of ``o``.
        mode: ``binary`` (indicator mask) or ``scaled`` (``o`` times the indicator, eq. 10 as
            printed).

    Returns:
        ``h * s`` with ``s`` broadcast over the channels.

    Shapes:
        h: ``(B, K, C, H, W)``; r: ``(B, K)``; output: ``(B, K, C, H, W)``.
    """
    check_nodes("graph_dropout", h)
    if tuple(r.shape) != tuple(h.shape[:2]):
        raise ValueError(
            f"graph_dropout: expected r of shape {tuple(h.shape[:2])}, got {tuple(r.shape)}"
        )
    if mode not in ("binary", "scaled"):
        raise ValueError(f"graph_dropout: mode must be 'binary' or 'scaled', got {mode!r}")
    o = h.mean(dim=2, keepdim=True)  # (B, K, 1, H, W)
    peak = o.flatten(2).amax(dim=2)[..., None, None, None]
    keep = (o < peak * delta_d).to(h.dtype)
    dropped = keep if mode == "binary" else o * keep
    importance = r[..., None, None, None] < delta_r
    return h * torch.where(importance, torch.sigmoid(o), dropped)


class GraphDropout(nn.Module):
    """The graph dropout layer (eqs. 10-11); the identity in evaluation mode.

    Args:
        delta_r: Probability of the importance-map branch (0.8).
        delta_d: Drop threshold relative to the maximum (0.7).
        mode: ``binary`` or ``scaled`` (see :func:`graph_dropout`).

    Shapes:
        forward: ``(B, K, C, H, W)`` -> ``(B, K, C, H, W)``.

    Example:
        >>> layer = GraphDropout().eval()
        >>> h = torch.randn(1, 2, 3, 4, 4)
        >>> bool((layer(h) == h).all())
        True
    """

    def __init__(
        self, *, delta_r: float = 0.8, delta_d: float = 0.7, mode: DropMode = "binary"
    ) -> None:
        super().__init__()
        if not 0 <= delta_r <= 1 or not 0 <= delta_d <= 1:
            raise ValueError(f"delta_r and delta_d must lie in [0, 1], got {delta_r}, {delta_d}")
        if mode not in ("binary", "scaled"):
            raise ValueError(f"mode must be 'binary' or 'scaled', got {mode!r}")
        self.delta_r, self.delta_d, self.mode = delta_r, delta_d, mode

    def forward(self, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Apply the layer; ``r`` is drawn on ``h``'s device (from ``generator`` if given)."""
        check_nodes("GraphDropout", h)
        if not self.training:
            return h
        r = torch.rand(h.shape[:2], generator=generator, device=h.device, dtype=h.dtype)
        return graph_dropout(h, r, delta_r=self.delta_r, delta_d=self.delta_d, mode=self.mode)

    def extra_repr(self) -> str:
        return f"delta_r={self.delta_r}, delta_d={self.delta_d}, mode={self.mode!r}"
