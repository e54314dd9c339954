"""Multi-scale CAM inference (IRNet, SPEC section 1) and the per-image CAM files.

For each scale ``s`` the normalised image is resized (bilinear, ``align_corners=False``,
antialiased when shrinking) to ``round(s * H) x round(s * W)``, batched with its horizontal flip,
and the ReLU CAMs of both are summed (the flipped one flipped back). The sums over scales are
taken after resizing each scale's map bilinearly to the stride-4 size ``ceil(H/4) x ceil(W/4)``
and, optionally, to the full ``H x W``. Only the image's GT classes are kept, each map divided
by its maximum plus 1e-5, and written with :func:`wsss.io.cams.write_cams` as ``<out>/<id>.npz``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wsss.cam.model import build_model
from wsss.cam.train import FINAL_FILE, TrainConfig
from wsss.data.base import SegmentationDataset
from wsss.data.transforms import EvalTransform
from wsss.engine import dist_info, pending, shard
from wsss.engine.progress import track
from wsss.engine.training import load_checkpoint, resolve_device
from wsss.errors import WsssError
from wsss.io.cams import CamFile, write_cams

#: IRNet's inference scales (each also run flipped).
DEFAULT_SCALES: tuple[float, ...] = (1.0, 0.5, 1.5, 2.0)
#: Added to each map's maximum before dividing (IRNet).
NORM_EPS = 1e-5


def load_trained(
    checkpoint: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, TrainConfig]:
    """The trained model of a run (in eval mode, on ``device``) and its configuration.

    Args:
        checkpoint: ``final.pt``, ``checkpoint.pt``, or a run directory (its ``final.pt``).
        device: Where to put the model.

    Raises:
        WsssError: missing or unreadable file, a group model (``train-cam --model group``), or
            one that is not a trained CAM model.
    """
    path = Path(checkpoint)
    if path.is_dir():
        path = path / FINAL_FILE
    state = load_checkpoint(path)
    from wsss.group.config import checkpoint_kind

    if checkpoint_kind(state) == "group":
        raise WsssError("checkpoint holds a group model, not a single-image CAM model", path,
                        hint="use --model group, or train with `wsss train-cam --model single`")  # fmt: skip
    try:
        config = TrainConfig.from_dict(state["config"])
        weights = state["model"]
        num_labels = int(state.get("num_labels", weights["classifier.weight"].shape[0]))
        model = build_model(config, num_labels, pretrained=False)
        model.load_state_dict(weights)
    except (KeyError, TypeError, RuntimeError) as err:
        raise WsssError(f"not a trained CAM model ({err})", path) from None
    return model.to(device).eval(), config


def _resize(x: torch.Tensor, size: tuple[int, int], *, antialias: bool = False) -> torch.Tensor:
    """Bilinear resize (``align_corners=False``); antialiased only if asked and shrinking."""
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(
        x, size=size, mode="bilinear", align_corners=False, antialias=antialias and shrink
    )


@torch.inference_mode()
def multiscale_cams(
    model: nn.Module,
    image: torch.Tensor,
    *,
    scales: Sequence[float] = DEFAULT_SCALES,
    high_res: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """ReLU CAMs of every label summed over scales and flips (not normalised).

    Args:
        model: A module with ``cams(images) -> (B, L, h, w)``, in eval mode.
        image: The normalised image, on the model's device.
        scales: Positive image scales.
        high_res: Also return the sum at full resolution.

    Returns:
        The stride-4 sum and the full-resolution sum (or None).

    Shapes:
        image: ``(3, H, W)``. Returns ``(L, ceil(H/4), ceil(W/4))`` and ``(L, H, W)``.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image, got {tuple(image.shape)}")
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be a non-empty list of positive numbers, got {scales}")
    h, w = image.shape[-2:]
    low_size = (math.ceil(h / 4), math.ceil(w / 4))
    low: torch.Tensor | None = None
    high: torch.Tensor | None = None
    for scale in scales:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        x = _resize(image[None], size, antialias=True)
        maps = model.cams(torch.cat([x, x.flip(-1)]))
        summed = (maps[0] + maps[1].flip(-1))[None]
        part = _resize(summed, low_size)[0]
        low = part if low is None else low + part
        if high_res:
            part = _resize(summed, (h, w))[0]
            high = part if high is None else high + part
    assert low is not None
    return low, high


def normalize_cams(maps: torch.Tensor, keep: Sequence[int]) -> torch.Tensor:
    """The maps of labels ``keep``, each divided by its maximum + 1e-5 (all-zero maps stay 0).

    Shapes:
        maps: ``(L, h, w)``. Returns ``(len(keep), h, w)``.
    """
    kept = maps[list(keep)]
    return kept / (kept.amax(dim=(1, 2), keepdim=True) + NORM_EPS)


def image_cam_file(
    model: nn.Module,
    sample: dict[str, Any],
    *,
    offset: int,
    scales: Sequence[float] = DEFAULT_SCALES,
    high_res: bool = True,
    device: torch.device | str = "cpu",
) -> CamFile:
    """The CAM file content of one image.

    Args:
        model: The trained model (eval mode, on ``device``).
        sample: An :class:`~wsss.data.transforms.EvalTransform` output (``image``, ``labels``).
        offset: Label id of label index 0 (``dataset.classes.offset``).
        scales: Inference scales.
        high_res: Also store full-resolution maps.
        device: Where to compute.
    """
    image = sample["image"].to(device)
    keep = np.flatnonzero(np.asarray(sample["labels"]) > 0).tolist()
    low, high = multiscale_cams(model, image, scales=scales, high_res=high_res)
    return CamFile(
        keys=np.asarray(keep, dtype=np.int64) + offset,
        cams=normalize_cams(low, keep).float().cpu().numpy(),
        size=(int(image.shape[-2]), int(image.shape[-1])),
        high_res=None if high is None else normalize_cams(high, keep).float().cpu().numpy(),
    )


def infer_cams(
    model: nn.Module,
    dataset: SegmentationDataset,
    out: str | Path,
    *,
    scales: Sequence[float] = DEFAULT_SCALES,
    high_res: bool = True,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, int]:
    """Write ``<out>/<id>.npz`` for this process's shard of ``dataset.ids``, skipping done ones.

    Runs the same in one process or under ``torchrun`` (exact, unpadded shards); files are
    written atomically, so an interrupted run resumes where it stopped with identical bytes.

    Args:
        model: The trained model (eval mode, on ``device``).
        dataset: The split; image-level labels choose the stored classes.
        out: Output folder.
        scales: Inference scales.
        high_res: Also store full-resolution maps.
        device: ``cpu``, ``cuda`` or ``cuda:<i>``.
        progress: Show a progress bar (rank 0).

    Returns:
        ``{"shard": images of this process, "written": files written now}``.

    Raises:
        WsssError: the model's label count differs from the dataset's.
    """
    num_labels = getattr(model, "num_labels", dataset.classes.num_labels)
    if num_labels != dataset.classes.num_labels:
        raise WsssError(
            f"the model predicts {num_labels} labels, the dataset has {dataset.classes.num_labels}"
        )
    out = Path(out)
    dev = resolve_device(device)
    info = dist_info()
    mine = shard(dataset.ids, info.rank, info.world)
    todo = pending(mine, lambda i: out / f"{i}.npz")
    transform = EvalTransform()
    offset = dataset.classes.offset
    for image_id in track(todo, description="CAMs", total=len(todo), enabled=progress):
        sample = transform(dataset.load(image_id))
        cam = image_cam_file(model, sample, offset=offset, scales=scales, high_res=high_res,
                             device=dev)  # fmt: skip
        write_cams(out / f"{image_id}.npz", cam)
    return {"shard": len(mine), "written": len(todo)}
