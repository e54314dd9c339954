"""The GCN's graph ``A`` (WSGCN eq. 1): from the random walk's ``T^(2^k)``, exact or sparse, or
from the low-level affinity ``Phi``.

All three are normalised the same way (SPEC section 4, the authors' code):
``A = row-normalise(max(M, M^T) + I)`` (:func:`normalize_adjacency`); the paper writes
``A + I`` without the normalisation (``normalize=False``).

(a) :func:`dense_power_graph`: ``M = T^(2^k)`` with ``T`` the column-normalised ``A_aff^beta`` of the
    affinity network, squared ``k`` times as dense ``N x N`` matrices: exact, ``O(N^3)``; for
    small grids or CUDA.
(b) :func:`sparse_power_graph`: ``M`` = the same power by ``k`` sparse squarings, keeping the
    ``topk`` largest values of each row after every squaring (rows rescaled to their former
    sums, :func:`wsss.graph.sparse_matrix_power`): memory ``O(N topk)``.
(c) :func:`phi_graph`: ``M = Phi`` of eq. (7) (:mod:`wsss.gcn.phi`), no trained network. Our
    option for CAMs without an affinity network (``wsss refine``): the paper always builds ``A``
    from an affinity network, and uses ``Phi`` only in the Laplacian loss.
(d) :func:`phi_walk_graph`: ``M`` = the sparse ``T^(2^k)`` of (b) with ``Phi`` in place of the
    affinity network's affinities (``beta = 1``): a random walk on colour and position, so that,
    as with (a) and (b), each node's neighbours reach across its region, not only its 5x5
    window. Ours, for CAMs without an affinity network.

:func:`adjacency_pairs` gives the pairs of ``A`` for the Laplacian loss of the paper's side
experiment (``A`` in place of ``Phi`` in eq. 6: 68.0 -> 66.3 mIoU).

The row-normalised ``P = D^-1 A_aff^beta`` is ``T^T``, so ``max(T^t, (T^t)^T)`` is the same
from ``P^t``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wsss.gcn.phi import phi_matrix
from wsss.graph.power import dense_transition_matrix
from wsss.graph.sparse import _csr, csr_from_coo, csr_row_indices, transition_matrix

__all__ = [
    "GRAPH_KINDS",
    "adjacency_pairs",
    "dense_power_graph",
    "normalize_adjacency",
    "phi_graph",
    "phi_walk_graph",
    "sparse_power_graph",
    "symmetric_max",
    "topk_rows",
]

#: ``dense`` (a), ``sparse`` (b), ``phi`` (c), ``phi_walk`` (d).
GRAPH_KINDS: tuple[str, ...] = ("dense", "sparse", "phi", "phi_walk")


def symmetric_max(matrix: Tensor) -> Tensor:
    """``max(M, M^T)`` element-wise, for a sparse CSR or dense ``(N, N)`` matrix."""
    if matrix.layout == torch.strided:
        return torch.maximum(matrix, matrix.transpose(0, 1))
    n = matrix.shape[0]
    rows, cols, values = csr_row_indices(matrix), matrix.col_indices(), matrix.values()
    r, c, v = torch.cat([rows, cols]), torch.cat([cols, rows]), torch.cat([values, values])
    key = r * n + c
    unique, inverse = torch.unique(key, sorted=True, return_inverse=True)
    top = torch.full((len(unique),), -torch.inf, dtype=v.dtype, device=v.device)
    top = top.scatter_reduce(0, inverse, v, reduce="amax")
    return csr_from_coo(unique // n, unique % n, top, (n, n))


def normalize_adjacency(matrix: Tensor, *, normalize: bool = True) -> Tensor:
    """``row-normalise(max(M, M^T) + I)`` (or ``M + I`` with ``normalize=False``, the paper's
    eq. 1 as printed).

    Shapes:
        matrix: ``(N, N)`` sparse CSR or dense. Returns the same layout.
    """
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"expected a square matrix, got {tuple(matrix.shape)}")
    n = matrix.shape[0]
    dense = matrix.layout == torch.strided
    sym = symmetric_max(matrix) if normalize else matrix
    if dense:
        out = sym + torch.eye(n, dtype=sym.dtype, device=sym.device)
        return out / out.sum(1, keepdim=True) if normalize else out
    nodes = torch.arange(n, device=sym.device)
    rows, cols = torch.cat([csr_row_indices(sym), nodes]), torch.cat([sym.col_indices(), nodes])
    values = torch.cat([sym.values(), torch.ones(n, dtype=sym.values().dtype, device=sym.device)])
    out = csr_from_coo(rows, cols, values, (n, n))
    return transition_matrix(out, normalize="row") if normalize else out


def dense_power_graph(
    affinity: Tensor, *, beta: float = 10.0, exp_times: int = 8, normalize: bool = True
) -> Tensor:
    """Graph (a): the exact ``T^(2^exp_times)`` by dense squaring, normalised.

    Args:
        affinity: Symmetric affinity with self-loops (sparse CSR or dense), e.g.
            :func:`wsss.graph.affinity_matrix` of an affinity network's window weights.
        beta: Exponent of the affinities (IRNet 10).
        exp_times: Squarings ``k`` (8: ``T^256``).
        normalize: See :func:`normalize_adjacency`.

    Returns:
        ``(N, N)`` dense float tensor.
    """
    dense = affinity.to_dense() if affinity.layout != torch.strided else affinity
    trans = dense_transition_matrix(dense, beta)
    for _ in range(exp_times):
        trans = trans @ trans
    return normalize_adjacency(trans, normalize=normalize)


def sparse_power_graph(
    affinity: Tensor,
    *,
    beta: float = 10.0,
    exp_times: int = 8,
    topk: int = 32,
    normalize: bool = True,
) -> Tensor:
    """Graph (b): ``T^(2^exp_times)`` by sparse squaring, ``topk`` values kept per row after
    each squaring (rows rescaled to their sums), then normalised.

    Args:
        affinity: ``(N, N)`` symmetric sparse CSR affinity with self-loops.
        beta: Exponent of the affinities.
        exp_times: Squarings.
        topk: Values kept per row (the graph has at most ``N (2 topk + 1)`` non-zeros).
        normalize: See :func:`normalize_adjacency`.

    Returns:
        ``(N, N)`` sparse CSR.
    """
    power = transition_matrix(affinity, beta=beta, normalize="row")
    for _ in range(exp_times):
        product = power @ power
        if product.layout != torch.sparse_csr:  # pragma: no cover - depends on the torch version
            product = product.to_sparse_csr()
        power = topk_rows(product, topk)
    return normalize_adjacency(power, normalize=normalize)


def topk_rows(matrix: Tensor, topk: int) -> Tensor:
    """The ``topk`` largest values of each row of a CSR matrix, each row rescaled to its former
    sum (a row-stochastic matrix stays stochastic); zeros dropped.

    Done on a padded ``(N, max row length)`` copy with ``torch.topk``: several times faster than
    sorting all values (:func:`wsss.graph.prune_rows` does that, with more options).

    Shapes:
        matrix: ``(N, M)`` sparse CSR. Returns ``(N, M)`` sparse CSR, columns sorted in each row.
    """
    if topk < 1:
        raise ValueError(f"topk must be positive, got {topk}")
    n, m = matrix.shape
    crow, values = matrix.crow_indices(), matrix.values()
    rows = csr_row_indices(matrix)
    width = int((crow[1:] - crow[:-1]).max()) if n else 0
    if width <= topk:
        return matrix
    starts = crow[:-1]
    pos = torch.arange(len(rows), device=rows.device) - starts[rows]
    padded = values.new_zeros(n, width).index_put_((rows, pos), values)
    kept, index = padded.topk(topk, dim=1, sorted=False)
    # positions in ascending order keep each row's columns sorted (CSR rows are sorted)
    index, order = index.sort(dim=1)
    kept = kept.gather(1, order)
    scale = padded.sum(1, keepdim=True) / kept.sum(1, keepdim=True).clamp_min(
        torch.finfo(kept.dtype).tiny
    )
    flat, kept = starts[:, None] + index, kept * scale
    keep = kept > 0  # also drops the padding of rows shorter than topk
    if bool(keep.all()):  # the usual case after the first squaring: no masking
        new_crow = torch.arange(0, n * topk + 1, topk, device=rows.device)
        flat, kept = flat.reshape(-1), kept.reshape(-1)
    else:
        new_crow = torch.zeros(n + 1, dtype=torch.int64, device=rows.device)
        new_crow[1:] = keep.sum(1).cumsum(0)
        flat, kept = flat[keep], kept[keep]
    return _csr(new_crow, matrix.col_indices()[flat], kept, n, m)


def phi_graph(image: Tensor, *, normalize: bool = True, **options: object) -> Tensor:
    """Graph (c): ``Phi`` of eq. (7) on the grid's image (:func:`wsss.gcn.phi.phi_matrix`),
    normalised.

    Shapes:
        image: ``(h, w, 3)``, 0-255. Returns ``(h w, h w)`` sparse CSR.
    """
    return normalize_adjacency(phi_matrix(image, **options), normalize=normalize)


def phi_walk_graph(
    image: Tensor, *, exp_times: int = 8, topk: int = 32, normalize: bool = True,
    **options: object,
) -> Tensor:  # fmt: skip
    """Graph (d): the sparse ``T^(2^exp_times)`` (:func:`sparse_power_graph`, ``beta = 1``) of
    ``Phi`` (:func:`wsss.gcn.phi.phi_matrix`, ``options``), normalised.

    Shapes:
        image: ``(h, w, 3)``, 0-255. Returns ``(h w, h w)`` sparse CSR.
    """
    return sparse_power_graph(phi_matrix(image, **options), beta=1.0, exp_times=exp_times,
                              topk=topk, normalize=normalize)  # fmt: skip


def adjacency_pairs(adjacency: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The pairs of a graph for the Laplacian loss of eq. (6): each unordered pair ``i < j`` once
    with the weight ``(A_ij + A_ji) / 2`` (``A`` is row-normalised, so not symmetric; the double
    sum of eq. 6 sees both entries), zero weights and the diagonal dropped.

    Shapes:
        adjacency: ``(N, N)`` sparse CSR or dense. Returns ``(E,)`` int64, int64, and values.
    """
    n = adjacency.shape[0]
    if adjacency.layout == torch.strided:
        upper = torch.triu(adjacency + adjacency.transpose(0, 1), diagonal=1) / 2
        src, dst = upper.nonzero(as_tuple=True)
        return src, dst, upper[src, dst]
    rows, values = csr_row_indices(adjacency), adjacency.values()
    cols = adjacency.col_indices().to(torch.int64)
    low, high = torch.minimum(rows, cols), torch.maximum(rows, cols)
    keep = low != high
    key = low[keep] * n + high[keep]
    unique, inverse = torch.unique(key, sorted=True, return_inverse=True)
    weight = values.new_zeros(len(unique)).index_add_(0, inverse, values[keep]) / 2
    nonzero = weight != 0
    unique, weight = unique[nonzero], weight[nonzero]
    return unique // n, unique % n, weight
