"""WSGCN's GCN: ``wsss.gcn.train_gcn`` against the authors' dense formulation, same inputs.

    python bench/gcn_vs_dense.py [--out bench/results/gcn_vs_dense.json] [--sizes 160,250,375,500]

Ours: :func:`wsss.gcn.train_gcn` as the pipeline runs it (sparse CSR graph, closed-form
gradients, fused Adam, ``A V`` once per image). The reference (``bench/gcn_reference.py``): the
authors' formulation, a dense ``N x N`` graph multiplied into both layers at every step,
autograd, ``torch.optim.Adam``, the Laplacian as ``trace(Q^T L Q) / N`` with a dense ``L``.
Both get the same graph values, features, seeds, initial weights and dropout masks
(``LibraryDraws``), and SPEC section 4's settings (hidden 16, dropout 0.3, Adam lr 0.01, weight
decay 5e-4, 250 steps, all four losses).

Inputs (``bench/gcn_inputs.py``): the real VOC photos with graph (c) (``Phi``), random-conv
features (D = 160) and seeds from the ground truth.

* ``float64``: every photo with its longer side at ``--small`` pixels: the two formulations
  agree to rounding;
* ``float32``: the same problems in float32: label agreement and the largest probability
  difference after 250 steps, with, for scale, how much two seeds of our GCN disagree;
* ``scale``: one photo (``--photo``) at each of ``--sizes`` (longer side; 500 = the full
  500x375 photo, 11,750 nodes), float32: seconds of the 250 steps of each (median of
  ``--runs``; ours is timed before and after the dense run), their ratio, agreement, and the
  dense matrices' memory.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import torch

from bench_common import VOC_SAMPLES, agreement, finish, machine, median_seconds, timed
from gcn_inputs import NamedProblem, photo_ids, photo_problem
from gcn_reference import (
    PAPER_SETTINGS,
    DenseGCN,
    LibraryDraws,
    dense_laplacian,
    trace_laplacian,
    train_autograd,
)
from wsss.gcn.train import train_gcn


def _ours(named: NamedProblem, seed: int | None = None) -> torch.Tensor:
    problem = named.problem if seed is None else dataclasses.replace(named.problem, seed=seed)
    return train_gcn([problem], PAPER_SETTINGS)[0]


def _dense_inputs(named: NamedProblem) -> tuple[torch.Tensor, torch.Tensor]:
    p = named.problem
    n = p.features.shape[0]
    src, dst, weight = p.phi  # type: ignore[misc]
    return p.adjacency.to_dense(), dense_laplacian(src, dst, weight.to(p.features.dtype), n)


def _dense(named: NamedProblem, adjacency: torch.Tensor, laplacian: torch.Tensor,
           steps: int | None = None) -> torch.Tensor:  # fmt: skip
    p = named.problem
    draws = LibraryDraws(p, PAPER_SETTINGS, p.features.dtype)
    model = DenseGCN(adjacency, p.features, draws.w1, draws.w2, PAPER_SETTINGS.dropout)
    settings = PAPER_SETTINGS if steps is None else dataclasses.replace(PAPER_SETTINGS, steps=steps)
    return train_autograd(model, model.parameters(), p.seeds, trace_laplacian(laplacian),
                          settings, draws)  # fmt: skip


def _step0(named: NamedProblem, adjacency: torch.Tensor, laplacian: torch.Tensor) -> float:
    """Largest difference of the outputs before training: 0 up to rounding when the initial
    weights are the same."""
    ours = train_gcn([named.problem], dataclasses.replace(PAPER_SETTINGS, steps=0))[0]
    return agreement(ours, _dense(named, adjacency, laplacian, steps=0))["max_abs_diff"]


def formulations_agree(root: Path, ids: list[str], longer: int, dtype: torch.dtype) -> list[dict]:
    """Every photo at one size: ours against the dense reference (and, in float32, seed 0
    against seed 1 of ours)."""
    rows = []
    for image_id in ids:
        named = photo_problem(root, image_id, longer, dtype)
        adjacency, laplacian = _dense_inputs(named)
        ours = _ours(named)
        row: dict[str, Any] = {**named.describe(), "dtype": str(dtype).removeprefix("torch."),
                               "step0_max_abs_diff": _step0(named, adjacency, laplacian),
                               **agreement(ours, _dense(named, adjacency, laplacian))}  # fmt: skip
        if dtype == torch.float32:
            other = agreement(ours, _ours(named, seed=1))
            row["ours_seed0_vs_seed1_label_agreement"] = other["label_agreement"]
        rows.append(row)
        print(row, flush=True)
    return rows


def scale(root: Path, image_id: str, sizes: list[int], runs: int) -> list[dict]:
    """Time ratio and agreement at several sizes of one photo, float32."""
    rows = []
    for longer in sizes:
        named = photo_problem(root, image_id, longer)
        n = named.problem.features.shape[0]
        train_gcn([named.problem], dataclasses.replace(PAPER_SETTINGS, steps=3))  # warm-up
        _, times_before, ours = median_seconds(lambda nm=named: _ours(nm), runs)
        build_s, (adjacency, laplacian) = timed(lambda nm=named: _dense_inputs(nm))
        dense_runs = 1 if n > 6000 else runs
        dense_s, dense_times, dense = median_seconds(
            lambda nm=named, a=adjacency, lap=laplacian: _dense(nm, a, lap), dense_runs
        )
        _, times_after, _ = median_seconds(lambda nm=named: _ours(nm), runs)
        ours_s = sorted(times_before + times_after)[len(times_before + times_after) // 2]
        row = {**named.describe(), "ours_250_steps_s": ours_s,
               "ours_s_runs": times_before + times_after, "dense_250_steps_s": dense_s,
               "dense_s_runs": dense_times, "speedup_ours_over_dense": dense_s / ours_s,
               "dense_matrices_build_s": build_s,
               "dense_matrices_mb": 2 * n * n * adjacency.element_size() / 2**20,
               **agreement(ours, dense)}  # fmt: skip
        rows.append(row)
        print(row, flush=True)
        del adjacency, laplacian
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/gcn_vs_dense.json"))
    parser.add_argument("--voc", type=Path, default=VOC_SAMPLES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=160, help="longer side of the agreement runs")
    parser.add_argument("--photo", default="2007_001284")
    parser.add_argument("--sizes", default="160,250,375,500")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {
        **machine(args.threads),
        "settings": dataclasses.asdict(PAPER_SETTINGS),
    }
    ids = photo_ids(args.voc)
    result["float64"] = formulations_agree(args.voc, ids, args.small, torch.float64)
    result["float32"] = formulations_agree(args.voc, ids, args.small, torch.float32)
    if not args.skip_scale:
        sizes = [int(s) for s in args.sizes.split(",")]
        result["scale"] = scale(args.voc, args.photo, sizes, args.runs)
    finish(result, args.out)


if __name__ == "__main__":
    main()
