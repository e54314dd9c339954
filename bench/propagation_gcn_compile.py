"""Does fusing the GCN step's element-wise work help? ``torch.compile`` against eager, in one process.

    python bench/propagation_gcn_compile.py [--steps 250] [--runs 3] [--threads 1] \
        [--out bench/results/propagation_gcn_compile.json]

Issue 16 asked to measure, not assume, whether fusing the closed-form step's ~60 small kernels
(``torch.compile``, inductor's CPU backend, which needs a C++ compiler) gets the per-image GCN
closer to 0.5 s. The input is ``bench/propagation_gcn.py``'s (500x375 image, N = 11,750, D = 160,
K = 3, the sparse graph (b)), trained as the pipeline does: a batch of 8 images, the default
``GcnSettings``. Two forms are compiled (``dynamic=False``): ``logit_gradient`` (the loss
gradient of eq. (2), all of the step's element-wise work on ``(B, K, N)``) and the whole
``ClosedFormStep.__call__`` (also the ReLU, dropout and transposing copies around the sparse
products). Eager and compiled runs alternate ``--runs`` times after a warm-up that pays the
compilation; the JSON holds every time, the medians, their ratio and the labels' agreement with
the eager run. Seconds are per image of the batch, training only (the graph build is not
compiled). The machine may be shared: the load average is recorded, and the ratio is what
carries over.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import wsss.gcn.gradients as gradients
from propagation_gcn import VOC_GRID, _affinity, _problem
from wsss.gcn.graphs import sparse_power_graph
from wsss.gcn.train import GcnProblem, GcnSettings, train_gcn
from wsss.io.atomic import atomic_write_text

#: What is compiled: the module attribute that the closed-form step calls.
TARGETS: dict[str, tuple[Any, str]] = {
    "logit_gradient": (gradients, "logit_gradient"),
    "closed_form_step": (gradients.ClosedFormStep, "__call__"),
}


def _batch(size: int = 8) -> list[GcnProblem]:
    gen = torch.Generator().manual_seed(0)
    h, w = VOC_GRID
    graph = sparse_power_graph(_affinity(h, w, gen), topk=32)
    problem = _problem(graph, h, w, 3, 160, gen)
    return [dataclasses.replace(problem, seed=i) for i in range(size)]


def compare(target: str, batch: list[GcnProblem], steps: int, runs: int) -> dict[str, Any]:
    """Alternating eager / compiled runs of ``train_gcn`` with ``target`` compiled."""
    owner, name = TARGETS[target]
    eager: Callable = getattr(owner, name)
    compiled = torch.compile(eager, dynamic=False)
    settings = GcnSettings(steps=steps)

    def run(fn: Callable) -> tuple[float, list[torch.Tensor]]:
        setattr(owner, name, fn)
        try:
            start = time.perf_counter()
            out = train_gcn(batch, settings)
            return (time.perf_counter() - start) / len(batch), out
        finally:
            setattr(owner, name, eager)

    warm_s, _ = run(compiled)
    run(eager)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    outs: dict[str, list[torch.Tensor]] = {}
    for _ in range(runs):
        for key, fn in (("eager", eager), ("compiled", compiled)):
            s, outs[key] = run(fn)
            times[key].append(s)
            print(f"{target} {key}: {s:.3f} s per image", flush=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    pairs = list(zip(outs["eager"], outs["compiled"], strict=True))
    agree = sum(float((a.argmax(1) == b.argmax(1)).float().mean()) for a, b in pairs) / len(pairs)
    return {"seconds_per_image": times, "median": medians,
            "compiled_over_eager": medians["compiled"] / medians["eager"],
            "warm_up_with_compilation_s": warm_s, "label_agreement": agree,
            "max_abs_diff": max(float((a - b).abs().max()) for a, b in pairs)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/propagation_gcn_compile.json")
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch = _batch()
    result: dict[str, Any] = {"steps": args.steps, "runs": args.runs, "threads": args.threads,
                              "batch": len(batch), "nodes": VOC_GRID[0] * VOC_GRID[1],
                              "features": 160,
                              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
                              "torch": torch.__version__, "platform": platform.platform(),
                              "load_average_start": os.getloadavg()}  # fmt: skip
    for target in TARGETS:
        result[target] = compare(target, batch, args.steps, args.runs)
    result["load_average_end"] = os.getloadavg()
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps({t: result[t]["compiled_over_eager"] for t in TARGETS}))


if __name__ == "__main__":
    main()
