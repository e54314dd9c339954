"""WSGCN GCN speed and memory at VOC size, and the sparse graph (b) against the exact one (a).

    python bench/propagation_gcn.py [--out bench/results/propagation_gcn.json] [--threads 2]

A 500x375 image gives a 125x94 stride-4 grid (N = 11,750 nodes). Random affinities on the
radius-5 window (IRNet's random-walk graph, beta 10, T^256), random node features (D = 160, as
IRNet's edge features), seeds on half of the nodes, 250 Adam steps with all four losses
(Laplacian on the 5x5 Phi of a random image). Timed separately: building the sparse graph (b)
(top-k pruned sparse squarings) and the GCN training, for K = 3 outputs (background + 2
classes, a typical VOC image) and K = 21, with the closed-form gradients (the default) and, for
K = 3, through autograd as the reference and as a batch of 8 images (the pipeline trains many
images' GCNs at once). The training uses the pipeline's defaults (``GcnSettings()``: 21 outputs,
``W2 = 0``, entropy over entries), so a K-class image trains one output for its 21 - K absent
classes (``merge_absent``); the same training with one output each (``merge_absent=False``, the
path before) is timed in the same process, alone and in the batch of 8, with the labels'
agreement; ``K_only`` times ``outputs=0`` (K outputs). Each figure records the 1-minute load
average before it (the machine may be shared). Peak RSS is the process's maximum resident size. The OpenMP wait policy
matters at this size (a step is ~30 small parallel regions): run it with and without
``OMP_WAIT_POLICY=PASSIVE``; the JSON records which.
Agreement of (b) with the exact dense graph (a) is measured on a 40x53 grid (N = 2,120), where the
dense T^256 is feasible: argmax label agreement of the trained GCNs (same seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import time
from pathlib import Path

import torch

from wsss.gcn.graphs import dense_power_graph, sparse_power_graph
from wsss.gcn.phi import phi_edges
from wsss.gcn.train import GcnProblem, GcnSettings, train_gcn
from wsss.graph.sparse import affinity_matrix
from wsss.graph.window import window_edges
from wsss.io.atomic import atomic_write_text


def _affinity(h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Blocky random affinities: high inside 4 random vertical bands, low across them."""
    src, dst = window_edges(h, w, 5)
    band = torch.randint(0, 4, (w,), generator=gen).sort().values
    same = band[src % w] == band[dst % w]
    noise = torch.rand(len(src), generator=gen)
    return affinity_matrix(src, dst, torch.where(same, 0.9 + 0.1 * noise, 0.3 * noise), h * w)


def _problem(
    graph: torch.Tensor, h: int, w: int, k: int, d: int, gen: torch.Generator
) -> GcnProblem:
    n = h * w
    seeds = torch.full((n,), 255)
    labelled = torch.randperm(n, generator=gen)[: n // 2]
    seeds[labelled] = (labelled % w) * k // w  # class by column: learnable
    image = torch.randint(0, 255, (h, w, 3), generator=gen).float()
    return GcnProblem(adjacency=graph, features=torch.randn(n, d, generator=gen), seeds=seeds,
                      num_outputs=k, phi=phi_edges(image), seed=0)  # fmt: skip


LOADS: dict[str, float] = {}
#: The stride-4 grid of a 500x375 image (N = 11,750 nodes).
VOC_GRID: tuple[int, int] = (94, 125)


def _timed(fn, name: str = ""):
    if name:
        LOADS[name] = os.getloadavg()[0]
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def speed(k_values: tuple[int, ...], d: int, topk: int) -> dict:
    h, w = VOC_GRID
    gen = torch.Generator().manual_seed(0)
    aff = _affinity(h, w, gen)
    graph_s, graph = _timed(lambda: sparse_power_graph(aff, topk=topk), "graph")
    out: dict = {"grid": [h, w], "nodes": h * w, "features": d, "topk": topk,
                 "graph_nnz": int(graph._nnz()), "sparse_graph_build_s": graph_s}  # fmt: skip
    for k in k_values:
        problem = _problem(graph, h, w, k, d, gen)
        for engine in ("closed_form", "autograd"):  # warm-up: the first call pays ~1 s of set-up
            train_gcn([problem], GcnSettings(steps=3, gradients=engine))
        train_s, fast = _timed(lambda p=problem: train_gcn([p], GcnSettings()), f"K{k}")
        out[f"train_250_steps_s_K{k}"] = train_s
        out[f"total_per_image_s_K{k}"] = graph_s + train_s
        if k == k_values[0]:  # the reference: the same training through autograd
            sep = GcnSettings(merge_absent=False)
            sep_s, separate = _timed(lambda p=problem, s=sep: train_gcn([p], s), "separate")
            out[f"train_250_steps_s_K{k}_separate_outputs"] = sep_s
            out[f"merged_over_separate_K{k}"] = train_s / sep_s
            diff = float((fast[0] - separate[0]).abs().max())
            out[f"merged_vs_separate_max_abs_diff_K{k}"] = diff
            same = (fast[0].argmax(1) == separate[0].argmax(1)).float().mean()
            out[f"merged_vs_separate_label_agreement_K{k}"] = float(same)
            k_only = GcnSettings(outputs=0)
            k_s, _ = _timed(lambda p=problem, s=k_only: train_gcn([p], s), "K_only")
            out[f"train_250_steps_s_K{k}_K_only"] = k_s
            ref = GcnSettings(gradients="autograd")
            ref_s, slow = _timed(lambda p=problem, s=ref: train_gcn([p], s), "autograd")
            out[f"train_250_steps_s_K{k}_autograd"] = ref_s
            out[f"closed_form_speedup_K{k}"] = ref_s / train_s
            # float32 rounding differs, and 250 steps through ReLUs amplify it
            diff = float((fast[0] - slow[0]).abs().max())
            agree = float((fast[0].argmax(1) == slow[0].argmax(1)).float().mean())
            out[f"closed_form_vs_autograd_max_abs_diff_K{k}"] = diff
            out[f"closed_form_vs_autograd_label_agreement_K{k}"] = agree
            # as the pipeline runs it: several images' GCNs in one block-diagonal batch
            batch = [dataclasses.replace(problem, seed=i) for i in range(8)]
            batch_s, _ = _timed(lambda b=batch: train_gcn(b, GcnSettings()), "batch8")
            out[f"train_250_steps_s_per_image_batch8_K{k}"] = batch_s / len(batch)
            out[f"total_per_image_s_batch8_K{k}"] = graph_s + batch_s / len(batch)
            old_s, _ = _timed(lambda b=batch, s=sep: train_gcn(b, s), "batch8_separate")
            out[f"train_250_steps_s_per_image_batch8_K{k}_separate_outputs"] = old_s / len(batch)
            out[f"merged_over_separate_batch8_K{k}"] = batch_s / old_s
    out["load_average_before"] = dict(LOADS)
    return out


def agreement(topk: int, d: int) -> dict:
    h, w = 40, 53
    gen = torch.Generator().manual_seed(1)
    aff = _affinity(h, w, gen)
    dense_s, dense = _timed(lambda: dense_power_graph(aff))
    sparse_s, sparse = _timed(lambda: sparse_power_graph(aff, topk=topk))
    problem = _problem(dense, h, w, 3, d, gen)
    labels = []
    for graph in (dense, sparse):
        p = GcnProblem(adjacency=graph, features=problem.features, seeds=problem.seeds,
                       num_outputs=3, phi=problem.phi, seed=0)  # fmt: skip
        labels.append(train_gcn([p], GcnSettings())[0].argmax(1))
    return {"grid": [h, w], "nodes": h * w, "dense_graph_build_s": dense_s,
            "sparse_graph_build_s": sparse_s, "label_agreement": float((labels[0] == labels[1])
            .float().mean()), "graph_max_abs_diff": float((dense - sparse.to_dense()).abs().max())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/propagation_gcn.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--topk", type=int, default=32)
    parser.add_argument("--features", type=int, default=160)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    result = {
        "speed": speed((3, 21), args.features, args.topk),
        "sparse_vs_dense": agreement(args.topk, args.features),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_before_after": [load, os.getloadavg()[0]],
        "settings": "GcnSettings() defaults: 21 outputs, W2 = 0, entropy over entries",
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    text = json.dumps(result, indent=2) + "\n"
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
