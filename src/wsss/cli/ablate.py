"""``wsss ablate``: the papers' ablation tables on a finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wsss.cli.common import console, state

app = typer.Typer(help="Ablation tables in the papers' layouts.", no_args_is_help=True)

# Options of more than one table, declared once.
Root = Annotated[Path, typer.Option(help="Dataset root (e.g. a `wsss synth` folder).")]
Dataset = Annotated[str, typer.Option(help="voc, coco, ade20k, cityscapes, synthetic or auto.")]
Split = Annotated[str, typer.Option(help="Training split.")]
TrainLimit = Annotated[int | None, typer.Option(min=1, help="Train on the first N images.")]
Seed = Annotated[int, typer.Option(min=0, help="Seed of every training.")]
Workers = Annotated[int, typer.Option(min=0, help="DataLoader worker processes.")]
Device = Annotated[str, typer.Option(help="cpu, cuda or cuda:<i>.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Same as `wsss --quiet`.")]


def _start(device: str, quiet: bool) -> bool:
    """Join the process group, ask torch for deterministic kernels; whether to print (rank 0)."""
    import torch

    from wsss.engine import init_distributed, is_main_process

    init_distributed(device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return not (state.quiet or quiet) and is_main_process()


@app.command("gcn")
def gcn(
    run: Path = typer.Option(Path("runs/demo"), help="A `wsss run` directory (cam, affinity)."),
    limit: int = typer.Option(100, min=1, help="Score the first N images of the split."),
    batch_size: int = typer.Option(32, min=1, help="Images whose GCNs train together."),
    device: str | None = typer.Option(None, help="cpu, cuda or cuda:<i> (default: the run's)."),
) -> None:
    """WSGCN table 2: l_fg + l_bg, + entropy, + Laplacian, + both, + dCRF; CAM and RW rows."""
    from rich.markdown import Markdown

    from wsss.ablation import ablate_gcn, gcn_table
    from wsss.engine import init_distributed, is_main_process

    init_distributed(device or "cpu")
    verbose = not state.quiet and is_main_process()
    result = ablate_gcn(run, limit=limit, batch_size=batch_size, device=device, progress=verbose)
    if verbose:
        console.print(Markdown("\n".join(gcn_table(result))))
        console.print(f"wrote {Path(run) / 'ablation' / 'gcn.json'}")


@app.command("seg")
def seg(
    root: Root,
    out: Path = typer.Option(Path("runs/ablate-seg"), help="Output folder (rerun to resume)."),
    labels: Path | None = typer.Option(
        None, help="Pseudo labels <id>.png of the training split: also train every row on them."
    ),
    gt: bool = typer.Option(True, "--gt/--no-gt", help="Train the rows on the ground truth."),
    dataset: Dataset = "auto",
    split: Split = "train",
    val_split: str = typer.Option("val", help="Split scored (needs ground truth)."),
    backbone: str = typer.Option(
        "small", help="small (CPU), efficientnet_lite0, resnet50 or resnet101."
    ),
    epochs: int | None = typer.Option(
        None, min=1, help="Epochs per row (default: the preset; small: 8)."
    ),
    batch_size: int | None = typer.Option(None, min=1, help="Batch size (default: preset, 16)."),
    lr: float | None = typer.Option(
        None, help="Learning rate (default: the preset; small: AdamW 2e-3 on every layer)."
    ),
    crop: int | None = typer.Option(None, help="Training crop side (default: preset, 128)."),
    long_side: tuple[int, int] | None = typer.Option(
        None, help="LO HI range of the random long-side resize (default: preset, 96 176)."
    ),
    n_segments: int = typer.Option(200, min=1, help="SLIC superpixels per image (ES-CRF)."),
    train_limit: TrainLimit = None,
    val_limit: int | None = typer.Option(None, min=1, help="Score the first N val images."),
    seed: Seed = 0,
    pretrained: bool = typer.Option(
        False,
        "--pretrained/--no-pretrained",
        help="ImageNet weights (ResNets, the paper's; efficientnet_lite0).",
    ),
    head_channels: int | None = typer.Option(
        None, min=8, help="ASPP and decoder width (default: the paper's 256)."
    ),
    rows: str = typer.Option(
        "all",
        help="Row keys, comma-separated (deeplabv3plus, vanilla_crf, joint_crf, non_local, "
        "escrf_p, escrf_s, escrf_ps) or all; the first is the baseline of the deltas.",
    ),
    workers: Workers = 0,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """ES-CRF tables 1-2: DeepLabV3+, + Vanilla-CRF, + Joint-CRF, + Non-local, + ES-CRF terms."""
    from rich.markdown import Markdown

    from wsss.ablation.seg import ablate_seg, seg_table, select_seg_rows

    chosen = select_seg_rows(rows)

    verbose = _start(device, quiet)
    result = ablate_seg(
        root, out, dataset=dataset, labels=labels, gt=gt, split=split, val_split=val_split,
        backbone=backbone, epochs=epochs, batch_size=batch_size, lr=lr, crop=crop,
        long_side=long_side, n_segments=n_segments, train_limit=train_limit, val_limit=val_limit,
        seed=seed, pretrained=pretrained, head_channels=head_channels, rows=chosen,
        device=device, workers=workers, progress=verbose,
        report=console.print if verbose else None,
    )  # fmt: skip
    if verbose:
        console.print(Markdown("\n".join(seg_table(result))))
        console.print(f"wrote {out / 'seg.json'} and {out / 'seg.md'}")


@app.command("group")
def group(
    root: Root,
    out: Path = typer.Option(Path("runs/ablate-group"), help="Output folder (rerun to resume)."),
    dataset: Dataset = "auto",
    split: Split = "train",
    eval_split: str | None = typer.Option(
        None, help="Split whose CAMs are scored (default: split)."
    ),
    backbone: str = typer.Option(
        "small", help="small (CPU), efficientnet_lite0 (ImageNet), vgg16, resnet50 or resnet101."
    ),
    cam_epochs: int | None = typer.Option(
        None, min=1, help="Epochs of the single-image classifier (default: preset, small 30)."
    ),
    group_epochs: int | None = typer.Option(
        None,
        min=1,
        help="Epochs of each group network (default: preset; small 1 with --init, else 30).",
    ),
    batch_size: int | None = typer.Option(
        None, min=1, help="Batch size of the single-image classifier (default: preset, 16)."
    ),
    crop: int | None = typer.Option(None, help="Training crop side (default: preset, small 128)."),
    long_side: tuple[int, int] | None = typer.Option(
        None, help="LO HI range of the random long-side resize of both networks (default: preset)."
    ),
    train_limit: TrainLimit = None,
    eval_limit: int | None = typer.Option(None, min=1, help="Score the first N images."),
    scales: str = typer.Option("1.0,0.5", help="Inference scales of every row, comma-separated."),
    init: bool = typer.Option(
        True, "--init/--no-init", help="Start the group networks from the single-image one."
    ),
    seed: Seed = 0,
    seeds: str | None = typer.Option(
        None, help="Several seeds, e.g. 0,1,2: one folder each and a summary with spreads."
    ),
    rows: str = typer.Option(
        "all", help="Rows: all, paper, messages, dropout and/or row keys, comma-separated."
    ),
    workers: Workers = 0,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """Group-WSSS table 3: single-image CAM, intermediate / graph / ensemble outputs, K 3-5,
    T 2, no graph dropout; and each image alone, the message rules and the dropout scale
    (CAM mIoU at the best background threshold)."""
    from rich.markdown import Markdown

    from wsss.ablation.group import (
        ablate_group,
        ablate_group_seeds,
        group_seed_table,
        group_table,
        select_rows,
    )
    from wsss.cli.cam import parse_scales

    chosen = parse_scales(scales)
    selected = select_rows(rows)
    several = None if seeds is None else _parse_seeds(seeds)
    verbose = _start(device, quiet)
    options = dict(
        dataset=dataset, split=split, eval_split=eval_split, backbone=backbone,
        cam_epochs=cam_epochs, group_epochs=group_epochs, batch_size=batch_size, crop=crop,
        long_side=long_side, train_limit=train_limit, eval_limit=eval_limit, scales=chosen, init=init,
        rows=selected, device=device, workers=workers, progress=verbose,
        report=console.print if verbose else None,
    )  # fmt: skip
    if several is not None:
        summary = ablate_group_seeds(root, out, seeds=several, **options)  # type: ignore[arg-type]
        if verbose:
            console.print(Markdown("\n".join(group_seed_table(summary))))
            console.print(f"wrote {out / 'group_seeds.json'} and {out / 'group_seeds.md'}")
        return
    result = ablate_group(root, out, seed=seed, **options)  # type: ignore[arg-type]
    if verbose:
        console.print(Markdown("\n".join(group_table(result))))
        console.print(f"wrote {out / 'group.json'} and {out / 'group.md'}")


def _parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``.

    Raises:
        WsssError: not a list of non-negative integers.
    """
    from wsss.errors import WsssError

    try:
        values = [int(v) for v in text.replace(" ", ",").split(",") if v]
    except ValueError:
        raise WsssError(f"--seeds must be integers separated by commas, got {text!r}") from None
    if not values or min(values) < 0 or len(set(values)) != len(values):
        raise WsssError(f"--seeds must be distinct non-negative integers, got {text!r}")
    return values
