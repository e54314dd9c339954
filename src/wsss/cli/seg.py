"""``wsss train-seg`` and ``wsss predict``: train a segmentation network, write its label maps.

Both run in one process or under ``torchrun --nproc_per_node N`` with the same arguments, and both
resume when rerun.
"""

from __future__ import annotations

from pathlib import Path

import typer

from wsss.cli.cam import _dataset_name, parse_scales
from wsss.cli.common import console, open_dataset, state


def train_seg(
    root: Path | None = typer.Option(None, help="Dataset root (or the dataset's env variable)."),
    out: Path = typer.Option(..., help="Run directory (rerun the command to resume)."),
    labels: Path | None = typer.Option(
        None, help="Folder of <id>.png pseudo labels (255 ignored); default: the ground truth."
    ),
    dataset: str = typer.Option("auto", help="voc, coco, ade20k, cityscapes, synthetic or auto."),
    split: str = typer.Option("train", help="Training split."),
    model: str = typer.Option(
        "deeplabv3plus", help="deeplabv2, deeplabv3plus, escrf, nonlocal or jointcrf."
    ),
    backbone: str = typer.Option(
        "resnet101", help="resnet50, resnet101, efficientnet_lite0 or small."
    ),
    output_stride: int | None = typer.Option(
        None, help="8 or 16, 32 on efficientnet_lite0 (default per model)."
    ),
    pretrained: bool = typer.Option(
        False, "--pretrained/--no-pretrained", help="ImageNet weights (torchvision download)."
    ),
    freeze_bn: bool | None = typer.Option(
        None, "--freeze-bn/--no-freeze-bn", help="Backbone BatchNorm fixed (default per preset)."
    ),
    epochs: int | None = typer.Option(
        None, help="Epochs (deeplabv2 20, deeplabv3plus 120, small 8)."
    ),
    batch_size: int | None = typer.Option(None, help="Global batch size (10 / 16 / 16)."),
    lr: float | None = typer.Option(None, help="Backbone lr (2.5e-4 / 0.01 / 2e-3)."),
    head_lr_mult: float | None = typer.Option(
        None, help="lr factor of the head (deeplabv2 / deeplabv3plus 10, small 1)."
    ),
    optimizer: str | None = typer.Option(
        None, help="sgd or adamw (deeplabv2 / deeplabv3plus sgd, small adamw)."
    ),
    weight_decay: float | None = typer.Option(None, help="Weight decay (5e-4 / 1e-4 / 1e-4)."),
    crop: int | None = typer.Option(None, help="Training crop side (321 / 512 / 128)."),
    long_side: tuple[int, int] | None = typer.Option(
        None, help="LO HI range of the random long-side resize (scale augmentation)."
    ),
    max_grad_norm: float | None = typer.Option(
        None, help="Clip the total gradient norm at this value (default: no clipping)."
    ),
    n_segments: int = typer.Option(
        200, help="ES-CRF: SLIC superpixels per image (Cityscapes 600)."
    ),
    pairwise: bool = typer.Option(True, "--pairwise/--no-pairwise", help="ES-CRF pairwise term."),
    superpixel: bool = typer.Option(
        True, "--superpixel/--no-superpixel", help="ES-CRF superpixel term."
    ),
    weights: Path | None = typer.Option(
        None,
        help="ImageNet weights file, or a folder holding it (default: torch's cache, "
        "$TORCH_HOME/hub/checkpoints; downloaded there when missing and online).",
    ),
    workers: int = typer.Option(0, min=0, help="DataLoader worker processes per rank."),
    seed: int = typer.Option(0, min=0, help="Seed of initialisation, order and augmentation."),
    init: Path | None = typer.Option(
        None,
        help="A trained run (or its final.pt) whose weights start the network; parts it "
        "lacks keep their initialisation (e.g. Joint-CRF on a trained DeepLabV3+).",
    ),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:<i>."),
) -> None:
    """Train a segmentation network (DeepLab-v2, DeepLabV3+, ES-CRF) on GT or pseudo labels."""
    import torch

    from wsss.engine import init_distributed, is_main_process
    from wsss.seg.train import resolve_config, train

    name = _dataset_name(dataset, root)
    config = resolve_config(
        dataset=name, root=root, split=split, labels=labels, model=model, backbone=backbone,
        output_stride=output_stride, pretrained=pretrained, freeze_bn=freeze_bn, epochs=epochs,
        batch_size=batch_size, lr=lr, head_lr_mult=head_lr_mult, optimizer=optimizer,
        weight_decay=weight_decay,
        crop=crop, long_side=long_side, n_segments=n_segments, pairwise=pairwise,
        superpixel=superpixel, seed=seed, init=init, max_grad_norm=max_grad_norm,
    )  # fmt: skip
    init_distributed(device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = open_dataset(name, root, split)
    verbose = not state.quiet and is_main_process()
    final = train(config, out, dataset=data, device=device, workers=workers, progress=verbose,
                  report=console.print if verbose else None, weights=weights)  # fmt: skip
    if verbose:
        console.print(f"wrote {final}")


def predict(
    checkpoint: Path = typer.Option(..., help="final.pt of a train-seg run, or the run folder."),
    out: Path = typer.Option(..., help="Folder of <id>.png label maps (rerun to resume)."),
    root: Path | None = typer.Option(None, help="Dataset root (or the dataset's env variable)."),
    dataset: str = typer.Option("auto", help="voc, coco, ade20k, cityscapes, synthetic or auto."),
    split: str = typer.Option("val", help="Split to label."),
    scales: str = typer.Option(
        "1.0", help="Inference scales, comma-separated (e.g. 1.0,0.75,1.25)."
    ),
    flip: bool = typer.Option(False, "--flip/--no-flip", help="Also average the flipped image."),
    crf: bool = typer.Option(
        False, "--crf/--no-crf", help="Dense-CRF post-processing (Vanilla-CRF)."
    ),
    superpixels: Path | None = typer.Option(
        None, help="ES-CRF: folder caching SLIC maps (default: <out>/superpixels)."
    ),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:<i>."),
) -> None:
    """Write the label maps of a split (VOC palette) with a trained segmentation network."""
    from wsss.engine import barrier, init_distributed, is_main_process
    from wsss.engine.training import resolve_device
    from wsss.seg.predict import predict_split
    from wsss.seg.train import load_trained

    chosen = parse_scales(scales)
    init_distributed(device)
    data = open_dataset(_dataset_name(dataset, root), root, split)
    model, config = load_trained(checkpoint, resolve_device(device))
    verbose = not state.quiet and is_main_process()
    cache = superpixels if superpixels is not None else out / "superpixels"
    done = predict_split(model, data, out, scales=chosen, flip=flip, n_segments=config.n_segments,
                         superpixel_cache=cache, checkpoint=str(checkpoint), crf=crf, device=device,
                         progress=verbose)  # fmt: skip
    barrier()
    if verbose:
        skipped = done["shard"] - done["written"]
        console.print(
            f"label maps of {len(data)} images in {out} (rank 0: {skipped} already there)"
        )
