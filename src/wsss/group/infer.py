"""Group CAM inference of Group-WSSS: each image's CAMs computed inside a group of its split.

Grouping: :func:`~wsss.group.sampler.inference_groups` over the split's image-level labels with
the trained ``K`` and a seed: the greedy groups of training with every image kept, each image
*owned* by exactly one group (the short last group is padded with already-covered images whose
outputs are discarded). The graph of a group is built from the images' labels, as in training.

Per group and scale ``s``, every image (normalised) is resized (bilinear, antialiased when
shrinking) to ``round(s * H_max) x round(s * W_max)``, ``H_max, W_max`` the largest height and
width in the group, so that the group stacks into one tensor (groups of equal-size images keep
their aspect); the horizontally flipped images form a second group. The model runs in eval mode
(graph dropout off) and gives the ReLU CAMs of both readouts. For every output, ``intermediate``
(``h^0``), ``graph`` (``h^T``) and ``ensemble`` (their average, the paper's self-ensembling),
the map and its flipped-back twin are summed, resized to the image's stride-4 size and full size
and summed over scales. As :mod:`wsss.cam.infer`: only the image's classes are kept, each map
divided by its maximum + 1e-5, and written with :func:`wsss.io.cams.write_cams`.

Saliency mode (optional, :mod:`wsss.group.saliency`): with ``<dir>/<id>.png`` saliency maps
``S`` the files hold ``(CAM_k + S) / 2``, whose background threshold 0.5 is the paper's
background ``1 - S``. Without saliency (the default) the files are plain CAMs.

Work is sharded by groups (exact, unpadded :func:`~wsss.engine.shard` of the group list); a
group is skipped when all of its owned images' files exist in every output folder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from wsss.cam.infer import DEFAULT_SCALES, normalize_cams
from wsss.data.base import SegmentationDataset
from wsss.data.transforms import EvalTransform
from wsss.engine import dist_info, pending, shard
from wsss.engine.loop import FINAL_FILE
from wsss.engine.progress import track
from wsss.engine.training import load_checkpoint, resolve_device
from wsss.errors import WsssError
from wsss.group.build import build_group_model
from wsss.group.config import MODEL_KIND, GroupTrainConfig, checkpoint_kind
from wsss.group.model import GroupClassifier
from wsss.group.saliency import read_saliency, saliency_cams
from wsss.group.sampler import InferenceGroup, dataset_labels, inference_groups
from wsss.io.cams import CamFile, write_cams

__all__ = ["OUTPUTS", "group_multiscale_cams", "infer_group_cams", "load_group_trained"]

#: The CAM outputs of the group model (paper, Table 3 "Self-Ensembling").
OUTPUTS: tuple[str, ...] = ("intermediate", "graph", "ensemble")


def load_group_trained(
    checkpoint: str | Path, device: str | torch.device = "cpu"
) -> tuple[GroupClassifier, GroupTrainConfig]:
    """The trained group classifier of a run (eval mode, on ``device``) and its configuration.

    Args:
        checkpoint: ``final.pt``, ``checkpoint.pt``, or a run directory (its ``final.pt``).
        device: Where to put the model.

    Raises:
        WsssError: missing or unreadable file, a single-image CAM checkpoint, or weights that
            do not fit the configuration.
    """
    path = Path(checkpoint)
    if path.is_dir():
        path = path / FINAL_FILE
    state = load_checkpoint(path)
    if checkpoint_kind(state) != MODEL_KIND:
        raise WsssError("checkpoint holds a single-image CAM model, not a group model", path,
                        hint="use --model single, or train with `wsss train-cam --model group`")  # fmt: skip
    try:
        config = GroupTrainConfig.from_dict(state["config"])
        weights = state["model"]
        num_labels = int(
            state.get("num_labels", weights["graph_readout.classifier.weight"].shape[0])
        )
        model = build_group_model(config, num_labels, pretrained=False)
        model.load_state_dict(weights)
    except (KeyError, TypeError, RuntimeError) as err:
        raise WsssError(f"not a trained group model ({str(err)[:200]})", path) from None
    return model.to(device).eval(), config


def _resize(x: Tensor, size: tuple[int, int], *, antialias: bool = False) -> Tensor:
    """Bilinear resize of ``(B, C, h, w)`` (``align_corners=False``), antialiased if asked and
    shrinking."""
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                         antialias=antialias and shrink)  # fmt: skip


def _check_group(images: Sequence[Tensor], labels: Tensor, scales: Sequence[float]) -> None:
    if not images or any(im.ndim != 3 or im.shape[0] != 3 for im in images):
        shapes = [tuple(im.shape) for im in images]
        raise ValueError(f"expected a non-empty list of (3, H, W) images, got {shapes}")
    if labels.ndim != 2 or labels.shape[0] != len(images):
        raise ValueError(f"expected labels ({len(images)}, L), got {tuple(labels.shape)}")
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be a non-empty list of positive numbers, got {scales}")


@torch.inference_mode()
def group_multiscale_cams(
    model: GroupClassifier, images: Sequence[Tensor], labels: Tensor, *,
    scales: Sequence[float] = DEFAULT_SCALES, high_res: bool = True,
) -> dict[str, list[tuple[Tensor, Tensor | None]]]:  # fmt: skip
    """ReLU CAMs of every output for each image of one group, summed over scales and flips.

    Args:
        model: The trained group classifier, in eval mode.
        images: The normalised images of the group, on the model's device.
        labels: Their multi-hot labels (the graph's edges).
        scales: Positive scales of the group's common size ``(H_max, W_max)``.
        high_res: Also return the sums at each image's full resolution.

    Returns:
        ``{output: [(stride-4 sum, full-size sum or None) per image]}`` for :data:`OUTPUTS`;
        the ``ensemble`` sums are the averages of the other two (not normalised).

    Shapes:
        images: ``K`` tensors ``(3, H_i, W_i)``; labels: ``(K, L)``. Sums:
        ``(L, ceil(H_i/4), ceil(W_i/4))`` and ``(L, H_i, W_i)``.
    """
    _check_group(images, labels, scales)
    sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
    common = (max(h for h, _ in sizes), max(w for _, w in sizes))
    graph_labels = torch.stack([labels, labels]).to(images[0].device)
    low: dict[str, list[Tensor]] = {o: [] for o in OUTPUTS}
    high: dict[str, list[Tensor]] = {o: [] for o in OUTPUTS}
    for n, scale in enumerate(scales):
        size = (max(1, round(common[0] * scale)), max(1, round(common[1] * scale)))
        x = torch.cat([_resize(im[None], size, antialias=True) for im in images])
        cams = model.cams(torch.stack([x, x.flip(-1)]), graph_labels)
        for output in OUTPUTS:
            maps = getattr(cams, output)
            summed = maps[0] + maps[1].flip(-1)  # (K, L, h, w): the flipped group flipped back
            for i, (h, w) in enumerate(sizes):
                stride4 = (math.ceil(h / 4), math.ceil(w / 4))
                _accumulate(low[output], i, n, _resize(summed[i : i + 1], stride4)[0])
                if high_res:
                    _accumulate(high[output], i, n, _resize(summed[i : i + 1], (h, w))[0])
    return {o: [(low[o][i], high[o][i] if high_res else None) for i in range(len(images))]
            for o in OUTPUTS}  # fmt: skip


def _accumulate(sums: list[Tensor], index: int, step: int, part: Tensor) -> None:
    """Add ``part`` to ``sums[index]`` (appended at the first step)."""
    if step == 0:
        sums.append(part)
    else:
        sums[index] = sums[index] + part


def _cam_file(
    sample: dict[str, Any], low: Tensor, high: Tensor | None, *, offset: int,
    saliency: Tensor | None,
) -> CamFile:  # fmt: skip
    keep = np.flatnonzero(np.asarray(sample["labels"]) > 0).tolist()
    maps = [normalize_cams(m, keep) if m is not None else None for m in (low, high)]
    if saliency is not None:
        maps = [saliency_cams(m, saliency) if m is not None else None for m in maps]
    image = sample["image"]
    return CamFile(
        keys=np.asarray(keep, dtype=np.int64) + offset,
        cams=maps[0].float().cpu().numpy(),  # type: ignore[union-attr]
        size=(int(image.shape[-2]), int(image.shape[-1])),
        high_res=None if maps[1] is None else maps[1].float().cpu().numpy(),
    )


def _check_outputs(folders: Mapping[str, str | Path]) -> dict[str, Path]:
    unknown = sorted(set(folders) - set(OUTPUTS))
    if not folders or unknown:
        raise WsssError(
            f"unknown CAM output(s) {unknown or '(none given)'}; valid: {', '.join(OUTPUTS)}"
        )
    return {o: Path(f) for o, f in folders.items()}


def _todo(
    groups: list[InferenceGroup], ids: list[str], folders: dict[str, Path]
) -> list[InferenceGroup]:
    """The groups of which some owned image lacks a file in some folder."""
    owned = [ids[i] for g in groups for i in g.members[: g.owned]]
    missing: set[str] = set()
    for folder in folders.values():
        missing.update(pending(owned, lambda i, d=folder: d / f"{i}.npz"))
    return [g for g in groups if any(ids[i] in missing for i in g.members[: g.owned])]


def infer_group_cams(
    model: GroupClassifier, dataset: SegmentationDataset, folders: Mapping[str, str | Path], *,
    group_size: int = 4, seed: int = 0, scales: Sequence[float] = DEFAULT_SCALES,
    high_res: bool = True, saliency: str | Path | None = None, device: str = "cpu",
    progress: bool = True,
) -> dict[str, int]:  # fmt: skip
    """Write ``<folder>/<id>.npz`` of each requested output for this process's groups.

    Runs the same in one process or under ``torchrun``; files are written atomically and a
    rerun skips finished groups. The groups do not depend on the number of processes, so the
    files are the same bytes (at the same torch thread count; float sums depend on it).

    Args:
        model: The trained group classifier (eval mode, on ``device``).
        dataset: The split; image-level labels choose the graph edges and the stored classes.
        folders: Output folder by output name (keys of :data:`OUTPUTS`).
        group_size: ``K`` (the trained one).
        seed: Seed of the grouping.
        scales: Inference scales.
        high_res: Also store full-resolution maps.
        saliency: Folder of ``<id>.png`` saliency maps (background ``1 - S``), or None.
        device: ``cpu``, ``cuda`` or ``cuda:<i>``.
        progress: Show a progress bar (rank 0).

    Returns:
        ``{"groups": groups of this process, "shard": images they own, "written": files
        written now}``.

    Raises:
        WsssError: unknown output, label count differs from the dataset's, missing or
            mismatched saliency map.
    """
    outs = _check_outputs(folders)
    if model.num_labels != dataset.classes.num_labels:
        raise WsssError(f"the model predicts {model.num_labels} labels, the dataset has "
                        f"{dataset.classes.num_labels}")  # fmt: skip
    if group_size < 1:
        raise WsssError(f"group size must be >= 1, got {group_size}")
    dev = resolve_device(device)
    info = dist_info()
    groups = inference_groups(dataset_labels(dataset), group_size, seed=seed)
    mine = shard(groups, info.rank, info.world)
    todo = _todo(mine, dataset.ids, outs)
    transform = EvalTransform()
    written = 0
    for group in track(todo, description="group CAMs", total=len(todo), enabled=progress):
        samples = [transform(dataset.load(dataset.ids[i])) for i in group.members]
        images = [s["image"].to(dev) for s in samples]
        labels = torch.stack([torch.as_tensor(s["labels"]) for s in samples])
        sums = group_multiscale_cams(model, images, labels, scales=scales, high_res=high_res)
        for k in range(group.owned):
            image_id = dataset.ids[group.members[k]]
            sal = None
            if saliency is not None:
                size = tuple(images[k].shape[-2:])
                sal = torch.from_numpy(read_saliency(Path(saliency) / f"{image_id}.png", size))
            for output, folder in outs.items():
                path = folder / f"{image_id}.npz"
                if path.exists():
                    continue
                low, high = sums[output][k]
                write_cams(path, _cam_file(samples[k], low, high, offset=dataset.classes.offset,
                                           saliency=sal))  # fmt: skip
                written += 1
    owned = sum(g.owned for g in mine)
    return {"groups": len(mine), "shard": owned, "written": written}
