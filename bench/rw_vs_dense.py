"""The random walk: ``wsss.propagation.random_walk`` against the authors' dense matrix power,
same inputs, from small grids up to a full 500x375 image.

    python bench/rw_vs_dense.py [--out bench/results/rw_vs_dense.json] [--grids 30x40,...,94x125]

Ours: ``P^256 X`` as 256 sparse products of the row-normalised ``P = D^-1 A^beta`` with the
class columns (:func:`wsss.propagation.random_walk`). The authors' formulation (IRNet's
``make_sem_seg_labels``, AffinityNet's ``infer_aff``; :func:`wsss.graph.dense_random_walk`): the
dense column-normalised ``T = A^beta / column sums``, squared 8 times, then ``x^T T^256``.
Both in float32 on the same inputs: ``bench/propagation_gcn.py``'s blocky random affinities on
the radius-5 window (high inside 4 random vertical bands, low across them; beta 10) and
C = 3 random CAM columns. Grids are the stride-4 grids of a 500x375 image scaled to a longer
side of 160, 250, 375 and 500 pixels.

Recorded per grid: seconds of each (the walk only; median of ``--runs``, a single dense run
above ``--single-above`` nodes), their ratio, the largest absolute and relative difference of
the outputs, the argmax agreement, and the dense matrix's size. On the grids of at most
``--float64-up-to`` nodes the dense power is also run in float64, and both float32 results are
compared with it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from bench_common import agreement, finish, machine, median_seconds, peak_rss_mb
from propagation_gcn import _affinity
from wsss.graph import dense_random_walk
from wsss.propagation import random_walk

BETA = 10.0
EXP_TIMES = 8
COLUMNS = 3


def _walks(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The affinity (CSR), its dense copy and the ``(C, h, w)`` columns of one grid."""
    gen = torch.Generator().manual_seed(h * 1000 + w)
    matrix = _affinity(h, w, gen)
    cams = torch.rand(COLUMNS, h, w, generator=gen)
    return matrix, matrix.to_dense(), cams


def one_grid(h: int, w: int, runs: int, single_above: int, float64_up_to: int) -> dict[str, Any]:
    """Both walks on one grid (module docstring)."""
    n = h * w
    matrix, dense_a, cams = _walks(h, w)
    columns = cams.reshape(COLUMNS, n).transpose(0, 1)
    walk = lambda: random_walk(matrix, cams, beta=BETA, exp_times=EXP_TIMES)  # noqa: E731
    walk()  # warm-up
    sparse_s, sparse_runs, sparse = median_seconds(walk, runs)
    sparse = sparse.reshape(COLUMNS, n).transpose(0, 1)
    dense_runs = 1 if n > single_above else runs
    dense_s, dense_times, dense = median_seconds(
        lambda: dense_random_walk(dense_a, columns, beta=BETA, exp_times=EXP_TIMES), dense_runs
    )
    scale = float(dense.abs().max())
    match = agreement(sparse, dense)
    row: dict[str, Any] = {"grid": [h, w], "nodes": n, "nnz": int(matrix._nnz()), "columns": COLUMNS,
                           "sparse_s": sparse_s, "sparse_s_runs": sparse_runs, "dense_s": dense_s,
                           "dense_s_runs": dense_times, "speedup_sparse_over_dense": dense_s / sparse_s,
                           **match, "max_rel_diff": match["max_abs_diff"] / scale,
                           "dense_matrix_mb": n * n * 4 / 2**20, "peak_rss_mb_so_far": peak_rss_mb()}  # fmt: skip
    if n <= float64_up_to:
        exact = dense_random_walk(
            dense_a.double(), columns.double(), beta=BETA, exp_times=EXP_TIMES
        )
        row["float64_dense_vs_sparse32"] = agreement(sparse, exact)
        row["float64_dense_vs_dense32"] = agreement(dense, exact)
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/rw_vs_dense.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--grids", default="30x40,47x63,71x94,94x125")
    parser.add_argument("--single-above", type=int, default=6000)
    parser.add_argument("--float64-up-to", type=int, default=3000)
    args = parser.parse_args()
    result: dict[str, Any] = {**machine(args.threads), "beta": BETA, "exp_times": EXP_TIMES,
                              "radius": 5}  # fmt: skip
    grids = [tuple(int(v) for v in g.split("x")) for g in args.grids.split(",")]
    result["grids"] = [one_grid(h, w, args.runs, args.single_above, args.float64_up_to)
                       for h, w in grids]  # fmt: skip
    finish(result, args.out)


if __name__ == "__main__":
    main()
