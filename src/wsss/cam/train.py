"""Training the multi-label classifier whose CAMs start the pipeline (SPEC section 1).

One function, :func:`train`, runs in one process or under ``torchrun`` (DDP) and resumes from
``<out>/checkpoint.pt``. Files in the run directory (written by rank 0 only):

==================  ==========================================================================
``config.json``     the resolved :class:`TrainConfig` plus the runtime options
``checkpoint.pt``   after each epoch: model, optimizer, epoch, iteration, RNG state, config
``final.pt``        at the end: ``{"model": state_dict, "config": ..., "classes": [...]}``
``train.log``       one line per epoch: epoch, mean loss, lr, seconds
==================  ==========================================================================

Each epoch draws a seeded permutation of the dataset, cuts it into global batches (the last
incomplete one dropped) and gives each process a contiguous share of every global batch; each
sample's augmentation is seeded from ``(seed, epoch, index)``. Hence the weights do not depend on
the number of processes (up to float summation order) nor on interruptions.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wsss.data.base import Sample, SegmentationDataset
from wsss.data.transforms import TrainTransform
from wsss.engine import barrier, init_distributed, is_main_process
from wsss.engine.distributed import all_reduce_sum, dist_info
from wsss.engine.progress import track
from wsss.engine.training import (
    global_batches,
    load_checkpoint,
    local_batch,
    local_loss_weight,
    make_sgd,
    resolve_device,
    rng_state,
    sample_seed,
    save_checkpoint,
    seed_everything,
    set_poly_lr,
    set_rng_state,
    unwrap,
    wrap_ddp,
)
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text
from wsss.models.backbones import BACKBONES, DEFAULT_OUTPUT_STRIDES, HAS_PRETRAINED, create_backbone
from wsss.models.cam_net import CamNet, multilabel_loss

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
FINAL_FILE = "final.pt"
LOG_FILE = "train.log"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (saved as ``config.json``).

    Attributes:
        dataset: Dataset registry name (``auto`` resolved by the caller).
        root: Dataset root (None: the dataset's environment variable).
        split: Training split.
        model: Key of :data:`MODELS`.
        backbone: Key of :data:`~wsss.models.backbones.BACKBONES`.
        output_stride: 8 or 16.
        pretrained: Start from ImageNet weights.
        freeze_bn: BatchNorm in eval mode with fixed affine parameters.
        freeze_stem: Leave the backbone's leading stages untrained (ResNet: conv1, layer1-2).
        epochs: Number of epochs.
        batch_size: Global batch size (over all processes).
        lr: Backbone learning rate; the classifier's is ``lr * classifier_lr_mult``.
        classifier_lr_mult: Learning-rate factor of the classifier.
        weight_decay: SGD weight decay.
        momentum: SGD momentum.
        poly_power: Power of the polynomial decay over all iterations.
        crop: Side of the square training crop.
        long_side: Range of the random long-side resize, inclusive.
        flip: Random horizontal flips.
        color_jitter: Colour jitter (IRNet uses none).
        seed: Seed of initialisation, data order and augmentation.
    """

    dataset: str
    root: str | None
    split: str
    model: str
    backbone: str
    output_stride: int
    pretrained: bool
    freeze_bn: bool
    freeze_stem: bool
    epochs: int
    batch_size: int
    lr: float
    classifier_lr_mult: float
    weight_decay: float
    momentum: float
    poly_power: float
    crop: int
    long_side: tuple[int, int]
    flip: bool
    color_jitter: bool
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples as lists)."""
        out = dataclasses.asdict(self)
        out["long_side"] = list(self.long_side)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        kept["long_side"] = tuple(kept["long_side"])
        return cls(**kept)


#: Defaults of the paper configuration (IRNet, ResNet-50), of the from-scratch CPU demo
#: (``small`` backbone: nothing frozen, GroupNorm) and of the CPU recipe on the pretrained
#: EfficientNet-Lite0 (``lite0``: IRNet's with crops near the 224 px Lite0 was trained at, and a
#: 10x lower lr for its depthwise layers; docs/imagenet.md). :func:`resolve_config` picks by
#: backbone (:data:`BACKBONE_PRESETS`, else ``irnet``).
PRESETS: dict[str, dict[str, Any]] = {
    "irnet": {
        "epochs": 5, "batch_size": 16, "lr": 0.1, "weight_decay": 1e-4, "crop": 512,
        "long_side": (320, 640), "freeze_bn": True, "freeze_stem": True,
    },
    "small": {
        "epochs": 30, "batch_size": 16, "lr": 0.1, "weight_decay": 1e-4, "crop": 128,
        "long_side": (112, 144), "freeze_bn": False, "freeze_stem": False,
    },
    "lite0": {
        "epochs": 5, "batch_size": 16, "lr": 0.01, "weight_decay": 1e-4, "crop": 256,
        "long_side": (224, 320), "freeze_bn": True, "freeze_stem": True,
    },
}  # fmt: skip
#: Backbones with their own preset (the others take ``irnet``).
BACKBONE_PRESETS: dict[str, str] = {"small": "small", "efficientnet_lite0": "lite0"}


def resolve_config(
    *, dataset: str, root: str | Path | None, split: str = "train", model: str = "cam",
    backbone: str = "resnet50", output_stride: int | None = None, pretrained: bool | None = None,
    freeze_bn: bool | None = None, freeze_stem: bool | None = None, epochs: int | None = None,
    batch_size: int | None = None, lr: float | None = None, classifier_lr_mult: float = 10.0,
    weight_decay: float | None = None, momentum: float = 0.9, poly_power: float = 0.9,
    crop: int | None = None, long_side: tuple[int, int] | None = None, flip: bool = True,
    color_jitter: bool = False, seed: int = 0,
) -> TrainConfig:  # fmt: skip
    """A :class:`TrainConfig` with every None replaced by the backbone's preset.

    ``small`` takes :data:`PRESETS` ``["small"]``, ``efficientnet_lite0`` ``["lite0"]``, every
    other backbone ``["irnet"]``; the output stride and ``pretrained`` default per backbone.

    Raises:
        WsssError: unknown model or backbone, or an invalid value.
    """
    if model not in MODELS:
        raise WsssError(f"unknown model {model!r}; valid names: {', '.join(sorted(MODELS))}")
    if backbone not in BACKBONES:
        raise WsssError(
            f"unknown backbone {backbone!r}; valid names: {', '.join(sorted(BACKBONES))}"
        )
    preset = PRESETS[BACKBONE_PRESETS.get(backbone, "irnet")]
    given = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
             "crop": crop, "long_side": long_side, "freeze_bn": freeze_bn,
             "freeze_stem": freeze_stem}  # fmt: skip
    values = {k: preset[k] if v is None else v for k, v in given.items()}
    config = TrainConfig(
        dataset=dataset,
        root=None if root is None else str(root),
        split=split,
        model=model,
        backbone=backbone,
        output_stride=DEFAULT_OUTPUT_STRIDES[backbone] if output_stride is None else output_stride,
        pretrained=HAS_PRETRAINED[backbone] if pretrained is None else pretrained,
        classifier_lr_mult=classifier_lr_mult,
        momentum=momentum,
        poly_power=poly_power,
        flip=flip,
        color_jitter=color_jitter,
        seed=seed,
        **{**values, "long_side": tuple(int(v) for v in values["long_side"])},
    )
    _validate(config)
    return config


def _validate(config: TrainConfig) -> None:
    checks = [
        (config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}"),
        (config.batch_size >= 1, f"batch size must be >= 1, got {config.batch_size}"),
        (config.lr > 0, f"lr must be positive, got {config.lr}"),
        (config.crop >= 8, f"crop must be >= 8, got {config.crop}"),
        (1 <= config.long_side[0] <= config.long_side[1], f"bad long side {config.long_side}"),
        (config.seed >= 0, f"seed must be non-negative, got {config.seed}"),
        (config.output_stride in (8, 16), f"output stride must be 8 or 16, not {config.output_stride}"),
        (not (config.pretrained and not HAS_PRETRAINED[config.backbone]),
         f"backbone {config.backbone!r} has no pretrained weights: use --no-pretrained"),
    ]  # fmt: skip
    for ok, problem in checks:
        if not ok:
            raise WsssError(problem)


# -- models ----------------------------------------------------------------------------------------
def build_cam_model(config: TrainConfig, num_labels: int, *, pretrained: bool) -> nn.Module:
    """The IRNet CAM classifier of ``config`` (``pretrained`` overrides the config, so that
    loading a trained checkpoint never downloads ImageNet weights)."""
    backbone = create_backbone(
        config.backbone, pretrained=pretrained, output_stride=config.output_stride
    )
    return CamNet(
        backbone=backbone,
        num_labels=num_labels,
        freeze_bn=config.freeze_bn,
        frozen_stages=backbone.frozen_stages if config.freeze_stem else 0,
    )


#: Model name -> builder ``(config, num_labels, pretrained=) -> module``. A built module has
#: ``forward(images) -> (B, L) logits``, ``cams(images) -> (B, L, h, w)`` and
#: ``param_groups(lr, classifier_lr_mult)``.
MODELS: dict[str, Callable[..., nn.Module]] = {"cam": build_cam_model}


def build_model(config: TrainConfig, num_labels: int, *, pretrained: bool) -> nn.Module:
    """Build ``config.model`` (see :data:`MODELS`)."""
    return MODELS[config.model](config, num_labels, pretrained=pretrained)


# -- data ------------------------------------------------------------------------------------------
class SeededTrainSamples(torch.utils.data.Dataset):
    """A dataset indexed by ``(epoch, index)``: sample ``index`` augmented with its own seed.

    The mask is dropped before the transform: the classifier only sees image-level labels.

    Args:
        dataset: The training split.
        transform: The augmentation (drawing from torch's global generator).
        seed: Run seed.
    """

    def __init__(
        self, dataset: SegmentationDataset, transform: Callable[[Sample], Any], seed: int
    ) -> None:
        self.dataset = dataset
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        sample = self.dataset.load(self.dataset.ids[index])
        sample.mask = None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, epoch, index))
            return self.transform(sample)


def make_transform(config: TrainConfig) -> TrainTransform:
    """The training augmentation of ``config``."""
    jitter = (0.3, 0.3, 0.3, 0.1) if config.color_jitter else None
    return TrainTransform(
        long_side=config.long_side, crop=config.crop, flip=config.flip, color_jitter=jitter
    )


# -- run directory ---------------------------------------------------------------------------------
def _check_run_dir(out: Path, config: TrainConfig) -> None:
    path = out / CONFIG_FILE
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError) as err:
        raise WsssError(f"unreadable run configuration ({err})", path) from None
    if previous != config.to_dict():
        raise WsssError(
            "the run directory holds a training run with another configuration",
            path,
            hint="choose another --out, or delete the folder to start over",
        )


def _write_config(out: Path, config: TrainConfig, runtime: dict[str, Any]) -> None:
    text = json.dumps({"config": config.to_dict(), "runtime": runtime}, indent=2) + "\n"
    atomic_write_text(out / CONFIG_FILE, text)


def _log(out: Path, line: str) -> None:
    with open(out / LOG_FILE, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


# -- training --------------------------------------------------------------------------------------
@dataclass
class _Progress:
    epoch: int = 0
    iteration: int = 0


def _resume(
    out: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig
) -> _Progress:
    path = out / CHECKPOINT_FILE
    if not path.is_file():
        return _Progress()
    state = load_checkpoint(path)
    if state.get("config") != config.to_dict():
        raise WsssError("checkpoint was written by another configuration", path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return _Progress(epoch=int(state["epoch"]), iteration=int(state["iteration"]))


def _run_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    samples: SeededTrainSamples,
    config: TrainConfig,
    state: _Progress,
    *,
    device: torch.device,
    workers: int,
    total: int,
    progress: bool,
) -> tuple[float, float]:
    """One epoch; returns the mean loss over its samples (all processes) and the last lr."""
    info = dist_info()
    batches = global_batches(len(samples), config.batch_size, seed=config.seed, epoch=state.epoch)
    local = [[(state.epoch, i) for i in local_batch(b, info.rank, info.world)] for b in batches]
    loader = torch.utils.data.DataLoader(samples, batch_sampler=local, num_workers=workers)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    lr = 0.0
    model.train()
    description = f"epoch {state.epoch + 1}/{config.epochs}"
    for batch in track(loader, description=description, total=len(local), enabled=progress):
        lr = set_poly_lr(optimizer, state.iteration, total, config.poly_power)
        images = batch["image"].to(device, non_blocking=True)
        labels = batch["labels"].to(device, non_blocking=True)
        per_sample = multilabel_loss(model(images), labels)
        weight = local_loss_weight(len(per_sample), config.batch_size, info.world)
        optimizer.zero_grad(set_to_none=True)
        (per_sample.mean() * weight).backward()
        optimizer.step()
        state.iteration += 1
        loss_sum += per_sample.detach().sum().double()
    all_reduce_sum(loss_sum)
    return float(loss_sum) / (len(local) * config.batch_size), lr


def _build_once_downloaded(config: TrainConfig, num_labels: int) -> nn.Module:
    """Build the model; with pretrained weights rank 0 goes first, so that one process downloads
    them into torchvision's cache and the others read it."""
    first = is_main_process()
    if config.pretrained and not first:
        barrier()
    module = build_model(config, num_labels, pretrained=config.pretrained)
    if config.pretrained and first:
        barrier()
    return module


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    dataset: SegmentationDataset,
    device: str = "cpu",
    workers: int = 0,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
) -> Path:
    """Train (or resume training) the classifier of ``config`` into the run directory ``out``.

    Call it in every process of a ``torchrun`` job (after :func:`~wsss.engine.init_distributed`)
    or in a single process. Only rank 0 writes files.

    Args:
        config: The resolved configuration.
        out: Run directory.
        dataset: The training split (untransformed; ``dataset.ids`` in a fixed order).
        device: ``cpu``, ``cuda`` or ``cuda:<i>``.
        workers: DataLoader worker processes.
        progress: Show a progress bar per epoch (rank 0).
        report: Called with a summary line after each epoch (rank 0).

    Returns:
        The path of ``final.pt``.

    Raises:
        WsssError: a run with another configuration in ``out``, a dataset smaller than a batch,
            more processes than samples per batch.
    """
    out = Path(out)
    info = init_distributed(device)
    dev = resolve_device(device)
    _check_run_dir(out, config)
    steps = len(dataset) // config.batch_size
    if steps == 0:
        raise WsssError(
            f"{len(dataset)} training images: fewer than one batch of {config.batch_size}"
        )
    if info.world > config.batch_size:
        raise WsssError(f"{info.world} processes for batches of {config.batch_size} images")
    if is_main_process():
        out.mkdir(parents=True, exist_ok=True)
        runtime = {"device": device, "workers": workers, "world_size": info.world}
        _write_config(out, config, runtime)
    seed_everything(config.seed, deterministic=False)
    num_labels = dataset.classes.num_labels
    module = _build_once_downloaded(config, num_labels).to(dev)
    optimizer = make_sgd(
        unwrap(module).param_groups(config.lr, config.classifier_lr_mult),
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    state = _resume(out, module, optimizer, config)
    model = wrap_ddp(module, dev)
    samples = SeededTrainSamples(dataset, make_transform(config), config.seed)
    total = steps * config.epochs
    ran = 0
    while state.epoch < config.epochs:
        start = time.perf_counter()
        loss, lr = _run_epoch(model, optimizer, samples, config, state, device=dev,
                              workers=workers, total=total, progress=progress)  # fmt: skip
        state.epoch += 1
        ran += 1
        seconds = time.perf_counter() - start
        if is_main_process():
            save_checkpoint(out / CHECKPOINT_FILE, {
                "model": module.state_dict(), "optimizer": optimizer.state_dict(),
                "epoch": state.epoch, "iteration": state.iteration, "rng": rng_state(),
                "config": config.to_dict(),
            })  # fmt: skip
            line = f"epoch {state.epoch}/{config.epochs} loss {loss:.6f} lr {lr:.6g} seconds {seconds:.1f}"
            _log(out, line)
            if report is not None:
                report(line)
        barrier()
    final = out / FINAL_FILE
    if is_main_process() and not (final.is_file() and ran == 0):
        weights = {k: v.cpu() for k, v in module.state_dict().items()}
        save_checkpoint(final, {"model": weights, "config": config.to_dict(),
                                "classes": list(dataset.classes.names),
                                "num_labels": num_labels})  # fmt: skip
    barrier()
    return final
