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
            m.get("boundary_f"),
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
    summary = {"config": ctx.config, "val": metrics, "seconds": seconds}
    metrics_json = ctx.path / "metrics.json"
    atomic_write_text(metrics_json, json.dumps(summary, indent=2) + "\n")
    return {"report": report, "metrics": metrics_json, "figure": grid}
