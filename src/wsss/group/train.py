"""Training the group-wise classifier of Group-WSSS on a dataset (SPEC section 5).

One function, :func:`train_group`, runs in one process or under ``torchrun`` (DDP) and resumes
from ``<out>/checkpoint.pt``; the run directory holds the same files as the CAM classifier's
(:mod:`wsss.cam.train`): ``config.json``, ``checkpoint.pt``, ``final.pt``, ``train.log``.

An epoch is the greedy grouping of :class:`~wsss.group.sampler.GreedyGroupSampler` for that
epoch (each image once, the short last group dropped), cut into global batches of
``groups_per_batch`` groups; each process takes a contiguous share of the groups of a batch.
Each image's augmentation is seeded from ``(seed, epoch, index)``, so the weights do not depend
on the number of processes (up to float summation order) nor on interruptions. The learning
rate follows the paper: SGD, backbone ``lr``, GNN and readouts ``lr * gnn_lr_mult``, both
multiplied by ``lr_gamma`` every ``lr_step`` epochs.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wsss.cam.train import SeededTrainSamples
from wsss.data.base import SegmentationDataset
from wsss.data.transforms import TrainTransform
from wsss.engine import barrier, init_distributed, is_main_process
from wsss.engine.distributed import all_reduce_sum, dist_info
from wsss.engine.progress import track
from wsss.engine.training import (
    load_checkpoint,
    local_batch,
    local_loss_weight,
    make_sgd,
    resolve_device,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    unwrap,
    wrap_ddp,
)
from wsss.errors import WsssError
from wsss.group.dropout import DROP_FORMS
from wsss.group.messages import MESSAGE_NORMS
from wsss.group.model import GroupClassifier, group_loss
from wsss.group.sampler import GreedyGroupSampler
from wsss.io.atomic import atomic_write_text
from wsss.models.backbones import BACKBONES, DEFAULT_OUTPUT_STRIDES, HAS_PRETRAINED, create_backbone

__all__ = ["GROUP_PRESETS", "MODEL_KIND", "GroupTrainConfig", "build_group_model", "checkpoint_kind",
           "dataset_labels", "default_epochs", "epoch_batches", "init_from_cam", "resolve_group_config",
           "train_group"]  # fmt: skip

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
FINAL_FILE = "final.pt"
LOG_FILE = "train.log"
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
class GroupTrainConfig:
    """Everything that determines the trained weights (saved as ``config.json``).

    Attributes:
        dataset: Dataset registry name.
        root: Dataset root (None: the dataset's environment variable).
        split: Training split.
        backbone: Key of :data:`~wsss.models.backbones.BACKBONES` (paper: ``vgg16``).
        output_stride: 8 or 16.
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

    ``init``, ``drop_form`` and ``messages`` are left out of :meth:`to_dict` at their defaults,
    so that runs written before these fields existed still resume.
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples as lists; the later fields only when not at their defaults,
        so runs written before they existed still resume)."""
        out = dataclasses.asdict(self)
        out["long_side"] = list(self.long_side)
        for key, default in _OMITTED_AT_DEFAULT.items():
            if out[key] == default:
                del out[key]
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GroupTrainConfig:
        """The inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        kept["long_side"] = tuple(kept["long_side"])
        return cls(**kept)


#: Fields written to ``config.json`` only when they differ from these values.
_OMITTED_AT_DEFAULT: dict[str, Any] = {"init": None, "drop_form": "paper", "messages": "sum"}


#: Paper settings (VGG16 / ResNet-101, 224 x 224 inputs) and the from-scratch CPU demo
#: (``small`` backbone). :func:`resolve_group_config` picks by backbone. ``init_epochs`` replaces
#: ``epochs`` when the network starts from a trained single-image classifier (``init``): the small
#: demo then fine-tunes for one epoch (1,000 images at 128 px in about a minute on 2 CPU cores).
GROUP_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"epochs": 15, "init_epochs": 15, "lr": 1e-3, "weight_decay": 5e-4, "crop": 224,
              "long_side": (224, 224), "lr_step": 5, "freeze_bn": True},
    "small": {"epochs": 30, "init_epochs": 1, "lr": 1e-2, "weight_decay": 1e-4, "crop": 128,
              "long_side": (112, 144), "lr_step": 10, "freeze_bn": False},
}  # fmt: skip


def default_epochs(backbone: str, *, init: bool) -> int:
    """The preset's epochs for ``backbone``, from scratch or from a single-image classifier."""
    preset = GROUP_PRESETS["small" if backbone == "small" else "paper"]
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
    messages: str = "sum",
) -> GroupTrainConfig:  # fmt: skip
    """A :class:`GroupTrainConfig` with every None replaced by the backbone's preset.

    ``small`` takes :data:`GROUP_PRESETS` ``["small"]``, every other backbone ``["paper"]``;
    with ``init`` the default epochs are the preset's ``init_epochs``.

    Raises:
        WsssError: unknown backbone or an invalid value.
    """
    if backbone not in BACKBONES:
        raise WsssError(
            f"unknown backbone {backbone!r}; valid names: {', '.join(sorted(BACKBONES))}"
        )
    preset = GROUP_PRESETS["small" if backbone == "small" else "paper"]
    given = {"epochs": epochs, "lr": lr, "weight_decay": weight_decay, "crop": crop,
             "long_side": long_side, "lr_step": lr_step, "freeze_bn": freeze_bn}  # fmt: skip
    values = {k: preset[k] if v is None else v for k, v in given.items()}
    if epochs is None:
        values["epochs"] = default_epochs(backbone, init=init is not None)
    values["long_side"] = tuple(int(v) for v in values["long_side"])
    config = GroupTrainConfig(
        dataset=dataset, root=None if root is None else str(root), split=split, backbone=backbone,
        output_stride=DEFAULT_OUTPUT_STRIDES[backbone] if output_stride is None else output_stride,
        pretrained=HAS_PRETRAINED[backbone] if pretrained is None else pretrained,
        group_size=group_size, steps=steps, reduction=reduction, gru_kernel=gru_kernel,
        graph_dropout=graph_dropout, delta_r=delta_r, delta_d=delta_d, drop_mode=drop_mode,
        lam=lam, groups_per_batch=groups_per_batch, gnn_lr_mult=gnn_lr_mult, momentum=momentum,
        lr_gamma=lr_gamma, flip=flip, seed=seed,
        init=None if init is None else str(Path(init).resolve()), drop_form=drop_form,
        messages=messages, **values,
    )  # fmt: skip
    _validate(config)
    return config


def _validate(config: GroupTrainConfig) -> None:
    checks = [
        (config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}"),
        (config.group_size >= 1, f"group size must be >= 1, got {config.group_size}"),
        (config.groups_per_batch >= 1, f"groups per batch must be >= 1, got {config.groups_per_batch}"),
        (config.steps >= 1, f"message-passing steps must be >= 1, got {config.steps}"),
        (config.lr > 0, f"lr must be positive, got {config.lr}"),
        (config.lr_step >= 1, f"lr step must be >= 1 epoch, got {config.lr_step}"),
        (config.crop >= 8, f"crop must be >= 8, got {config.crop}"),
        (1 <= config.long_side[0] <= config.long_side[1], f"bad long side {config.long_side}"),
        (config.drop_mode in ("binary", "scaled"), f"drop mode must be binary or scaled, not {config.drop_mode!r}"),
        (config.drop_form in DROP_FORMS, f"graph dropout form must be one of {', '.join(DROP_FORMS)}, not {config.drop_form!r}"),
        (config.messages in MESSAGE_NORMS, f"messages must be one of {', '.join(MESSAGE_NORMS)}, not {config.messages!r}"),
        (0 <= config.delta_r <= 1 and 0 <= config.delta_d <= 1, "delta_r and delta_d must lie in [0, 1]"),
        (config.seed >= 0, f"seed must be non-negative, got {config.seed}"),
        (config.output_stride in (8, 16), f"output stride must be 8 or 16, not {config.output_stride}"),
        (config.init is None or Path(config.init).is_file(), f"init checkpoint not found: {config.init}"),
        (not (config.pretrained and not HAS_PRETRAINED[config.backbone]),
         f"backbone {config.backbone!r} has no pretrained weights: use --no-pretrained"),
    ]  # fmt: skip
    for ok, problem in checks:
        if not ok:
            raise WsssError(problem)


def build_group_model(
    config: GroupTrainConfig, num_labels: int, *, pretrained: bool
) -> GroupClassifier:
    """The :class:`~wsss.group.model.GroupClassifier` of ``config``."""
    backbone = create_backbone(
        config.backbone, pretrained=pretrained, output_stride=config.output_stride
    )
    return GroupClassifier(
        backbone=backbone, num_labels=num_labels, reduction=config.reduction, steps=config.steps,
        gru_kernel=config.gru_kernel, graph_dropout=config.graph_dropout, delta_r=config.delta_r,
        delta_d=config.delta_d, drop_mode=config.drop_mode,  # type: ignore[arg-type]
        drop_form=config.drop_form, messages=config.messages,  # type: ignore[arg-type]
        freeze_bn=config.freeze_bn, seed=config.seed,
    )  # fmt: skip


def init_from_cam(model: GroupClassifier, checkpoint: str | Path) -> None:
    """Copy a single-image CAM classifier into ``model``: backbone to backbone, 1x1 classifier to
    both readouts (so that the intermediate output starts as that classifier's).

    Raises:
        WsssError: not a single-image CAM checkpoint, or another backbone or label count.
    """
    path = Path(checkpoint)
    state = load_checkpoint(path)
    if checkpoint_kind(state) != "single":
        raise WsssError(
            "--init needs a single-image CAM checkpoint, this holds a group model", path
        )
    weights = state.get("model", {})
    prefix = "backbone."
    backbone = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    classifier = weights.get("classifier.weight")
    expected = model.intermediate_readout.classifier.weight.shape
    if classifier is None or tuple(classifier.shape) != tuple(expected):
        got = None if classifier is None else tuple(classifier.shape)
        raise WsssError(f"init checkpoint's classifier is {got}, the group model needs "
                        f"{tuple(expected)}", path)  # fmt: skip
    try:
        model.backbone.load_state_dict(backbone)
    except RuntimeError as err:
        raise WsssError(f"init checkpoint has another backbone ({str(err)[:200]})", path) from None
    with torch.no_grad():
        for readout in (model.intermediate_readout, model.graph_readout):
            readout.classifier.weight.copy_(classifier)


def dataset_labels(dataset: SegmentationDataset) -> np.ndarray:
    """The ``(N, L)`` multi-hot label matrix of ``dataset`` in ``dataset.ids`` order (reads the
    masks or the label file, not the images)."""
    rows = [dataset.image_labels(i, dataset.load_mask(i)) for i in dataset.ids]
    return np.stack(rows) if rows else np.zeros((0, dataset.classes.num_labels), np.float32)


# -- run directory ---------------------------------------------------------------------------------
def _check_run_dir(out: Path, config: GroupTrainConfig) -> None:
    path = out / CONFIG_FILE
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError) as err:
        raise WsssError(f"unreadable run configuration ({err})", path) from None
    if previous != config.to_dict():
        raise WsssError(
            "the run directory holds a training run with another configuration", path,
            hint="choose another --out, or delete the folder to start over",
        )  # fmt: skip


def _log(out: Path, line: str) -> None:
    with open(out / LOG_FILE, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


# -- training --------------------------------------------------------------------------------------
@dataclass
class _Progress:
    epoch: int = 0
    iteration: int = 0


def _resume(
    out: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: GroupTrainConfig
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


def epoch_batches(
    sampler: GreedyGroupSampler, epoch: int, groups_per_batch: int
) -> list[list[list[int]]]:
    """The global batches of one epoch: that epoch's greedy groups, ``groups_per_batch`` at a
    time (an incomplete last batch dropped)."""
    sampler.set_epoch(epoch)
    groups = sampler.groups()
    count = len(groups) // groups_per_batch
    return [groups[i * groups_per_batch : (i + 1) * groups_per_batch] for i in range(count)]


def _set_step_lr(optimizer: torch.optim.Optimizer, epoch: int, config: GroupTrainConfig) -> float:
    factor = config.lr_gamma ** (epoch // config.lr_step)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    return float(optimizer.param_groups[0]["lr"])


def _run_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, samples: SeededTrainSamples,
    sampler: GreedyGroupSampler, config: GroupTrainConfig, state: _Progress, *,
    device: torch.device, workers: int, progress: bool,
) -> tuple[float, float]:  # fmt: skip
    """One epoch; returns the mean loss per image (all processes) and the lr."""
    info = dist_info()
    lr = _set_step_lr(optimizer, state.epoch, config)
    batches = epoch_batches(sampler, state.epoch, config.groups_per_batch)
    local = [local_batch(b, info.rank, info.world) for b in batches]  # lists of groups
    keys = [[(state.epoch, i) for group in groups for i in group] for groups in local]
    loader = torch.utils.data.DataLoader(samples, batch_sampler=keys, num_workers=workers)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    k = config.group_size
    model.train()
    description = f"epoch {state.epoch + 1}/{config.epochs}"
    for batch in track(loader, description=description, total=len(keys), enabled=progress):
        images = batch["image"].to(device, non_blocking=True)
        labels = batch["labels"].to(device, non_blocking=True)
        images, labels = images.unflatten(0, (-1, k)), labels.unflatten(0, (-1, k))
        per_image = group_loss(model(images, labels), labels, lam=config.lam)
        weight = local_loss_weight(per_image.shape[0], config.groups_per_batch, info.world)
        optimizer.zero_grad(set_to_none=True)
        (per_image.mean() * weight).backward()
        optimizer.step()
        state.iteration += 1
        loss_sum += per_image.detach().sum().double()
    all_reduce_sum(loss_sum)
    return float(loss_sum) / max(1, len(keys) * config.groups_per_batch * k), lr


def _build_once_downloaded(config: GroupTrainConfig, num_labels: int) -> GroupClassifier:
    first = is_main_process()
    download = config.pretrained and config.init is None
    if download and not first:
        barrier()
    module = build_group_model(config, num_labels, pretrained=download)
    if download and first:
        barrier()
    if config.init is not None:
        init_from_cam(module, config.init)
    return module


def train_group(
    config: GroupTrainConfig, out: str | Path, *, dataset: SegmentationDataset,
    device: str = "cpu", workers: int = 0, progress: bool = True,
    report: Callable[[str], None] | None = None,
) -> Path:  # fmt: skip
    """Train (or resume training) the group classifier of ``config`` into the run directory.

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
        The path of ``final.pt`` (``{"model", "config", "classes", "num_labels",
        "model_kind"}``).

    Raises:
        WsssError: a run with another configuration in ``out``, fewer images than one batch of
            groups, more processes than groups per batch.
    """
    out = Path(out)
    info = init_distributed(device)
    dev = resolve_device(device)
    _check_run_dir(out, config)
    if len(dataset) < config.group_size * config.groups_per_batch:
        raise WsssError(
            f"{len(dataset)} training images: fewer than one batch of "
            f"{config.groups_per_batch} group(s) of {config.group_size}"
        )
    if info.world > config.groups_per_batch:
        raise WsssError(f"{info.world} processes for batches of {config.groups_per_batch} group(s)")
    if is_main_process():
        out.mkdir(parents=True, exist_ok=True)
        runtime = {"device": device, "workers": workers, "world_size": info.world}
        text = json.dumps({"config": config.to_dict(), "runtime": runtime}, indent=2) + "\n"
        atomic_write_text(out / CONFIG_FILE, text)
    seed_everything(config.seed, deterministic=False)
    num_labels = dataset.classes.num_labels
    module = _build_once_downloaded(config, num_labels).to(dev)
    optimizer = make_sgd(unwrap(module).param_groups(config.lr, config.gnn_lr_mult),
                         momentum=config.momentum, weight_decay=config.weight_decay)  # fmt: skip
    state = _resume(out, module, optimizer, config)
    model = wrap_ddp(module, dev)
    transform = TrainTransform(long_side=config.long_side, crop=config.crop, flip=config.flip,
                               color_jitter=None)  # fmt: skip
    samples = SeededTrainSamples(dataset, transform, config.seed)
    sampler = GreedyGroupSampler(dataset_labels(dataset), group_size=config.group_size,
                                 seed=config.seed, drop_last=True)  # fmt: skip
    ran = 0
    while state.epoch < config.epochs:
        start = time.perf_counter()
        loss, lr = _run_epoch(model, optimizer, samples, sampler, config, state, device=dev,
                              workers=workers, progress=progress)  # fmt: skip
        state.epoch += 1
        ran += 1
        seconds = time.perf_counter() - start
        if is_main_process():
            save_checkpoint(out / CHECKPOINT_FILE, {
                "model": module.state_dict(), "optimizer": optimizer.state_dict(),
                "epoch": state.epoch, "iteration": state.iteration, "rng": rng_state(),
                "config": config.to_dict(), "model_kind": MODEL_KIND,
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
                                "num_labels": num_labels, "model_kind": MODEL_KIND})  # fmt: skip
    barrier()
    return final
