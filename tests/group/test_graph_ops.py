"""Adjacency, co-attention (eqs. 5, 7), self-edge attention (eq. 6) and message sum (eq. 8)."""

from __future__ import annotations

import pytest
import torch

from wsss.group import (
    CoAttention,
    SelfEdge,
    coattention_edges,
    edge_attention,
    label_adjacency,
    message_sum,
    neighbour_mask,
    row_softmax_messages,
    self_edge_attention,
)

# Group of 4: images 0 and 1 share class 0, 1 and 2 share class 2, image 3 shares nothing.
LABELS = torch.tensor([[[1, 0, 0, 0], [1, 0, 1, 0], [0, 0, 1, 0], [0, 1, 0, 0]]])
ADJ = torch.tensor([[[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]]], dtype=torch.bool)


def _nodes(b: int = 1, k: int = 4, c: int = 4, h: int = 2, w: int = 3, seed: int = 0):
    return torch.randn(b, k, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_label_adjacency_by_hand():
    assert torch.equal(label_adjacency(LABELS), ADJ)
    # an image without labels keeps its self edge; float labels work too
    empty = label_adjacency(torch.tensor([[[0.0, 0.0], [1.0, 0.0]]]))
    assert empty.tolist() == [[[True, False], [False, True]]]
    assert neighbour_mask(ADJ)[0].diagonal().sum() == 0


def test_label_adjacency_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\(B, K, L\)"):
        label_adjacency(torch.ones(4, 3))


def test_edges_match_the_bilinear_form():
    h = _nodes()
    p, q = torch.randn(4, 2), torch.randn(4, 2)
    edges = coattention_edges(h, p, q)
    assert edges.shape == (1, 4, 4, 6, 6)
    for i, j in [(0, 1), (2, 3), (1, 1)]:
        hi, hj = h[0, i].flatten(1).T, h[0, j].flatten(1).T  # (N, C), positions row-major
        torch.testing.assert_close(edges[0, i, j], hi @ p @ q.T @ hj.T)
    # with P = Q the embedding of j -> i is the transpose of i -> j (eq. 4's e_ji = e_ij^T)
    sym = coattention_edges(h, p, p)
    torch.testing.assert_close(sym[0, 0, 1], sym[0, 1, 0].T)


def test_attention_rows_sum_to_one_on_edges_only():
    h = _nodes()
    attention = edge_attention(coattention_edges(h, torch.randn(4, 2), torch.randn(4, 2)), ADJ)
    sums = attention.sum(dim=-1)  # (1, K, K, N)
    edges = neighbour_mask(ADJ)
    torch.testing.assert_close(sums[edges], torch.ones_like(sums[edges]))
    assert (attention[~edges] == 0).all()  # diagonal and images sharing no class


def test_messages_by_hand_and_isolated_image():
    h = _nodes(seed=1)
    p, q = torch.randn(4, 2), torch.randn(4, 2)
    messages = row_softmax_messages(h, coattention_edges(h, p, q), ADJ)
    assert messages.shape == (1, 4, 4, 4, 2, 3)
    hi, hj = h[0, 1].flatten(1).T, h[0, 2].flatten(1).T
    expected = torch.softmax(hi @ p @ q.T @ hj.T, dim=1) @ hj  # (N, C) message 2 -> 1
    torch.testing.assert_close(messages[0, 1, 2], expected.T.reshape(4, 2, 3))
    assert (messages[0, 3] == 0).all() and (messages[0, :, 3] == 0).all()
    assert (messages[0, 0, 0] == 0).all()  # no co-attention message on the self edge


def test_coattention_gradcheck():
    h = _nodes(k=3, c=4, h=2, w=2, seed=2).double().requires_grad_()
    p = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    q = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    adjacency = torch.tensor([[[1, 1, 0], [1, 1, 1], [0, 1, 1]]], dtype=torch.bool)

    def fn(h, p, q):
        return row_softmax_messages(h, coattention_edges(h, p, q), adjacency)

    assert torch.autograd.gradcheck(fn, (h, p, q))


def test_coattention_module_and_shape_errors():
    layer = CoAttention(channels=8, reduction=4)
    assert layer.p.shape == (8, 2) and layer.q.shape == (8, 2)
    h = _nodes(b=2, k=3, c=8)
    out = layer(h, torch.ones(2, 3, 3, dtype=torch.bool))
    assert out.shape == (2, 3, 3, 8, 2, 3)
    with pytest.raises(ValueError, match=r"bool adjacency of shape \(2, 3, 3\)"):
        layer(h, torch.ones(2, 3, 3))
    with pytest.raises(ValueError, match=r"\(B, K, C, H, W\), got \(3, 8, 2, 3\)"):
        layer(h[0], torch.ones(2, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="Q: expected shape"):
        coattention_edges(h, torch.randn(8, 2), torch.randn(8, 3))
    with pytest.raises(ValueError, match="reduction"):
        CoAttention(channels=2, reduction=4)


def test_self_edge_is_residual_attention():
    h = _nodes(b=2, k=3, c=4, seed=3)
    w_f, w_g, w_h = torch.randn(2, 4), torch.randn(2, 4), torch.zeros(4, 4)
    # zero value projection: only the residual remains
    torch.testing.assert_close(self_edge_attention(h, w_f, w_g, w_h), h)
    # one position: softmax over one entry is 1, so e_ii = W_h h + h
    single = h[..., :1, :1]
    expected = torch.einsum("dc,bkchw->bkdhw", torch.eye(4) * 2, single) + single
    torch.testing.assert_close(self_edge_attention(single, w_f, w_g, torch.eye(4) * 2), expected)
    # by hand for one node
    w_h = torch.randn(4, 4)
    x = h[1, 2].flatten(1)  # (C, N)
    attention = torch.softmax((w_f @ x).T @ (w_g @ x), dim=1)  # (N, N)
    node = (w_h @ x @ attention.T + x).reshape(4, 2, 3)
    torch.testing.assert_close(self_edge_attention(h, w_f, w_g, w_h)[1, 2], node)


def test_self_edge_module():
    layer = SelfEdge(channels=8, reduction=4)
    h = _nodes(b=1, k=2, c=8)
    assert layer(h).shape == h.shape
    with torch.no_grad():
        layer.phi_h.weight.zero_()
        layer.phi_h.bias.zero_()
    torch.testing.assert_close(layer(h), h)
    with pytest.raises(ValueError, match="expected weights"):
        self_edge_attention(h, torch.randn(2, 8), torch.randn(2, 8), torch.randn(8, 4))


def test_message_sum_by_hand():
    cross = torch.arange(1.0, 17.0).reshape(1, 4, 4, 1, 1, 1)  # m_ji = 4 i + j + 1
    self_message = torch.full((1, 4, 1, 1, 1), 100.0)
    out = message_sum(cross, self_message, ADJ).flatten().tolist()
    # node 0 <- 1; node 1 <- 0, 2; node 2 <- 1; node 3: self only (diagonal entries ignored)
    assert out == [100 + 2, 100 + 5 + 7, 100 + 10, 100]
    with pytest.raises(ValueError, match="cross messages"):
        message_sum(cross[:, :3], self_message, ADJ)
