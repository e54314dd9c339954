"""Random-walk propagation speed and memory (issue 4, item 6, RW part), in one run.

    python bench/propagation.py [--out bench/results/propagation_rw.json] [--runs 3] [--threads 2]

A 500x375 image: stride-4 grid 94x125 (N = 11,750 nodes), radius 5, random affinities in [0, 1],
IRNet's beta 10 and 2^8 = 256 steps. Timed (medians of ``--runs``):

* ``walk_s``: the 256 sparse products on ``C`` columns (C = 3, a typical image's classes
  + background, and C = 21, every VOC label);
* ``labels_s``: :func:`wsss.propagation.random_walk_labels` end to end from per-edge weights
  (CSR build, transition matrix, walk, x4 bilinear upsampling, argmax), C = 3;
* the ratio of the sparse walk to the authors' dense formulation (``T`` squared 8 times, then
  ``x^T T``) on a 40x40 grid (N = 1,600), where the dense form is feasible, with their max abs
  difference.

Peak RSS (``ru_maxrss``) is read after the sparse part, before any dense matrix exists. Set
``OMP_WAIT_POLICY=PASSIVE`` on a shared machine (see ``bench/crf.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from wsss.graph import affinity_matrix, dense_random_walk, window_edges
from wsss.io.atomic import atomic_write_text
from wsss.propagation import random_walk, random_walk_labels

IMAGE = (375, 500)  # (H, W)
RADIUS = 5
BETA = 10.0
EXP_TIMES = 8
DENSE_GRID = (40, 40)


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median seconds of ``runs`` calls (after one warm-up) and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _graph(h: int, w: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    src, _ = window_edges(h, w, RADIUS)
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(len(src), generator=gen), torch.rand(21, h, w, generator=gen)


def sparse_part(runs: int) -> dict[str, Any]:
    """Seconds of the walk and of the whole label computation at 500x375."""
    h, w = -(-IMAGE[0] // 4), -(-IMAGE[1] // 4)
    weights, cams = _graph(h, w, 0)
    src, dst = window_edges(h, w, RADIUS)
    matrix = affinity_matrix(src, dst, weights, h * w)
    out: dict[str, Any] = {"grid": [h, w], "nodes": h * w, "nnz": int(matrix._nnz()),
                           "radius": RADIUS, "beta": BETA, "steps": 2**EXP_TIMES}  # fmt: skip
    for c in (3, 21):
        seconds, _ = timed(
            lambda c=c: random_walk(matrix, cams[:c], beta=BETA, exp_times=EXP_TIMES), runs
        )
        out[f"walk_s_c{c}"] = seconds
    boundary = torch.rand(h, w, generator=torch.Generator().manual_seed(1))
    labels = lambda: random_walk_labels(weights, cams[:2], [1, 2], size=IMAGE, boundary=boundary)  # noqa: E731
    out["labels_s_c3"], _ = timed(labels, runs)
    out["peak_rss_mb"] = _rss_mb()
    return out


def dense_ratio(runs: int) -> dict[str, Any]:
    """Sparse walk against the dense matrix power on a small grid, same inputs."""
    h, w = DENSE_GRID
    weights, cams = _graph(h, w, 2)
    src, dst = window_edges(h, w, RADIUS)
    x = cams[:3]
    sparse_s, sparse = timed(lambda: random_walk(weights, x, beta=BETA, exp_times=EXP_TIMES), runs)
    dense_a = affinity_matrix(src, dst, weights, h * w).to_dense()
    columns = x.reshape(3, -1).T
    dense_s, dense = timed(
        lambda: dense_random_walk(dense_a, columns, beta=BETA, exp_times=EXP_TIMES), runs
    )
    diff = float((sparse.reshape(3, -1).T - dense).abs().max())
    return {"grid": [h, w], "nodes": h * w, "columns": 3, "sparse_s": sparse_s, "dense_s": dense_s,
            "speedup_dense_over_sparse": dense_s / sparse_s, "max_abs_diff": diff}  # fmt: skip


def run(runs: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    load_before = os.getloadavg()[0]
    rss_start = _rss_mb()
    sparse = sparse_part(runs)
    dense = dense_ratio(runs)
    return {
        "image": f"{IMAGE[1]}x{IMAGE[0]} (W x H), random affinities and CAMs",
        "runs": runs,
        "torch_threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_before_after": [load_before, os.getloadavg()[0]],
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "rss_mb_after_imports": rss_start,
        "target": {"rw_seconds_per_image": 0.5, "peak_rss_mb": 2048},
        "rw_500x375": sparse,
        "sparse_vs_dense": dense,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here as well")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    text = json.dumps(run(args.runs, args.threads), indent=2) + "\n"
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
