"""WSGCN's sparse graph (b) against the exact graph (a) on a finished run's images.

    python bench/gcn_graph.py --run runs/demo [--limit 200] [--topk 32] [--out FILE]

For the first ``limit`` images of the run's pseudo-label split, the WSGCN-I GCN (IRNet affinity
run, features from the affinity network, all four losses, no dCRF) is trained twice with the same
seeds, features and seed labels: on the exact dense ``T^256`` (graph a) and on the top-k sparse
approximation (graph b). Reported: the largest absolute difference of the two graphs, the share of
pixels whose labels agree, each graph's mIoU against the ground truth (predicted labels never
255), and the seconds per image of building each graph and training the GCNs. The benchmark's
128x128 images give 32x32 grids (N = 1,024 nodes), where the dense power is cheap.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsss.engine.progress import track
from wsss.errors import WsssError
from wsss.gcn.train import train_gcn
from wsss.io.atomic import atomic_write_text
from wsss.io.rundir import RunDir
from wsss.metrics.confusion import ConfusionMatrix
from wsss.pipeline.layout import Context, affinity_run, cam_dir, pseudo_split
from wsss.propagation.infer import create_propagator
from wsss.seeds.infer import read_cam_for_image

GRAPHS = ("dense", "sparse")


def compare(run: Path, limit: int, topk: int, batch: int, progress: bool) -> dict[str, Any]:
    rundir = RunDir(run)
    config = rundir.load_config()
    if config is None:
        raise WsssError("not a run directory (no config.yaml)", run, hint="run `wsss run` first")
    ctx = Context(config=config, rundir=rundir, progress=progress)
    dataset = ctx.dataset(pseudo_split(ctx))
    ids = dataset.ids[:limit]
    props = {g: create_propagator("gcn", graph=g, affinity=affinity_run(ctx, "irn"), crf=False,
                                  topk=topk, seed=int(config["seed"]), device="cpu")
             for g in GRAPHS}  # fmt: skip
    num_classes = dataset.classes.num_classes
    confusion = {g: ConfusionMatrix(num_classes) for g in GRAPHS}
    seconds = {f"{g}_{part}": 0.0 for g in GRAPHS for part in ("graph", "train")}
    agree = total = 0
    graph_diff = 0.0
    groups = [ids[k : k + batch] for k in range(0, len(ids), batch)]
    for group in track(groups, description="graph (a) vs (b)", enabled=progress):
        images = [dataset.load_image(i) for i in group]
        cams = [read_cam_for_image(cam_dir(ctx) / f"{i}.npz", size=im.shape[:2],
                                   num_classes=num_classes, full_resolution=False)
                for i, im in zip(group, images, strict=True)]  # fmt: skip
        keep = [k for k, cam in enumerate(cams) if len(cam.keys)]
        labels: dict[str, list[np.ndarray]] = {}
        problems: dict[str, list] = {}
        for g in GRAPHS:
            start = time.perf_counter()
            problems[g] = [props[g].problem(images[k], cams[k]) for k in keep]
            seconds[f"{g}_graph"] += time.perf_counter() - start
        for dense, sparse in zip(problems["dense"], problems["sparse"], strict=True):
            diff = (dense.adjacency - sparse.adjacency.to_dense()).abs().max()
            graph_diff = max(graph_diff, float(diff))
        for g in GRAPHS:
            start = time.perf_counter()
            probs = train_gcn(problems[g], props[g].settings)
            seconds[f"{g}_train"] += time.perf_counter() - start
            labels[g] = [props[g].finish(images[k], cams[k], p) for k, p in zip(keep, probs,
                                                                                 strict=True)]  # fmt: skip
        for j, k in enumerate(keep):
            gt = dataset.load_mask(group[k])
            for g in GRAPHS:
                confusion[g].update(labels[g][j], gt)
            agree += int((labels["dense"][j] == labels["sparse"][j]).sum())
            total += labels["dense"][j].size
    n = len(ids)
    return {
        "run": str(run),
        "split": pseudo_split(ctx),
        "images": n,
        "topk": topk,
        "pixel_label_agreement": agree / max(total, 1),
        "graph_max_abs_diff": graph_diff,
        "miou_dense_a": confusion["dense"].compute().miou,
        "miou_sparse_b": confusion["sparse"].compute().miou,
        "seconds_per_image": {k: v / max(n, 1) for k, v in seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/demo"))
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--topk", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/gcn_graph.json"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    result = compare(args.run, args.limit, args.topk, args.batch, not args.quiet)
    result.update({
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": args.threads,
        "load_average_before_after": [load, os.getloadavg()[0]],
        "torch": torch.__version__,
        "python": platform.python_version(),
    })  # fmt: skip
    text = json.dumps(result, indent=2) + "\n"
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
