"""Iterated sparse products equal the authors' dense matrix power; pruned sparse powers."""

from __future__ import annotations

import pytest
import torch

from wsss.graph import (
    SparseOperator,
    affinity_matrix,
    dense_random_walk,
    prune_rows,
    sparse_matrix_power,
    sparse_matrix_power_apply,
    transition_matrix,
    window_edges,
)


def _graph(h, w, radius, seed, dtype=torch.float32):
    src, dst = window_edges(h, w, radius)
    weights = torch.rand(len(src), dtype=dtype, generator=torch.Generator().manual_seed(seed))
    return affinity_matrix(src, dst, weights, h * w)


@pytest.mark.parametrize(
    ("h", "w", "beta", "exp_times"), [(6, 7, 10, 8), (12, 10, 8, 8), (9, 9, 2, 3)]
)
def test_sparse_random_walk_equals_dense_power(h, w, beta, exp_times):
    a = _graph(h, w, 5, seed=h)
    x = torch.rand(h * w, 3, generator=torch.Generator().manual_seed(0))
    dense = dense_random_walk(a.to_dense().double(), x.double(), beta=beta, exp_times=exp_times)
    sparse = sparse_matrix_power_apply(transition_matrix(a, beta=beta), x, 2**exp_times)
    assert (sparse.double() - dense).abs().max() <= 1e-5


def test_dense_reference_by_hand():
    # two nodes, affinity 0.5, beta 1: T = [[1, .5], [.5, 1]] / 1.5 (columns), T^2 by hand
    a = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    t = a / 1.5
    x = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    out = dense_random_walk(a, x, beta=1, exp_times=1)
    torch.testing.assert_close(out, (x.T @ t @ t).T)
    torch.testing.assert_close(out.flatten(), torch.tensor([5 / 9, 4 / 9], dtype=torch.float64))


def test_power_apply_gradient_and_zero_power():
    a = _graph(4, 4, 3, seed=1, dtype=torch.float64)
    p = transition_matrix(a, beta=2)
    x = torch.rand(16, 2, dtype=torch.float64, requires_grad=True)
    assert torch.equal(sparse_matrix_power_apply(p, x, 0), x)
    assert torch.autograd.gradcheck(
        lambda v: sparse_matrix_power_apply(SparseOperator(p), v, 4), (x,)
    )
    with pytest.raises(ValueError, match="non-negative"):
        sparse_matrix_power_apply(p, x, -1)
    with pytest.raises(ValueError, match="shape"):
        sparse_matrix_power_apply(p, torch.ones(3, 2, dtype=torch.float64), 1)


def test_sparse_matrix_power_exact_without_pruning():
    p = transition_matrix(_graph(5, 6, 3, seed=2, dtype=torch.float64), beta=4)
    exact = torch.linalg.matrix_power(p.to_dense(), 8)
    torch.testing.assert_close(sparse_matrix_power(p, 3).to_dense(), exact)


def test_prune_rows_by_hand():
    m = torch.tensor([[0.1, 0.5, 0.4, 0.0], [0.3, 0.3, 0.2, 0.2]]).to_sparse_csr()
    top1 = prune_rows(m, topk=1).to_dense()
    torch.testing.assert_close(top1, torch.tensor([[0.0, 0.5, 0.0, 0.0], [0.3, 0.0, 0.0, 0.0]]))
    top2 = prune_rows(m, topk=2, renormalize=True).to_dense()
    torch.testing.assert_close(top2, torch.tensor([[0.0, 5 / 9, 4 / 9, 0.0], [0.5, 0.5, 0.0, 0.0]]))
    cut = prune_rows(m, threshold=0.25).to_dense()
    torch.testing.assert_close(cut, torch.tensor([[0.0, 0.5, 0.4, 0.0], [0.3, 0.3, 0.0, 0.0]]))


def test_pruned_power_is_sparse_and_stochastic():
    p = transition_matrix(_graph(10, 10, 5, seed=3), beta=8)
    approx = sparse_matrix_power(p, 4, topk=20)
    assert approx._nnz() <= 100 * 20
    torch.testing.assert_close(approx.to_dense().sum(1), torch.ones(100))
    exact = torch.linalg.matrix_power(p.to_dense(), 16)
    assert (approx.to_dense() - exact).abs().max() < 0.2
