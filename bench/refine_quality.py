"""``wsss refine`` quality on real photographs (issue 14): the CAM argmax at its best
background threshold, ``--method crf`` at its default (``--bg-threshold auto``) and at 0.15, and
``--method gcn`` (Phi graph, dCRF) with colour and position features (``rgbxy``, the default),
with the CAMs added to them (``colour``) and with the ImageNet Lite0 backbone's features, as
``wsss refine`` runs them (:func:`wsss.refine.refine_folder`).

    python bench/refine_quality.py [--root VOC2012 --split samples] [--gt irnet:0 flat:0] \
        [--cams NAME=DIR ...] [--rows cam,crf,crf_0.15,gcn_rgbxy,gcn_colour,gcn_lite0] \
        [--gcn-seed 0] [--painted] [--out bench/results/x.json]

``--affinity RUN`` (a ``wsss train-affinity`` run of IRNet) adds the rows ``rw`` (its random walk,
``wsss refine --method rw``) and ``gcn_irnet`` (WSGCN-I: the GCN on its sparse ``T^256`` graph and
edge features), e.g. on the shipped benchmark with a demo run's CAMs.

``--painted`` refines each photo's ground truth painted in the VOC palette (void pixels given
their nearest label) instead of the photo: colours, and so a Phi graph, that follow the objects
exactly, which separates what the refiner does from what the photo's colours allow (issue 14).

``--gt calibration:seed`` makes CAM files from the ground truth the way real CAMs fail
(:func:`wsss.refine.gt_cams.write_gt_cams`); ``--cams NAME=DIR`` adds folders of CAM files,
e.g. ``wsss cam --model imagenet``'s. mIoU (%) over the split (one confusion matrix); seconds
per image of the whole refine call (one thread by default; a loaded machine inflates them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from refine_threshold import add_folder_args, cam_folders
from wsss.data.voc import VOCSegmentation
from wsss.io.atomic import atomic_write_text
from wsss.io.images import read_label_png
from wsss.metrics.cam_sweep import CamSweep
from wsss.metrics.confusion import ConfusionMatrix
from wsss.refine import create_refiner, refine_folder
from wsss.refine.calibration import estimate_floor, remove_floor
from wsss.seeds.infer import read_cam_for_image


def _refiner(row: str, seed: int, affinity: Path | None = None) -> Any:
    if row in ("rw", "gcn_irnet") and affinity is None:
        raise SystemExit(f"row {row} needs --affinity")
    if row == "rw":
        return create_refiner("rw", affinity=affinity)
    if row == "gcn_irnet":
        return create_refiner("gcn", seed=seed, affinity=affinity)
    if row == "crf":
        return create_refiner("crf", bg_threshold="auto")
    if row == "crf_0.15":
        return create_refiner("crf", bg_threshold=0.15)
    if row == "gcn_rgbxy":
        return create_refiner("gcn", seed=seed)
    if row == "gcn_colour":
        return create_refiner("gcn", seed=seed, features="colour")
    if row == "gcn_lite0":
        from wsss.cam.imagenet import imagenet_backbone

        return create_refiner("gcn", seed=seed, backbone=imagenet_backbone())
    raise ValueError(f"unknown row {row!r}")


def _cam_best(folder: Path, dataset: VOCSegmentation) -> dict[str, Any]:
    """The CAM argmax over background thresholds 0.00..0.95, floor removed as refine does."""
    ids = list(dataset.ids)
    floor = estimate_floor(folder, ids)
    sweep = CamSweep(21, [k / 100 for k in range(96)])
    for image_id in ids:
        gt = dataset.load_mask(image_id)
        cam = remove_floor(read_cam_for_image(folder / f"{image_id}.npz", size=gt.shape,
                                              num_classes=21, full_resolution=False), floor)  # fmt: skip
        low = torch.from_numpy(np.asarray(cam.cams, dtype=np.float32))[None]
        up = F.interpolate(low, size=gt.shape, mode="bilinear", align_corners=False)[0]
        sweep.update(cam.keys, up, gt)
    res = sweep.compute()
    return {"miou": round(float(res.best.miou), 2), "best_threshold": res.best_threshold,
            "at_0.15": round(float(res.at(0.15).miou), 2)}  # fmt: skip


def _score(out: Path, dataset: VOCSegmentation) -> float:
    cm = ConfusionMatrix(21)
    for image_id in dataset.ids:
        cm.update(read_label_png(out / f"{image_id}.png"), dataset.load_mask(image_id))
    return round(float(cm.compute("background").miou), 2)


def painted_images(dataset: VOCSegmentation, folder: Path) -> Path:
    """``<folder>/<id>.png``: each image's ground truth in the VOC palette, void pixels given
    their nearest label."""
    from PIL import Image
    from scipy import ndimage

    from wsss.io.palette import voc_palette

    folder.mkdir(parents=True, exist_ok=True)
    for image_id in dataset.ids:
        gt = dataset.load_mask(image_id)
        nearest = ndimage.distance_transform_edt(gt == 255, return_distances=False,
                                                 return_indices=True)  # fmt: skip
        painted = voc_palette()[gt[tuple(nearest)]].astype(np.uint8)
        Image.fromarray(painted).save(folder / f"{image_id}.png")
    return folder


def bench_folder(name: str, folder: Path, dataset: VOCSegmentation, rows: list[str],
                 work: Path, seed: int, images: Path,
                 affinity: Path | None = None) -> dict[str, Any]:  # fmt: skip
    result: dict[str, Any] = {"cams": str(folder)}
    for row in rows:
        if row == "cam":
            result[row] = _cam_best(folder, dataset)
        else:
            labels = "labels_painted" if images.name == "painted" else "labels"
            out = work / labels / f"{folder.parent.name}_{folder.name}_{row}"
            refiner = _refiner(row, seed, affinity)
            t0 = time.perf_counter()
            done = refine_folder(images, folder, out, refiner, batch_size=6, progress=False)
            seconds = (time.perf_counter() - t0) / max(done["written"], 1)
            result[row] = {"miou": _score(out, dataset), "bg_threshold": done["bg_threshold"],
                           "seconds_per_image": round(seconds, 2) if done["written"] else None}  # fmt: skip
        print(name, row, result[row], flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_folder_args(parser, ["irnet:0", "flat:0"], "runs/refine_quality")
    parser.add_argument("--rows", default="cam,crf,crf_0.15,gcn_rgbxy,gcn_colour,gcn_lite0")
    parser.add_argument("--gcn-seed", type=int, default=0)
    parser.add_argument("--painted", action="store_true", help="the painted ground truth")
    parser.add_argument("--affinity", type=Path, default=None, help="an IRNet affinity run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = VOCSegmentation(args.root, args.split)
    folders = cam_folders(dataset, args.gt, args.cams, args.work)
    rows = args.rows.split(",")
    images = (painted_images(dataset, args.work / "painted") if args.painted
              else Path(dataset.root) / "JPEGImages")  # fmt: skip
    result = {"command": "python bench/refine_quality.py --gt " + " ".join(args.gt)
              + "".join(f" --cams '{c}'" for c in args.cams) + f" --rows {args.rows}"
              f" --gcn-seed {args.gcn_seed} --threads {args.threads}"
              + (" --painted" if args.painted else "")
              + (f" --affinity {args.affinity}" if args.affinity else ""), "painted": args.painted,
              "root": args.root, "split": args.split, "threads": args.threads,
              "platform": platform.platform(), "load_average_start": os.getloadavg(),
              "folders": {name: bench_folder(name, folder, dataset, rows, args.work, args.gcn_seed,
                                               images, args.affinity)
                          for name, folder in folders.items()}}  # fmt: skip
    result["load_average_end"] = os.getloadavg()
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
