"""``wsss train-affinity``: train IRNet's boundary network or AffinityNet from seeds.

Runs in one process or under ``torchrun --nproc_per_node N`` with the same arguments, and
resumes when rerun.
"""

from __future__ import annotations

from pathlib import Path

import typer

from wsss.cli.common import console, open_dataset, state


def train_affinity(
    method: str = typer.Option("irn", help="irn (IRNet boundary net) or psa (AffinityNet)."),
    checkpoint: Path = typer.Option(
        ..., help="The train-cam run (or its final.pt) whose backbone is used."
    ),
    seeds: Path = typer.Option(..., help="Folder of <id>.png seeds (from wsss seeds)."),
    out: Path = typer.Option(..., help="Run directory (rerun the command to resume)."),
    root: Path | None = typer.Option(None, help="Dataset root (or the dataset's env variable)."),
    dataset: str = typer.Option("auto", help="voc, coco, synthetic, ... or auto."),
    split: str = typer.Option("train", help="Training split."),
    radius: float | None = typer.Option(None, help="Radius of the training pairs (irn 10, psa 5)."),
    epochs: int | None = typer.Option(None, help="Epochs (irn 3, psa 8)."),
    batch_size: int | None = typer.Option(None, help="Global batch size (irn 32, psa 8)."),
    lr: float | None = typer.Option(None, help="Learning rate (irn 0.1; psa 0.1, head x10)."),
    weight_decay: float | None = typer.Option(None, help="SGD weight decay (irn 1e-4, psa 5e-4)."),
    crop: int | None = typer.Option(None, help="Training crop side (irn 512, psa 448)."),
    long_side: tuple[int, int] | None = typer.Option(
        None, help="LO HI of the random long-side resize."
    ),
    distance: str = typer.Option("l1", help="psa: l1 (paper) or mean (authors' code)."),
    freeze_backbone: bool = typer.Option(False, help="psa: keep the CAM backbone fixed."),
    workers: int = typer.Option(0, min=0, help="DataLoader worker processes per rank."),
    seed: int = typer.Option(0, min=0, help="Seed of initialisation, order and augmentation."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:<i>."),
) -> None:
    """Train a pixel-affinity network on the frozen (irn) or fine-tuned (psa) CAM backbone."""
    from wsss.affinity.train import resolve_config, train
    from wsss.cli.cam import _dataset_name
    from wsss.engine import init_distributed, is_main_process

    name = _dataset_name(dataset, root)
    config = resolve_config(
        method=method, cam_checkpoint=checkpoint, seeds=seeds, dataset=name, root=root,
        split=split, radius=radius, epochs=epochs, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, crop=crop, long_side=long_side, distance=distance,
        freeze_backbone=freeze_backbone, seed=seed,
    )  # fmt: skip
    init_distributed(device)
    data = open_dataset(name, root, split)
    verbose = not state.quiet and is_main_process()
    final = train(config, out, dataset=data, device=device, workers=workers, progress=verbose,
                  report=console.print if verbose else None)  # fmt: skip
    if verbose:
        console.print(f"wrote {final}")
