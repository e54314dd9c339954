"""Training the multi-label classifier whose CAMs start the pipeline (SPEC section 1).

The recipe: IRNet's classifier (:class:`~wsss.models.cam_net.CamNet`), the multi-label soft-margin
loss, SGD with the poly schedule, random resize / flip / crop. :func:`train` hands it to the
training loop (:mod:`wsss.engine.loop`: one process or ``torchrun``, resumable, the same weights
whatever the number of processes or interruptions); ``final.pt`` holds ``{"model", "config",
"classes", "num_labels"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from wsss.cam.data import SeededTrainSamples, make_transform
from wsss.cam.model import MODELS, build_model
from wsss.data.base import SegmentationDataset
from wsss.engine import loop
from wsss.engine.config import SavedConfig, fill_preset, raise_first, recipe_checks
from wsss.engine.training import make_sgd, seeded_poly_plan
from wsss.errors import WsssError
from wsss.models import backbones
from wsss.models.cam_net import multilabel_loss

__all__ = ["FINAL_FILE", "MODELS", "PRESETS", "SeededTrainSamples", "TrainConfig", "build_model",
           "make_transform", "resolve_config", "train"]  # fmt: skip

FINAL_FILE = loop.FINAL_FILE


@dataclass(frozen=True)
class TrainConfig(SavedConfig):
    """Everything that determines the trained weights (saved as ``config.json``).

    Attributes:
        dataset: Dataset registry name (``auto`` resolved by the caller).
        root: Dataset root (None: the dataset's environment variable).
        split: Training split.
        model: Key of :data:`MODELS`.
        backbone: Key of :data:`~wsss.models.backbones.BACKBONES`.
        output_stride: 8 or 16 (32 on EfficientNet-Lite0).
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


#: Defaults of the paper configuration (IRNet, ResNet-50), of the from-scratch CPU demo
#: (``small`` backbone: nothing frozen, GroupNorm) and of the CPU recipe on the pretrained
#: EfficientNet-Lite0 (``lite0``: IRNet's with crops near the 224 px Lite0 was trained at, and a
#: 10x lower lr for its depthwise layers; docs/imagenet.md). :func:`resolve_config` picks by
#: backbone (:func:`~wsss.models.backbones.recipe_family`, else ``irnet``).
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
    backbones.check_backbone(backbone)
    preset = PRESETS[backbones.recipe_family(backbone, "irnet")]
    given = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
             "crop": crop, "long_side": long_side, "freeze_bn": freeze_bn,
             "freeze_stem": freeze_stem}  # fmt: skip
    config = TrainConfig(
        dataset=dataset, root=None if root is None else str(root), split=split, model=model,
        backbone=backbone,
        output_stride=(backbones.DEFAULT_OUTPUT_STRIDES[backbone] if output_stride is None
                       else output_stride),
        pretrained=backbones.HAS_PRETRAINED[backbone] if pretrained is None else pretrained,
        classifier_lr_mult=classifier_lr_mult, momentum=momentum, poly_power=poly_power,
        flip=flip, color_jitter=color_jitter, seed=seed, **fill_preset(preset, given),
    )  # fmt: skip
    raise_first(recipe_checks(config))
    backbones.check_backbone(backbone, pretrained=config.pretrained,
                             output_stride=config.output_stride)  # fmt: skip
    return config


# -- training --------------------------------------------------------------------------------------
def train(
    config: TrainConfig,
    out: str | Path,
    *,
    dataset: SegmentationDataset,
    device: str = "cpu",
    workers: int = 0,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
    checkpoint_every: int | None = None,
    max_seconds: float | None = None,
    weights: str | Path | None = None,
) -> Path:
    """Train (or resume training) the classifier of ``config`` into the run directory ``out``.

    Call it in every process of a ``torchrun`` job or in one process (rank 0 writes the files).

    Args:
        config: The resolved configuration.
        out: Run directory.
        dataset: The training split (untransformed; ``dataset.ids`` in a fixed order).
        device: ``cpu``, ``cuda`` or ``cuda:<i>``.
        workers: DataLoader worker processes.
        progress: Show a progress bar per epoch (rank 0).
        report: Called with each epoch's log line (rank 0).
        checkpoint_every: Also checkpoint every this many steps inside an epoch.
        weights: The ImageNet weights file or its folder (default: torch's cache).
        max_seconds: Stop after this many seconds with a checkpoint and ``final.pt``
            (:func:`wsss.engine.loop.fit`; a rerun continues).

    Returns:
        The path of ``final.pt``.

    Raises:
        WsssError: another configuration in ``out``, fewer images than a batch, more processes
            than images per batch.
    """
    out = Path(out)
    dev = loop.open_run(out, config.to_dict(), device=device, workers=workers, seed=config.seed,
                        check=loop.batch_check(len(dataset), config.batch_size))  # fmt: skip
    num_labels = dataset.classes.num_labels
    module = loop.rank_zero_first(
        lambda: build_model(config, num_labels, pretrained=config.pretrained, weights=weights),
        download=config.pretrained,
    ).to(dev)
    optimizer = make_sgd(module.param_groups(config.lr, config.classifier_lr_mult),
                         momentum=config.momentum, weight_decay=config.weight_decay)  # fmt: skip

    def step(model: nn.Module, batch: dict[str, Any]) -> loop.StepOutput:
        images = batch["image"].to(dev, non_blocking=True)
        labels = batch["labels"].to(dev, non_blocking=True)
        return loop.mean_loss(multilabel_loss(model(images), labels), config.batch_size)

    job = loop.Training(
        module=module, optimizer=optimizer,
        samples=SeededTrainSamples(dataset, make_transform(config), config.seed), step=step,
        epochs=config.epochs, config=config.to_dict(), stage="train-cam",
        final={"classes": list(dataset.classes.names), "num_labels": num_labels},
        **seeded_poly_plan(len(dataset), config, optimizer),
    )  # fmt: skip
    return loop.fit(job, out, device=dev, workers=workers, progress=progress, report=report,
                    checkpoint_every=checkpoint_every, max_seconds=max_seconds)  # fmt: skip
