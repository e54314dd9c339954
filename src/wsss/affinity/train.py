"""Training the affinity networks (IRNet boundary net, AffinityNet) from seeds (SPEC section 3).

:func:`train` runs in one process or under ``torchrun`` (DDP), like ``train-cam``: the data
order is a function of ``(seed, epoch)``, each sample's augmentation of ``(seed, epoch, index)``,
each process takes a contiguous share of every global batch, and the run resumes from
``<out>/checkpoint.pt``. Files in the run directory (rank 0):

==================  ==========================================================================
``config.json``     the resolved :class:`AffinityConfig` plus the runtime options
``checkpoint.pt``   after each epoch: model, optimizer, epoch, iteration, RNG state, config
``final.pt``        ``{"model", "config", "cam_config", "num_labels"}`` (self-contained: the
                    backbone is rebuilt from ``cam_config`` by :func:`load_affinity`)
``train.log``       one line per epoch: epoch, mean loss, lr, seconds
==================  ==========================================================================

A sample is the image and its seed PNG (``<seeds>/<id>.png``, at the image size or at the
stride-4 size of ``wsss seeds --method wsgcn``, then upsampled), augmented together (seed pixels
outside the image become 255), the seed reduced to the network's stride by nearest sampling, and
the pair labels of :func:`~wsss.affinity.pairs.pair_labels` taken within the radius.
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

from wsss.affinity.irn import IRNetAffinity
from wsss.affinity.pairs import affinity_loss, downsample_labels, feature_size, pair_labels
from wsss.affinity.psa import AffinityNet
from wsss.cam.infer import load_trained
from wsss.cam.train import TrainConfig as CamConfig
from wsss.cam.train import build_model as build_cam_model
from wsss.data.base import SegmentationDataset
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
from wsss.io.images import read_label_png
from wsss.seeds.resize import upsample_labels

__all__ = [
    "CHECKPOINT_FILE",
    "FINAL_FILE",
    "METHODS",
    "PRESETS",
    "AffinityConfig",
    "build_affinity_model",
    "load_affinity",
    "resolve_config",
    "train",
]

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
FINAL_FILE = "final.pt"
LOG_FILE = "train.log"

#: The affinity networks by name.
METHODS = ("irn", "psa")


@dataclass(frozen=True)
class AffinityConfig:
    """Everything that determines the trained affinity network (saved as ``config.json``).

    Attributes:
        method: ``irn`` (IRNet boundary network) or ``psa`` (AffinityNet).
        cam_checkpoint: The trained CAM run whose backbone is used.
        seeds: Folder of ``<id>.png`` seeds.
        dataset: Dataset registry name.
        root: Dataset root.
        split: Training split.
        radius: Radius of the training pairs at the network's stride (IRNet 10, PSA 5).
        epochs: Epochs (IRNet 3, PSA 8).
        batch_size: Global batch size (IRNet 32, PSA 8).
        lr: Learning rate (PSA: the head's is 10x).
        weight_decay: SGD weight decay (IRNet 1e-4, PSA 5e-4).
        momentum: SGD momentum.
        poly_power: Polynomial decay power.
        crop: Training crop side (IRNet 512, PSA 448).
        long_side: Range of the random long-side resize.
        flip: Random horizontal flips.
        distance: PSA: ``l1`` (paper) or ``mean`` (code).
        freeze_backbone: PSA: keep the CAM backbone fixed (IRNet always does).
        seed: Seed of initialisation, data order and augmentation.
    """

    method: str
    cam_checkpoint: str
    seeds: str
    dataset: str
    root: str | None
    split: str
    radius: float
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    momentum: float
    poly_power: float
    crop: int
    long_side: tuple[int, int]
    flip: bool
    distance: str
    freeze_backbone: bool
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        out = dataclasses.asdict(self)
        out["long_side"] = list(self.long_side)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AffinityConfig:
        """The inverse of :meth:`to_dict`."""
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        kept["long_side"] = tuple(kept["long_side"])
        return cls(**kept)


#: Paper defaults (IRNet / AffinityNet with ResNet); with the ``small`` or ``efficientnet_lite0``
#: CAM backbone the crop and long side come from the CAM run and ``small_*`` / ``lite0_*``
#: overrides apply (CPU recipes: batch 16; AffinityNet fine-tunes the backbone at a 10x lower lr).
PRESETS: dict[str, dict[str, Any]] = {
    "irn": {"radius": 10.0, "epochs": 3, "batch_size": 32, "lr": 0.1, "weight_decay": 1e-4,
            "crop": 512, "long_side": (320, 640)},
    "psa": {"radius": 5.0, "epochs": 8, "batch_size": 8, "lr": 0.1, "weight_decay": 5e-4,
            "crop": 448, "long_side": (448, 768)},
    "small_irn": {"batch_size": 16},
    "small_psa": {"lr": 0.01},
    "lite0_irn": {"batch_size": 16},
    "lite0_psa": {"lr": 0.01},
}  # fmt: skip
#: CAM backbones with CPU overrides (the key prefix in :data:`PRESETS`).
BACKBONE_PRESETS: dict[str, str] = {"small": "small", "efficientnet_lite0": "lite0"}


def resolve_config(
    *, method: str, cam_checkpoint: str | Path, seeds: str | Path, dataset: str,
    root: str | Path | None, split: str = "train", radius: float | None = None,
    epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
    weight_decay: float | None = None, momentum: float = 0.9, poly_power: float = 0.9,
    crop: int | None = None, long_side: tuple[int, int] | None = None, flip: bool = True,
    distance: str = "l1", freeze_backbone: bool = False, seed: int = 0,
) -> AffinityConfig:  # fmt: skip
    """An :class:`AffinityConfig` with every None taken from :data:`PRESETS`.

    Raises:
        WsssError: unknown method or distance, an unreadable CAM run, or invalid values.
    """
    if method not in METHODS:
        raise WsssError(f"unknown affinity method {method!r}; valid names: {', '.join(METHODS)}")
    if distance not in ("l1", "mean"):
        raise WsssError(f"distance must be 'l1' or 'mean', got {distance!r}")
    cam = _cam_config(cam_checkpoint)
    preset = dict(PRESETS[method])
    if cam.backbone in BACKBONE_PRESETS:
        prefix = BACKBONE_PRESETS[cam.backbone]
        preset.update(crop=cam.crop, long_side=cam.long_side, **PRESETS[f"{prefix}_{method}"])
    given = {"radius": radius, "epochs": epochs, "batch_size": batch_size, "lr": lr,
             "weight_decay": weight_decay, "crop": crop, "long_side": long_side}  # fmt: skip
    values = {k: preset[k] if v is None else v for k, v in given.items()}
    config = AffinityConfig(
        method=method, cam_checkpoint=str(cam_checkpoint), seeds=str(seeds), dataset=dataset,
        root=None if root is None else str(root), split=split, momentum=momentum,
        poly_power=poly_power, flip=flip, distance=distance, freeze_backbone=freeze_backbone,
        seed=seed, **{**values, "long_side": tuple(int(v) for v in values["long_side"]),
                      "radius": float(values["radius"])},
    )  # fmt: skip
    checks = [
        (config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}"),
        (config.batch_size >= 1, f"batch size must be >= 1, got {config.batch_size}"),
        (config.lr > 0, f"lr must be positive, got {config.lr}"),
        (config.radius > 1, f"radius must be > 1, got {config.radius}"),
        (config.crop >= 8, f"crop must be >= 8, got {config.crop}"),
        (1 <= config.long_side[0] <= config.long_side[1], f"bad long side {config.long_side}"),
        (config.seed >= 0, f"seed must be non-negative, got {config.seed}"),
    ]
    for ok, problem in checks:
        if not ok:
            raise WsssError(problem)
    return config


def _cam_config(checkpoint: str | Path) -> CamConfig:
    path = Path(checkpoint)
    path = path / "final.pt" if path.is_dir() else path
    state = load_checkpoint(path)
    try:
        return CamConfig.from_dict(state["config"])
    except (KeyError, TypeError) as err:
        raise WsssError(f"not a trained CAM model ({err})", path) from None


# -- models ----------------------------------------------------------------------------------------
def build_affinity_model(
    config: AffinityConfig, backbone: nn.Module, *, freeze_bn: bool
) -> nn.Module:
    """The network of ``config.method`` on ``backbone`` (a :class:`~wsss.models.backbones.Backbone`)."""
    if config.method == "irn":
        return IRNetAffinity(backbone=backbone, radius=config.radius)
    return AffinityNet(backbone=backbone, radius=config.radius, distance=config.distance,  # type: ignore[arg-type]
                       freeze_backbone=config.freeze_backbone, freeze_bn=freeze_bn)  # fmt: skip


def load_affinity(
    run: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, AffinityConfig]:
    """The trained affinity network of a run (eval mode, on ``device``) and its configuration.

    Args:
        run: ``final.pt`` or the run directory.
        device: Where to put the model.

    Raises:
        WsssError: missing or unreadable file, or not an affinity run.
    """
    path = Path(run)
    path = path / FINAL_FILE if path.is_dir() else path
    state = load_checkpoint(path)
    try:
        config = AffinityConfig.from_dict(state["config"])
        cam = CamConfig.from_dict(state["cam_config"])
        backbone = build_cam_model(cam, int(state["num_labels"]), pretrained=False).backbone
        model = build_affinity_model(config, backbone, freeze_bn=cam.freeze_bn)
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise WsssError(f"not a trained affinity network ({err})", path) from None
    return model.to(device).eval(), config


# -- data ------------------------------------------------------------------------------------------
class SeededAffinitySamples(torch.utils.data.Dataset):
    """Sample ``(epoch, index)``: the image and its seed, augmented with the sample's seed.

    Returns ``{"image": (3, crop, crop), "mask": (crop, crop) int64 seed (255 unlabelled), ...}``.
    """

    def __init__(self, dataset: SegmentationDataset, seeds: Path, transform: TrainTransform,
                 seed: int) -> None:  # fmt: skip
        self.dataset, self.seeds, self.transform, self.seed = dataset, seeds, transform, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        image_id = self.dataset.ids[index]
        sample = self.dataset.load(image_id)
        sample.mask = read_seed(self.seeds / f"{image_id}.png", sample.image.shape[:2],
                                self.dataset.classes.num_classes)  # fmt: skip
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, epoch, index))
            return self.transform(sample)


def read_seed(path: Path, size: tuple[int, int], num_classes: int) -> Any:
    """A seed PNG at the image size (stride-4 seeds are upsampled, nearest).

    Raises:
        WsssError: missing file, ids out of range, or a size that is neither the image's nor
            its stride-4 size.
    """
    if not path.is_file():
        raise WsssError("missing seed file", path, hint="run `wsss seeds` on this split first")
    label = read_label_png(path, num_classes=num_classes)
    small = feature_size(size, 4)
    if tuple(label.shape) == tuple(size):
        return label
    if tuple(label.shape) == small:
        return upsample_labels(label, size)
    raise WsssError(f"seed is {label.shape[0]}x{label.shape[1]}, the image {size[0]}x{size[1]} "
                    f"(or {small[0]}x{small[1]} at stride 4)", path)  # fmt: skip


# -- run directory ---------------------------------------------------------------------------------
def _check_run_dir(out: Path, config: AffinityConfig) -> None:
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


def _resume(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
            config: AffinityConfig) -> tuple[int, int]:  # fmt: skip
    path = out / CHECKPOINT_FILE
    if not path.is_file():
        return 0, 0
    state = load_checkpoint(path)
    if state.get("config") != config.to_dict():
        raise WsssError("checkpoint was written by another configuration", path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return int(state["epoch"]), int(state["iteration"])


# -- training --------------------------------------------------------------------------------------
def _batch_loss(model: nn.Module, batch: dict[str, Any], radius: float, device: torch.device,
                stride: int) -> torch.Tensor:  # fmt: skip
    images = batch["image"].to(device, non_blocking=True)
    seeds = downsample_labels(batch["mask"].to(device), feature_size(images.shape[-2:], stride))
    return affinity_loss(model(images), pair_labels(seeds, radius))


def _run_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, samples: SeededAffinitySamples,
    config: AffinityConfig, epoch: int, iteration: int, *, device: torch.device, workers: int,
    total: int, progress: bool,
) -> tuple[float, float, int]:  # fmt: skip
    """One epoch; returns the mean loss over its samples (all processes), the last lr and the
    iteration count."""
    info = dist_info()
    batches = global_batches(len(samples), config.batch_size, seed=config.seed, epoch=epoch)
    local = [[(epoch, i) for i in local_batch(b, info.rank, info.world)] for b in batches]
    loader = torch.utils.data.DataLoader(samples, batch_sampler=local, num_workers=workers)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    lr = 0.0
    model.train()
    bar = track(loader, description=f"{config.method} epoch {epoch + 1}/{config.epochs}",
                total=len(local), enabled=progress)  # fmt: skip
    for batch in bar:
        lr = set_poly_lr(optimizer, iteration, total, config.poly_power)
        per_sample = _batch_loss(model, batch, config.radius, device, unwrap(model).stride)
        weight = local_loss_weight(len(per_sample), config.batch_size, info.world)
        optimizer.zero_grad(set_to_none=True)
        (per_sample.mean() * weight).backward()
        optimizer.step()
        iteration += 1
        loss_sum += per_sample.detach().sum().double()
    all_reduce_sum(loss_sum)
    return float(loss_sum) / (len(local) * config.batch_size), lr, iteration


def train(
    config: AffinityConfig,
    out: str | Path,
    *,
    dataset: SegmentationDataset,
    device: str = "cpu",
    workers: int = 0,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
) -> Path:
    """Train (or resume training) the affinity network of ``config`` into the run ``out``.

    Call it in every process of a ``torchrun`` job or in one process; rank 0 writes the files.

    Returns:
        The path of ``final.pt``.

    Raises:
        WsssError: another configuration in ``out``, fewer images than a batch, a missing seed
            folder or file, an unreadable CAM run.
    """
    out, seeds = Path(out), Path(config.seeds)
    info = init_distributed(device)
    dev = resolve_device(device)
    _check_run_dir(out, config)
    if not seeds.is_dir():
        raise WsssError("seed folder does not exist", seeds, hint="run `wsss seeds` first")
    steps = len(dataset) // config.batch_size
    if steps == 0:
        raise WsssError(
            f"{len(dataset)} training images: fewer than one batch of {config.batch_size}"
        )
    if info.world > config.batch_size:
        raise WsssError(f"{info.world} processes for batches of {config.batch_size} images")
    if is_main_process():
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"config": config.to_dict(),
                           "runtime": {"device": device, "workers": workers,
                                       "world_size": info.world}}, indent=2)  # fmt: skip
        atomic_write_text(out / CONFIG_FILE, text + "\n")
    seed_everything(config.seed, deterministic=False)
    cam_model, cam_config = load_trained(config.cam_checkpoint)
    module = build_affinity_model(config, cam_model.backbone, freeze_bn=cam_config.freeze_bn)
    module = module.to(dev).train()
    optimizer = make_sgd(unwrap(module).param_groups(config.lr), momentum=config.momentum,
                         weight_decay=config.weight_decay)  # fmt: skip
    epoch, iteration = _resume(out, module, optimizer, config)
    model = wrap_ddp(module, dev)
    transform = TrainTransform(long_side=config.long_side, crop=config.crop, flip=config.flip,
                               color_jitter=None)  # fmt: skip
    samples = SeededAffinitySamples(dataset, seeds, transform, config.seed)
    total = steps * config.epochs
    ran = 0
    while epoch < config.epochs:
        start = time.perf_counter()
        loss, lr, iteration = _run_epoch(model, optimizer, samples, config, epoch, iteration,
                                         device=dev, workers=workers, total=total,
                                         progress=progress)  # fmt: skip
        epoch += 1
        ran += 1
        if is_main_process():
            save_checkpoint(out / CHECKPOINT_FILE, {
                "model": module.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "iteration": iteration, "rng": rng_state(), "config": config.to_dict()})  # fmt: skip
            seconds = time.perf_counter() - start
            line = (f"epoch {epoch}/{config.epochs} loss {loss:.6f} lr {lr:.6g} "
                    f"seconds {seconds:.1f}")  # fmt: skip
            with open(out / LOG_FILE, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            if report is not None:
                report(line)
        barrier()
    final = out / FINAL_FILE
    if is_main_process() and not (final.is_file() and ran == 0):
        weights = {k: v.cpu() for k, v in module.state_dict().items()}
        save_checkpoint(final, {"model": weights, "config": config.to_dict(),
                                "cam_config": cam_config.to_dict(),
                                "num_labels": int(cam_model.num_labels)})  # fmt: skip
    barrier()
    return final
