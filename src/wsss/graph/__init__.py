"""Sparse pixel graphs: window pairs, affinity / transition matrices (CSR), powers, fast products.

=========================================  =========================================================
:func:`window_offsets` / ``window_edges``   pixel pairs closer than a radius (half-plane, once each)
:func:`window_mask` / ``gather_window``      per-offset maps ``(K, h, w)`` <-> per-edge values ``(E,)``
:func:`affinity_matrix`                      symmetric CSR ``A`` with self-loops from edge weights
:func:`transition_matrix`                    ``D^-1 A^beta`` (row) or ``A^beta D^-1`` (column)
:func:`sparse_matrix_power_apply`            ``M^t X`` by ``t`` sparse products
:func:`sparse_matrix_power`                  ``M^(2^k)`` as a (pruned) sparse matrix
:func:`dense_random_walk`                    the authors' dense formulation (test reference)
:class:`SparseOperator` / ``sparse_mm``      ``A @ X`` with a fast custom backward
=========================================  =========================================================
"""

from wsss.graph.power import (
    dense_random_walk,
    dense_transition_matrix,
    prune_rows,
    sparse_matrix_power,
    sparse_matrix_power_apply,
)
from wsss.graph.sparse import (
    SparseOperator,
    affinity_matrix,
    block_diagonal,
    csr_from_coo,
    csr_row_indices,
    sparse_mm,
    transition_matrix,
    transpose_csr,
)
from wsss.graph.window import (
    gather_window,
    line_paths,
    shift_map,
    window_edges,
    window_mask,
    window_offsets,
)

__all__ = [
    "SparseOperator",
    "affinity_matrix",
    "block_diagonal",
    "csr_from_coo",
    "csr_row_indices",
    "dense_random_walk",
    "dense_transition_matrix",
    "gather_window",
    "line_paths",
    "prune_rows",
    "shift_map",
    "sparse_matrix_power",
    "sparse_matrix_power_apply",
    "sparse_mm",
    "transition_matrix",
    "transpose_csr",
    "window_edges",
    "window_mask",
    "window_offsets",
]
