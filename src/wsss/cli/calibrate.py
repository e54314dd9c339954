"""``wsss calibrate-cams``: CAM files raised to the power that maps their background threshold to
the papers' 0.15, so that the seeds' and random walks' printed thresholds apply to them
(:mod:`wsss.cam.calibrate`)."""

from __future__ import annotations

from pathlib import Path

import typer

from wsss.cli.common import console, open_dataset, state


def calibrate_cams(
    cams: Path = typer.Option(..., help="Folder of <id>.npz CAM files (from wsss cam)."),
    out: Path = typer.Option(
        ..., help="Folder of the calibrated <id>.npz files (rerun to resume)."
    ),
    threshold: float | None = typer.Option(
        None,
        help="The CAMs' background threshold to map to 0.15 (default: their best on the "
        "split's ground truth, which then needs --root).",
    ),
    root: Path | None = typer.Option(None, help="Dataset root (or the dataset's env variable)."),
    dataset: str = typer.Option("auto", help="voc, coco, synthetic, ... or auto."),
    split: str = typer.Option("train", help="The split whose CAMs are calibrated (and scored)."),
) -> None:
    """Map the CAMs to the threshold scale of the papers: c ** gamma, gamma = ln 0.15 / ln t."""
    from wsss.cam.calibrate import calibrate_cams as write_calibrated
    from wsss.cam.calibrate import prepare_calibrated_folder, threshold_from_sweep

    data = open_dataset(dataset, root, split)
    source = "--threshold"
    if threshold is None:
        from wsss.metrics.evaluate import evaluate_cams

        scores = evaluate_cams(data, cams, progress=not state.quiet)
        threshold, source = threshold_from_sweep(scores, split)
    record = prepare_calibrated_folder(out, threshold=threshold, source=source)
    written = write_calibrated(cams, out, data.ids, record["gamma"], progress=not state.quiet)
    if not state.quiet:
        console.print(f"gamma {record['gamma']:.3f}: threshold {threshold:.2f} ({source}) -> "
                      f"{record['reference']:.2f}; {written} files written to {out}")  # fmt: skip
