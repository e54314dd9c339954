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


#: ``--model`` values: the single-image IRNet classifier (``cam``, its old name, too), the
#: Group-WSSS group classifier, and (``wsss cam`` only) EfficientNet-Lite0's ImageNet head.
MODEL_CHOICES = ("single", "group", "imagenet")


def _model_choice(model: str) -> str:
    """``single``, ``group`` or ``imagenet`` from a ``--model`` value (``cam`` is ``single``)."""
    if model in ("single", "cam"):
        return "single"
    if model in ("group", "imagenet"):
        return model
    raise WsssError(f"unknown model {model!r}; valid names: {', '.join(MODEL_CHOICES)}")


def _refuse(model: str, given: dict[str, object]) -> None:
    """Options of the other model are errors, not silently ignored."""
    wrong = [name for name, value in given.items() if value not in (None, False)]
    if wrong:
        raise WsssError(f"{', '.join(wrong)} cannot be used with --model {model}")


def train_cam(
    root: Path | None = typer.Option(None, help="Dataset root (or the dataset's env variable)."),
    out: Path = typer.Option(..., help="Run directory (rerun the command to resume)."),
    dataset: str = typer.Option("auto", help="voc, coco, synthetic, ... or auto."),
    split: str = typer.Option("train", help="Training split."),
    model: str = typer.Option(
        "single", help="single (IRNet classifier) or group (Group-WSSS group classifier)."
    ),
    backbone: str | None = typer.Option(
        None,
        help="resnet50, resnet101, vgg16, efficientnet_lite0 or small (default: resnet50; "
        "group: vgg16).",
    ),
    output_stride: int | None = typer.Option(
        None, help="8 or 16, 32 on efficientnet_lite0 (default per backbone)."
    ),
    pretrained: bool | None = typer.Option(
        None, "--pretrained/--no-pretrained", help="ImageNet weights (default: yes, except small)."
    ),
    freeze_bn: bool | None = typer.Option(
        None, "--freeze-bn/--no-freeze-bn", help="BatchNorm fixed (default per preset)."
    ),
    freeze_stem: bool | None = typer.Option(
        None,
        "--freeze-stem/--no-freeze-stem",
        help="Single: ResNet conv1+layer1+2 fixed (default per preset).",
    ),
    epochs: int | None = typer.Option(
        None, help="Epochs (IRNet 5, small 30; group 15, small 30 or 1 with --init)."
    ),
    batch_size: int | None = typer.Option(None, help="Single: global batch size (16)."),
    lr: float | None = typer.Option(
        None, help="Backbone lr, head x10 (IRNet 0.1; group 1e-3, small 1e-2)."
    ),
    weight_decay: float | None = typer.Option(None, help="SGD weight decay (1e-4; group 5e-4)."),
    crop: int | None = typer.Option(
        None, help="Training crop side (IRNet 512, group 224; small 128)."
    ),
    long_side: tuple[int, int] | None = typer.Option(
        None, help="LO HI range of the random long-side resize (IRNet 320 640)."
    ),
    color_jitter: bool = typer.Option(False, help="Single: colour jitter (IRNet: none)."),
    group_size: int | None = typer.Option(None, min=1, help="Group: images per group K (4)."),
    rounds: int | None = typer.Option(None, min=1, help="Group: message-passing rounds T (3)."),
    groups_per_batch: int | None = typer.Option(
        None, min=1, help="Group: groups per step over all processes (1; >= processes)."
    ),
    graph_dropout: bool | None = typer.Option(
        None, "--graph-dropout/--no-graph-dropout", help="Group: graph dropout layer (on)."
    ),
    drop_form: str | None = typer.Option(
        None, help="Group: graph dropout as h*s (paper, eq. 11; default) or (h*s + h)/2 (authors)."
    ),
    messages: str | None = typer.Option(
        None, help="Group: neighbours' messages: sum (eq. 8; default), mean or joint softmax."
    ),
    init: Path | None = typer.Option(
        None, help="Group: a single-model final.pt to start the backbone and readouts from."
    ),
    weights: Path | None = typer.Option(
        None,
        help="ImageNet weights file, or a folder holding it (default: torch's cache, "
        "$TORCH_HOME/hub/checkpoints; downloaded there when missing and online).",
    ),
    workers: int = typer.Option(0, min=0, help="DataLoader worker processes per rank."),
    seed: int = typer.Option(0, min=0, help="Seed of initialisation, order and augmentation."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:<i>."),
) -> None:
    """Train the multi-label classifier whose CAMs seed the pipeline (IRNet recipe), or with
    --model group the Group-WSSS group classifier."""
    import torch

    from wsss.engine import init_distributed, is_main_process

    if _model_choice(model) == "imagenet":
        raise WsssError("--model imagenet needs no training: use `wsss cam --model imagenet`")
    name = _dataset_name(dataset, root)
    common = {"dataset": name, "root": root, "split": split, "output_stride": output_stride,
              "pretrained": pretrained, "freeze_bn": freeze_bn, "epochs": epochs, "lr": lr,
              "weight_decay": weight_decay, "crop": crop, "long_side": long_side,
              "seed": seed}  # fmt: skip
    if _model_choice(model) == "single":
        _refuse("single", {"--group-size": group_size, "--rounds": rounds, "--init": init,
                           "--groups-per-batch": groups_per_batch,
                           "--graph-dropout/--no-graph-dropout": graph_dropout,
                           "--drop-form": drop_form, "--messages": messages})  # fmt: skip
        from wsss.cam.train import resolve_config
        from wsss.cam.train import train as run

        config: object = resolve_config(
            **common, model="cam" if model == "single" else model,
            backbone=backbone or "resnet50", freeze_stem=freeze_stem, batch_size=batch_size,
            color_jitter=color_jitter,
        )  # fmt: skip
    else:
        _refuse("group", {"--batch-size": batch_size, "--color-jitter": color_jitter,
                          "--freeze-stem/--no-freeze-stem": freeze_stem})  # fmt: skip
        from wsss.group.train import resolve_group_config
        from wsss.group.train import train_group as run

        config = resolve_group_config(
            **common, backbone=backbone or "vgg16", group_size=group_size or 4,
            steps=rounds or 3, groups_per_batch=groups_per_batch or 1,
            graph_dropout=True if graph_dropout is None else graph_dropout, init=init,
            drop_form=drop_form or "paper", messages=messages or "sum",
        )  # fmt: skip
    init_distributed(device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = open_dataset(name, root, split)
    verbose = not state.quiet and is_main_process()
    final = run(config, out, dataset=data, device=device, workers=workers,  # type: ignore[arg-type]
                progress=verbose, report=console.print if verbose else None,
                weights=weights)  # fmt: skip
    if verbose:
        console.print(f"wrote {final}")


def cam(
    checkpoint: Path | None = typer.Option(
        None, help="final.pt of a train-cam run, or the run folder (not with --model imagenet)."
    ),
    out: Path = typer.Option(..., help="Folder of <id>.npz CAM files (rerun to resume)."),
    root: Path | None = typer.Option(None, help="Dataset root (or the dataset's env variable)."),
    dataset: str = typer.Option("auto", help="voc, coco, synthetic, ... or auto."),
    split: str = typer.Option("train", help="Split to compute CAMs for."),
    model: str = typer.Option(
        "single",
        help="single or group (the model of the checkpoint), or imagenet: EfficientNet-Lite0's "
        "ImageNet head, no training (VOC classes; docs/imagenet.md).",
    ),
    output: str | None = typer.Option(
        None, help="Group: intermediate, graph or ensemble (their average; default)."
    ),
    saliency: Path | None = typer.Option(
        None, help="Group: folder of <id>.png saliency maps; background = 1 - saliency."
    ),
    group_size: int | None = typer.Option(
        None, min=1, help="Group: images per inference group (default: the trained K)."
    ),
    drop_eval: str | None = typer.Option(
        None,
        help="Group: graph dropout at inference: expected (its mean over the random branch; "
        "default) or identity (left out).",
    ),
    combine: str | None = typer.Option(
        None, help="ImageNet: how a class's synsets form its CAM: prob (default), max, sum, lse."
    ),
    output_stride: int | None = typer.Option(
        None, help="ImageNet: Lite0's output stride, 8, 16 (default) or 32."
    ),
    person_proxies: bool | None = typer.Option(
        None,
        "--person-proxies/--no-person-proxies",
        help="ImageNet: person from clothes and person synsets (default), or a zero CAM.",
    ),
    scales: str = typer.Option("1.0,0.5,1.5,2.0", help="Inference scales, comma-separated."),
    high_res: bool = typer.Option(True, help="Also store full-resolution maps."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:<i>."),
) -> None:
    """Write multi-scale, flipped, max-normalised CAMs of the GT classes of every image."""
    from wsss.engine import barrier, init_distributed, is_main_process
    from wsss.engine.training import resolve_device
    from wsss.group.infer import OUTPUTS

    choice = _model_choice(model)
    chosen = parse_scales(scales)
    imagenet = {"--combine": combine, "--output-stride": output_stride,
                "--person-proxies/--no-person-proxies": person_proxies is not None}  # fmt: skip
    if choice == "imagenet":
        _refuse("imagenet", {"--checkpoint": checkpoint, "--output": output,
                             "--saliency": saliency, "--group-size": group_size,
                             "--drop-eval": drop_eval})  # fmt: skip
    else:
        _refuse(choice, imagenet)
        if checkpoint is None:
            raise WsssError(f"--model {choice} needs --checkpoint (a train-cam run)")
    if choice == "single":
        _refuse("single", {"--output": output, "--saliency": saliency, "--group-size": group_size,
                           "--drop-eval": drop_eval})  # fmt: skip
    elif choice == "group" and (output or "ensemble") not in OUTPUTS:
        raise WsssError(f"unknown --output {output!r}; valid: {', '.join(OUTPUTS)}")
    elif saliency is not None and not saliency.is_dir():
        raise WsssError("saliency folder does not exist", saliency)
    init_distributed(device)
    data = open_dataset(_dataset_name(dataset, root), root, split)
    verbose = not state.quiet and is_main_process()
    if choice == "imagenet":
        from wsss.cam.imagenet import DEFAULT_COMBINE, DEFAULT_OUTPUT_STRIDE, infer_imagenet_cams

        done = infer_imagenet_cams(
            data, out, combine=combine or DEFAULT_COMBINE,
            output_stride=output_stride or DEFAULT_OUTPUT_STRIDE,
            person_proxies=True if person_proxies is None else person_proxies, scales=chosen,
            high_res=high_res, device=device, progress=verbose,
        )  # fmt: skip
    elif choice == "single":
        from wsss.cam.infer import infer_cams, load_trained

        assert checkpoint is not None

        net, _config = load_trained(checkpoint, resolve_device(device))
        done = infer_cams(net, data, out, scales=chosen, high_res=high_res, device=device,
                          progress=verbose)  # fmt: skip
    else:
        from wsss.group.infer import infer_group_cams, load_group_trained

        assert checkpoint is not None

        group, config = load_group_trained(checkpoint, resolve_device(device),
                                           drop_eval=drop_eval or "expected")  # fmt: skip
        done = infer_group_cams(group, data, {output or "ensemble": out},
                                group_size=group_size or config.group_size, seed=config.seed,
                                scales=chosen, high_res=high_res, saliency=saliency,
                                device=device, progress=verbose)  # fmt: skip
    barrier()
    if verbose:
        skipped = done["shard"] - done["written"]
        console.print(f"CAMs of {len(data)} images in {out} (rank 0: {skipped} already there)")
