"""Sparse affinity and transition matrices (torch CSR) and a fast differentiable ``A @ X``.

The random walk of IRNet / AffinityNet (SPEC section 3) builds, for the pairs of
:func:`~wsss.graph.window.window_edges`, the symmetric affinity matrix ``A`` with ``A_ij = A_ji =
a_ij`` and a self-loop ``A_ii = 1`` (the authors add the identity), raises it element-wise to the
power ``beta`` and normalises it:

* ``column`` (the authors' ``T``): ``T = A^beta D^-1``, columns sum to 1, used as ``x^T T``;
* ``row`` (:func:`transition_matrix`'s default): ``P = D^-1 A^beta = T^T``, rows sum to 1, used as
  ``P X`` on column vectors ``X (N, C)``. Since ``A`` is symmetric, ``(x^T T^t)^T = P^t x``.

:class:`SparseOperator` multiplies a CSR matrix with a dense ``(N, C)`` tensor; its backward uses
a precomputed transposed CSR, far faster than autograd through ``torch.sparse.mm`` (issue 4:
about 3 ms against 50-70 ms for N = 11,750, 914k non-zeros, 21 columns, 2 threads).
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch

__all__ = [
    "SparseOperator",
    "affinity_matrix",
    "block_diagonal",
    "csr_from_coo",
    "csr_row_indices",
    "sparse_mm",
    "transition_matrix",
    "transpose_csr",
]


def _csr(
    crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n: int, m: int
) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_csr_tensor(crow, col, values, size=(n, m), check_invariants=False)


def csr_from_coo(
    rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """A CSR matrix from coordinates; duplicate entries are summed.

    Shapes:
        rows, cols, values: ``(E,)``. Returns a sparse CSR ``size`` tensor of ``values.dtype``.
    """
    if not rows.shape == cols.shape == values.shape or rows.ndim != 1:
        raise ValueError(
            f"rows, cols and values must be 1-D of one length, got {tuple(rows.shape)}, "
            f"{tuple(cols.shape)}, {tuple(values.shape)}"
        )
    n, m = size
    key = rows.to(torch.int64) * m + cols.to(torch.int64)
    unique, inverse = torch.unique(key, sorted=True, return_inverse=True)
    summed = torch.zeros(len(unique), dtype=values.dtype, device=values.device)
    summed.index_add_(0, inverse, values)
    counts = torch.bincount(unique // m, minlength=n)
    crow = torch.zeros(n + 1, dtype=torch.int64, device=values.device)
    crow[1:] = torch.cumsum(counts, 0)
    return _csr(crow, unique % m, summed, n, m)


def csr_row_indices(matrix: torch.Tensor) -> torch.Tensor:
    """The row index of every stored value of a CSR matrix, ``(nnz,)`` int64."""
    crow = matrix.crow_indices()
    counts = crow[1:] - crow[:-1]
    return torch.repeat_interleave(torch.arange(len(counts), device=crow.device), counts)


def _with_values(matrix: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    n, m = matrix.shape
    return _csr(matrix.crow_indices(), matrix.col_indices(), values, n, m)


def _canonical(matrix: torch.Tensor) -> bool:
    """Columns strictly increasing within each row (sorted, no duplicates), as
    :func:`csr_from_coo` makes them: such a matrix is assembled or transposed without it."""
    crow, cols = matrix.crow_indices(), matrix.col_indices()
    if cols.numel() < 2:
        return True
    step = cols[1:] > cols[:-1]
    starts = crow[1:-1]
    step[starts[(starts > 0) & (starts < cols.numel())] - 1] = True  # a new row may restart
    return bool(step.all())


def block_diagonal(matrices: list[torch.Tensor]) -> torch.Tensor:
    """The block-diagonal CSR matrix of CSR blocks (many images' graphs as one graph).

    Blocks with sorted, distinct columns in each row are concatenated as they are, without a
    sort (8 graphs of 635k values: 0.7 s -> 0.03 s on a loaded machine); other blocks go
    through :func:`csr_from_coo` (duplicates summed). Both give the same matrix.

    Shapes:
        matrices: ``(N_i, M_i)`` each. Returns ``(sum N_i, sum M_i)``.
    """
    if not matrices:
        raise ValueError("need at least one matrix")
    for block in matrices:
        _check_csr(block)
    if all(_canonical(block) for block in matrices):
        crows = [torch.zeros(1, dtype=torch.int64, device=matrices[0].values().device)]
        cols, values = [], []
        nnz = m = 0
        for block in matrices:
            crows.append(block.crow_indices()[1:].to(torch.int64) + nnz)
            cols.append(block.col_indices().to(torch.int64) + m)
            values.append(block.values())
            nnz, m = nnz + block.values().numel(), m + block.shape[1]
        n = sum(block.shape[0] for block in matrices)
        return _csr(torch.cat(crows), torch.cat(cols), torch.cat(values), n, m)
    rows, cols, values = [], [], []
    n = m = 0
    for block in matrices:
        rows.append(csr_row_indices(block) + n)
        cols.append(block.col_indices() + m)
        values.append(block.values())
        n, m = n + block.shape[0], m + block.shape[1]
    return csr_from_coo(torch.cat(rows), torch.cat(cols), torch.cat(values), (n, m))


def transpose_csr(matrix: torch.Tensor) -> torch.Tensor:
    """The transpose of a CSR matrix, again in CSR layout (columns sorted in each row).

    A matrix with sorted, distinct columns in each row is transposed by one stable sort of its
    column indices (about 1.5x faster than :func:`csr_from_coo`, the same matrix); others
    through :func:`csr_from_coo` (duplicates summed).
    """
    _check_csr(matrix)
    n, m = matrix.shape
    if not _canonical(matrix):
        return csr_from_coo(matrix.col_indices(), csr_row_indices(matrix), matrix.values(),
                            (m, n))  # fmt: skip
    cols = matrix.col_indices()
    order = torch.sort(cols.to(torch.int32) if m < 2**31 else cols, stable=True).indices
    crow = torch.zeros(m + 1, dtype=torch.int64, device=cols.device)
    crow[1:] = torch.bincount(cols, minlength=m).cumsum(0)
    return _csr(crow, csr_row_indices(matrix)[order], matrix.values()[order], m, n)


def affinity_matrix(
    src: torch.Tensor,
    dst: torch.Tensor,
    weights: torch.Tensor,
    num_nodes: int,
    *,
    self_loop: float | None = 1.0,
) -> torch.Tensor:
    """The symmetric sparse affinity matrix of undirected edges (IRNet / AffinityNet, SPEC s. 3).

    Args:
        src: Edge end points (each unordered pair once, e.g. from ``window_edges``).
        dst: The other end points.
        weights: Affinity of each edge (in [0, 1] for the random walk).
        num_nodes: ``N``.
        self_loop: Value of ``A_ii`` (the authors: 1); None for no diagonal.

    Returns:
        ``(N, N)`` sparse CSR with ``A[src, dst] = A[dst, src] = weights``.

    Shapes:
        src, dst, weights: ``(E,)``.
    """
    if weights.ndim != 1 or weights.shape != src.shape or src.shape != dst.shape:
        raise ValueError(
            f"src, dst, weights must be (E,), got {tuple(src.shape)}, {tuple(dst.shape)}, "
            f"{tuple(weights.shape)}"
        )
    rows, cols, values = [src, dst], [dst, src], [weights, weights]
    if self_loop is not None:
        nodes = torch.arange(num_nodes, device=weights.device)
        rows.append(nodes)
        cols.append(nodes)
        values.append(
            torch.full((num_nodes,), self_loop, dtype=weights.dtype, device=weights.device)
        )
    return csr_from_coo(torch.cat(rows), torch.cat(cols), torch.cat(values), (num_nodes, num_nodes))


def transition_matrix(
    affinity: torch.Tensor,
    *,
    beta: float = 1.0,
    normalize: Literal["row", "column"] = "row",
) -> torch.Tensor:
    """``D^-1 A^beta`` (``row``) or ``A^beta D^-1`` (``column``, the authors' ``T``), element-wise
    power on the stored values.

    Args:
        affinity: ``(N, N)`` sparse CSR, non-negative.
        beta: Exponent (IRNet 10, AffinityNet 8).
        normalize: ``row`` (rows sum to 1) or ``column`` (columns sum to 1).

    Returns:
        ``(N, N)`` sparse CSR with the sparsity of ``affinity``. Empty rows (columns) stay 0.
    """
    _check_csr(affinity)
    if normalize not in ("row", "column"):
        raise ValueError(f"normalize must be 'row' or 'column', got {normalize!r}")
    values = affinity.values().pow(beta)
    index = csr_row_indices(affinity) if normalize == "row" else affinity.col_indices()
    sums = torch.zeros(affinity.shape[0], dtype=values.dtype, device=values.device)
    sums.index_add_(0, index, values)
    return _with_values(affinity, values / sums.clamp_min(torch.finfo(values.dtype).tiny)[index])


def _check_csr(matrix: torch.Tensor) -> None:
    if matrix.layout != torch.sparse_csr or matrix.ndim != 2:
        raise ValueError(f"expected a 2-D sparse CSR matrix, got layout {matrix.layout}, "
                         f"shape {tuple(matrix.shape)}")  # fmt: skip


def _int32_indices(matrix: torch.Tensor) -> torch.Tensor:
    """The CSR matrix with int32 indices where they fit: the CPU product otherwise converts the
    int64 indices on every call (about 0.8 ms per 300k non-zeros, more than the product)."""
    if matrix.crow_indices().dtype == torch.int32 or matrix.values().numel() >= 2**31 - 1:
        return matrix
    n, m = matrix.shape
    return _csr(matrix.crow_indices().int(), matrix.col_indices().int(), matrix.values(), n, m)


class _SparseMM(torch.autograd.Function):
    """``Y = A X`` with ``dL/dX = A^T dL/dY``; no gradient for ``A``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, matrix: torch.Tensor, transposed: torch.Tensor):  # type: ignore[override]
        ctx.transposed = transposed
        return matrix @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return ctx.transposed @ grad.contiguous(), None, None


class SparseOperator:
    """A fixed CSR matrix ``A`` with a differentiable product ``A @ X`` (gradient for ``X`` only).

    The transposed CSR is built once (or shared, for a symmetric ``A``), so the backward is one
    more sparse product instead of autograd through ``torch.sparse.mm``.

    Args:
        matrix: ``(N, M)`` sparse CSR (or COO / strided, converted once).
        symmetric: ``A`` is symmetric: the backward reuses ``A``.

    Shapes:
        ``op @ x``: x ``(M, C)`` -> ``(N, C)``.

    Example:
        >>> a = affinity_matrix(torch.tensor([0]), torch.tensor([1]), torch.tensor([0.5]), 2)
        >>> op = SparseOperator(a, symmetric=True)
        >>> (op @ torch.ones(2, 1)).flatten().tolist()
        [1.5, 1.5]
    """

    def __init__(self, matrix: torch.Tensor, *, symmetric: bool = False) -> None:
        if matrix.layout != torch.sparse_csr:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
                matrix = matrix.to_sparse_csr()
        _check_csr(matrix)
        self.matrix = _int32_indices(matrix)
        self.transposed = self.matrix if symmetric else _int32_indices(transpose_csr(matrix))

    @property
    def shape(self) -> torch.Size:
        return self.matrix.shape

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> SparseOperator:
        """A copy on ``device`` / in ``dtype`` (both matrices moved)."""
        out = object.__new__(SparseOperator)
        out.matrix = self.matrix.to(device=device, dtype=dtype)
        same = self.transposed is self.matrix
        out.transposed = out.matrix if same else self.transposed.to(device=device, dtype=dtype)
        return out

    def t(self) -> SparseOperator:
        """The transposed operator (no copy)."""
        out = object.__new__(SparseOperator)
        out.matrix, out.transposed = self.transposed, self.matrix
        return out

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        return sparse_mm(self, x)


def sparse_mm(operator: SparseOperator | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``A @ X`` for a sparse ``A``, differentiable in ``X`` with the custom backward.

    Args:
        operator: A :class:`SparseOperator`, or a CSR matrix (its transpose is then built on
            every call; keep an operator for repeated use).
        x: Dense input on ``A``'s device and dtype.

    Shapes:
        x: ``(M, C)``. Returns ``(N, C)``.
    """
    op = operator if isinstance(operator, SparseOperator) else SparseOperator(operator)
    if x.ndim != 2 or x.shape[0] != op.shape[1]:
        raise ValueError(f"expected x of shape ({op.shape[1]}, C), got {tuple(x.shape)}")
    if x.requires_grad and torch.is_grad_enabled():
        return _SparseMM.apply(x, op.matrix, op.transposed)
    return op.matrix @ x
