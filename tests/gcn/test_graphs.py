"""The GCN's graph: normalisation, top-k pruning, sparse vs dense T^(2^k)."""

from __future__ import annotations

import warnings

import torch

from wsss.gcn.graphs import (
    adjacency_pairs,
    dense_power_graph,
    normalize_adjacency,
    phi_graph,
    phi_walk_graph,
    sparse_power_graph,
    symmetric_max,
    topk_rows,
)
from wsss.graph.sparse import affinity_matrix
from wsss.graph.window import window_edges


def _dense_csr(x: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x.to_sparse_csr()


def test_symmetric_max_and_normalize_by_hand():
    m = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    expected = torch.tensor([[0.0, 2.0, 0.0], [2.0, 0.0, 3.0], [0.0, 3.0, 0.0]])
    assert torch.equal(symmetric_max(m), expected)
    assert torch.equal(symmetric_max(_dense_csr(m)).to_dense(), expected)
    norm = torch.tensor([[1 / 3, 2 / 3, 0.0], [2 / 6, 1 / 6, 3 / 6], [0.0, 3 / 4, 1 / 4]])
    assert torch.allclose(normalize_adjacency(m), norm)
    assert torch.allclose(normalize_adjacency(_dense_csr(m)).to_dense(), norm)
    assert torch.equal(normalize_adjacency(m, normalize=False), m + torch.eye(3))


def test_topk_rows_keeps_largest_and_row_sums():
    m = torch.tensor([[0.1, 0.5, 0.4, 0.0], [0.0, 0.0, 1.0, 0.0], [0.3, 0.3, 0.2, 0.2]])
    out = topk_rows(_dense_csr(m), 2).to_dense()
    assert torch.allclose(out[0], torch.tensor([0.0, 0.5, 0.4, 0.0]) / 0.9)
    assert torch.allclose(out[1], m[1])
    assert torch.allclose(out.sum(1), m.sum(1))
    assert ((out > 0).sum(1) <= 2).all()


def test_topk_rows_full_rows_against_brute_force():
    gen = torch.Generator().manual_seed(3)
    m = torch.rand(6, 11, generator=gen, dtype=torch.float64) + 0.01  # every row >= k values
    out = topk_rows(_dense_csr(m), 3)
    expect = torch.zeros_like(m)
    for i, row in enumerate(m):
        top = row.topk(3).indices
        expect[i, top] = row[top] * row.sum() / row[top].sum()
    assert torch.allclose(out.to_dense(), expect)
    cols = out.col_indices().reshape(6, 3)
    assert (cols[:, 1:] > cols[:, :-1]).all()  # sorted within each row
    assert out.crow_indices().tolist() == list(range(0, 19, 3))


def test_sparse_power_equals_dense_without_pruning():
    torch.manual_seed(0)
    h, w = 6, 7
    src, dst = window_edges(h, w, 5)
    a = affinity_matrix(src, dst, torch.rand(len(src), dtype=torch.float64), h * w)
    exact = dense_power_graph(a, beta=2.0, exp_times=3)
    sparse = sparse_power_graph(a, beta=2.0, exp_times=3, topk=h * w).to_dense()
    assert (exact - sparse).abs().max() < 1e-10
    pruned = sparse_power_graph(a, beta=2.0, exp_times=3, topk=8).to_dense()
    assert torch.allclose(pruned.sum(1), torch.ones(h * w, dtype=torch.float64))
    assert (pruned > 0).sum() <= h * w * (2 * 8 + 1)  # k per row, then max(M, M^T) + I


def test_phi_graph_rows_sum_to_one():
    image = torch.full((5, 6, 3), 7, dtype=torch.uint8)
    g = phi_graph(image).to_dense()
    assert torch.allclose(g.sum(1), torch.ones(30))
    assert (g > 0).sum(1).max() == 25


def test_adjacency_pairs_give_the_double_sum_of_eq6():
    gen = torch.Generator().manual_seed(3)
    a = torch.rand(7, 7, generator=gen, dtype=torch.float64) * (
        torch.rand(7, 7, generator=gen) < 0.5
    )
    a = a / a.sum(1, keepdim=True).clamp_min(1e-12)  # row-normalised: not symmetric
    q = torch.rand(7, 3, generator=gen, dtype=torch.float64)
    diff = ((q[:, None] - q[None]) ** 2).sum(-1)
    expected = 0.5 * (a * diff).sum()
    for matrix in (a, _dense_csr(a)):
        src, dst, w = adjacency_pairs(matrix)
        assert bool((src < dst).all())
        assert torch.allclose((w * diff[src, dst]).sum(), expected)


def test_phi_walk_graph_reaches_across_a_region_not_across_an_edge():
    image = torch.zeros(12, 12, 3, dtype=torch.uint8)
    image[:, 6:] = 255  # two flat halves
    g = phi_walk_graph(image, variant="image", topk=16).to_dense()
    assert torch.allclose(g.sum(1), torch.ones(144))
    left = torch.arange(144).view(12, 12)[:, :6].reshape(-1)
    reach = (g[0] > 0).nonzero().squeeze(1)
    assert ((reach // 12 - 0) ** 2 + (reach % 12) ** 2).max() > 8  # beyond the 5x5 window
    assert torch.isin(reach, left).all()  # the walk does not cross the colour edge
