"""Evaluate label PNGs or CAM files of a split against its GT masks (SPEC section 0).

Each process evaluates its exact shard ``shard(dataset.ids, rank, world)``; int64 counts are then
summed over processes, so the results equal those of one process. Returned dicts are JSON-ready
(NaN becomes None), percentages in [0, 100].
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import track

from wsss.data.base import SegmentationDataset
from wsss.engine import dist_info, shard
from wsss.errors import WsssError
from wsss.io.cams import read_cams
from wsss.io.images import read_label_png
from wsss.metrics.boundary import BoundaryFScore
from wsss.metrics.cam_sweep import DEFAULT_THRESHOLDS, CamSweep
from wsss.metrics.confusion import (
    PRED_IGNORE_POLICIES,
    ConfusionMatrix,
    PredIgnore,
    all_reduce_counts,
    json_float,
)

#: Fixed background thresholds reported with every CAM sweep: IRNet 0.15, AffinityNet 0.2.
REFERENCE_THRESHOLDS: tuple[float, ...] = (0.15, 0.2)


def _my_ids(dataset: SegmentationDataset, progress: bool, what: str) -> Iterable[str]:
    info = dist_info()
    ids = shard(dataset.ids, info.rank, info.world)
    return track(ids, description=what, disable=not progress or info.rank != 0)


def _load_gt(dataset: SegmentationDataset, image_id: str) -> np.ndarray:
    """The GT mask, checked against its image's size (a wrong mask is named as such)."""
    mask = dataset.load_mask(image_id, size=dataset.image_size(image_id))
    if mask is None:
        raise WsssError(f"no GT mask for image {image_id!r}: this split cannot be evaluated")
    return mask


def _count_images(n: int) -> int:
    return int(all_reduce_counts(torch.tensor([n], dtype=torch.int64))[0])


def evaluate_predictions(
    dataset: SegmentationDataset,
    pred_dir: Path,
    *,
    pred_ignore: PredIgnore = "background",
    boundary: bool = True,
    tolerance: float = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """mIoU (both predicted-255 policies), accuracies and boundary F of ``<pred_dir>/<id>.png``.

    Args:
        dataset: The split with GT masks.
        pred_dir: Folder of label PNGs named by image id (255 = unlabelled).
        pred_ignore: Policy of the headline ``miou``: ``"background"`` (IRNet) or ``"ignore"``
            (WSGCN); both mIoUs are always reported.
        boundary: Also compute the boundary F-score.
        tolerance: Boundary match distance in pixels.
        progress: Show a progress bar (rank 0 only).

    Returns:
        ``num_images``, ``pred_ignore``, ``miou``, ``miou_pred255_background``,
        ``miou_pred255_ignored``, ``pixel_accuracy``, ``mean_class_accuracy``, ``labelled_ratio``,
        ``num_pixels``, ``iou`` / ``precision`` / ``recall`` by class name (classes in GT or
        predicted), and ``boundary`` (see :meth:`BoundaryScores.to_dict`) or None.

    Raises:
        WsssError: a prediction is missing, unreadable, of the wrong size or has ids out of range.
    """
    if pred_ignore not in PRED_IGNORE_POLICIES:
        raise ValueError(f"pred_ignore must be one of {PRED_IGNORE_POLICIES}, got {pred_ignore!r}")
    num_classes = dataset.classes.num_classes
    cm = ConfusionMatrix(num_classes)
    bf = BoundaryFScore(num_classes, tolerance=tolerance) if boundary else None
    n = 0
    for image_id in _my_ids(dataset, progress, "Evaluating predictions"):
        gt = _load_gt(dataset, image_id)
        path = Path(pred_dir) / f"{image_id}.png"
        pred = read_label_png(path, size=gt.shape, num_classes=num_classes, what="prediction",
                              reference="the image's and ground truth's")  # fmt: skip
        cm.update(pred, gt)
        if bf is not None:
            bf.update(pred, gt)
        n += 1
    cm.reduce()
    names = dataset.classes.names
    result: dict[str, Any] = {"num_images": _count_images(n)}
    result.update(cm.compute(pred_ignore).to_dict(names))
    result["miou_pred255_background"] = json_float(cm.compute("background").miou)
    result["miou_pred255_ignored"] = json_float(cm.compute("ignore").miou)
    result["boundary"] = None if bf is None else bf.reduce().compute().to_dict(names)
    return result


def _full_res_cams(
    path: Path, num_classes: int, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | torch.Tensor]:
    """Keys and ``(K, H, W)`` maps at the GT size."""
    cam = read_cams(path, num_classes=num_classes)
    if cam.size != size:
        raise WsssError(f"CAM file is for a {cam.size} (HxW) image, GT mask is {size}", path)
    if cam.high_res is not None:
        return cam.keys, cam.high_res
    low = torch.from_numpy(cam.cams.astype(np.float32))[None]
    if low.shape[1] == 0:
        return cam.keys, np.zeros((0, *size), dtype=np.float32)
    high = F.interpolate(low, size=size, mode="bilinear", align_corners=False)[0]
    return cam.keys, high


def evaluate_cams(
    dataset: SegmentationDataset,
    cam_dir: Path,
    *,
    thresholds: Sequence[float] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """mIoU of the CAM labels ``argmax([t, CAMs])`` of ``<cam_dir>/<id>.npz`` over thresholds.

    Full-resolution maps (``high_res``) are used when stored, else the stride-4 maps upsampled
    bilinearly (``align_corners=False``) to the GT size. 0.15 and 0.2 are always swept.

    Args:
        dataset: The split with GT masks.
        cam_dir: Folder of CAM files named by image id.
        thresholds: Background thresholds (default 0.00..0.95 by 0.05).
        progress: Show a progress bar (rank 0 only).

    Returns:
        ``num_images``, ``curve`` (list of ``{"threshold", "miou"}``), ``best_threshold``,
        ``best`` (scores at the best threshold, see :meth:`SegmentationScores.to_dict`), and
        ``miou_at`` (``{"0.15": ..., "0.20": ...}``).

    Raises:
        WsssError: a CAM file is missing, corrupt, or of another image size.
    """
    chosen = DEFAULT_THRESHOLDS if thresholds is None else tuple(float(t) for t in thresholds)
    swept = sorted({*chosen, *REFERENCE_THRESHOLDS})
    num_classes = dataset.classes.num_classes
    sweep = CamSweep(num_classes, swept)
    n = 0
    for image_id in _my_ids(dataset, progress, "Evaluating CAMs"):
        gt = _load_gt(dataset, image_id)
        keys, maps = _full_res_cams(Path(cam_dir) / f"{image_id}.npz", num_classes, gt.shape)
        sweep.update(keys, maps, gt)
        n += 1
    result = sweep.reduce().compute()
    return {
        "num_images": _count_images(n),
        "curve": [{"threshold": t, "miou": json_float(m)} for t, m in result.curve],
        "best_threshold": result.best_threshold,
        "best": result.best.to_dict(dataset.classes.names),
        "miou_at": {f"{t:.2f}": json_float(result.at(t).miou) for t in REFERENCE_THRESHOLDS},
    }
