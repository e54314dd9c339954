"""``wsss refine``: label maps from your own CAMs by dense CRF, random walk or WSGCN's GCN.

Runs in one process or under ``torchrun --nproc_per_node N`` with the same arguments, and resumes
when rerun (existing PNGs are kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from wsss.cli.common import console, state
from wsss.cli.gcn_options import gcn_options, with_gcn_options


@with_gcn_options
def refine(
    images: Path = typer.Option(..., help="Folder of <id>.jpg (or .png) images."),
    cams: Path = typer.Option(..., help="Folder of <id>.npz CAM files (format: README, Files)."),
    out: Path = typer.Option(..., help="Folder of <id>.png labels (rerun to resume)."),
    method: str = typer.Option("gcn", help="crf, rw or gcn."),
    num_classes: int = typer.Option(21, help="Class ids of the CAM files lie in 1..num_classes-1."),
    bg_threshold: str = typer.Option(
        "auto",
        help="crf: background score; auto (the median of the folder's max CAM values after the "
        "floor's removal) or a number (0.15: IRNet's CAM evaluation).",
    ),
    cam_floor: str = typer.Option(
        "auto",
        help="Background floor removed from the CAMs first: auto (the 5 % quantile of "
        "the folder's max CAM values) or a number; 0 keeps them as given (the papers' setting).",
    ),
    affinity: Path | None = typer.Option(
        None, help="rw: the train-affinity run; gcn: an IRNet run for graph sparse/dense."
    ),
    batch_size: int = typer.Option(1, help="gcn: images whose GCNs train at once."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:<i>."),
    gcn: dict[str, Any] | None = None,
) -> None:
    """Turn CAMs made by any method into full-size label maps (0 background, no 255)."""
    from wsss.engine import barrier, init_distributed, is_main_process
    from wsss.refine import background_warnings, create_refiner, refine_folder

    options: dict = {"device": device}
    if method == "crf":
        options["bg_threshold"] = bg_threshold
    elif method == "rw":
        options["affinity"] = affinity
    elif method == "gcn":
        options.update(gcn_options(affinity=affinity, **(gcn or {})))  # fmt: skip
    init_distributed(device)
    refiner = create_refiner(method, **options)
    verbose = not state.quiet and is_main_process()
    done = refine_folder(images, cams, out, refiner, num_classes=num_classes,
                         batch_size=batch_size, progress=verbose, cam_floor=cam_floor)  # fmt: skip
    barrier()
    if is_main_process():
        for message in background_warnings(done["background_share"]):
            typer.echo(f"warning: {message}; check the CAMs' calibration (--cam-floor) or "
                       "--bg-threshold", err=True)  # fmt: skip
    if verbose:
        skipped = done["shard"] - done["written"]
        share = np.median(list(done["background_share"].values()))
        plane = "" if done["bg_threshold"] is None else f", bg threshold {done['bg_threshold']:.3f}"
        console.print(f"{method} labels in {out} (rank 0: {done['written']} written, "
                      f"{skipped} already there; CAM floor removed {done['cam_floor']:.3f}"
                      f"{plane}, median background share {share:.1%})")  # fmt: skip
