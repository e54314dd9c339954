"""The dense CRF's background plane on real photographs (issue 14): ``wsss refine --method crf
--bg-threshold auto`` against the fixed 0.15 and the best plane of a sweep, on CAMs of several
calibrations.

    python bench/refine_threshold.py [--root VOC2012 --split samples] \
        [--gt irnet:0 irnet:1 flat:0 flat:1] [--cams NAME=DIR ...] [--out bench/results/x.json]

``--gt calibration:seed`` makes CAM files from the ground truth the way real CAMs fail
(:func:`wsss.refine.gt_cams.write_gt_cams`) into ``<work>/cams_<calibration>_<seed>``;
``--cams NAME=DIR`` adds any folder of CAM files (e.g. ``wsss cam --model imagenet``'s). For
each folder, as ``wsss refine`` does: the floor is removed (``--cam-floor auto``), then the CRF
runs at the rules' planes (``median``: the default ``auto``; the ``mean``, ``otsu`` and other
quantiles of the same pooled values, alternatives) and at every plane of the sweep. mIoU (%) over the split's images,
one confusion matrix; seconds per image of the CRF at the ``auto`` plane (one thread by default;
a loaded machine inflates them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from skimage.filters import threshold_otsu

from wsss.data.voc import VOCSegmentation
from wsss.io.atomic import atomic_write_text
from wsss.metrics.confusion import ConfusionMatrix
from wsss.refine import CamCrfRefiner
from wsss.refine.calibration import (
    estimate_bg_threshold,
    estimate_floor,
    max_cam_values,
    remove_floor,
)
from wsss.refine.gt_cams import write_gt_cams
from wsss.seeds.infer import read_cam_for_image

SWEEP = sorted([k / 100 for k in range(4, 42, 2)] + [0.15, 0.45, 0.5, 0.6])
#: Other quantiles of the pooled values than the median, tried as rules.
QUANTILES = [0.3, 0.4, 0.6, 0.7]


def _miou(refiner: CamCrfRefiner, images, cams, gts) -> tuple[float, float]:
    cm = ConfusionMatrix(21)
    t0 = time.perf_counter()
    for image, cam, gt in zip(images, cams, gts, strict=True):
        cm.update(refiner(image, cam), gt)
    seconds = (time.perf_counter() - t0) / len(images)
    return round(float(cm.compute("background").miou), 2), round(seconds, 3)


def _rules(cam_dir: Path, ids: list[str], floor: float) -> dict[str, float]:
    values = np.clip((max_cam_values(cam_dir, ids) - floor) / (1 - floor), 0, 1)
    return {"median (auto)": round(estimate_bg_threshold(cam_dir, ids, floor), 4),
            "mean": round(float(values.mean()), 4),
            "otsu": round(float(threshold_otsu(values)), 4),
            **{f"quantile {q:.1f}": round(float(np.quantile(values, q)), 4) for q in QUANTILES}}  # fmt: skip


def bench_folder(cam_dir: Path, dataset: VOCSegmentation) -> dict:
    ids = list(dataset.ids)
    images = [dataset.load_image(i) for i in ids]
    gts = [dataset.load_mask(i) for i in ids]
    floor = round(estimate_floor(cam_dir, ids), 6)
    cams = [remove_floor(read_cam_for_image(cam_dir / f"{i}.npz", size=im.shape[:2],
                                            num_classes=21, full_resolution=False), floor)
            for i, im in zip(ids, images, strict=True)]  # fmt: skip
    sweep = {f"{t:.2f}": _miou(CamCrfRefiner(bg_threshold=t), images, cams, gts)[0] for t in SWEEP}
    best = max(sweep, key=lambda k: sweep[k])
    rules = {}
    for name, t in _rules(cam_dir, ids, floor).items():
        score, seconds = _miou(CamCrfRefiner(bg_threshold=t), images, cams, gts)
        rules[name] = {"threshold": t, "miou": score, "below_best": round(sweep[best] - score, 2),
                       "seconds_per_image": seconds}  # fmt: skip
    out = {"cams": str(cam_dir), "cam_floor": floor, "rules": rules, "sweep": sweep,
           "best_threshold": float(best), "best": sweep[best],
           "at_0.15": sweep["0.15"], "0.15_below_best": round(sweep[best] - sweep["0.15"], 2)}  # fmt: skip
    print(json.dumps(out), flush=True)
    return out


def cam_folders(dataset: VOCSegmentation, gt: list[str], cams: list[str], work: Path
                ) -> dict[str, Path]:  # fmt: skip
    """``{name: folder}``: ``gt`` specs ``calibration:seed`` written from the ground truth into
    ``<work>/cams_<calibration>_<seed>``, then ``cams`` specs ``NAME=DIR``."""
    folders = {}
    for spec in gt:
        calibration, seed = spec.split(":")
        folder = work / f"cams_{calibration}_{seed}"
        write_gt_cams({i: dataset.load_mask(i) for i in dataset.ids}, folder, seed=int(seed),
                      calibration=calibration)  # fmt: skip
        folders[f"gt {calibration}, CAM seed {seed}"] = folder
    for spec in cams:
        name, folder = spec.split("=", 1)
        folders[name] = Path(folder)
    return folders


def add_folder_args(parser: argparse.ArgumentParser, gt: list[str], work: str) -> None:
    """The options of the photos and their CAM folders (:func:`cam_folders`), threads, out."""
    parser.add_argument("--root", default="/work/shared/data/voc-samples/VOC2012")
    parser.add_argument("--split", default="samples")
    parser.add_argument("--gt", nargs="*", default=gt, help="calibration:seed CAMs from the gt")
    parser.add_argument("--cams", nargs="*", default=[], help="NAME=DIR folders of CAM files")
    parser.add_argument("--work", type=Path, default=Path(work))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_folder_args(parser, ["irnet:0", "irnet:1", "flat:0", "flat:1"], "runs/refine_threshold")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = VOCSegmentation(args.root, args.split)
    folders = cam_folders(dataset, args.gt, args.cams, args.work)
    result = {"command": "python bench/refine_threshold.py " + " ".join(
                  f"--{k} {' '.join(v) if isinstance(v, list) else v}"
                  for k, v in (("gt", args.gt), ("cams", args.cams)) if v),
              "root": args.root, "split": args.split, "threads": args.threads,
              "platform": platform.platform(), "load_average": os.getloadavg(),
              "folders": {name: bench_folder(folder, dataset) for name, folder in folders.items()}}  # fmt: skip
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
