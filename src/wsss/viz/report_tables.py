"""The report's tables, built from the metric files of a run (all mIoU values in percent)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wsss.pipeline.layout import CRF_LABEL
from wsss.viz.reference import Reference, paper_reference
from wsss.viz.report_doc import Table, fmt, make_table

#: Stages of the main table, in pipeline order.
STAGE_ORDER = ("CAM", "seeds", "dense CRF", "random walk", "GCN", "GCN + dCRF", "segmentation",
               "baseline")  # fmt: skip

#: Val methods that are references rather than the pipeline's segmentation: the colour oracle
#: (name prefix) and networks trained on the ground truth (the supervised ceiling).
BASELINE_PREFIXES = ("colour-only",)
SUPERVISED_MARK = "ground truth"


def is_reference(name: str) -> bool:
    """Whether a val row is a reference (oracle or supervised ceiling), not a WSSS result."""
    return name.startswith(BASELINE_PREFIXES) or SUPERVISED_MARK in name


#: Display names of the seed schemes.
SEED_NAMES = {"irnet": "IRNet seeds", "wsgcn": "WSGCN seeds"}


@dataclass(frozen=True)
class StageRow:
    """One row of the main table: a method's mIoU on a split, and where it comes from."""

    stage: str
    method: str
    split: str
    miou: float | None
    threshold: float | None = None


def _label_stage(name: str) -> str:
    if name == CRF_LABEL:
        return "dense CRF"
    if name.endswith("RW"):
        return "random walk"
    return "GCN + dCRF" if name.endswith("+ dCRF") else "GCN"


def group_outputs(group_cam: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The scores of each Group-WSSS output in ``metrics/group_cam.json``: its ``outputs``
    mapping, or the file itself when it maps outputs to scores directly."""
    outputs = group_cam.get("outputs", group_cam)
    return {k: v for k, v in outputs.items() if isinstance(v, dict) and "miou" in v}


def stage_rows(
    pseudo: dict[str, Any], group_cam: dict[str, Any], val: dict[str, Any]
) -> list[StageRow]:
    """The main table's rows from ``metrics/pseudo.json``, ``metrics/group_cam.json`` and
    ``metrics/val.json`` (each may be empty); stages in :data:`STAGE_ORDER`. The single-image
    CAM comes from the pseudo-label scores, else from the group stage's ``single`` entry."""
    split = str(pseudo.get("split", group_cam.get("split", "train")))
    rows = []
    cam = group_cam.get("single")
    if pseudo.get("cam"):
        cam = {
            "miou": pseudo["cam"]["best"].get("miou"),
            "best_threshold": pseudo["cam"]["best_threshold"],
        }
    if isinstance(cam, dict):
        rows.append(StageRow("CAM", "CAM", split, cam.get("miou"), cam.get("best_threshold")))
    group_split = str(group_cam.get("split", split))
    for output, scores in group_outputs(group_cam).items():
        rows.append(StageRow("CAM", f"Group-WSSS CAM ({output})", group_split,
                             scores.get("miou"), scores.get("best_threshold")))  # fmt: skip
    for method, scores in pseudo.get("seeds", {}).items():
        name = SEED_NAMES.get(method, f"{method} seeds")
        rows.append(StageRow("seeds", name, split, scores.get("miou_pred255_background")))
    for name, scores in pseudo.get("labels", {}).items():
        rows.append(StageRow(_label_stage(name), name, split, scores.get("miou")))
    for name, scores in val.items():
        stage = "baseline" if is_reference(name) else "segmentation"
        rows.append(StageRow(stage, name, "val", scores.get("miou")))
    return sorted(rows, key=lambda r: STAGE_ORDER.index(r.stage))


def _paper_cell(ref: Reference | None, split: str) -> str:
    if ref is None:
        return "-"
    return f"{ref.miou:.1f}" if ref.split == split else f"{ref.miou:.1f} ({ref.split})"


def _source_notes(named: list[tuple[str, Reference]]) -> list[str]:
    """One note per source: ``paper: A 1.0, B 2.0 on VOC train - source``."""
    by_source: dict[tuple[str, str], list[str]] = {}
    for name, ref in named:
        entry = by_source.setdefault((ref.source, ref.split), [])
        if f"{name} {ref.miou:.1f}" not in entry:
            entry.append(f"{name} {ref.miou:.1f}")
    return [f"paper: {', '.join(entries)} on VOC {split} - {source}"
            for (source, split), entries in by_source.items()]  # fmt: skip


def _change(miou: float | None, cam: float | None) -> str:
    if miou is None or cam is None:
        return "-"
    return f"{miou - cam:+.1f}"


def main_table(rows: list[StageRow]) -> Table:
    """Stage | method | split | mIoU | change from the CAM | paper (VOC), with the papers' sources
    as notes."""
    cells, named = [], []
    cam = next((r.miou for r in rows if r.method == "CAM"), None)
    for row in rows:
        ref = paper_reference(row.method, row.stage)
        if ref is not None:
            named.append((row.method, ref))
        change = "-" if row.method == "CAM" else _change(row.miou, cam)
        cells.append([row.stage, row.method, row.split, fmt(row.miou), change,
                      _paper_cell(ref, row.split)])  # fmt: skip
    swept = [f"{r.method} {r.threshold:.2f}" for r in rows if r.threshold is not None]
    notes = [
        *(["CAM rows at the best background threshold of the sweep: " + ", ".join(swept)]
          if swept else []),
        "Seeds: predicted 255 counted as background (the pseudo-label table gives both ways).",
        "vs CAM: mIoU minus the CAM row's (val rows against the CAM on the training split).",
        *_source_notes(named),
    ]  # fmt: skip
    header = ["stage", "method", "split", "mIoU", "vs CAM", "paper (VOC)"]
    return make_table(header, cells, numeric_from=3, key="stages", notes=notes)


def _scores_cells(m: dict[str, Any]) -> list[str]:
    keys = ("miou_pred255_background", "miou_pred255_ignored", "pixel_accuracy", "labelled_ratio")
    return [fmt(m.get(k)) for k in keys]


def pseudo_table(pseudo: dict[str, Any]) -> Table:
    """CAM at its best background threshold, each seed scheme, each complete pseudo label."""
    rows = []
    cam = pseudo.get("cam")
    if cam:
        best = cam["best"]
        cells = [best.get("miou"), best.get("miou"), best.get("pixel_accuracy"), 100.0]
        rows.append([f"CAM (best threshold {cam['best_threshold']:.2f})", *map(fmt, cells)])
    for method, m in pseudo.get("seeds", {}).items():
        rows.append([SEED_NAMES.get(method, f"{method} seeds"), *_scores_cells(m)])
    rows += [[name, *_scores_cells(m)] for name, m in pseudo.get("labels", {}).items()]
    header = ["pseudo labels", "mIoU (255 = bg)", "mIoU (255 ignored)", "precision",
              "labelled ratio"]  # fmt: skip
    return make_table(header, rows, key="pseudo")


def val_table(val: dict[str, Any]) -> Table:
    """mIoU, pixel accuracy, boundary F and labelled ratio of every val prediction folder."""
    rows = []
    for name, m in val.items():
        cells = [m.get("miou"), m.get("pixel_accuracy"), (m.get("boundary") or {}).get("mean_f"),
                 m.get("labelled_ratio")]  # fmt: skip
        rows.append([name, *[fmt(c) for c in cells]])
    header = ["method", "mIoU", "pixel acc.", "boundary F", "labelled ratio"]
    return make_table(header, rows, key="val")


def class_table(metrics: dict[str, dict[str, Any]], key: str) -> Table:
    """IoU per class (rows) of each method (columns)."""
    classes: list[str] = []
    for m in metrics.values():
        classes += [c for c in m.get("iou", {}) if c not in classes]
    rows = [[cls, *[fmt(m.get("iou", {}).get(cls)) for m in metrics.values()]] for cls in classes]
    return make_table(["class", *metrics], rows, key=key)


def pseudo_class_metrics(pseudo: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-class scores of the pseudo-label rows, by row name."""
    out = {}
    if pseudo.get("cam"):
        out["CAM"] = pseudo["cam"]["best"]
    for method, m in pseudo.get("seeds", {}).items():
        out[SEED_NAMES.get(method, f"{method} seeds")] = m
    out.update(pseudo.get("labels", {}))
    return out


def ablation_table(result: dict[str, Any]) -> Table:
    """WSGCN table 2 (``ablation/gcn.json``): method | mIoU | pixel acc. | paper (VOC)."""
    rows = []
    for name, scores in result["rows"].items():
        ref = paper_reference(name)
        rows.append([name, fmt(scores.get("miou")), fmt(scores.get("pixel_accuracy")),
                     _paper_cell(ref, str(result.get("split", "train")))])  # fmt: skip
    header = ["method", "mIoU", "pixel acc.", "paper (VOC)"]
    return make_table(header, rows, key="ablation")


def seconds_table(
    seconds: dict[str, float | None], cpu: dict[str, float | None],
    threads: dict[str, dict[str, Any]] | None = None,
) -> Table:  # fmt: skip
    """Wall-clock and CPU seconds (all threads of the process) per stage, and their totals;
    with ``threads`` (per stage ``{"threads": n, "omp_wait_policy": p}``) a column ``n (p)``."""
    rows = [[name, fmt(value), fmt(cpu.get(name))] for name, value in seconds.items()]
    totals = [sum(v for v in d.values() if v is not None) for d in (seconds, cpu)]
    header = ["stage", "seconds", "CPU seconds"]
    if threads and any(threads.values()):
        header.append("threads (OpenMP wait)")
        for row in rows:
            t = threads.get(row[0]) or {}
            row.append(
                f"{t['threads']} ({t.get('omp_wait_policy', '?')})" if "threads" in t else "-"
            )
    rows.append(["total", *map(fmt, totals), *([""] if len(header) == 4 else [])])
    return make_table(header, rows, key="seconds")
