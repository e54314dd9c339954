"""Label maps from a trained segmentation network: multi-scale + flip, sharded, resumable, atomic.

For each scale ``s`` the normalised image is resized (bilinear, antialiased when shrinking) to
``round(s * H) x round(s * W)`` (its superpixel map, if the model needs one, by nearest), batched
with its horizontal flip if asked, and the softmax probabilities of each pass, resized back to
``H x W``, are averaged; the label map is their argmax, written as ``<out>/<id>.png`` in the VOC
palette. With ``crf`` the averaged probabilities are refined by the dense CRF (AffinityNet's
parameters, 10 iterations; ES-CRF's "Vanilla-CRF" baseline) before the argmax. Ids whose PNG exists are skipped, so a rerun resumes; each process takes an exact,
unpadded shard of the ids under ``torchrun``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wsss.crf.dense_crf import crf_inference_probs
from wsss.data.base import SegmentationDataset
from wsss.data.transforms import EvalTransform
from wsss.engine import dist_info, pending, shard
from wsss.engine.progress import track
from wsss.engine.training import resolve_device
from wsss.errors import WsssError
from wsss.io.palette import write_label_png
from wsss.io.settings import check_saved_settings
from wsss.seg.deeplab import SegmentationModel
from wsss.seg.superpixels import cached_segments

__all__ = ["CONFIG_FILE", "predict_image", "predict_split"]

#: The options of the predictions in a folder.
CONFIG_FILE = "predict.json"


@torch.inference_mode()
def predict_image(
    model: SegmentationModel, image: torch.Tensor, *, superpixels: torch.Tensor | None = None,
    scales: Sequence[float] = (1.0,), flip: bool = False,
) -> torch.Tensor:  # fmt: skip
    """Class probabilities averaged over scales (and flips).

    Args:
        model: The trained network (eval mode, on the image's device).
        image: The normalised image.
        superpixels: Superpixel ids of the image (models with ``needs_superpixels``).
        scales: Positive image scales.
        flip: Also run each scale flipped.

    Shapes:
        image: ``(3, H, W)``; superpixels: ``(H, W)`` int64. Returns ``(K, H, W)`` float32.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image, got {tuple(image.shape)}")
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive, got {scales}")
    h, w = image.shape[-2:]
    total: torch.Tensor | None = None
    for scale in scales:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        x = image[None]
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                              antialias=scale < 1)  # fmt: skip
        spx = None
        if superpixels is not None:
            spx = F.interpolate(superpixels[None, None].float(), size=size, mode="nearest")[
                0
            ].long()
        if flip:
            x = torch.cat([x, x.flip(-1)])
            spx = None if spx is None else torch.cat([spx, spx.flip(-1)])
        probs = model(x, spx).float().softmax(1)
        if flip:
            probs = torch.stack([probs[0], probs[1].flip(-1)]).mean(0, keepdim=True)
        probs = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)[0]
        total = probs if total is None else total + probs
    assert total is not None
    return total / len(scales)


def predict_split(
    model: SegmentationModel, dataset: SegmentationDataset, out: str | Path, *,
    scales: Sequence[float] = (1.0,), flip: bool = False, n_segments: int = 200,
    superpixel_cache: str | Path | None = None, checkpoint: str = "", crf: bool = False,
    device: str = "cpu", progress: bool = True,
) -> dict[str, int]:  # fmt: skip
    """Write ``<out>/<id>.png`` for this process's shard of ``dataset.ids``, skipping done ones.

    Args:
        model: The trained network (eval mode, on ``device``).
        dataset: The split to label.
        out: Output folder.
        scales: Inference scales.
        flip: Also average the flipped image.
        n_segments: SLIC segments per image (models that need superpixels).
        superpixel_cache: Folder caching the SLIC maps, or None.
        checkpoint: Recorded in ``predict.json`` with the options.
        crf: Refine the probabilities with the dense CRF (Vanilla-CRF).
        device: ``cpu``, ``cuda`` or ``cuda:<i>``.
        progress: Show a progress bar (rank 0).

    Returns:
        ``{"shard": images of this process, "written": files written now}``.

    Raises:
        WsssError: the model's class count differs from the dataset's, or another configuration
            wrote the folder.
    """
    if model.num_classes != dataset.classes.num_classes:
        raise WsssError(f"the model predicts {model.num_classes} classes, the dataset has "
                        f"{dataset.classes.num_classes}")  # fmt: skip
    out = Path(out)
    dev = resolve_device(device)
    options = {"checkpoint": checkpoint, "scales": list(scales), "flip": flip, "crf": crf,
               "n_segments": n_segments if model.needs_superpixels else None}  # fmt: skip
    check_saved_settings(out / CONFIG_FILE, options, what="predictions", noun="options")
    info = dist_info()
    mine = shard(dataset.ids, info.rank, info.world)
    todo = pending(mine, lambda i: out / f"{i}.png")
    transform = EvalTransform()
    for image_id in track(todo, description="predict", total=len(todo), enabled=progress):
        raw = dataset.load_image(image_id)
        image = transform.pipeline(_as_image(raw)).as_subclass(torch.Tensor).to(dev)
        spx = None
        if model.needs_superpixels:
            cache = None if superpixel_cache is None else Path(superpixel_cache) / f"{image_id}.npz"
            seg = cached_segments(raw, cache, n_segments=n_segments)
            spx = torch.from_numpy(seg.astype(np.int64)).to(dev)
        probs = predict_image(model, image, superpixels=spx, scales=scales, flip=flip)
        if crf:
            probs = torch.from_numpy(crf_inference_probs(raw, probs.cpu().numpy()))
        write_label_png(out / f"{image_id}.png", probs.argmax(0).to(torch.uint8).cpu().numpy())
    return {"shard": len(mine), "written": len(todo)}


def _as_image(raw: np.ndarray) -> torch.Tensor:
    from torchvision import tv_tensors

    return tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(raw.transpose(2, 0, 1))))
