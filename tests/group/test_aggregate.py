"""The GNN's fused co-attention message sum against the per-edge messages of eqs. 5, 7, 8."""

from __future__ import annotations

import pytest
import torch

from wsss.group import CoAttention, coattention_edges, message_sum, row_softmax_messages
from wsss.group.coattention import aggregated_messages

ADJ = torch.tensor([[[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]],
                    [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]], dtype=torch.bool)  # fmt: skip


def test_aggregated_equals_the_sum_of_edge_messages():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 4, 6, 2, 3, generator=g)
    p, q = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    per_edge = row_softmax_messages(h, coattention_edges(h, p, q), ADJ)
    expected = message_sum(per_edge, torch.zeros_like(h), ADJ)
    torch.testing.assert_close(aggregated_messages(h, p, q, ADJ), expected)
    assert (aggregated_messages(h, p, q, ADJ)[0, 3] == 0).all()  # image 3 has no neighbour
    layer = CoAttention(channels=6, reduction=2)
    by_edge = message_sum(layer(h, ADJ), torch.zeros_like(h), ADJ)
    torch.testing.assert_close(layer.aggregate(h, ADJ), by_edge)
    with pytest.raises(ValueError, match="bool adjacency"):
        aggregated_messages(h, p, q, ADJ[:1])


def test_aggregated_gradcheck():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(1, 3, 4, 2, 2, generator=g, dtype=torch.float64).requires_grad_()
    p = torch.randn(4, 2, generator=g, dtype=torch.float64).requires_grad_()
    q = torch.randn(4, 2, generator=g, dtype=torch.float64).requires_grad_()
    adjacency = torch.tensor([[[1, 1, 0], [1, 1, 1], [0, 1, 1]]], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda *x: aggregated_messages(*x, adjacency), (h, p, q))
