"""Training segmentation networks on ground truth or pseudo labels (stage 2 of every WSSS pipeline).

:func:`train` runs in one process or under ``torchrun`` (DDP; SyncBatchNorm on CUDA) and resumes
from ``<out>/checkpoint.pt``, like ``train-cam``: the data order is a function of ``(seed, epoch)``,
each sample's augmentation of ``(seed, epoch, index)``, and each process takes a contiguous share of
every global batch. The loss is the cross-entropy averaged over the labelled pixels of the *global*
batch (255 ignored; the count is summed over processes), so one process and N give the same
gradients. Files in the run directory (rank 0):

==================  ==========================================================================
``config.json``     the resolved :class:`SegConfig` plus the runtime options
``checkpoint.pt``   after each epoch: model, optimizer, epoch, iteration, RNG state, config
``final.pt``        ``{"model", "config", "classes", "num_classes"}``
``train.log``       one line per epoch: epoch, mean loss, lr, seconds
``superpixels/``    the SLIC cache of the training images (ES-CRF only)
==================  ==========================================================================
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
import torch.nn.functional as F
from torch import nn

from wsss.data.base import SegmentationDataset
from wsss.data.transforms import TrainTransform
from wsss.engine import barrier, init_distributed, is_main_process
from wsss.engine.distributed import all_reduce_sum, dist_info
from wsss.engine.progress import track
from wsss.engine.training import (
    global_batches,
    load_checkpoint,
    local_batch,
    make_sgd,
    resolve_device,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_poly_lr,
    set_rng_state,
    train_seconds,
    trainable_groups,
    unwrap,
    wrap_ddp,
)
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text
from wsss.io.palette import IGNORE_INDEX
from wsss.models.backbones import BACKBONES, HAS_PRETRAINED
from wsss.seg.data import SeededSegSamples
from wsss.seg.deeplab import SegmentationModel
from wsss.seg.registry import SEG_MODELS, create_seg_model
from wsss.seg.superpixels import DEFAULT_SEGMENTS

__all__ = ["OPTIMIZERS", "PRESETS", "SegConfig", "build_seg_model", "initialise_from",
           "load_trained", "make_optimizer", "resolve_config", "segmentation_loss", "train",
           "train_seconds"]  # fmt: skip

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
FINAL_FILE = "final.pt"
LOG_FILE = "train.log"
SUPERPIXEL_DIR = "superpixels"


@dataclass(frozen=True)
class SegConfig:
    """Everything that determines the trained weights (saved as ``config.json``).

    Attributes:
        dataset: Dataset registry name.
        root: Dataset root (None: the dataset's environment variable).
        split: Training split.
        labels: Folder of pseudo-label PNGs, or None to train on the ground truth.
        model: Key of :data:`~wsss.seg.registry.SEG_MODELS`.
        backbone: Key of :data:`~wsss.models.backbones.BACKBONES`.
        output_stride: 8 or 16, or None for the head's default.
        pretrained: Start from ImageNet weights.
        freeze_bn: Backbone BatchNorm fixed (DeepLab-v2 recipe).
        epochs: Number of epochs.
        batch_size: Global batch size.
        lr: Backbone learning rate; the head's is ``lr * head_lr_mult``.
        head_lr_mult: Learning-rate factor of everything outside the backbone (DeepLab on an
            ImageNet backbone: 10; from scratch every layer is new: 1).
        optimizer: ``sgd`` (momentum SGD, the papers' recipe) or ``adamw`` (the ``small`` preset).
        weight_decay: Weight decay (SGD's L2 term, or AdamW's decoupled decay).
        momentum: SGD momentum (AdamW: its beta1).
        poly_power: Power of the polynomial decay over all iterations.
        crop: Side of the square training crop.
        long_side: Range of the random long-side resize, inclusive (the scale augmentation).
        flip: Random horizontal flips.
        n_segments: SLIC superpixels per image (ES-CRF; 200, Cityscapes 600).
        pairwise: ES-CRF's pairwise term psi_p.
        superpixel: ES-CRF's superpixel term psi_s.
        seed: Seed of initialisation, data order and augmentation.
        init: A trained run's ``final.pt`` whose weights start the network: every weight it
            holds must exist in this network with the same shape, and parts it lacks keep their
            initialisation (e.g. Joint-CRF's Potts weights on a trained DeepLabV3+, as
            CRF-as-RNN fine-tunes a trained FCN). None: train from ``pretrained`` / scratch.
    """

    dataset: str
    root: str | None
    split: str
    labels: str | None
    model: str
    backbone: str
    output_stride: int | None
    pretrained: bool
    freeze_bn: bool
    epochs: int
    batch_size: int
    lr: float
    head_lr_mult: float
    optimizer: str
    weight_decay: float
    momentum: float
    poly_power: float
    crop: int
    long_side: tuple[int, int]
    flip: bool
    n_segments: int
    pairwise: bool
    superpixel: bool
    seed: int
    init: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples as lists; ``init`` only when set, so runs written before
        the field existed still resume)."""
        out = dataclasses.asdict(self)
        out["long_side"] = list(self.long_side)
        if out["init"] is None:
            del out["init"]
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SegConfig:
        """The inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        kept["long_side"] = tuple(kept["long_side"])
        kept.setdefault("optimizer", "sgd")  # runs written before the field existed
        return cls(**kept)

    @property
    def uses_superpixels(self) -> bool:
        """Whether the model consumes superpixel maps."""
        return self.model == "escrf" and self.superpixel


#: Optimisers by name (:func:`make_optimizer`).
OPTIMIZERS = ("sgd", "adamw")

#: Recipes. ``deeplabv2``: DeepLab-v2 on VOC (Chen et al. 2017; WSGCN, Group-WSSS): lr 2.5e-4, wd 5e-4,
#: batch 10, crop 321, ~20k iterations on train_aug (20 epochs), scales ~0.5-1.5 of a 500 px image.
#: ``deeplabv3plus``: DeepLabV3+ (ES-CRF's "standard settings" on ADE20K): lr 0.01, wd 1e-4, batch 16,
#: crop 512, ~160k iterations (120 epochs), scales ~0.5-2. Both: momentum SGD, head at 10 x lr on an
#: ImageNet backbone. ``small``: the from-scratch CPU recipe (docs/seg.md, "Why every network
#: predicted background"): AdamW at 2e-3 for every layer, 8 epochs (496 steps on 1,000 images).
#: ``lite0``: a CPU recipe on the pretrained EfficientNet-Lite0 for every head: DeepLabV3+'s SGD
#: (head at 10 x lr) with crops near Lite0's 224 px, batch 8 and fixed BatchNorm (docs/imagenet.md).
PRESETS: dict[str, dict[str, Any]] = {
    "deeplabv2": {"epochs": 20, "batch_size": 10, "lr": 2.5e-4, "weight_decay": 5e-4, "crop": 321,
                  "long_side": (250, 750), "freeze_bn": True, "optimizer": "sgd",
                  "head_lr_mult": 10.0},
    "deeplabv3plus": {"epochs": 120, "batch_size": 16, "lr": 0.01, "weight_decay": 1e-4,
                      "crop": 512, "long_side": (320, 1280), "freeze_bn": False,
                      "optimizer": "sgd", "head_lr_mult": 10.0},
    "small": {"epochs": 8, "batch_size": 16, "lr": 2e-3, "weight_decay": 1e-4, "crop": 128,
              "long_side": (96, 176), "freeze_bn": False, "optimizer": "adamw",
              "head_lr_mult": 1.0},
    "lite0": {"epochs": 20, "batch_size": 8, "lr": 0.01, "weight_decay": 1e-4, "crop": 256,
              "long_side": (192, 384), "freeze_bn": True, "optimizer": "sgd",
              "head_lr_mult": 10.0},
}  # fmt: skip


def preset_name(model: str, backbone: str) -> str:
    """The :data:`PRESETS` key of a model on a backbone."""
    if backbone == "small":
        return "small"
    if backbone == "efficientnet_lite0":
        return "lite0"
    return "deeplabv2" if model == "deeplabv2" else "deeplabv3plus"


def resolve_config(
    *, dataset: str, root: str | Path | None, split: str = "train", labels: str | Path | None = None,
    model: str = "deeplabv3plus", backbone: str = "resnet101", output_stride: int | None = None,
    pretrained: bool = False, freeze_bn: bool | None = None, epochs: int | None = None,
    batch_size: int | None = None, lr: float | None = None, head_lr_mult: float | None = None,
    optimizer: str | None = None, weight_decay: float | None = None, momentum: float = 0.9,
    poly_power: float = 0.9, crop: int | None = None, long_side: tuple[int, int] | None = None, flip: bool = True,
    n_segments: int = DEFAULT_SEGMENTS, pairwise: bool = True, superpixel: bool = True,
    seed: int = 0, init: str | Path | None = None,
) -> SegConfig:  # fmt: skip
    """A :class:`SegConfig` with every None replaced by the preset of the model and backbone.

    ImageNet weights are used only when asked (``pretrained=True``).

    Raises:
        WsssError: unknown model or backbone, or an invalid value.
    """
    if model not in SEG_MODELS:
        raise WsssError(f"unknown model {model!r}; valid names: {', '.join(sorted(SEG_MODELS))}")
    if backbone not in BACKBONES:
        raise WsssError(
            f"unknown backbone {backbone!r}; valid names: {', '.join(sorted(BACKBONES))}"
        )
    preset = PRESETS[preset_name(model, backbone)]
    given = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
             "crop": crop, "long_side": long_side, "freeze_bn": freeze_bn,
             "optimizer": optimizer, "head_lr_mult": head_lr_mult}  # fmt: skip
    values = {k: preset[k] if v is None else v for k, v in given.items()}
    config = SegConfig(
        dataset=dataset, root=None if root is None else str(root), split=split,
        labels=None if labels is None else str(labels), model=model, backbone=backbone,
        output_stride=output_stride,
        pretrained=pretrained,
        momentum=momentum, poly_power=poly_power, flip=flip,
        n_segments=n_segments, pairwise=pairwise, superpixel=superpixel, seed=seed,
        init=None if init is None else str(_final_path(Path(init))),
        **{**values, "long_side": tuple(int(v) for v in values["long_side"]),
           "head_lr_mult": float(values["head_lr_mult"])},
    )  # fmt: skip
    _validate(config)
    return config


def _final_path(path: Path) -> Path:
    """A run directory's ``final.pt``, or the file itself."""
    return path / FINAL_FILE if path.is_dir() else path


def initialise_from(model: nn.Module, checkpoint: str | Path) -> int:
    """Copy a trained run's weights into ``model``; returns how many tensors were copied.

    Raises:
        WsssError: the file is missing or unreadable, holds weights ``model`` does not have or
            has in another shape (another network or class count), or shares none with it.
    """
    path = _final_path(Path(checkpoint))
    state = load_checkpoint(path)
    weights = state.get("model") if isinstance(state, dict) else None
    if not isinstance(weights, dict):
        raise WsssError("not a trained network (no 'model' weights)", path)
    own = model.state_dict()
    foreign = sorted(k for k in weights if k not in own)
    if foreign:
        raise WsssError(f"{len(foreign)} weights of the checkpoint are not in this network "
                        f"(first: {foreign[0]})", path,
                        hint="initialise from a run of the same or a smaller head")  # fmt: skip
    wrong = [k for k, v in weights.items() if tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise WsssError(f"weight {wrong[0]} has shape {tuple(weights[wrong[0]].shape)}, this "
                        f"network {tuple(own[wrong[0]].shape)} (another class count or "
                        f"backbone?)", path)  # fmt: skip
    if not weights:
        raise WsssError("the checkpoint holds no weights", path)
    model.load_state_dict(weights, strict=False)
    return len(weights)


def _validate(config: SegConfig) -> None:
    checks = [
        (config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}"),
        (config.batch_size >= 1, f"batch size must be >= 1, got {config.batch_size}"),
        (config.lr > 0, f"lr must be positive, got {config.lr}"),
        (config.head_lr_mult > 0, f"head lr factor must be positive, got {config.head_lr_mult}"),
        (config.optimizer in OPTIMIZERS,
         f"unknown optimizer {config.optimizer!r}; valid names: {', '.join(OPTIMIZERS)}"),
        (config.crop >= 8, f"crop must be >= 8, got {config.crop}"),
        (1 <= config.long_side[0] <= config.long_side[1], f"bad long side {config.long_side}"),
        (config.seed >= 0, f"seed must be non-negative, got {config.seed}"),
        (config.n_segments >= 1, f"n_segments must be positive, got {config.n_segments}"),
        (config.pairwise or config.superpixel, "ES-CRF needs --pairwise or --superpixel"),
        (config.output_stride in (None, 8, 16), f"output stride must be 8 or 16, not {config.output_stride}"),
        (not (config.pretrained and not HAS_PRETRAINED[config.backbone]),
         f"backbone {config.backbone!r} has no pretrained weights: use --no-pretrained"),
    ]  # fmt: skip
    for ok, problem in checks:
        if not ok:
            raise WsssError(problem)


def build_seg_model(config: SegConfig, num_classes: int, *, pretrained: bool) -> SegmentationModel:
    """The network of ``config`` (``pretrained`` overrides the config: loading a trained run never
    downloads ImageNet weights)."""
    options: dict[str, Any] = {}
    if config.model == "escrf":
        options = {"pairwise": config.pairwise, "superpixel": config.superpixel}
    return create_seg_model(config.model, backbone=config.backbone, num_classes=num_classes,
                            pretrained=pretrained, output_stride=config.output_stride,
                            freeze_bn=config.freeze_bn, **options)  # fmt: skip


def make_optimizer(config: SegConfig, model: SegmentationModel) -> torch.optim.Optimizer:
    """The optimiser of ``config`` over ``model.param_groups`` (each group keeps a ``base_lr`` for
    the poly schedule).

    ``sgd``: momentum SGD with L2 weight decay (DeepLab). ``adamw``: AdamW (betas ``(momentum,
    0.999)``, decoupled weight decay). Adam's per-parameter step does not depend on the gradient's
    scale, which keeps the head's GroupNorm-followed convolutions from growing (see docs/seg.md).
    """
    groups = model.param_groups(config.lr, config.head_lr_mult)
    if config.optimizer == "sgd":
        return make_sgd(groups, momentum=config.momentum, weight_decay=config.weight_decay)
    kept = trainable_groups(groups)
    return torch.optim.AdamW(kept, lr=kept[0]["lr"], betas=(config.momentum, 0.999),
                             weight_decay=config.weight_decay)  # fmt: skip


def segmentation_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed pixel cross-entropy over labelled pixels, and their number (``ignore_index`` left out).

    Shapes:
        logits: ``(B, K, H, W)``; target: ``(B, H, W)`` int64. Returns two scalars (the count int64).
    """
    if logits.shape[0] != target.shape[0] or logits.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} disagree")
    total = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="sum")
    return total, (target != ignore_index).sum()


def make_transform(config: SegConfig) -> TrainTransform:
    """Random long-side resize, flip, pad (255) and crop of ``config`` (no colour jitter)."""
    return TrainTransform(long_side=config.long_side, crop=config.crop, flip=config.flip,
                          color_jitter=None)  # fmt: skip


def make_samples(config: SegConfig, dataset: SegmentationDataset, out: Path) -> SeededSegSamples:
    """The seeded training samples of ``config`` (superpixels cached in ``out/superpixels``)."""
    spx = {"cache": out / SUPERPIXEL_DIR, "n_segments": config.n_segments}
    labels = None if config.labels is None else Path(config.labels)
    return SeededSegSamples(dataset, make_transform(config), config.seed, labels=labels,
                            superpixels=spx if config.uses_superpixels else None)  # fmt: skip


# -- run directory ---------------------------------------------------------------------------------
def _check_run_dir(out: Path, config: SegConfig) -> None:
    path = out / CONFIG_FILE
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError) as err:
        raise WsssError(f"unreadable run configuration ({err})", path) from None
    if previous != config.to_dict():
        raise WsssError("the run directory holds a training run with another configuration", path,
                        hint="choose another --out, or delete the folder to start over")  # fmt: skip


@dataclass
class _Progress:
    epoch: int = 0
    iteration: int = 0


def _resume(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
            config: SegConfig) -> _Progress:  # fmt: skip
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


def _step(
    model: nn.Module, batch: dict[str, Any], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    images = batch["image"].to(device, non_blocking=True)
    target = batch["mask"].to(device, non_blocking=True)
    spx = batch.get("superpixels")
    logits = model(images, None if spx is None else spx.to(device, non_blocking=True))
    return segmentation_loss(logits, target)


def _run_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, samples: SeededSegSamples,
               config: SegConfig, state: _Progress, *, device: torch.device, workers: int,
               total: int, progress: bool) -> tuple[float, float]:  # fmt: skip
    """One epoch; returns the mean loss per labelled pixel (all processes) and the last lr."""
    info = dist_info()
    batches = global_batches(len(samples), config.batch_size, seed=config.seed, epoch=state.epoch)
    local = [[(state.epoch, i) for i in local_batch(b, info.rank, info.world)] for b in batches]
    loader = torch.utils.data.DataLoader(samples, batch_sampler=local, num_workers=workers)
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    lr = 0.0
    model.train()
    description = f"epoch {state.epoch + 1}/{config.epochs}"
    for batch in track(loader, description=description, total=len(local), enabled=progress):
        lr = set_poly_lr(optimizer, state.iteration, total, config.poly_power)
        loss_sum, count = _step(model, batch, device)
        pixels = all_reduce_sum(count.detach().clone())
        optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over processes: scale so the average is d(global mean)/dw.
        (loss_sum * (info.world / pixels.clamp(min=1))).backward()
        optimizer.step()
        state.iteration += 1
        sums += torch.stack([loss_sum.detach().double(), count.double()])
    all_reduce_sum(sums)
    return float(sums[0] / sums[1].clamp(min=1)), lr


def _build(config: SegConfig, num_classes: int, device: torch.device) -> SegmentationModel:
    """Build the model; with pretrained weights rank 0 downloads them first."""
    first = is_main_process()
    if config.pretrained and not first:
        barrier()
    model = build_seg_model(config, num_classes, pretrained=config.pretrained)
    if config.pretrained and first:
        barrier()
    if dist_info().world > 1 and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model.to(device)


def train(
    config: SegConfig, out: str | Path, *, dataset: SegmentationDataset, device: str = "cpu",
    workers: int = 0, progress: bool = True, report: Callable[[str], None] | None = None,
) -> Path:  # fmt: skip
    """Train (or resume) the segmentation network of ``config`` into the run directory ``out``.

    Call it in every process of a ``torchrun`` job or in a single process; only rank 0 writes.

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
        WsssError: another configuration in ``out``, fewer images than a batch, more processes than
            images per batch, a missing label folder or file.
    """
    out = Path(out)
    info = init_distributed(device)
    dev = resolve_device(device)
    _check_run_dir(out, config)
    if config.labels is not None and not Path(config.labels).is_dir():
        raise WsssError("label folder does not exist", config.labels)
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
        text = json.dumps({"config": config.to_dict(), "runtime": runtime}, indent=2) + "\n"
        atomic_write_text(out / CONFIG_FILE, text)
    seed_everything(config.seed, deterministic=False)
    num_classes = dataset.classes.num_classes
    module = _build(config, num_classes, dev)
    if config.init is not None:  # a resumed run's checkpoint overrides these weights below
        initialise_from(module, config.init)
    optimizer = make_optimizer(config, module)
    state = _resume(out, module, optimizer, config)
    model = wrap_ddp(module, dev)
    samples = make_samples(config, dataset, out)
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
            line = (f"epoch {state.epoch}/{config.epochs} loss {loss:.6f} lr {lr:.6g} "
                    f"seconds {seconds:.1f}")  # fmt: skip
            with open(out / LOG_FILE, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            if report is not None:
                report(line)
        barrier()
    final = out / FINAL_FILE
    if is_main_process() and not (final.is_file() and ran == 0):
        weights = {k: v.cpu() for k, v in unwrap(module).state_dict().items()}
        save_checkpoint(final, {"model": weights, "config": config.to_dict(),
                                "classes": list(dataset.classes.names),
                                "num_classes": num_classes})  # fmt: skip
    barrier()
    return final


def load_trained(
    checkpoint: str | Path, device: str | torch.device = "cpu"
) -> tuple[SegmentationModel, SegConfig]:
    """The trained network of a run (eval mode, on ``device``) and its configuration.

    Args:
        checkpoint: ``final.pt``, ``checkpoint.pt``, or a run directory (its ``final.pt``).
        device: Where to put the model.

    Raises:
        WsssError: missing or unreadable file, or not a trained segmentation network.
    """
    path = _final_path(Path(checkpoint))
    state = load_checkpoint(path)
    try:
        config = SegConfig.from_dict(state["config"])
        weights = state["model"]
        num_classes = int(state["num_classes"])
        model = build_seg_model(config, num_classes, pretrained=False)
        model.load_state_dict(weights)
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise WsssError(f"not a trained segmentation network ({err})", path) from None
    return model.to(device).eval(), config
