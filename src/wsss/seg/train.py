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

The recipe (:class:`~wsss.seg.config.SegConfig` and its presets) is in :mod:`wsss.seg.config`,
the networks in :mod:`wsss.seg.model`; :func:`train` hands them to the training loop
(:mod:`wsss.engine.loop`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wsss.data.base import SegmentationDataset
from wsss.data.transforms import TrainTransform
from wsss.engine import loop
from wsss.engine.distributed import all_reduce_sum, dist_info
from wsss.engine.training import make_sgd, seeded_poly_plan, train_seconds, trainable_groups
from wsss.errors import WsssError
from wsss.io.palette import IGNORE_INDEX
from wsss.seg.config import OPTIMIZERS, PRESETS, SegConfig, resolve_config
from wsss.seg.data import SeededSegSamples
from wsss.seg.deeplab import SegmentationModel
from wsss.seg.model import build_seg_model, initialise_from, load_trained

__all__ = ["OPTIMIZERS", "PRESETS", "SegConfig", "build_seg_model", "initialise_from",
           "load_trained", "make_optimizer", "make_samples", "make_transform", "resolve_config",
           "segmentation_loss", "train", "train_seconds"]  # fmt: skip

SUPERPIXEL_DIR = "superpixels"


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


def train(
    config: SegConfig, out: str | Path, *, dataset: SegmentationDataset, device: str = "cpu",
    workers: int = 0, progress: bool = True, report: Callable[[str], None] | None = None,
    checkpoint_every: int | None = None, max_seconds: float | None = None,
    weights: str | Path | None = None,
) -> Path:  # fmt: skip
    """Train (or resume) the segmentation network of ``config`` into the run directory ``out``.

    Call it in every process of a ``torchrun`` job or in one process; rank 0 writes the files.
    Arguments as :func:`wsss.cam.train.train`.

    Returns:
        The path of ``final.pt``.

    Raises:
        WsssError: another configuration in ``out``, fewer images than a batch, more processes than
            images per batch, a missing label folder or file.
    """
    out = Path(out)

    def check(world: int) -> None:
        if config.labels is not None and not Path(config.labels).is_dir():
            raise WsssError("label folder does not exist", config.labels)
        loop.batch_check(len(dataset), config.batch_size)(world)

    dev = loop.open_run(out, config.to_dict(), device=device, workers=workers, seed=config.seed,
                        check=check)  # fmt: skip
    num_classes = dataset.classes.num_classes
    module = loop.rank_zero_first(
        lambda: build_seg_model(config, num_classes, pretrained=config.pretrained, weights=weights),
        download=config.pretrained,
    )
    if dist_info().world > 1 and dev.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    module = module.to(dev)
    if config.init is not None:  # a resumed run's checkpoint overrides these weights
        initialise_from(module, config.init)
    optimizer = make_optimizer(config, module)

    def step(model: nn.Module, batch: dict[str, Any]) -> loop.StepOutput:
        images = batch["image"].to(dev, non_blocking=True)
        target = batch["mask"].to(dev, non_blocking=True)
        spx = batch.get("superpixels")
        logits = model(images, None if spx is None else spx.to(dev, non_blocking=True))
        loss_sum, count = segmentation_loss(logits, target)
        # DDP averages gradients over processes: scale so the average is d(global mean)/dw.
        pixels = all_reduce_sum(count.detach().clone())
        return loop.StepOutput(
            loss_sum * (dist_info().world / pixels.clamp(min=1)), loss_sum, count
        )

    job = loop.Training(
        module=module, optimizer=optimizer, samples=make_samples(config, dataset, out), step=step,
        epochs=config.epochs, config=config.to_dict(), stage=f"train-seg {config.model}",
        final={"classes": list(dataset.classes.names), "num_classes": num_classes},
        max_grad_norm=config.max_grad_norm,
        **seeded_poly_plan(len(dataset), config, optimizer),
    )  # fmt: skip
    return loop.fit(job, out, device=dev, workers=workers, progress=progress, report=report,
                    checkpoint_every=checkpoint_every, max_seconds=max_seconds)  # fmt: skip
