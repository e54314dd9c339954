"""Refiners on real photographs, stage by stage (issues 14 and 18): CAM, dense CRF, WSGCN seeds,
the per-image GCN before upsampling, after upsampling and after the dCRF, over GCN seeds.

    python bench/refine_real.py --root VOC2012 --split samples [--cams DIR | --calibration irnet]
        [--configs default,paper_init,...] [--gcn-seeds 0 1 2 3] [--out bench/results/x.json]

Without ``--cams``, CAM files are made from the ground truth the way real CAMs fail
(:func:`wsss.refine.gt_cams.cams_from_mask`, ``--calibration irnet|flat``, ``--cam-seed``) into
``<work>/cams_<calibration>_<cam seed>``; any folder of CAM files (README format) can be given
instead, e.g. a trained network's. All mIoUs are over the split's images (one confusion matrix,
predicted 255 as background unless said otherwise).

Tables:

* **CAM**: the argmax of ``[t, CAMs]`` at its best ``t`` (swept by 0.01) and at 0.15;
* **crf**: ``wsss refine --method crf`` at its default, and over a sweep of ``--bg-threshold``;
* **seeds**: WSGCN seeds (stride 4, upsampled nearest): precision and labelled ratio of the
  foreground and background seeds, and their mIoU over labelled pixels;
* **gcn**: per configuration (options of :func:`wsss.gcn.create_gcn_propagator`) and GCN seed:
  the share of unlabelled nodes the untrained GCN gives to a class (its first guess), the share
  after training, the share of background seeds fitted, and the mIoU of the stride-4 argmax,
  after bilinear upsampling and after the dCRF; mean, spread (std) and range over the seeds;
* **phi**: ``Phi`` of eq. (7) at stride 4 per variant: median weight, share above 0.1, median
  self-weight of the normalised graph, and the image's median squared colour step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from wsss.data.voc import VOCSegmentation
from wsss.gcn import create_gcn_propagator
from wsss.gcn.graphs import phi_graph
from wsss.gcn.infer import image_seed
from wsss.gcn.phi import phi_edges
from wsss.gcn.train import train_gcn
from wsss.graph.sparse import csr_row_indices
from wsss.io.atomic import atomic_write_text
from wsss.io.palette import IGNORE_INDEX
from wsss.metrics.cam_sweep import CamSweep
from wsss.metrics.confusion import ConfusionMatrix
from wsss.refine import CamCrfRefiner
from wsss.refine.calibration import estimate_floor, remove_floor
from wsss.refine.gt_cams import write_gt_cams
from wsss.seeds.infer import read_cam_for_image
from wsss.seeds.resize import downscale_image, upsample_labels
from wsss.seeds.wsgcn import WsgcnSeeds

#: Named GCN configurations: options of create_gcn_propagator over its defaults (W2 = 0, the
#: authors' entropy mean over 21 outputs) and ``colour`` features (the no-network default when
#: these rows were measured; ``rgbxy`` since issue 14); ``seeder``: WsgcnSeeds options (``clean``: seeds that
#: disagree with the ground truth made unlabelled, a diagnostic); ``shared_seed``: every image's
#: GCN seeded with the GCN seed itself (before issue 18).
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    # initialisation and the entropy term (issue 18)
    "nodes_K": {"entropy_mean": "nodes", "outputs": 0},
    "entries_K": {"outputs": 0},
    "nodes_21": {"entropy_mean": "nodes"},
    "glorot": {"init": "glorot"},
    "glorot_nodes_K": {"init": "glorot", "entropy_mean": "nodes", "outputs": 0},
    "glorot_nodes_K_shared_seed": {"init": "glorot", "entropy_mean": "nodes", "outputs": 0,
                                   "shared_seed": True},
    "glorot_entries_K": {"init": "glorot", "outputs": 0},
    "glorot_nodes_21": {"init": "glorot", "entropy_mean": "nodes"},
    "entropy0": {"entropy": 0.0},
    "entropy0_K": {"entropy": 0.0, "outputs": 0},
    # the Laplacian loss and Phi
    "lap_adjacency": {"laplacian_graph": "adjacency"},
    "lap_log": {"laplacian_on_log": True},
    "lap0": {"laplacian": 0.0},
    "phi_code": {"phi_variant": "code"},
    # our no-network options
    "phi_image": {"phi_variant": "image"},
    "walk_image": {"graph": "phi_walk", "phi_variant": "image"},
    "rgbxy": {"features": "rgbxy"},
    "rgbxy_walk_image": {"features": "rgbxy", "graph": "phi_walk", "phi_variant": "image"},
    # diagnostics
    "clean_seeds": {"seeder": {"clean": True}},
    "steps500": {"steps": 500},
}  # fmt: skip


def _miou(preds: list[np.ndarray], gts: list[np.ndarray], pred_ignore: str = "background"
          ) -> float:  # fmt: skip
    cm = ConfusionMatrix(21)
    for p, g in zip(preds, gts, strict=True):
        cm.update(p, g)
    return round(float(cm.compute(pred_ignore).miou), 2)  # type: ignore[arg-type]


def _seed_stats(seeds: list[np.ndarray], gts: list[np.ndarray]) -> dict[str, float]:
    """Precision and labelled ratio of the foreground and background seeds (full resolution)."""
    n = fg = bg = fg_ok = bg_ok = gt_fg = fg_hit = 0
    for s, g in zip(seeds, gts, strict=True):
        up = upsample_labels(s, g.shape)
        valid = g != IGNORE_INDEX
        sf, sb = valid & (up != 0) & (up != IGNORE_INDEX), valid & (up == 0)
        n += int(valid.sum())
        fg, bg = fg + int(sf.sum()), bg + int(sb.sum())
        fg_ok += int((sf & (up == g)).sum())
        bg_ok += int((sb & (g == 0)).sum())
        gt_fg += int((valid & (g != 0)).sum())
        fg_hit += int((sf & (up == g)).sum())
    return {
        "fg_precision": round(100 * fg_ok / max(fg, 1), 2),
        "fg_labelled": round(100 * fg / max(n, 1), 2),
        "fg_recall": round(100 * fg_hit / max(gt_fg, 1), 2),
        "bg_precision": round(100 * bg_ok / max(bg, 1), 2),
        "bg_labelled": round(100 * bg / max(n, 1), 2),
        "miou_labelled": _miou(seeds_up(seeds, gts), gts, "ignore"),
    }


def _grid_gt(gt: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The GT sampled at the stride-4 cell centres (nearest)."""
    rows = np.minimum(((np.arange(grid[0]) + 0.5) * gt.shape[0] / grid[0]).astype(int),
                      gt.shape[0] - 1)  # fmt: skip
    cols = np.minimum(((np.arange(grid[1]) + 0.5) * gt.shape[1] / grid[1]).astype(int),
                      gt.shape[1] - 1)  # fmt: skip
    return gt[rows[:, None], cols[None, :]]


def seeds_up(seeds: list[np.ndarray], gts: list[np.ndarray]) -> list[np.ndarray]:
    return [upsample_labels(s, g.shape) for s, g in zip(seeds, gts, strict=True)]


def _phi_stats(images: list[np.ndarray], grids: list[tuple[int, int]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    steps = []
    for image, grid in zip(images, grids, strict=True):
        small = torch.from_numpy(downscale_image(image, grid)).float()
        d = small[:, 1:] - small[:, :-1]
        steps.append(float((d * d).sum(-1).median()))
    out["median_squared_colour_step_0_255"] = round(statistics.median(steps), 1)
    for variant in ("paper", "code"):
        med, above, selfw = [], [], []
        for image, grid in zip(images, grids, strict=True):
            small = torch.from_numpy(downscale_image(image, grid))
            _, _, w = phi_edges(small, variant=variant)
            med.append(float(w.median()))
            above.append(float((w > 0.1).float().mean()))
            a = phi_graph(small, variant=variant)
            rows, cols = csr_row_indices(a), a.col_indices().to(torch.int64)
            selfw.append(float(a.values()[rows == cols].median()))
        out[variant] = {"median_phi": statistics.median(med),
                        "share_above_0.1": round(100 * statistics.mean(above), 1),
                        "median_self_weight": round(statistics.median(selfw), 3)}  # fmt: skip
    return out


def _cam_sweep(cams, gts) -> dict[str, Any]:
    """The CAM argmax over background thresholds 0.00..0.95 (stride-4 maps upsampled
    bilinearly, as ``wsss eval --cams``)."""
    sweep = CamSweep(21, [k / 100 for k in range(96)])
    for cam, gt in zip(cams, gts, strict=True):
        low = torch.from_numpy(np.asarray(cam.cams, dtype=np.float32))[None]
        up = F.interpolate(low, size=gt.shape, mode="bilinear", align_corners=False)[0]
        sweep.update(cam.keys, up, gt)
    res = sweep.compute()
    return {"best_threshold": res.best_threshold, "best": round(float(res.best.miou), 2),
            "at_0.15": round(float(res.at(0.15).miou), 2)}  # fmt: skip


def _crf_rows(images, cams, gts, thresholds) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for t in thresholds:
        refiner = CamCrfRefiner(bg_threshold=t)
        rows[f"{t:.2f}"] = _miou([refiner(im, c) for im, c in zip(images, cams, strict=True)], gts)
    best = max(rows, key=lambda k: rows[k])
    return {"sweep": rows, "best_threshold": float(best), "best": rows[best]}


def _gcn_config(name, cfg, ids, images, cams, gts, seed_cache, gcn_seeds, device) -> dict:
    cfg = {"features": "colour", **cfg}
    shared = cfg.pop("shared_seed", False)
    seeder_opts = dict(cfg.pop("seeder", {}))
    clean = seeder_opts.pop("clean", False)
    propagator = create_gcn_propagator(device=device, **cfg)
    if seeder_opts:
        propagator.seeder = WsgcnSeeds(**seeder_opts)
    key = repr(sorted(seeder_opts.items()))
    if key not in seed_cache:
        seed_cache[key] = [propagator.seeder(im, c) for im, c in zip(images, cams, strict=True)]
    seeds = seed_cache[key]
    if clean:  # diagnostic: the seeds that disagree with the ground truth made unlabelled
        seeds = [np.where(s == _grid_gt(g, s.shape), s, IGNORE_INDEX).astype(np.uint8)
                 for s, g in zip(seeds, gts, strict=True)]  # fmt: skip
    t0 = time.perf_counter()
    base = [propagator.problem(im, c, s, image_id=i)
            for i, im, c, s in zip(ids, images, cams, seeds, strict=True)]  # fmt: skip
    build_s = time.perf_counter() - t0
    runs = []
    for gs in gcn_seeds:
        problems = [dataclasses.replace(p, seed=gs if shared else image_seed(gs, i))
                    for p, i in zip(base, ids, strict=True)]  # fmt: skip
        first = train_gcn(problems, dataclasses.replace(propagator.settings, steps=0))
        t0 = time.perf_counter()
        probs = train_gcn(problems, propagator.settings)
        train_s = time.perf_counter() - t0
        unl = [p.seeds == IGNORE_INDEX for p in problems]
        bgs = [p.seeds == 0 for p in problems]
        guess = [
            float((q.argmax(1)[u] > 0).float().mean()) for q, u in zip(first, unl, strict=True)
        ]
        after = [
            float((q.argmax(1)[u] > 0).float().mean()) for q, u in zip(probs, unl, strict=True)
        ]
        bgfit = [float((q.argmax(1)[b] == 0).float().mean()) if b.any() else 1.0
                 for q, b in zip(probs, bgs, strict=True)]  # fmt: skip
        grid_labels, up_labels, crf_labels = [], [], []
        for im, c, q, g in zip(images, cams, probs, gts, strict=True):
            keys = np.concatenate([[0], c.keys]).astype(np.uint8)
            grid = keys[q.argmax(1).cpu().numpy()].reshape(c.cams.shape[1:])
            grid_labels.append(upsample_labels(grid, g.shape))
            up_labels.append(propagator.finish(im, c, q, crf=False))
            crf_labels.append(propagator.finish(im, c, q, crf=True))
        runs.append({
            "gcn_seed": gs, "train_s": round(train_s, 2),
            "first_guess_fg_share": [round(100 * v, 1) for v in guess],
            "fg_share_after": [round(100 * v, 1) for v in after],
            "bg_seeds_fitted": [round(100 * v, 1) for v in bgfit],
            "grid": _miou(grid_labels, gts), "upsampled": _miou(up_labels, gts),
            "crf": _miou(crf_labels, gts),
        })  # fmt: skip
    summary = {}
    for stage in ("grid", "upsampled", "crf"):
        vals = [r[stage] for r in runs]
        summary[stage] = {"mean": round(statistics.mean(vals), 2),
                          "std": round(statistics.pstdev(vals), 2),
                          "range": round(max(vals) - min(vals), 2)}  # fmt: skip
    return {"options": cfg | ({"shared_seed": True} if shared else {}),
            "seeder": seeder_opts | ({"clean": True} if clean else {}),
            "build_s": round(build_s, 2), "runs": runs, "summary": summary}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="/work/shared/data/voc-samples/VOC2012")
    parser.add_argument("--split", default="samples")
    parser.add_argument("--cams", type=Path, default=None, help="folder of CAM files")
    parser.add_argument("--calibration", default="irnet", help="GT-made CAMs: irnet or flat")
    parser.add_argument("--cam-seed", type=int, default=0)
    parser.add_argument("--cam-floor", default="auto", help="as wsss refine: auto or a number")
    parser.add_argument("--work", type=Path, default=Path("runs/refine_real"))
    parser.add_argument("--configs", default="default")
    parser.add_argument("--gcn-seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--crf-thresholds", type=float, nargs="*",
                        default=[0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6])  # fmt: skip
    parser.add_argument("--skip", nargs="*", default=[], help="cam, crf, seeds, phi, gcn")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = VOCSegmentation(args.root, args.split)
    ids = list(dataset.ids)
    cam_dir = args.cams
    if cam_dir is None:
        cam_dir = args.work / f"cams_{args.calibration}_{args.cam_seed}"
        masks = {i: dataset.load_mask(i) for i in ids}
        write_gt_cams(masks, cam_dir, seed=args.cam_seed, calibration=args.calibration)
    images = [dataset.load_image(i) for i in ids]
    gts = [dataset.load_mask(i) for i in ids]
    raw = [read_cam_for_image(cam_dir / f"{i}.npz", size=im.shape[:2], num_classes=21,
                              full_resolution=False) for i, im in zip(ids, images, strict=True)]  # fmt: skip
    floor = estimate_floor(cam_dir, ids) if args.cam_floor == "auto" else float(args.cam_floor)
    cams = [remove_floor(c, floor) for c in raw]  # as wsss refine does
    result: dict[str, Any] = {
        "root": str(args.root), "split": args.split, "images": ids, "cams": str(cam_dir),
        "calibration": None if args.cams else args.calibration, "cam_seed": args.cam_seed,
        "cam_floor": floor, "cam_floor_rule": args.cam_floor,
        "threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "platform": platform.platform(), "load_average": os.getloadavg(),
    }  # fmt: skip
    if "cam" not in args.skip:
        result["cam"] = {"as_given": _cam_sweep(raw, gts), "floor_removed": _cam_sweep(cams, gts)}
        print("CAM", result["cam"])
    if "crf" not in args.skip:  # the sweep on the CAMs as given; the default as wsss refine
        result["crf"] = _crf_rows(images, raw, gts, args.crf_thresholds)
        result["crf"]["default"] = _miou([CamCrfRefiner()(im, c) for im, c in
                                          zip(images, cams, strict=True)], gts)  # fmt: skip
        result["crf"]["at_0.15_as_given"] = result["crf"]["sweep"].get("0.15")
        print("crf", result["crf"])
    if "phi" not in args.skip:
        result["phi"] = _phi_stats(images, [tuple(c.cams.shape[1:]) for c in cams])
        print("phi", result["phi"])

    def save() -> None:  # after every table, so an interrupted run keeps what it measured
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")

    seed_cache: dict[str, list[np.ndarray]] = {}
    if "seeds" not in args.skip:
        seeder = WsgcnSeeds()
        seed_cache[repr([])] = [seeder(im, c) for im, c in zip(images, cams, strict=True)]
        result["seeds"] = _seed_stats(seed_cache[repr([])], gts)
        print("seeds", result["seeds"])
    save()
    if "gcn" not in args.skip:
        result["gcn"] = {}
        for name in args.configs.split(","):
            row = _gcn_config(name, CONFIGS[name], ids, images, cams, gts, seed_cache,
                              args.gcn_seeds, args.device)  # fmt: skip
            result["gcn"][name] = row
            print(name, row["summary"], [r["crf"] for r in row["runs"]],
                  "first guess fg %:", [statistics.mean(r["first_guess_fg_share"]) for r in
                                        row["runs"]])  # fmt: skip
            save()


if __name__ == "__main__":
    main()
