"""The run report: ``report.md``, ``report.html``, ``metrics.json`` and the figures of a run.

The report reads what the stages left in the run directory and tolerates missing parts (a run
without group CAMs, ablation or segmentation simply has fewer rows):

=============================  ==============================================================
``metrics/pseudo.json``        CAM sweep, seeds and complete pseudo labels on the train split
``metrics/group_cam.json``     ``{output: {"best_threshold", "miou", ...}}`` of Group-WSSS CAMs
``metrics/val.json``           every val prediction folder (segmentation, baselines)
``ablation/gcn.json``          WSGCN table 2 (:func:`wsss.ablation.gcn.ablate_gcn`)
``manifest.json``              seconds per stage
=============================  ==============================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wsss.io.atomic import atomic_write_text
from wsss.pipeline.layout import pseudo_split
from wsss.viz.report_doc import Block, Figure, Heading, Text, to_markdown
from wsss.viz.report_figures import cam_curve_plot, cam_grid, sample_grid
from wsss.viz.report_html import to_html
from wsss.viz.report_tables import (
    ablation_table,
    class_table,
    main_table,
    pseudo_class_metrics,
    pseudo_table,
    seconds_table,
    stage_rows,
    val_table,
)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _numbers_only(node: Any) -> Any:
    """``node`` without the ``run`` / ``folder`` paths the stages record: two runs with the same
    configuration and seed then give equal ``metrics.json`` wherever they are."""
    if isinstance(node, dict):
        return {k: _numbers_only(v) for k, v in node.items() if k not in ("run", "folder")}
    return node


def collect_metrics(ctx: Any) -> dict[str, Any]:
    """Everything the report shows, as saved in ``metrics.json``: the configuration, the metric
    files of the stages (empty where a stage has not run) and the seconds per stage."""
    ablation = _numbers_only(_read_json(ctx.path / "ablation" / "gcn.json"))
    manifest = ctx.rundir.manifest()
    return {
        "config": ctx.config,
        "pseudo": _read_json(ctx.path / "metrics" / "pseudo.json"),
        "group_cam": _numbers_only(_read_json(ctx.path / "metrics" / "group_cam.json")),
        "ablation": {"gcn": ablation} if ablation else {},
        "val": _read_json(ctx.path / "metrics" / "val.json"),
        "seconds": {k: v.get("seconds") for k, v in manifest["stages"].items()},
        "cpu_seconds": {k: v.get("cpu_seconds") for k, v in manifest["stages"].items()},
        "threads": {
            k: {t: v[t] for t in ("threads", "omp_wait_policy") if t in v}
            for k, v in manifest["stages"].items()
        },
        "machine": {
            k: v for k, v in manifest.get("environment", {}).items() if k in ("cpu", "cpus")
        },
        "cam_calibration": manifest["stages"].get("cam_calibration", {}).get("calibration"),
    }


def _pseudo_section(
    pseudo: dict[str, Any], curve: Path | None, calibration: dict[str, Any] | None
) -> list[Block]:
    blocks: list[Block] = [
        Heading(f"Pseudo labels on {pseudo.get('split', 'train')}"),
        pseudo_table(pseudo),
        Text(
            "Precision = pixel accuracy over the labelled pixels; seeds leave 255 where unsure. "
            "The rows after the seeds are complete pseudo labels (no 255)."
        ),
    ]
    if calibration:
        blocks.append(Text(
            f"The seeds, random walks and GCNs read the CAMs raised to the power "
            f"{calibration['gamma']:.2f} (`pseudo.cam_calibration`), which maps the CAM's "
            f"background threshold {calibration['threshold']:.2f} ({calibration['source']}) to "
            f"the papers' {calibration['reference']:.2f}; the CAM rows are the raw CAMs."
        ))  # fmt: skip
    if curve is not None:
        blocks.append(Figure(curve, "CAM threshold sweep"))
    return blocks


def _ablation_section(ablation: dict[str, Any]) -> list[Block]:
    if not ablation:
        return []
    return [
        Heading("Ablation (WSGCN table 2)"),
        Text(
            f"{ablation['images']} images of {ablation['split']}; mIoU with predicted 255 as "
            "background; the paper column is WSGCN table 2 on all of VOC train."
        ),
        ablation_table(ablation),
    ]


def _val_section(val: dict[str, Any], evaluation: dict[str, Any]) -> list[Block]:
    return [
        Heading("Validation mIoU"),
        val_table(val),
        Text(
            f"Predicted 255 counts as {evaluation['pred_ignore']}; boundary F at "
            f"{evaluation['boundary_tolerance']}-pixel tolerance."
        ),
    ]


def _class_section(summary: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading("IoU per class")]
    if summary["val"]:
        blocks += [Heading("val", 3), class_table(summary["val"], "class-val")]
    pseudo = pseudo_class_metrics(summary["pseudo"])
    if pseudo:
        split = summary["pseudo"].get("split", "train")
        blocks += [Heading(f"pseudo labels on {split}", 3), class_table(pseudo, "class-pseudo")]
    return blocks


def _stage_intro(dataset: str, split: str, *, segmentation: bool) -> str:
    scored = ("Pseudo labels are scored on the training split, segmentation on val" if segmentation
              else f"Every row is scored on the images of split {split}")  # fmt: skip
    text = f"{scored}; the paper column gives the published PASCAL VOC 2012 numbers for reference"
    if dataset == "voc":
        return text + "."
    return text + f" (this run is on {dataset}: they are not its expected values)."


def build_report(ctx: Any, summary: dict[str, Any]) -> list[Block]:
    """The report's blocks; writes the figures into ``<run>/figures`` on the way."""
    figures = ctx.path / "figures"
    pseudo, group_cam = summary["pseudo"], summary["group_cam"]
    curve = figures / "cam_curve.png"
    has_curve = cam_curve_plot(pseudo, group_cam, curve)
    cams, samples = figures / "cams.png", figures / "samples.png"
    has_cams = cam_grid(ctx, cams)
    has_samples = sample_grid(ctx, samples)
    data, evaluation = ctx.config["data"], ctx.config["evaluation"]
    split = pseudo_split(ctx)
    return [
        Heading(f"wsss run report: {ctx.config.get('name', 'run')}", 1),
        Text(f"Dataset: {data['dataset']} at `{ctx.data_root}`; seed {ctx.config['seed']}."),
        Heading("mIoU stage by stage"),
        Text(_stage_intro(data["dataset"], split, segmentation=has_samples)),
        main_table(stage_rows(pseudo, group_cam, summary["val"])),
        *(
            _pseudo_section(pseudo, curve if has_curve else None, summary.get("cam_calibration"))
            if pseudo
            else []
        ),
        *_ablation_section(summary["ablation"].get("gcn", {})),
        *(_val_section(summary["val"], evaluation) if summary["val"] else []),
        *_class_section(summary),
        Heading("Samples"),
        *([Figure(cams, f"CAMs, seeds and pseudo labels (split {split})")] if has_cams else []),
        *([Figure(samples, "val samples: ground truth and predictions")] if has_samples else []),
        Heading("Seconds per stage"),
        seconds_table(summary["seconds"], summary["cpu_seconds"], summary.get("threads")),
        *_machine_note(summary.get("machine") or {}),
    ]


def _machine_note(machine: dict[str, Any]) -> list[Block]:
    """The CPU the seconds were measured on (machines differ by 3x per stage)."""
    if not machine:
        return []
    return [Text(f"Measured on: {machine.get('cpu', 'unknown CPU')}, "
                 f"{machine.get('cpus', '?')} logical CPUs. Threads: torch's intra-op threads of "
                 f"the stage's process and its OpenMP wait policy (docs/benchmark.md#time).")]  # fmt: skip


def write_report(ctx: Any) -> dict[str, Path]:
    """Assemble the run's metrics and figures into ``report.md``, ``report.html`` (the same
    content, self-contained) and ``metrics.json``."""
    summary = collect_metrics(ctx)
    blocks = build_report(ctx, summary)
    paths = {
        "report": ctx.path / "report.md",
        "html": ctx.path / "report.html",
        "metrics": ctx.path / "metrics.json",
        "figure": ctx.path / "figures" / "samples.png",
    }
    title = f"wsss run report: {ctx.config.get('name', 'run')}"
    atomic_write_text(paths["report"], to_markdown(blocks, ctx.path))
    atomic_write_text(paths["html"], to_html(blocks, title=title))
    atomic_write_text(paths["metrics"], json.dumps(summary, indent=2) + "\n")
    return paths
