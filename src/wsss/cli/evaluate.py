"""``wsss eval``: score label PNGs or CAM files against a dataset's ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from wsss.cli.common import console, open_dataset, scores_table, state
from wsss.engine import barrier, init_distributed, is_main_process
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text


def evaluate(
    pred: Path | None = typer.Option(None, help="Folder of <id>.png label maps to score."),
    cams: Path | None = typer.Option(None, help="Folder of <id>.npz CAM files to score."),
    root: Path | None = typer.Option(None, help="Dataset root (or the dataset's env variable)."),
    split: str = typer.Option("val", help="Split name (a list file of the dataset)."),
    dataset: str = typer.Option("auto", help="voc, coco, ade20k, cityscapes, synthetic or auto."),
    pred_ignore: str = typer.Option(
        "background", help="Predicted 255: 'background' (IRNet) or 'ignore' (WSGCN)."
    ),
    boundary: bool = typer.Option(True, help="Also compute the boundary F-score."),
    out: Path | None = typer.Option(
        None, help="JSON file to write (default: in the scored folder)."
    ),
) -> None:
    """Evaluate predictions (mIoU, boundary F) or CAMs (background-threshold sweep)."""
    from wsss.metrics.evaluate import evaluate_cams, evaluate_predictions

    if (pred is None) == (cams is None):
        raise WsssError("give exactly one of --pred DIR or --cams DIR")
    if pred_ignore not in ("background", "ignore"):
        raise WsssError(f"--pred-ignore must be 'background' or 'ignore', not {pred_ignore!r}")
    folder = pred if pred is not None else cams
    assert folder is not None
    if not folder.is_dir():
        raise WsssError("prediction folder does not exist", folder)
    init_distributed("cpu")
    data = open_dataset(dataset, root, split)
    progress = not state.quiet and is_main_process()
    if pred is not None:
        result = evaluate_predictions(
            data, pred, pred_ignore=pred_ignore, boundary=boundary, progress=progress
        )
    else:
        result = evaluate_cams(data, folder, progress=progress)
    result = {"split": split, "dataset": type(data).__name__, "folder": str(folder), **result}
    if is_main_process():
        target = out or folder / f"eval-{split}{'-cams' if cams is not None else ''}.json"
        atomic_write_text(target, json.dumps(result, indent=2) + "\n")
        if not state.quiet:
            _print(result, cams is not None)
            console.print(f"wrote {target}")
    barrier()


def _print(result: dict, is_cam: bool) -> None:
    if is_cam:
        best = result["best"]
        summary = {"best threshold": f"{result['best_threshold']:.2f}",
                   "mIoU (best)": f"{best['miou']:.2f}"}  # fmt: skip
        summary.update({f"mIoU at {t}": f"{v:.2f}" for t, v in result["miou_at"].items()})
        console.print(scores_table("CAM IoU at the best threshold", best["iou"], summary))
        return
    summary = {
        "mIoU": f"{result['miou']:.2f}",
        "pixel accuracy": f"{result['pixel_accuracy']:.2f}",
        "labelled ratio": f"{result['labelled_ratio']:.2f}",
    }
    for key, label in (("miou_pred255_background", "mIoU (pred 255 = background)"),
                       ("miou_pred255_ignored", "mIoU (pred 255 ignored)")):  # fmt: skip
        if result.get(key) is not None:
            summary[label] = f"{result[key]:.2f}"
    if result.get("boundary") is not None:
        summary["boundary F"] = f"{result['boundary']['mean_f']:.2f}"
    extra = {k: result[k] for k in ("precision", "recall") if k in result}
    console.print(scores_table("Scores per class", result["iou"], summary, extra))
