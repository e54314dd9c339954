"""Training the group-wise classifier of Group-WSSS on a dataset (SPEC section 5).

The recipe: the :class:`~wsss.group.model.GroupClassifier` of :mod:`wsss.group.config`, the loss of
eq. (12) on groups of ``K`` images, SGD with the paper's step schedule (backbone ``lr``, GNN and
readouts ``lr * gnn_lr_mult``, both multiplied by ``lr_gamma`` every ``lr_step`` epochs).
:func:`train_group` hands it to the training loop (:mod:`wsss.engine.loop`: one process or
``torchrun``, resumable); ``final.pt`` holds ``{"model", "config", "classes", "num_labels",
"model_kind"}``.

An epoch is the greedy grouping of :class:`~wsss.group.sampler.GreedyGroupSampler` for that
epoch (each image once, the short last group dropped), cut into global batches of
``groups_per_batch`` groups; each process takes a contiguous share of the groups of a batch.
Each image's augmentation is seeded from ``(seed, epoch, index)``, so the weights do not depend
on the number of processes (up to float summation order) nor on interruptions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from wsss.cam.data import SeededTrainSamples
from wsss.data.base import SegmentationDataset
from wsss.data.transforms import TrainTransform
from wsss.engine import loop
from wsss.engine.distributed import dist_info
from wsss.engine.training import local_batch, make_sgd
from wsss.errors import WsssError
from wsss.group.build import build_group_model, init_from_cam
from wsss.group.config import (
    GROUP_PRESETS,
    MODEL_KIND,
    GroupTrainConfig,
    checkpoint_kind,
    default_epochs,
    resolve_group_config,
)
from wsss.group.model import GroupClassifier, group_loss
from wsss.group.sampler import GreedyGroupSampler, dataset_labels, epoch_batches

__all__ = ["FINAL_FILE", "GROUP_PRESETS", "MODEL_KIND", "GroupTrainConfig", "build_group_model",
           "checkpoint_kind", "dataset_labels", "default_epochs", "epoch_batches", "init_from_cam",
           "resolve_group_config", "train_group"]  # fmt: skip

FINAL_FILE = loop.FINAL_FILE


def _build(config: GroupTrainConfig, num_labels: int) -> GroupClassifier:
    """The model: ImageNet weights (rank 0 downloads first) unless started from ``init``."""
    download = config.pretrained and config.init is None
    module = loop.rank_zero_first(
        lambda: build_group_model(config, num_labels, pretrained=download), download=download
    )
    if config.init is not None:
        init_from_cam(module, config.init)
    return module


def train_group(
    config: GroupTrainConfig, out: str | Path, *, dataset: SegmentationDataset,
    device: str = "cpu", workers: int = 0, progress: bool = True,
    report: Callable[[str], None] | None = None,
    checkpoint_every: int | None = None,
    max_seconds: float | None = None,
) -> Path:  # fmt: skip
    """Train (or resume training) the group classifier of ``config`` into the run directory.

    Call it in every process of a ``torchrun`` job or in one process; rank 0 writes the files.
    Arguments as :func:`wsss.cam.train.train`.

    Returns:
        The path of ``final.pt``.

    Raises:
        WsssError: a run with another configuration in ``out``, fewer images than one batch of
            groups, more processes than groups per batch.
    """
    out, k, per_batch = Path(out), config.group_size, config.groups_per_batch

    def check(world: int) -> None:
        if len(dataset) < k * per_batch:
            raise WsssError(f"{len(dataset)} training images: fewer than one batch of "
                            f"{per_batch} group(s) of {k}")  # fmt: skip
        if world > per_batch:
            raise WsssError(f"{world} processes for batches of {per_batch} group(s)")

    dev = loop.open_run(out, config.to_dict(), device=device, workers=workers, seed=config.seed,
                        check=check)  # fmt: skip
    num_labels = dataset.classes.num_labels
    module = _build(config, num_labels).to(dev)
    optimizer = make_sgd(module.param_groups(config.lr, config.gnn_lr_mult),
                         momentum=config.momentum, weight_decay=config.weight_decay)  # fmt: skip
    transform = TrainTransform(long_side=config.long_side, crop=config.crop, flip=config.flip,
                               color_jitter=None)  # fmt: skip
    sampler = GreedyGroupSampler(dataset_labels(dataset), group_size=k, seed=config.seed,
                                 drop_last=True)  # fmt: skip

    def batches(epoch: int) -> list[list[tuple[int, int]]]:
        info = dist_info()
        local = [
            local_batch(b, info.rank, info.world) for b in epoch_batches(sampler, epoch, per_batch)
        ]
        return [[(epoch, i) for group in groups for i in group] for groups in local]

    def set_lr(epoch: int, _iteration: int) -> float:
        factor = config.lr_gamma ** (epoch // config.lr_step)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        return float(optimizer.param_groups[0]["lr"])

    def step(model: nn.Module, batch: dict[str, Any]) -> loop.StepOutput:
        images = batch["image"].to(dev, non_blocking=True).unflatten(0, (-1, k))
        labels = batch["labels"].to(dev, non_blocking=True).unflatten(0, (-1, k))
        per_image = group_loss(model(images, labels), labels, lam=config.lam)
        return loop.mean_loss(per_image, per_batch * k)

    job = loop.Training(
        module=module, optimizer=optimizer,
        samples=SeededTrainSamples(dataset, transform, config.seed), batches=batches,
        step=step, set_lr=set_lr, epochs=config.epochs, config=config.to_dict(),
        final={"classes": list(dataset.classes.names), "num_labels": num_labels,
               "model_kind": MODEL_KIND},
        extra={"model_kind": MODEL_KIND},
    )  # fmt: skip
    return loop.fit(job, out, device=dev, workers=workers, progress=progress, report=report,
                    checkpoint_every=checkpoint_every, max_seconds=max_seconds)  # fmt: skip
