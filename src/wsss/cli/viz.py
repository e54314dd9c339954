"""``wsss viz``: a grid of images with ground truth, predictions and CAMs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from wsss.cli.common import console, open_dataset, state
from wsss.io.cams import read_cams
from wsss.io.images import read_label_png
from wsss.viz import make_grid, overlay_cam, overlay_labels, save_png


def _cam_tile(image: np.ndarray, path: Path, num_classes: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    cam = read_cams(path, num_classes=num_classes)
    maps = cam.high_res
    if maps is None:
        small = torch.from_numpy(cam.cams.astype(np.float32))[None]
        maps = F.interpolate(small, size=cam.size, mode="bilinear", align_corners=False)[0].numpy()
    strongest = maps.max(axis=0) if len(maps) else np.zeros(image.shape[:2], np.float32)
    return overlay_cam(image, strongest)


def viz(
    out: Path = typer.Option(..., help="PNG file to write."),
    root: Path | None = typer.Option(None, help="Dataset root."),
    split: str = typer.Option("val", help="Split name."),
    dataset: str = typer.Option("auto", help="Dataset name or auto."),
    pred: list[Path] = typer.Option([], help="Folder(s) of <id>.png label maps (repeatable)."),
    cams: Path | None = typer.Option(None, help="Folder of <id>.npz CAM files."),
    n: int = typer.Option(8, min=1, help="Number of images (the first n of the split)."),
    height: int = typer.Option(160, min=16, help="Tile height in pixels."),
) -> None:
    """Save image | ground truth | CAM | predictions rows as one PNG."""
    data = open_dataset(dataset, root, split)
    titles = ["image", "ground truth"] + (["CAM (max)"] if cams else []) + [p.name for p in pred]
    rows = []
    for image_id in data.ids[:n]:
        sample = data.load(image_id)
        image = sample.image
        row = [image]
        gt = sample.mask
        row.append(overlay_labels(image, gt) if gt is not None else np.zeros_like(image))
        if cams is not None:
            row.append(_cam_tile(image, cams / f"{image_id}.npz", data.classes.num_classes))
        for folder in pred:
            label = read_label_png(folder / f"{image_id}.png", size=image.shape[:2])
            row.append(overlay_labels(image, label))
        rows.append(row)
    save_png(out, make_grid(rows, titles=titles, height=height))
    if not state.quiet:
        console.print(f"wrote {out}")
