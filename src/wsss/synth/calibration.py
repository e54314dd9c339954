"""Calibrating the synthetic benchmark: figures of the data and of the CAM classifier only.

The benchmark is tuned (``docs/synthetic.md``, *Calibration*) by properties that do not involve
the methods it exists to compare:

* :func:`data_statistics`: object pixel share, part share of each object, objects per image, how
  often the scene is the first class's preferred one;
* :func:`colour_oracle`: mIoU of the colour-only classifier (:mod:`wsss.baselines.colour`);
* :func:`segmentation_statistics`: a network trained on the ground truth (the supervised
  ceiling), with its foreground/background IoU and class accuracy on foreground pixels;
* :func:`cam_statistics`: the CAMs at their best background threshold: mIoU, per-object
  coverage, part against body coverage, and false positives on the preferred scene against the
  other scenes.

Seeds, random walks, GCNs, group CAMs and segmentation on pseudo labels are deliberately absent.

The per-pixel part/body masks and per-image scenes come from the version-3 files
(``SegmentationPart``, ``SynthAnnotations``); a version-2 folder has none, so its images are
re-rendered from ``meta.json``'s seed and size (deterministic, the same bytes as written).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wsss.baselines.colour import ColourClassifier
from wsss.data.base import SegmentationDataset
from wsss.errors import WsssError
from wsss.io.images import read_label_png
from wsss.io.palette import IGNORE_INDEX
from wsss.metrics.cam_sweep import DEFAULT_THRESHOLDS, CamSweep
from wsss.metrics.confusion import ConfusionMatrix, json_float
from wsss.metrics.evaluate import _full_res_cams
from wsss.synth.design import CLASS_DESIGNS
from wsss.synth.generate import (
    ANNOTATION_DIR,
    PART_DIR,
    PART_MAP_BODY,
    PART_MAP_PART,
    part_map,
    render_sample,
)

#: Objects with fewer visible pixels are left out of the per-object coverage (a few pixels
#: left by occlusion say nothing about how much of an object a CAM covers).
MIN_OBJECT_PIXELS = 20


@dataclass(frozen=True)
class ImageTruth:
    """What was drawn in one image.

    Shapes:
        label: ``(H, W)`` class ids (255 void); instances: ``(H, W)`` instance ids (0 background,
        255 void); parts: ``(H, W)`` 0 background, 1 body, 2 part, 255 void.

    Attributes:
        scene: The scene type.
        objects: The ``SynthAnnotations`` records of the objects (``instance_id``, ``class_id``,
            ``visible``, ``part_visible``, ...).
    """

    label: np.ndarray
    instances: np.ndarray
    parts: np.ndarray
    scene: str
    objects: list[dict[str, Any]]


def preferred_scene(class_id: int) -> str:
    """The scene class ``class_id`` (1..10) prefers (the same in versions 2 and 3)."""
    return CLASS_DESIGNS[class_id - 1].scene


def load_truth(dataset: SegmentationDataset, image_id: str) -> ImageTruth:
    """The masks, part/body map, scene and objects of one image of a synthetic benchmark.

    Raises:
        WsssError: the dataset is not a synthetic benchmark, or a file is missing.
    """
    meta = getattr(dataset, "meta", None)
    if not isinstance(meta, dict) or "generator_version" not in meta:
        raise WsssError("not a synthetic benchmark (no meta.json)", dataset.root)
    root = Path(dataset.root)
    if str(meta["generator_version"]) == "2":
        split, index = image_id.rsplit("_", 1)
        r = render_sample(int(meta["seed"]), split, int(index), int(meta["size"]), "2")
        return ImageTruth(r.label, r.instances, part_map(r), r.scene, _v2_objects(r))
    path = root / ANNOTATION_DIR / f"{image_id}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise WsssError(f"unreadable annotation ({err})", path) from None
    return ImageTruth(
        label=read_label_png(root / "SegmentationClass" / f"{image_id}.png"),
        instances=read_label_png(root / "SegmentationObject" / f"{image_id}.png"),
        parts=read_label_png(root / PART_DIR / f"{image_id}.png"),
        scene=str(record["scene"]),
        objects=list(record["objects"]),
    )


def _v2_objects(r: Any) -> list[dict[str, Any]]:
    return [{"instance_id": o.instance_id, "class_id": o.class_id, "visible": o.visible,
             "part_visible": o.part_visible, "area": o.area, "part_area": o.part_area}
            for o in r.objects]  # fmt: skip


def truths(dataset: SegmentationDataset) -> Iterable[tuple[str, ImageTruth]]:
    """``(id, truth)`` of every image of ``dataset``."""
    for image_id in dataset.ids:
        yield image_id, load_truth(dataset, image_id)


def _median(values: Sequence[float]) -> float | None:
    return json_float(float(np.median(values))) if len(values) else None


def data_statistics(dataset: SegmentationDataset) -> dict[str, Any]:
    """Pixel and object statistics of a split (percentages).

    Returns:
        ``object_pixels`` (labelled object pixels over labelled pixels), ``void_pixels``,
        ``objects_per_image``, ``part_share_median`` / ``part_share_p5`` / ``part_share_p95``
        (visible part pixels over visible object pixels, objects with at least
        :data:`MIN_OBJECT_PIXELS`), ``preferred_scene`` (images whose scene is their first
        object's preferred scene), ``images``.
    """
    fg = labelled = void = total = 0
    shares, counts, preferred = [], [], []
    for _, t in truths(dataset):
        valid = t.label != IGNORE_INDEX
        fg += int((valid & (t.label > 0)).sum())
        labelled += int(valid.sum())
        void += int((~valid).sum())
        total += t.label.size
        counts.append(len(t.objects))
        if t.objects:
            preferred.append(t.scene == preferred_scene(int(t.objects[0]["class_id"])))
        for o in t.objects:
            if o["visible"] >= MIN_OBJECT_PIXELS:
                shares.append(o["part_visible"] / o["visible"])
    pct = np.percentile(shares, [5, 95]) if shares else [np.nan, np.nan]
    return {
        "images": len(counts),
        "object_pixels": 100.0 * fg / max(labelled, 1),
        "void_pixels": 100.0 * void / max(total, 1),
        "objects_per_image": float(np.mean(counts)) if counts else 0.0,
        "part_share_median": None if not shares else 100.0 * float(np.median(shares)),
        "part_share_p5": json_float(100.0 * float(pct[0])),
        "part_share_p95": json_float(100.0 * float(pct[1])),
        "preferred_scene": 100.0 * float(np.mean(preferred)) if preferred else None,
    }


def _confusion_summary(cm: ConfusionMatrix, names: Sequence[str]) -> dict[str, Any]:
    """mIoU, per-class IoU, foreground/background IoU and class accuracy on foreground."""
    counts = cm.counts.numpy()[:, :-1].astype(np.float64)  # predicted 255 never occurs here
    scores = cm.compute("background")
    fg_pred_fg = counts[1:, 1:].sum()
    fg_union = counts[1:, :].sum() + counts[0, 1:].sum()
    return {
        "miou": json_float(scores.miou),
        "iou": {n: json_float(v) for n, v in zip(names, scores.iou, strict=True)},
        "fg_bg_iou": json_float(100.0 * fg_pred_fg / fg_union) if fg_union else None,
        "class_accuracy_on_fg": (
            json_float(100.0 * np.trace(counts[1:, 1:]) / fg_pred_fg) if fg_pred_fg else None
        ),
    }


def segmentation_statistics(dataset: SegmentationDataset, pred_dir: Path) -> dict[str, Any]:
    """Scores of the label PNGs ``<pred_dir>/<id>.png`` on ``dataset`` (percentages).

    Returns:
        ``miou``, ``iou`` by class, ``fg_bg_iou`` (all classes merged into one foreground) and
        ``class_accuracy_on_fg`` (of the GT-foreground pixels predicted as some foreground class,
        the share predicted as the right class): a network that finds the objects but cannot
        tell the classes apart has a high first and a low second.

    Raises:
        WsssError: a prediction is missing or of the wrong size.
    """
    num_classes = dataset.classes.num_classes
    cm = ConfusionMatrix(num_classes)
    for image_id in dataset.ids:
        gt = dataset.load_mask(image_id)
        assert gt is not None
        pred = read_label_png(Path(pred_dir) / f"{image_id}.png", size=gt.shape,
                              num_classes=num_classes)  # fmt: skip
        cm.update(pred, gt)
    return _confusion_summary(cm, dataset.classes.names)


def colour_oracle(train: SegmentationDataset, val: SegmentationDataset) -> dict[str, Any]:
    """The colour-only classifier (fit on ``train``'s masks, told each val image's classes)."""
    model = ColourClassifier(num_classes=train.classes.num_classes).fit(train)
    cm = ConfusionMatrix(val.classes.num_classes)
    for image_id in val.ids:
        sample = val.load(image_id)
        present = np.flatnonzero(sample.labels) + val.classes.offset
        cm.update(model.predict(sample.image, present), sample.mask)
    return _confusion_summary(cm, val.classes.names)


@dataclass
class _CamCounts:
    """Accumulators of :func:`cam_statistics` at one threshold."""

    coverage: list[float]
    part: list[int]  # [covered, total]
    body: list[int]
    fp_preferred: list[int]  # [false-positive pixels, background pixels]
    fp_other: list[int]


def cam_pixel_counts(
    keys: np.ndarray, maps: np.ndarray, truth: ImageTruth, threshold: float, into: _CamCounts
) -> None:
    """Add one image's coverage and false-positive counts at ``threshold`` to ``into``.

    A pixel is covered by its object's class when that class's CAM exceeds ``threshold``; a
    background pixel is a false positive of class ``c`` when the CAM label
    ``argmax([threshold, CAM_1, ...])`` is ``c``.

    Shapes:
        keys: ``(K,)``; maps: ``(K, H, W)`` at the image size.
    """
    index = {int(k): i for i, k in enumerate(keys)}
    above = maps > threshold
    for o in truth.objects:
        own = truth.instances == int(o["instance_id"])
        if o["visible"] < MIN_OBJECT_PIXELS or not own.any():
            continue
        k = index.get(int(o["class_id"]))
        covered = above[k] if k is not None else np.zeros_like(own)
        into.coverage.append(float(covered[own].mean()))
        for which, tally in ((PART_MAP_PART, into.part), (PART_MAP_BODY, into.body)):
            pixels = own & (truth.parts == which)
            tally[0] += int(covered[pixels].sum())
            tally[1] += int(pixels.sum())
    if not len(keys):
        return
    background = truth.label == 0
    best = np.asarray(keys)[maps.argmax(axis=0)]
    labelled = np.where(maps.max(axis=0) > threshold, best, 0)
    for c in keys:
        fp = int((background & (labelled == c)).sum())
        tally = into.fp_preferred if truth.scene == preferred_scene(int(c)) else into.fp_other
        tally[0] += fp
        tally[1] += int(background.sum())


def cam_statistics(
    dataset: SegmentationDataset,
    cam_dir: Path,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, Any]:
    """CAM figures at the best background threshold of the sweep (percentages).

    Returns:
        ``best_threshold``, ``miou`` (best), ``curve``; ``coverage_median`` (per object: the
        share of its visible pixels above the threshold in its class's CAM; objects with at
        least :data:`MIN_OBJECT_PIXELS`), ``coverage_quartiles``; ``part_coverage`` and
        ``body_coverage`` (pooled pixels); ``fp_preferred_scene`` / ``fp_other_scene``: of the
        background pixels of (image, present class) pairs whose scene is / is not the class's
        preferred scene, the share the CAM labels as that class; ``objects``.

    Raises:
        WsssError: a CAM file is missing, corrupt or of another size.
    """
    num_classes = dataset.classes.num_classes
    sweep = CamSweep(num_classes, thresholds)
    loaded = []
    for image_id, truth in truths(dataset):
        keys, maps = _full_res_cams(Path(cam_dir) / f"{image_id}.npz", num_classes,
                                    truth.label.shape)  # fmt: skip
        maps = np.asarray(maps, dtype=np.float32)
        sweep.update(keys, maps, truth.label)
        loaded.append((keys, maps, truth))
    result = sweep.compute()
    counts = _CamCounts([], [0, 0], [0, 0], [0, 0], [0, 0])
    for keys, maps, truth in loaded:
        cam_pixel_counts(keys, maps, truth, result.best_threshold, counts)

    def share(tally: list[int]) -> float | None:
        return json_float(100.0 * tally[0] / tally[1]) if tally[1] else None

    quartiles = np.percentile(counts.coverage, [25, 75]) if counts.coverage else [np.nan] * 2
    return {
        "best_threshold": result.best_threshold,
        "miou": json_float(result.best.miou),
        "curve": [{"threshold": t, "miou": json_float(m)} for t, m in result.curve],
        "objects": len(counts.coverage),
        "coverage_median": _percent(_median(counts.coverage)),
        "coverage_quartiles": [_percent(json_float(float(q))) for q in quartiles],
        "part_coverage": share(counts.part),
        "body_coverage": share(counts.body),
        "fp_preferred_scene": share(counts.fp_preferred),
        "fp_other_scene": share(counts.fp_other),
    }


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value
