"""The GNN's fused co-attention message sum against the per-edge messages of eqs. 5, 7, 8."""

from __future__ import annotations

import math

import pytest
import torch

from wsss.group import CoAttention, coattention_edges, message_sum, row_softmax_messages
from wsss.group.coattention import aggregated_messages
from wsss.group.messages import neighbour_weights

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


@pytest.mark.parametrize("norm", ["sum", "mean", "joint"])
@pytest.mark.parametrize("lonely", [False, True])
def test_aggregated_gradcheck(norm, lonely):
    """Finite, correct gradients under every rule, also with a node without neighbours."""
    g = torch.Generator().manual_seed(1)
    h = torch.randn(1, 3, 4, 2, 2, generator=g, dtype=torch.float64).requires_grad_()
    p = torch.randn(4, 2, generator=g, dtype=torch.float64).requires_grad_()
    q = torch.randn(4, 2, generator=g, dtype=torch.float64).requires_grad_()
    rows = [[1, 1, 0], [1, 1, 0], [0, 0, 1]] if lonely else [[1, 1, 0], [1, 1, 1], [0, 1, 1]]
    adjacency = torch.tensor([rows], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda *x: aggregated_messages(*x, adjacency, norm), (h, p, q))


@pytest.mark.parametrize("norm", ["sum", "mean", "joint"])
def test_normalised_messages_equal_their_per_edge_form(norm):
    g = torch.Generator().manual_seed(2)
    h = torch.randn(2, 4, 6, 2, 3, generator=g)
    p, q = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    edges = coattention_edges(h, p, q)
    weights = neighbour_weights(ADJ, norm, edges)
    expected = message_sum(row_softmax_messages(h, edges, ADJ), torch.zeros_like(h), ADJ, weights)
    fused = aggregated_messages(h, p, q, ADJ, norm)
    torch.testing.assert_close(fused, expected)
    assert (fused[0, 3] == 0).all()  # no neighbour, no co-attention message under every rule
    if norm != "sum":  # convex over the neighbours: the weights sum to 1 where there is one
        torch.testing.assert_close(weights.sum(dim=2)[0, :3], torch.ones(3, 6))
        assert (weights[0, 3] == 0).all()


def test_message_rules_by_hand():
    """Constant features: every row softmax reads 1 per channel, so the sum counts the
    neighbours, the mean and the joint softmax give 1; the joint softmax favours the neighbour
    with the larger matches."""
    h = torch.ones(2, 4, 2, 1, 2)
    p = q = torch.ones(2, 1)
    count = ADJ.sum(dim=2) - 1  # neighbours per node: [1, 2, 1, 0] and [3, 3, 3, 3]
    summed = aggregated_messages(h, p, q, ADJ, "sum")
    torch.testing.assert_close(summed, count[..., None, None, None].float().expand_as(h))
    for norm in ("mean", "joint"):
        out = aggregated_messages(h, p, q, ADJ, norm)
        torch.testing.assert_close(out, (count > 0)[..., None, None, None].float().expand_as(h))
    # node 1 of group 0 has neighbours 0 and 2; image 2 matches it twice as strongly
    h = torch.ones(1, 3, 1, 1, 1)
    h[0, 2] = 2.0
    adjacency = torch.tensor([[[1, 1, 0], [1, 1, 1], [0, 1, 1]]], dtype=torch.bool)
    one = torch.ones(1, 1)
    mean = aggregated_messages(h, one, one, adjacency, "mean")[0, 1].item()
    joint = aggregated_messages(h, one, one, adjacency, "joint")[0, 1].item()
    share = math.exp(2.0) / (math.exp(1.0) + math.exp(2.0))  # e_12 = 1 * 2, e_10 = 1 * 1
    assert mean == pytest.approx(1.5) and joint == pytest.approx(1 + share)
    with pytest.raises(ValueError, match="messages must be one of"):
        aggregated_messages(h, one, one, adjacency, "max")  # type: ignore[arg-type]
