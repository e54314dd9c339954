"""``wsss refine``: label maps from your own CAMs by dense CRF, random walk or WSGCN's GCN.

Runs in one process or under ``torchrun --nproc_per_node N`` with the same arguments, and resumes
when rerun (existing PNGs are kept).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from wsss.cli import gcn_options as gcn
from wsss.cli.common import console, state


def refine(
    images: Path = typer.Option(..., help="Folder of <id>.jpg (or .png) images."),
    cams: Path = typer.Option(..., help="Folder of <id>.npz CAM files (format: README, Files)."),
    out: Path = typer.Option(..., help="Folder of <id>.png labels (rerun to resume)."),
    method: str = typer.Option("gcn", help="crf, rw or gcn."),
    num_classes: int = typer.Option(21, help="Class ids of the CAM files lie in 1..num_classes-1."),
    bg_threshold: float | None = typer.Option(None, help="crf: background score (0.15)."),
    cam_floor: str = typer.Option(
        "auto", help="Background floor removed from the CAMs first: auto (the 5 % quantile of "
        "the folder's max CAM values) or a number; 0 keeps them as given (the papers' setting).",
    ),  # fmt: skip
    affinity: Path | None = typer.Option(
        None, help="rw: the train-affinity run; gcn: an IRNet run for graph sparse/dense."
    ),
    graph: str | None = gcn.GRAPH,
    features: str | None = gcn.FEATURES,
    cam_checkpoint: Path | None = gcn.CAM_CHECKPOINT,
    crf: bool = gcn.CRF,
    steps: int = gcn.STEPS,
    entropy: float = gcn.ENTROPY,
    laplacian: float = gcn.LAPLACIAN,
    laplacian_on_log: bool = gcn.LAPLACIAN_ON_LOG,
    entropy_mean: str = gcn.ENTROPY_MEAN,
    outputs: int | None = gcn.OUTPUTS,
    init: str = gcn.INIT,
    laplacian_graph: str = gcn.LAPLACIAN_GRAPH,
    phi_variant: str = gcn.PHI_VARIANT,
    topk: int = gcn.TOPK,
    batch_size: int = typer.Option(1, help="gcn: images whose GCNs train at once."),
    seed: int = gcn.SEED,
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:<i>."),
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
        options.update(gcn.gcn_options(
            graph=graph, affinity=affinity, features=features, cam_checkpoint=cam_checkpoint,
            crf=crf, steps=steps, entropy=entropy, laplacian=laplacian,
            laplacian_on_log=laplacian_on_log, phi_variant=phi_variant, topk=topk, seed=seed,
            entropy_mean=entropy_mean, outputs=outputs, init=init, laplacian_graph=laplacian_graph,
        ))  # fmt: skip
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
        console.print(f"{method} labels in {out} (rank 0: {done['written']} written, "
                      f"{skipped} already there; CAM floor removed {done['cam_floor']:.3f}, "
                      f"median background share {share:.1%})")  # fmt: skip
