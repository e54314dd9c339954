"""Training configurations of the segmentation networks: the saved recipe and its presets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from wsss.engine import loop
from wsss.engine.config import SavedConfig, fill_preset, raise_first, recipe_checks
from wsss.errors import WsssError
from wsss.models import backbones
from wsss.seg.registry import SEG_MODELS
from wsss.seg.superpixels import DEFAULT_SEGMENTS

__all__ = ["OPTIMIZERS", "PRESETS", "SegConfig", "preset_name", "resolve_config"]


@dataclass(frozen=True)
class SegConfig(SavedConfig):
    """Everything that determines the trained weights (saved as ``config.json``).

    Attributes:
        dataset: Dataset registry name.
        root: Dataset root (None: the dataset's environment variable).
        split: Training split.
        labels: Folder of pseudo-label PNGs, or None to train on the ground truth.
        model: Key of :data:`~wsss.seg.registry.SEG_MODELS`.
        backbone: Key of :data:`~wsss.models.backbones.BACKBONES`.
        output_stride: 8 or 16 (32 on EfficientNet-Lite0), or None for the head's default.
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
        head_channels: Channels of DeepLabV3+'s ASPP and decoder (and of the module on its
            features) on a full-size backbone; None: the paper's 256 (the ``small`` backbone's
            heads are always 64). A CPU budget setting (the demo on Lite0: 128).
        max_grad_norm: Clip the total gradient norm (all parameters) at this value before each
            step; None: no clipping (the papers' recipe, and the default). On pseudo labels a few
            images with large wrong regions give gradient spikes of 10x the usual norm at the
            peak learning rate, which can knock a pretrained backbone with fixed BatchNorm into
            a state that predicts background (docs/seg.md, "Bistable training on pseudo labels").
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
    head_channels: int | None = None
    max_grad_norm: float | None = None

    #: runs written before these fields existed still resume
    OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("init", "head_channels", "max_grad_norm")
    DEFAULTS: ClassVar[dict[str, Any]] = {"optimizer": "sgd"}

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
    return backbones.recipe_family(
        backbone, "deeplabv2" if model == "deeplabv2" else "deeplabv3plus"
    )


def resolve_config(
    *, dataset: str, root: str | Path | None, split: str = "train", labels: str | Path | None = None,
    model: str = "deeplabv3plus", backbone: str = "resnet101", output_stride: int | None = None,
    pretrained: bool = False, freeze_bn: bool | None = None, epochs: int | None = None,
    batch_size: int | None = None, lr: float | None = None, head_lr_mult: float | None = None,
    optimizer: str | None = None, weight_decay: float | None = None, momentum: float = 0.9,
    poly_power: float = 0.9, crop: int | None = None, long_side: tuple[int, int] | None = None, flip: bool = True,
    n_segments: int = DEFAULT_SEGMENTS, pairwise: bool = True, superpixel: bool = True,
    seed: int = 0, init: str | Path | None = None, head_channels: int | None = None,
    max_grad_norm: float | None = None,
) -> SegConfig:  # fmt: skip
    """A :class:`SegConfig` with every None replaced by the preset of the model and backbone.

    ImageNet weights are used only when asked (``pretrained=True``).

    Raises:
        WsssError: unknown model or backbone, or an invalid value.
    """
    if model not in SEG_MODELS:
        raise WsssError(f"unknown model {model!r}; valid names: {', '.join(sorted(SEG_MODELS))}")
    backbones.check_backbone(backbone)
    preset = PRESETS[preset_name(model, backbone)]
    given = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
             "crop": crop, "long_side": long_side, "freeze_bn": freeze_bn,
             "optimizer": optimizer, "head_lr_mult": head_lr_mult}  # fmt: skip
    values = fill_preset(preset, given)
    config = SegConfig(
        dataset=dataset, root=None if root is None else str(root), split=split,
        labels=None if labels is None else str(labels), model=model, backbone=backbone,
        output_stride=output_stride,
        pretrained=pretrained,
        momentum=momentum, poly_power=poly_power, flip=flip,
        n_segments=n_segments, pairwise=pairwise, superpixel=superpixel, seed=seed,
        init=None if init is None else str(loop.final_path(init)), head_channels=head_channels,
        max_grad_norm=None if max_grad_norm is None else float(max_grad_norm),
        **{**values, "head_lr_mult": float(values["head_lr_mult"])},
    )  # fmt: skip
    _validate(config)
    return config


def _validate(config: SegConfig) -> None:
    raise_first([
        *recipe_checks(config),
        (config.head_lr_mult > 0, f"head lr factor must be positive, got {config.head_lr_mult}"),
        (config.optimizer in OPTIMIZERS,
         f"unknown optimizer {config.optimizer!r}; valid names: {', '.join(OPTIMIZERS)}"),
        (config.n_segments >= 1, f"n_segments must be positive, got {config.n_segments}"),
        (config.pairwise or config.superpixel, "ES-CRF needs --pairwise or --superpixel"),
        (config.head_channels is None or config.head_channels >= 8,
         f"head channels must be at least 8, got {config.head_channels}"),
        (config.max_grad_norm is None or config.max_grad_norm > 0,
         f"max_grad_norm must be positive, got {config.max_grad_norm}"),
    ])  # fmt: skip
    backbones.check_backbone(config.backbone, pretrained=config.pretrained,
                             output_stride=config.output_stride)  # fmt: skip
