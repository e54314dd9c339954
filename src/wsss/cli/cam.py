"""``wsss train-cam`` and ``wsss cam``: train the CAM classifier, write multi-scale CAMs.

Both run in one process or under ``torchrun --nproc_per_node N`` with the same arguments, and both
resume when rerun.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from wsss.cli.common import console, open_dataset, state
from wsss.data.synthetic import META_FILE
from wsss.errors import WsssError


def _dataset_name(name: str, root: Path | None) -> str:
    if name == "auto":
        return "synthetic" if root is not None and (root / META_FILE).is_file() else "voc"
    return name


def parse_scales(text: str) -> tuple[float, ...]:
    """Scales from ``"1.0,0.5,1.5,2.0"`` or ``"1.0 0.5 1.5 2.0"``.

    Raises:
        WsssError: not a list of positive numbers.
    """
    try:
        scales = tuple(float(v) for v in re.split(r"[,\s]+", text.strip()) if v)
    except ValueError:
        raise WsssError(f"--scales must be numbers separated by commas, got {text!r}") from None
    if not scales or any(s <= 0 for s in scales):
        raise WsssError(f"--scales must be positive numbers, got {text!r}")
    return scales


def train_cam(
    root: Path | None = typer.Option(None, help="Dataset root (or the dataset's env variable)."),
    out: Path = typer.Option(..., help="Run directory (rerun the command to resume)."),
    dataset: str = typer.Option("auto", help="voc, coco, synthetic, ... or auto."),
    split: str = typer.Option("train", help="Training split."),
    model: str = typer.Option("cam", help="Model to train: cam (IRNet classifier)."),
    backbone: str = typer.Option("resnet50", help="resnet50, resnet101, vgg16 or small."),
    output_stride: int | None = typer.Option(None, help="8 or 16 (default per backbone)."),
    pretrained: bool | None = typer.Option(
        None, "--pretrained/--no-pretrained", help="ImageNet weights (default: yes, except small)."
    ),
    freeze_bn: bool | None = typer.Option(
        None, "--freeze-bn/--no-freeze-bn", help="BatchNorm fixed (default per preset)."
    ),
    freeze_stem: bool | None = typer.Option(
        None,
        "--freeze-stem/--no-freeze-stem",
        help="ResNet conv1+layer1+2 fixed (default per preset).",
    ),
    epochs: int | None = typer.Option(None, help="Epochs (IRNet 5; small 30)."),
    batch_size: int | None = typer.Option(None, help="Global batch size (16)."),
    lr: float | None = typer.Option(None, help="Backbone lr, classifier x10 (IRNet 0.1)."),
    weight_decay: float | None = typer.Option(None, help="SGD weight decay (1e-4)."),
    crop: int | None = typer.Option(None, help="Training crop side (IRNet 512; small 128)."),
    long_side: tuple[int, int] | None = typer.Option(
        None, help="LO HI range of the random long-side resize (IRNet 320 640)."
    ),
    color_jitter: bool = typer.Option(False, help="Colour jitter (IRNet: none)."),
    workers: int = typer.Option(0, min=0, help="DataLoader worker processes per rank."),
    seed: int = typer.Option(0, min=0, help="Seed of initialisation, order and augmentation."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:<i>."),
) -> None:
    """Train the multi-label classifier whose CAMs seed the pipeline (IRNet recipe)."""
    import torch

    from wsss.cam.train import resolve_config, train
    from wsss.engine import init_distributed, is_main_process

    name = _dataset_name(dataset, root)
    config = resolve_config(
        dataset=name, root=root, split=split, model=model, backbone=backbone,
        output_stride=output_stride, pretrained=pretrained, freeze_bn=freeze_bn,
        freeze_stem=freeze_stem, epochs=epochs, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, crop=crop, long_side=long_side, color_jitter=color_jitter,
        seed=seed,
    )  # fmt: skip
    init_distributed(device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = open_dataset(name, root, split)
    verbose = not state.quiet and is_main_process()
    final = train(config, out, dataset=data, device=device, workers=workers, progress=verbose,
                  report=console.print if verbose else None)  # fmt: skip
    if verbose:
        console.print(f"wrote {final}")


def cam(
    checkpoint: Path = typer.Option(..., help="final.pt of a train-cam run, or the run folder."),
    out: Path = typer.Option(..., help="Folder of <id>.npz CAM files (rerun to resume)."),
    root: Path | None = typer.Option(None, help="Dataset root (or the dataset's env variable)."),
    dataset: str = typer.Option("auto", help="voc, coco, synthetic, ... or auto."),
    split: str = typer.Option("train", help="Split to compute CAMs for."),
    scales: str = typer.Option("1.0,0.5,1.5,2.0", help="Inference scales, comma-separated."),
    high_res: bool = typer.Option(True, help="Also store full-resolution maps."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:<i>."),
) -> None:
    """Write multi-scale, flipped, max-normalised CAMs of the GT classes of every image."""
    from wsss.cam.infer import infer_cams, load_trained
    from wsss.engine import barrier, init_distributed, is_main_process
    from wsss.engine.training import resolve_device

    chosen = parse_scales(scales)
    init_distributed(device)
    data = open_dataset(_dataset_name(dataset, root), root, split)
    model, _config = load_trained(checkpoint, resolve_device(device))
    verbose = not state.quiet and is_main_process()
    done = infer_cams(model, data, out, scales=chosen, high_res=high_res, device=device,
                      progress=verbose)  # fmt: skip
    barrier()
    if verbose:
        skipped = done["shard"] - done["written"]
        console.print(f"CAMs of {len(data)} images in {out} (rank 0: {skipped} already there)")
