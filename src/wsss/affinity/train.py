"""Training the affinity networks (IRNet boundary net, AffinityNet) from seeds (SPEC section 3).

The recipe: the network of the method on the trained CAM backbone, the pair-label loss of
:func:`~wsss.affinity.pairs.affinity_loss` on the pairs within the radius, SGD with the poly
schedule. :func:`train` hands it to the training loop (:func:`wsss.engine.loop.fit`: one process or
``torchrun``, resumable) and writes the usual run files; ``final.pt`` holds ``{"model", "config",
"cam_config", "num_labels"}`` (self-contained: the backbone is rebuilt from ``cam_config`` by
:func:`load_affinity`).

A sample is the image and its seed PNG (``<seeds>/<id>.png``, at the image size or at the
stride-4 size of ``wsss seeds --method wsgcn``, then upsampled), augmented together (seed pixels
outside the image become 255), the seed reduced to the network's stride by nearest sampling, and
the pair labels of :func:`~wsss.affinity.pairs.pair_labels` taken within the radius.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from wsss.affinity.data import SeededAffinitySamples, read_seed
from wsss.affinity.irn import IRNetAffinity
from wsss.affinity.pairs import affinity_loss, downsample_labels, feature_size, pair_labels
from wsss.affinity.psa import AffinityNet
from wsss.cam.infer import load_trained
from wsss.cam.train import TrainConfig as CamConfig
from wsss.data.base import SegmentationDataset
from wsss.data.transforms import TrainTransform
from wsss.engine import loop
from wsss.engine.config import SavedConfig, fill_preset, raise_first, recipe_checks
from wsss.engine.training import load_checkpoint, make_sgd, seeded_poly_plan, unwrap
from wsss.errors import WsssError
from wsss.models.backbones import RECIPE_FAMILIES

__all__ = ["FINAL_FILE", "METHODS", "PRESETS", "AffinityConfig",
           "build_affinity_model", "read_seed", "resolve_config", "train"]  # fmt: skip

FINAL_FILE = loop.FINAL_FILE

#: The affinity networks by name.
METHODS = ("irn", "psa")


@dataclass(frozen=True)
class AffinityConfig(SavedConfig):
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
    family = RECIPE_FAMILIES.get(cam.backbone)
    if family is not None:  # a CPU recipe: the CAM run's crop, and the family's overrides
        preset.update(crop=cam.crop, long_side=cam.long_side, **PRESETS[f"{family}_{method}"])
    given = {"radius": radius, "epochs": epochs, "batch_size": batch_size, "lr": lr,
             "weight_decay": weight_decay, "crop": crop, "long_side": long_side}  # fmt: skip
    values = fill_preset(preset, given)
    config = AffinityConfig(
        method=method, cam_checkpoint=str(cam_checkpoint), seeds=str(seeds), dataset=dataset,
        root=None if root is None else str(root), split=split, momentum=momentum,
        poly_power=poly_power, flip=flip, distance=distance, freeze_backbone=freeze_backbone,
        seed=seed, **{**values, "radius": float(values["radius"])},
    )  # fmt: skip
    raise_first([*recipe_checks(config),
                 (config.radius > 1, f"radius must be > 1, got {config.radius}")])  # fmt: skip
    return config


def _cam_config(checkpoint: str | Path) -> CamConfig:
    path = loop.final_path(checkpoint)
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


# -- training --------------------------------------------------------------------------------------
def train(
    config: AffinityConfig,
    out: str | Path,
    *,
    dataset: SegmentationDataset,
    device: str = "cpu",
    workers: int = 0,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
    checkpoint_every: int | None = None,
    max_seconds: float | None = None,
) -> Path:
    """Train (or resume training) the affinity network of ``config`` into the run ``out``.

    Call it in every process of a ``torchrun`` job or in one process; rank 0 writes the files.
    Arguments as :func:`wsss.cam.train.train`.

    Returns:
        The path of ``final.pt``.

    Raises:
        WsssError: another configuration in ``out``, fewer images than a batch, a missing seed
            folder or file, an unreadable CAM run.
    """
    out, seeds = Path(out), Path(config.seeds)

    def check(world: int) -> None:
        if not seeds.is_dir():
            raise WsssError("seed folder does not exist", seeds, hint="run `wsss seeds` first")
        loop.batch_check(len(dataset), config.batch_size)(world)

    dev = loop.open_run(out, config.to_dict(), device=device, workers=workers, seed=config.seed,
                        check=check)  # fmt: skip
    cam_model, cam_config = load_trained(config.cam_checkpoint)
    module = build_affinity_model(config, cam_model.backbone, freeze_bn=cam_config.freeze_bn)
    module = module.to(dev).train()
    optimizer = make_sgd(module.param_groups(config.lr), momentum=config.momentum,
                         weight_decay=config.weight_decay)  # fmt: skip
    transform = TrainTransform(long_side=config.long_side, crop=config.crop, flip=config.flip,
                               color_jitter=None)  # fmt: skip

    def step(model: nn.Module, batch: dict[str, Any]) -> loop.StepOutput:
        images = batch["image"].to(dev, non_blocking=True)
        size = feature_size(images.shape[-2:], unwrap(model).stride)
        labels = pair_labels(downsample_labels(batch["mask"].to(dev), size), config.radius)
        return loop.mean_loss(affinity_loss(model(images), labels), config.batch_size)

    job = loop.Training(
        module=module, optimizer=optimizer,
        samples=SeededAffinitySamples(dataset, seeds, transform, config.seed), step=step,
        epochs=config.epochs, config=config.to_dict(), name=config.method,
        final={"cam_config": cam_config.to_dict(), "num_labels": int(cam_model.num_labels)},
        **seeded_poly_plan(len(dataset), config, optimizer),
    )  # fmt: skip
    return loop.fit(job, out, device=dev, workers=workers, progress=progress, report=report,
                    checkpoint_every=checkpoint_every, max_seconds=max_seconds)  # fmt: skip
