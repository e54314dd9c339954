"""Powers of a sparse transition matrix: applied by iterated products, or built (pruned) sparse.

The authors of IRNet / AffinityNet / WSGCN square a dense ``N x N`` transition matrix ``k`` times
to get ``T^(2^k)`` (k = 8: about 26 TFLOP and 550 MB for a 500x375 image, SPEC section 3). Applying
it to the few class columns needs only ``2^k`` sparse products ``X <- P X``
(:func:`sparse_matrix_power_apply`), equal to the dense form up to float rounding
(:func:`dense_random_walk` is that dense form, kept as the test reference).
"""

from __future__ import annotations

import torch

from wsss.graph.sparse import (
    SparseOperator,
    _check_csr,
    _csr,
    csr_from_coo,
    csr_row_indices,
    sparse_mm,
)

__all__ = [
    "dense_random_walk",
    "dense_transition_matrix",
    "prune_rows",
    "sparse_matrix_power",
    "sparse_matrix_power_apply",
]


def sparse_matrix_power_apply(
    matrix: torch.Tensor | SparseOperator, x: torch.Tensor, power: int
) -> torch.Tensor:
    """``M^power @ X`` by ``power`` sparse products (``M`` is never densified or multiplied
    with itself).

    Differentiable in ``x`` (through :func:`~wsss.graph.sparse.sparse_mm`) when ``x`` requires a
    gradient.

    Args:
        matrix: ``(N, N)`` CSR matrix or :class:`~wsss.graph.sparse.SparseOperator`; for the random
            walk the row-normalised ``P = D^-1 A^beta``.
        x: Dense columns.
        power: Number of products (IRNet: ``2 ** 8 = 256``).

    Shapes:
        x: ``(N, C)``. Returns ``(N, C)``.
    """
    if power < 0:
        raise ValueError(f"power must be non-negative, got {power}")
    op: SparseOperator | None = None
    if isinstance(matrix, SparseOperator):
        op = matrix
    elif x.requires_grad and torch.is_grad_enabled():
        op = SparseOperator(matrix)
    csr = op.matrix if op is not None else matrix
    if x.ndim != 2 or x.shape[0] != csr.shape[1]:
        raise ValueError(f"expected x of shape ({csr.shape[1]}, C), got {tuple(x.shape)}")
    x = x.contiguous()
    for _ in range(power):
        x = sparse_mm(op, x) if op is not None else csr @ x
    return x


def prune_rows(
    matrix: torch.Tensor,
    *,
    topk: int | None = None,
    threshold: float | None = None,
    renormalize: bool = False,
) -> torch.Tensor:
    """Keep, in each row, the ``topk`` largest values and/or those ``>= threshold``.

    Args:
        matrix: ``(N, M)`` sparse CSR.
        topk: Largest values kept per row (ties broken by column order), None for all.
        threshold: Values below it are dropped, None for none.
        renormalize: Rescale each row to its former sum (keeps a row-stochastic matrix
            stochastic).

    Returns:
        ``(N, M)`` sparse CSR.
    """
    _check_csr(matrix)
    rows, cols, values = csr_row_indices(matrix), matrix.col_indices(), matrix.values()
    keep = torch.ones_like(values, dtype=torch.bool)
    if threshold is not None:
        keep &= values >= threshold
    if topk is not None:
        if topk < 1:
            raise ValueError(f"topk must be positive, got {topk}")
        order = torch.argsort(values, descending=True, stable=True)
        order = order[torch.argsort(rows[order], stable=True)]  # by row, values descending
        crow = matrix.crow_indices()
        rank = torch.arange(len(order), device=order.device) - crow[rows[order]]
        ranked = torch.zeros_like(keep)
        ranked[order] = rank < topk
        keep &= ranked
    n = matrix.shape[0]
    kept_values = values[keep]
    if renormalize:
        before = torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(
            0, rows, values
        )
        after = torch.zeros_like(before).index_add_(0, rows[keep], kept_values)
        scale = before / after.clamp_min(torch.finfo(values.dtype).tiny)
        kept_values = kept_values * scale[rows[keep]]
    return csr_from_coo(rows[keep], cols[keep], kept_values, (n, matrix.shape[1]))


def sparse_matrix_power(
    matrix: torch.Tensor,
    exp_times: int,
    *,
    topk: int | None = None,
    threshold: float | None = None,
    renormalize: bool = True,
) -> torch.Tensor:
    """``M^(2^exp_times)`` as a sparse CSR matrix by repeated sparse squaring, optionally pruned
    after every squaring (:func:`prune_rows`).

    Unpruned it equals the dense power, but fills in: at radius 5 each squaring roughly
    doubles the reach, so ``T^256`` is nearly dense for VOC-size images. Pruning (``topk`` per
    row and/or ``threshold``) keeps it sparse, an approximation of the exact matrix (a candidate
    for WSGCN's graph, issue 4 item 3b).

    Args:
        matrix: ``(N, N)`` sparse CSR (e.g. the row-normalised transition matrix).
        exp_times: Number of squarings ``k`` (IRNet / AffinityNet: 8).
        topk: Values kept per row after each squaring.
        threshold: Values below it dropped after each squaring.
        renormalize: With pruning, rescale kept rows to their former sums.

    Returns:
        ``(N, N)`` sparse CSR.
    """
    _check_csr(matrix)
    if exp_times < 0:
        raise ValueError(f"exp_times must be non-negative, got {exp_times}")
    prune = topk is not None or threshold is not None
    result = matrix
    for _ in range(exp_times):
        result = result @ result
        if result.layout != torch.sparse_csr:  # pragma: no cover - depends on the torch version
            result = result.to_sparse_csr()
        if prune:
            result = prune_rows(result, topk=topk, threshold=threshold, renormalize=renormalize)
    n, m = result.shape
    return _csr(result.crow_indices(), result.col_indices(), result.values(), n, m)


def dense_transition_matrix(affinity: torch.Tensor, beta: float) -> torch.Tensor:
    """The authors' ``T = A^beta / column sums`` of a dense affinity (columns sum to 1).

    Shapes:
        affinity: ``(N, N)``. Returns ``(N, N)``.
    """
    scaled = affinity.pow(beta)
    return scaled / scaled.sum(dim=0, keepdim=True)


def dense_random_walk(
    affinity: torch.Tensor, x: torch.Tensor, *, beta: float, exp_times: int
) -> torch.Tensor:
    """The dense reference of the random walk: ``(x^T T^(2^exp_times))^T`` with ``T`` squared
    ``exp_times`` times (IRNet / AffinityNet code; ``O(N^3)``, only for small graphs and tests).

    Args:
        affinity: Dense symmetric affinity with its diagonal (``A_ii = 1``).
        x: Columns to propagate.
        beta: Exponent of the affinities.
        exp_times: Number of squarings.

    Shapes:
        affinity: ``(N, N)``; x: ``(N, C)``. Returns ``(N, C)``.
    """
    trans = dense_transition_matrix(affinity, beta)
    for _ in range(exp_times):
        trans = trans @ trans
    return (x.transpose(0, 1) @ trans).transpose(0, 1)
