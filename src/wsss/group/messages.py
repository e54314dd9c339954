"""Message aggregation of a node: the sum over its neighbours plus its self edge (eq. 8).

``m_i = sum_{j in N_i} m_ji + m_ii`` — the paper's sum, not the concatenation + fusion
convolution of the authors' code (SPEC section 5). ``N_i`` are the images sharing a class with
image ``i`` (the adjacency without its diagonal).
"""

from __future__ import annotations

from torch import Tensor

from wsss.group.adjacency import neighbour_mask
from wsss.group.checks import check_adjacency, check_nodes

__all__ = ["message_sum"]


def message_sum(cross: Tensor, self_message: Tensor, adjacency: Tensor) -> Tensor:
    """The message ``m_i`` of every node (eq. 8).

    Args:
        cross: Per-edge messages, ``cross[b, i, j] = m_ji`` (:class:`~wsss.group.CoAttention`).
        self_message: The self-edge messages ``m_ii = e_ii`` (:class:`~wsss.group.SelfEdge`).
        adjacency: The group graph; only its off-diagonal edges are summed (the others are
            ignored even when ``cross`` is non-zero there).

    Returns:
        ``sum_j adjacency[b, i, j] cross[b, i, j] + self_message[b, i]`` for ``j != i``.

    Shapes:
        cross: ``(B, K, K, C, H, W)``; self_message: ``(B, K, C, H, W)``; adjacency:
        ``(B, K, K)`` bool; output: ``(B, K, C, H, W)``.
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
    return (cross * keep).sum(dim=2) + self_message
