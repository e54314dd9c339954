"""Sparse affinity / transition matrices against dense ones; the custom backward (gradcheck)."""

from __future__ import annotations

import pytest
import torch

from wsss.graph import (
    SparseOperator,
    affinity_matrix,
    block_diagonal,
    csr_from_coo,
    sparse_mm,
    transition_matrix,
    transpose_csr,
    window_edges,
)


def _dense_affinity(src, dst, weights, n):
    a = torch.eye(n, dtype=weights.dtype)
    a[src, dst] = weights
    a[dst, src] = weights
    return a


def test_csr_from_coo_sums_duplicates():
    m = csr_from_coo(torch.tensor([1, 0, 1]), torch.tensor([2, 1, 2]), torch.tensor([1.0, 2.0, 3.0]),
                     (2, 3))  # fmt: skip
    assert torch.equal(m.to_dense(), torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, 4.0]]))


def test_affinity_matrix_symmetric_with_self_loops():
    src, dst = window_edges(4, 5, 3)
    weights = torch.rand(len(src), generator=torch.Generator().manual_seed(0))
    a = affinity_matrix(src, dst, weights, 20)
    assert a.layout == torch.sparse_csr
    dense = a.to_dense()
    torch.testing.assert_close(dense, dense.T)
    torch.testing.assert_close(dense, _dense_affinity(src, dst, weights, 20))
    no_loop = affinity_matrix(src, dst, weights, 20, self_loop=None).to_dense()
    assert (no_loop.diagonal() == 0).all()


@pytest.mark.parametrize("normalize", ["row", "column"])
def test_transition_matrix(normalize):
    src, dst = window_edges(3, 4, 2)
    weights = torch.rand(len(src), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = transition_matrix(affinity_matrix(src, dst, weights, 12), beta=3, normalize=normalize)
    scaled = _dense_affinity(src, dst, weights, 12) ** 3
    expected = scaled / scaled.sum(1, keepdim=True) if normalize == "row" else \
        scaled / scaled.sum(0, keepdim=True)  # fmt: skip
    torch.testing.assert_close(t.to_dense(), expected)
    with pytest.raises(ValueError, match="normalize"):
        transition_matrix(affinity_matrix(src, dst, weights, 12), normalize="both")  # type: ignore[arg-type]


def test_transpose_and_block_diagonal():
    m = csr_from_coo(torch.tensor([0, 1, 1]), torch.tensor([2, 0, 1]), torch.tensor([1.0, 2.0, 3.0]),
                     (2, 3))  # fmt: skip
    torch.testing.assert_close(transpose_csr(m).to_dense(), m.to_dense().T)
    b = block_diagonal([m, transpose_csr(m)])
    assert b.shape == (5, 5)
    torch.testing.assert_close(b.to_dense(), torch.block_diag(m.to_dense(), m.to_dense().T))


def test_sorted_blocks_are_joined_and_transposed_without_a_sort_to_the_same_matrix():
    from wsss.graph.sparse import _csr, csr_row_indices

    gen = torch.Generator().manual_seed(3)
    blocks = []
    for n, m in ((7, 5), (4, 9), (6, 6)):
        rows, cols = (
            torch.randint(0, n, (25,), generator=gen),
            torch.randint(0, m, (25,), generator=gen),
        )
        blocks.append(csr_from_coo(rows, cols, torch.rand(25, generator=gen), (n, m)))
    blocks.append(_csr(torch.zeros(3, dtype=torch.int64), torch.zeros(0, dtype=torch.int64),
                       torch.zeros(0), 2, 3))  # an empty block  # fmt: skip

    def coo(matrix, transpose=False):  # the reference: through csr_from_coo
        rows, cols = csr_row_indices(matrix), matrix.col_indices()
        shape = tuple(matrix.shape)[::-1] if transpose else tuple(matrix.shape)
        return csr_from_coo(*((cols, rows) if transpose else (rows, cols)), matrix.values(), shape)

    joined = block_diagonal(blocks)
    reference = coo(joined)  # the joined matrix is sorted already: csr_from_coo keeps it
    for got, want in ((joined, reference), (transpose_csr(joined), coo(joined, True))):
        assert got.shape == want.shape
        for a, b in zip((got.crow_indices(), got.col_indices(), got.values()),
                        (want.crow_indices(), want.col_indices(), want.values()), strict=True):  # fmt: skip
            assert torch.equal(a.to(b.dtype), b)
    torch.testing.assert_close(joined.to_dense(), torch.block_diag(*(b.to_dense() for b in blocks)))
    # unsorted columns and a duplicate: summed, as csr_from_coo does
    raw = _csr(torch.tensor([0, 3, 4]), torch.tensor([2, 0, 2, 1]), torch.tensor([1.0, 2.0, 3.0, 4.0]),
               2, 3)  # fmt: skip
    expected = torch.tensor([[2.0, 0.0, 4.0], [0.0, 4.0, 0.0]])
    torch.testing.assert_close(block_diagonal([raw]).to_dense(), expected)
    torch.testing.assert_close(transpose_csr(raw).to_dense(), expected.T)


def test_sparse_mm_matches_dense_and_gradcheck():
    gen = torch.Generator().manual_seed(2)
    rows = torch.randint(0, 7, (20,), generator=gen)
    cols = torch.randint(0, 5, (20,), generator=gen)
    m = csr_from_coo(rows, cols, torch.rand(20, dtype=torch.float64, generator=gen), (7, 5))
    op = SparseOperator(m)
    x = torch.rand(5, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    torch.testing.assert_close(op @ x, m.to_dense() @ x)
    assert torch.autograd.gradcheck(lambda v: sparse_mm(op, v), (x,))
    # the transposed operator and its own gradient
    y = torch.rand(7, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    torch.testing.assert_close(op.t() @ y, m.to_dense().T @ y)
    assert torch.autograd.gradcheck(lambda v: op.t() @ v, (y,))


def test_sparse_mm_symmetric_backward_equals_autograd():
    src, dst = window_edges(5, 5, 3)
    weights = torch.rand(len(src), dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    a = affinity_matrix(src, dst, weights, 25)
    op = SparseOperator(transition_matrix(a), symmetric=False)
    x = torch.rand(25, 4, dtype=torch.float64, requires_grad=True)
    target = torch.rand(25, 4, dtype=torch.float64)
    ((op @ (op @ x)) * target).sum().backward()
    dense = transition_matrix(a).to_dense()
    x2 = x.detach().clone().requires_grad_(True)
    ((dense @ (dense @ x2)) * target).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    assert torch.autograd.gradcheck(
        lambda v: SparseOperator(a, symmetric=True) @ v, (x.detach().requires_grad_(),)
    )


def test_sparse_mm_shape_check():
    op = SparseOperator(torch.eye(3).to_sparse_csr())
    with pytest.raises(ValueError, match=r"\(3, C\)"):
        op @ torch.ones(4, 2)
    with pytest.raises(ValueError, match="CSR"):
        transition_matrix(torch.eye(3))
