"""The run report: ``report.md``, ``metrics.json`` and the sample grid of a pipeline run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wsss.io.atomic import atomic_write_text
from wsss.io.images import read_label_png
from wsss.viz.grid import make_grid, save_png
from wsss.viz.overlay import overlay_labels


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def _main_table(metrics: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| method | mIoU | pixel acc. | boundary F | labelled ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, m in metrics.items():
        cells = [
            m.get("miou"),
            m.get("pixel_accuracy"),
            (m.get("boundary") or {}).get("mean_f"),
            m.get("labelled_ratio"),
        ]
        lines.append(f"| {name} | " + " | ".join(_fmt(c) for c in cells) + " |")
    return lines


def _class_table(metrics: dict[str, dict[str, Any]]) -> list[str]:
    names = list(metrics)
    classes: list[str] = []
    for m in metrics.values():
        classes += [c for c in m.get("iou", {}) if c not in classes]
    lines = ["| class | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for cls in classes:
        row = [_fmt(metrics[n].get("iou", {}).get(cls)) for n in names]
        lines.append(f"| {cls} | " + " | ".join(row) + " |")
    return lines


def _pseudo_table(pseudo: dict[str, Any]) -> list[str]:
    """Rows: CAM at its best background threshold, then each seed scheme."""
    lines = [
        "| pseudo labels | mIoU (255 = bg) | mIoU (255 ignored) | precision | labelled ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    cam = pseudo.get("cam")
    if cam:
        best = cam["best"]
        lines.append(
            f"| CAM (best threshold {cam['best_threshold']:.2f}) | {_fmt(best.get('miou'))} | "
            f"{_fmt(best.get('miou'))} | {_fmt(best.get('pixel_accuracy'))} | 100.00 |"
        )
    for name, m in pseudo.get("seeds", {}).items():
        cells = [m.get("miou_pred255_background"), m.get("miou_pred255_ignored"),
                 m.get("pixel_accuracy"), m.get("labelled_ratio")]  # fmt: skip
        lines.append(f"| {name} seeds | " + " | ".join(_fmt(c) for c in cells) + " |")
    for name, m in pseudo.get("labels", {}).items():
        cells = [m.get("miou_pred255_background"), m.get("miou_pred255_ignored"),
                 m.get("pixel_accuracy"), m.get("labelled_ratio")]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(_fmt(c) for c in cells) + " |")
    return lines


def _cam_curve_plot(pseudo: dict[str, Any], out: Path) -> bool:
    """The CAM mIoU against the background threshold, as a PNG; False without CAM results."""
    cam = pseudo.get("cam")
    if not cam:
        return False
    from wsss.viz.plot import line_plot

    xs = [p["threshold"] for p in cam["curve"]]
    ys = [p["miou"] for p in cam["curve"]]
    save_png(out, line_plot(xs, ys, xlabel="background threshold", ylabel="CAM mIoU"))
    return True


def _cam_grid(ctx: Any, out: Path) -> bool:
    """Image, GT, CAM heatmap and seeds of the first pseudo-label images; False without CAMs."""
    from wsss.io.cams import read_cams
    from wsss.pipeline.propagation import pseudo_label_folders
    from wsss.pipeline.pseudo import cam_dir, seed_dir
    from wsss.viz.overlay import overlay_cam

    cams = cam_dir(ctx)
    if not cams.is_dir():
        return False
    dataset = ctx.dataset(str(ctx.config.get("pseudo", {}).get("split", "train")))
    methods = [m for m in ctx.config.get("seeds", {}).get("methods", [])
               if seed_dir(ctx, m, full_size=True).is_dir()]  # fmt: skip
    labels = pseudo_label_folders(ctx)
    rows = []
    for image_id in dataset.ids[: int(ctx.config["report"]["samples"])]:
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
    titles = ["image", "ground truth", "CAM (max over classes)", *[f"{m} seeds" for m in methods],
              *labels]  # fmt: skip
    save_png(out, make_grid(rows, titles=titles, height=128))
    return True


def _sample_grid(ctx: Any, out: Path) -> None:
    val = ctx.dataset("val")
    folders = ctx.predictions()
    rows = []
    for image_id in val.ids[: int(ctx.config["report"]["samples"])]:
        sample = val.load(image_id)
        row = [sample.image, overlay_labels(sample.image, sample.mask)]
        for folder in folders.values():
            pred = read_label_png(folder / f"{image_id}.png", size=sample.image.shape[:2])
            row.append(overlay_labels(sample.image, pred))
        rows.append(row)
    titles = ["image", "ground truth", *[n.split(" (")[0] for n in folders]]
    save_png(out, make_grid(rows, titles=titles, height=128))


def write_report(ctx: Any) -> dict[str, Path]:
    """Assemble the run's metrics and figures into ``report.md`` and ``metrics.json``."""
    metrics_file = ctx.path / "metrics" / "val.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    pseudo_file = ctx.path / "metrics" / "pseudo.json"
    pseudo = json.loads(pseudo_file.read_text()) if pseudo_file.is_file() else {}
    pseudo_lines: list[str] = []
    if pseudo:
        curve, cam_grid = ctx.path / "figures" / "cam_curve.png", ctx.path / "figures" / "cams.png"
        pseudo_lines = [
            f"## Pseudo labels on {pseudo.get('split', 'train')}",
            "",
            *_pseudo_table(pseudo),
            "",
            "Precision = pixel accuracy over the labelled pixels; seeds leave 255 where unsure. "
            "The rows after the seeds are complete pseudo labels (no 255).",
            "",
        ]
        if _cam_curve_plot(pseudo, curve):
            pseudo_lines += [f"![CAM threshold sweep]({curve.relative_to(ctx.path)})", ""]
        if _cam_grid(ctx, cam_grid):
            pseudo_lines += [f"![CAMs and seeds]({cam_grid.relative_to(ctx.path)})", ""]
        ablation = ctx.path / "ablation" / "gcn.md"
        if ablation.is_file():
            pseudo_lines += ["## Ablation (WSGCN table 2)", "", ablation.read_text().strip(), ""]
    manifest = ctx.rundir.manifest()
    seconds = {k: v.get("seconds") for k, v in manifest["stages"].items()}
    grid = ctx.path / "figures" / "samples.png"
    _sample_grid(ctx, grid)
    data = ctx.config["data"]
    lines = [
        f"# wsss run report: {ctx.config.get('name', 'run')}",
        "",
        f"Dataset: {data['dataset']} at `{ctx.data_root}`; seed {ctx.config['seed']}.",
        "",
        *pseudo_lines,
        "## Validation mIoU",
        "",
        *_main_table(metrics),
        "",
        "Predicted 255 counts as "
        f"{ctx.config['evaluation']['pred_ignore']}; boundary F at "
        f"{ctx.config['evaluation']['boundary_tolerance']}-pixel tolerance.",
        "",
        "## IoU per class",
        "",
        *_class_table(metrics),
        "",
        "## Samples",
        "",
        f"![samples]({grid.relative_to(ctx.path)})",
        "",
        "## Seconds per stage",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *[f"| {k} | {_fmt(v)} |" for k, v in seconds.items()],
        "",
    ]
    report = ctx.path / "report.md"
    atomic_write_text(report, "\n".join(lines))
    summary = {"config": ctx.config, "pseudo": pseudo, "val": metrics, "seconds": seconds}
    metrics_json = ctx.path / "metrics.json"
    atomic_write_text(metrics_json, json.dumps(summary, indent=2) + "\n")
    return {"report": report, "metrics": metrics_json, "figure": grid}
