"""``wsss seeds``: partial pseudo labels (IRNet, WSGCN or Group-WSSS scheme) from the CAM files
of a split.

Runs in one process or under ``torchrun --nproc_per_node N`` with the same arguments, and resumes
when rerun (existing PNGs are kept).
"""

from __future__ import annotations

from pathlib import Path

import typer

from wsss.cli.common import console, open_dataset, state


def seeds(
    cams: Path = typer.Option(..., help="Folder of <id>.npz CAM files (from wsss cam)."),
    out: Path = typer.Option(..., help="Folder of <id>.png seed labels (rerun to resume)."),
    method: str = typer.Option(
        "irnet", help="irnet (image size), wsgcn (stride-4 size) or group (image size)."
    ),
    root: Path | None = typer.Option(None, help="Dataset root (or the dataset's env variable)."),
    dataset: str = typer.Option("auto", help="voc, coco, synthetic, ... or auto."),
    split: str = typer.Option("train", help="Split to make seeds for."),
    conf_fg: float | None = typer.Option(
        None, help="irnet: background score of the foreground-confident map (default 0.30)."
    ),
    conf_bg: float | None = typer.Option(
        None, help="irnet: background score of the background-confident map (default 0.05)."
    ),
    fg_alpha: float | None = typer.Option(
        None, help="wsgcn: exponent of (1 - max CAM) for confident foreground (default 4)."
    ),
    bg_alpha: float | None = typer.Option(
        None, help="wsgcn: exponent of (1 - max CAM) for confident background (default 32)."
    ),
    top: float | None = typer.Option(
        None, help="wsgcn: fraction of each class's CAM values kept as confident (default 0.3)."
    ),
    min_score: float | None = typer.Option(
        None, help="wsgcn: CAM values at or below it are never confident (default 0.1)."
    ),
    bg_threshold: float | None = typer.Option(
        None,
        help="wsgcn: refined background probability above which it is confident (default 0.8).",
    ),
    variant: str | None = typer.Option(
        None, help="wsgcn, group: 'spec' (the SPEC's rule, default) or 'code' (the authors' code)."
    ),
    bg_score: float | None = typer.Option(
        None, help="group: constant background score without saliency (default 0.25)."
    ),
    conflict: float | None = typer.Option(
        None, help="group: pixels where several planes exceed it are unlabelled (default 0.9)."
    ),
    saliency: Path | None = typer.Option(
        None, help="group: folder of <id>.png saliency maps; background = 1 - saliency."
    ),
    full_size: bool = typer.Option(
        False,
        "--full-size",
        help="wsgcn: upsample the stride-4 seeds to the image size (needed by wsss eval).",
    ),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:<i> (where the CRFs run)."),
) -> None:
    """Write partial pseudo labels: class ids where the CAMs are sure, 0 background, 255 unsure."""
    from wsss.engine import barrier, init_distributed, is_main_process
    from wsss.seeds import create_seeder, make_seeds

    given = dict(conf_fg=conf_fg, conf_bg=conf_bg, fg_alpha=fg_alpha, bg_alpha=bg_alpha, top=top,
                 min_score=min_score, bg_threshold=bg_threshold, variant=variant,
                 bg_score=bg_score, conflict=conflict)  # fmt: skip
    seeder = create_seeder(method, **{k: v for k, v in given.items() if v is not None})
    init_distributed(device)
    data = open_dataset(dataset, root, split)
    verbose = not state.quiet and is_main_process()
    done = make_seeds(data, cams, out, seeder, full_size=full_size, device=device,
                      progress=verbose, saliency=saliency)  # fmt: skip
    barrier()
    if verbose:
        skipped = done["shard"] - done["written"]
        size = "image size" if full_size or seeder.full_resolution else "stride-4 CAM size"
        console.print(f"{method} seeds of {len(data)} images in {out} at the {size} "
                      f"(rank 0: {skipped} already there)")  # fmt: skip
        if size != "image size":
            console.print("rerun into another folder with --full-size to score them with wsss eval")
