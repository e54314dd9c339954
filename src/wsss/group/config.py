"""Training configurations of the Group-WSSS classifier: the saved recipe and its presets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from wsss.engine.config import SavedConfig, fill_preset, raise_first, recipe_checks
from wsss.group.dropout import DROP_FORMS
from wsss.group.messages import MESSAGE_NORMS
from wsss.models import backbones

__all__ = ["GROUP_PRESETS", "MODEL_KIND", "GroupTrainConfig", "checkpoint_kind", "default_epochs",
           "resolve_group_config"]  # fmt: skip


#: ``model_kind`` of the group classifier's checkpoints (single-image CAM ones: ``single``).
MODEL_KIND = "group"


def checkpoint_kind(state: dict[str, Any]) -> str:
    """``group`` or ``single``: which classifier a loaded checkpoint holds.

    Group checkpoints carry ``model_kind``; older ones (and every single-image checkpoint) are
    told apart by their configuration (only the group's has ``group_size``).
    """
    kind = state.get("model_kind")
    if isinstance(kind, str):
        return kind
    config = state.get("config")
    return MODEL_KIND if isinstance(config, dict) and "group_size" in config else "single"


@dataclass(frozen=True)
class GroupTrainConfig(SavedConfig):
    """Everything that determines the trained weights (saved as ``config.json``).

    Attributes:
        dataset: Dataset registry name.
        root: Dataset root (None: the dataset's environment variable).
        split: Training split.
        backbone: Key of :data:`~wsss.models.backbones.BACKBONES` (paper: ``vgg16``).
        output_stride: 8 or 16 (32 on EfficientNet-Lite0).
        pretrained: Start from ImageNet weights.
        freeze_bn: Backbone BatchNorms in eval mode with fixed affine parameters.
        group_size: Images per group ``K`` (4).
        steps: Message-passing rounds ``T`` (3).
        reduction: ``d`` of eq. (5) (4).
        gru_kernel: ConvGRU kernel size (1).
        graph_dropout: Use the graph dropout layer.
        delta_r: Drop-rate threshold of eq. (10) (0.8).
        delta_d: Drop threshold of eq. (10) (0.7).
        drop_mode: Reading of eq. (10): ``binary`` or ``scaled``.
        drop_form: Graph dropout as eq. (11) ``h s`` (``paper``) or ``(h s + h) / 2`` (the
            authors' code, ``authors``).
        messages: Neighbours' messages in eq. (8): ``sum`` (the paper), ``mean`` or ``joint``.
        lam: ``lambda`` of eq. (12) (0.4).
        epochs: Number of epochs (15).
        groups_per_batch: Groups per optimisation step over all processes (1: one group of
            ``K`` images, as the paper's mini-batch).
        lr: Backbone learning rate (1e-3).
        gnn_lr_mult: Factor of the GNN's and readouts' learning rate (10: 1e-2).
        weight_decay: SGD weight decay (5e-4).
        momentum: SGD momentum (0.9).
        lr_step: Epochs between learning-rate decays (5).
        lr_gamma: Learning-rate decay factor (0.1).
        crop: Side of the square training input (224).
        long_side: Range of the random long-side resize before the crop, inclusive.
        flip: Random horizontal flips.
        seed: Seed of initialisation, grouping and augmentation.
        init: A single-image CAM checkpoint (``wsss train-cam`` ``final.pt``) whose backbone
            initialises the backbone and whose classifier initialises both readouts (None:
            ``pretrained`` decides). The demo's stand-in for ImageNet weights.
    """

    dataset: str
    root: str | None
    split: str
    backbone: str
    output_stride: int
    pretrained: bool
    freeze_bn: bool
    group_size: int
    steps: int
    reduction: int
    gru_kernel: int
    graph_dropout: bool
    delta_r: float
    delta_d: float
    drop_mode: str
    lam: float
    epochs: int
    groups_per_batch: int
    lr: float
    gnn_lr_mult: float
    weight_decay: float
    momentum: float
    lr_step: int
    lr_gamma: float
    crop: int
    long_side: tuple[int, int]
    flip: bool
    seed: int
    init: str | None = None
    drop_form: str = "paper"
    messages: str = "sum"

    #: runs written before these fields existed still resume
    OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("init",)
    OMIT_AT: ClassVar[dict[str, Any]] = {"drop_form": "paper", "messages": "sum"}


#: Paper settings (VGG16 / ResNet-101, 224 x 224 inputs) and the from-scratch CPU demo
#: (``small`` backbone). :func:`resolve_group_config` picks by backbone. ``init_epochs`` replaces
#: ``epochs`` when the network starts from a trained single-image classifier (``init``): the small
#: demo then fine-tunes for one epoch (1,000 images at 128 px in about a minute on 2 CPU cores).
GROUP_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"epochs": 15, "init_epochs": 15, "lr": 1e-3, "weight_decay": 5e-4, "crop": 224,
              "long_side": (224, 224), "lr_step": 5, "freeze_bn": True},
    "small": {"epochs": 30, "init_epochs": 1, "lr": 1e-2, "weight_decay": 1e-4, "crop": 128,
              "long_side": (112, 144), "lr_step": 10, "freeze_bn": False},
    "lite0": {"epochs": 6, "init_epochs": 2, "lr": 1e-3, "weight_decay": 5e-4, "crop": 224,
              "long_side": (224, 224), "lr_step": 2, "freeze_bn": True},
}  # fmt: skip
#: ``lite0`` (:func:`~wsss.models.backbones.recipe_family`): the paper's recipe (its 224 px crops
#: are Lite0's ImageNet size) in 6 epochs instead of 15, for a CPU.


def default_epochs(backbone: str, *, init: bool) -> int:
    """The preset's epochs for ``backbone``, from scratch or from a single-image classifier."""
    preset = GROUP_PRESETS[backbones.recipe_family(backbone, "paper")]
    return int(preset["init_epochs" if init else "epochs"])


def resolve_group_config(
    *, dataset: str, root: str | Path | None, split: str = "train", backbone: str = "vgg16",
    output_stride: int | None = None, pretrained: bool | None = None,
    freeze_bn: bool | None = None, group_size: int = 4, steps: int = 3, reduction: int = 4,
    gru_kernel: int = 1, graph_dropout: bool = True, delta_r: float = 0.8, delta_d: float = 0.7,
    drop_mode: str = "binary", lam: float = 0.4, epochs: int | None = None,
    groups_per_batch: int = 1, lr: float | None = None, gnn_lr_mult: float = 10.0,
    weight_decay: float | None = None, momentum: float = 0.9, lr_step: int | None = None,
    lr_gamma: float = 0.1, crop: int | None = None, long_side: tuple[int, int] | None = None,
    flip: bool = True, seed: int = 0, init: str | Path | None = None, drop_form: str = "paper",
    messages: str = "sum", check_init: bool = True,
) -> GroupTrainConfig:  # fmt: skip
    """A :class:`GroupTrainConfig` with every None replaced by the backbone's preset.

    ``small`` takes :data:`GROUP_PRESETS` ``["small"]``, every other backbone ``["paper"]``;
    with ``init`` the default epochs are the preset's ``init_epochs``. ``check_init=False`` skips
    the check that the ``init`` file exists (a recipe listed before the run made it).

    Raises:
        WsssError: unknown backbone or an invalid value.
    """
    backbones.check_backbone(backbone)
    preset = GROUP_PRESETS[backbones.recipe_family(backbone, "paper")]
    given = {"epochs": epochs, "lr": lr, "weight_decay": weight_decay, "crop": crop,
             "long_side": long_side, "lr_step": lr_step, "freeze_bn": freeze_bn}  # fmt: skip
    values = fill_preset(preset, given)
    if epochs is None:
        values["epochs"] = default_epochs(backbone, init=init is not None)
    config = GroupTrainConfig(
        dataset=dataset, root=None if root is None else str(root), split=split, backbone=backbone,
        output_stride=backbones.DEFAULT_OUTPUT_STRIDES[backbone] if output_stride is None else output_stride,
        pretrained=backbones.HAS_PRETRAINED[backbone] if pretrained is None else pretrained,
        group_size=group_size, steps=steps, reduction=reduction, gru_kernel=gru_kernel,
        graph_dropout=graph_dropout, delta_r=delta_r, delta_d=delta_d, drop_mode=drop_mode,
        lam=lam, groups_per_batch=groups_per_batch, gnn_lr_mult=gnn_lr_mult, momentum=momentum,
        lr_gamma=lr_gamma, flip=flip, seed=seed,
        init=None if init is None else str(Path(init).resolve()), drop_form=drop_form,
        messages=messages, **values,
    )  # fmt: skip
    _validate(config, check_init=check_init)
    return config


def _validate(config: GroupTrainConfig, *, check_init: bool = True) -> None:
    raise_first([
        *recipe_checks(config),
        (config.group_size >= 1, f"group size must be >= 1, got {config.group_size}"),
        (config.groups_per_batch >= 1, f"groups per batch must be >= 1, got {config.groups_per_batch}"),
        (config.steps >= 1, f"message-passing steps must be >= 1, got {config.steps}"),
        (config.lr_step >= 1, f"lr step must be >= 1 epoch, got {config.lr_step}"),
        (config.drop_mode in ("binary", "scaled"), f"drop mode must be binary or scaled, not {config.drop_mode!r}"),
        (config.drop_form in DROP_FORMS, f"graph dropout form must be one of {', '.join(DROP_FORMS)}, not {config.drop_form!r}"),
        (config.messages in MESSAGE_NORMS, f"messages must be one of {', '.join(MESSAGE_NORMS)}, not {config.messages!r}"),
        (0 <= config.delta_r <= 1 and 0 <= config.delta_d <= 1, "delta_r and delta_d must lie in [0, 1]"),
        (not check_init or config.init is None or Path(config.init).is_file(), f"init checkpoint not found: {config.init}"),
    ])  # fmt: skip
    backbones.check_backbone(config.backbone, pretrained=config.pretrained,
                             output_stride=config.output_stride)  # fmt: skip
