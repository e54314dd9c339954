"""The report's figures: the CAM threshold curve and the image grids of the fixed samples.

The samples are the first ``config["report"]["samples"]`` ids of a split, so every run with the
same data shows the same images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsss.io.images import read_label_png
from wsss.pipeline.layout import cam_dir, pseudo_label_folders, pseudo_split, seed_dir
from wsss.viz.grid import make_grid, save_png
from wsss.viz.overlay import overlay_labels
from wsss.viz.report_tables import SEED_NAMES, group_outputs


def _samples(ctx: Any, dataset: Any) -> list[str]:
    return list(dataset.ids[: int(ctx.config["report"]["samples"])])


def cam_curve_plot(pseudo: dict[str, Any], group_cam: dict[str, Any], out: Path) -> bool:
    """The CAM mIoU against the background threshold (and the group CAMs' curves when they
    were swept over the same thresholds), as a PNG; False without CAM results."""
    cam = pseudo.get("cam")
    if not cam:
        return False
    from wsss.viz.plot import line_plot

    xs = [p["threshold"] for p in cam["curve"]]
    series: dict[str, list[float]] = {"CAM": [p["miou"] for p in cam["curve"]]}
    for name, scores in group_outputs(group_cam).items():
        curve = scores.get("curve") or []
        if [p["threshold"] for p in curve] == xs:
            series[f"Group-WSSS CAM ({name})"] = [p["miou"] for p in curve]
    ys = series if len(series) > 1 else series["CAM"]
    save_png(out, line_plot(xs, ys, xlabel="background threshold", ylabel="CAM mIoU"))
    return True


def cam_grid(ctx: Any, out: Path) -> bool:
    """Image, GT, CAM heatmap, seeds and complete pseudo labels (random walks, GCN) of the
    sample training images; False without CAMs."""
    from wsss.io.cams import read_cams
    from wsss.viz.overlay import overlay_cam

    cams = cam_dir(ctx)
    if not cams.is_dir():
        return False
    dataset = ctx.dataset(pseudo_split(ctx))
    methods = [m for m in ctx.config.get("seeds", {}).get("methods", [])
               if seed_dir(ctx, m, full_size=True).is_dir()]  # fmt: skip
    labels = pseudo_label_folders(ctx)
    rows = []
    for image_id in _samples(ctx, dataset):
        sample = dataset.load(image_id)
        cam = read_cams(cams / f"{image_id}.npz")
        heat = cam.high_res.max(axis=0) if cam.high_res is not None and len(cam.keys) else None
        row = [sample.image, overlay_labels(sample.image, sample.mask)]
        row.append(overlay_cam(sample.image, heat) if heat is not None else sample.image)
        for m in methods:
            seeds = read_label_png(seed_dir(ctx, m, full_size=True) / f"{image_id}.png")
            row.append(overlay_labels(sample.image, seeds))
        for folder in labels.values():
            row.append(overlay_labels(sample.image, read_label_png(folder / f"{image_id}.png")))
        rows.append(row)
    seed_titles = [SEED_NAMES.get(m, f"{m} seeds") for m in methods]
    titles = ["image", "ground truth", "CAM (max over classes)", *seed_titles, *labels]
    save_png(out, make_grid(rows, titles=titles, height=128))
    return True


def column_title(name: str) -> str:
    """A prediction's short column title: the method without its parenthesis, marked ``(GT)``
    when it was trained on the ground truth (the supervised reference beside the same network
    on pseudo labels).

    Example:
        >>> column_title("DeepLabV3+ (supervised, ground truth)"), column_title("ES-CRF")
        ('DeepLabV3+ (GT)', 'ES-CRF')
    """
    method, _, note = name.partition(" (")
    return f"{method} (GT)" if "ground truth" in note else method


def sample_grid(ctx: Any, out: Path) -> bool:
    """Image, GT and every val prediction (segmentation, baselines) of the sample val images;
    False when the run has no val predictions (a chain without segmentation)."""
    folders = ctx.predictions()
    if not folders:
        return False
    val = ctx.dataset("val")
    rows = []
    for image_id in _samples(ctx, val):
        sample = val.load(image_id)
        row = [sample.image, overlay_labels(sample.image, sample.mask)]
        for folder in folders.values():
            pred = read_label_png(folder / f"{image_id}.png", size=sample.image.shape[:2])
            row.append(overlay_labels(sample.image, pred))
        rows.append(row)
    titles = ["image", "ground truth", *[column_title(n) for n in folders]]
    save_png(out, make_grid(rows, titles=titles, height=128))
    return True
