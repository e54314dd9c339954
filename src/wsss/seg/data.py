"""Training samples for segmentation networks: image, label map (GT or pseudo labels), superpixels.

A pseudo-label folder holds ``<id>.png`` label maps (VOC palette or greyscale, 255 = ignore) at the
image size, or at the stride-4 size that ``wsss seeds --method wsgcn`` writes (upsampled, nearest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from wsss.data.base import SegmentationDataset
from wsss.data.transforms import TrainTransform
from wsss.engine.training import sample_rng
from wsss.errors import WsssError
from wsss.io.images import read_label_png
from wsss.io.palette import IGNORE_INDEX
from wsss.seeds.resize import upsample_labels
from wsss.seg.superpixels import cached_segments

__all__ = ["SeededSegSamples", "read_pseudo_label", "skip_ignore_id"]


def read_pseudo_label(path: Path, size: tuple[int, int], num_classes: int) -> np.ndarray:
    """A pseudo-label PNG at the image size (stride-4 maps are upsampled, nearest).

    Raises:
        WsssError: missing file, ids out of range, or another size.
    """
    if not path.is_file():
        raise WsssError("missing pseudo-label file", path,
                        hint="every training image needs <labels>/<id>.png")  # fmt: skip
    label = read_label_png(path, num_classes=num_classes)
    small = (-(-size[0] // 4), -(-size[1] // 4))
    if tuple(label.shape) == tuple(size):
        return label
    if tuple(label.shape) == small:
        return upsample_labels(label, size)
    raise WsssError(f"label map is {label.shape[0]}x{label.shape[1]}, the image {size[0]}x"
                    f"{size[1]} (or {small[0]}x{small[1]} at stride 4)", path)  # fmt: skip


def skip_ignore_id(segments: np.ndarray) -> np.ndarray:
    """Shift ids >= 255 up by one, so that 255 (the transform's padding fill) names no superpixel.

    Shapes:
        segments: ``(H, W)`` integer. Returns ``(H, W)`` int32.
    """
    segments = segments.astype(np.int32)
    return segments + (segments >= IGNORE_INDEX)


class SeededSegSamples(torch.utils.data.Dataset):
    """Sample ``(epoch, index)``: image, label map and superpixels augmented with the sample's seed.

    The superpixel map (if asked) goes through the same resize, flip and crop as the image (nearest);
    padding becomes one segment of its own (id 255).

    Args:
        dataset: The training split.
        transform: The augmentation; its ``pipeline`` transforms every ``tv_tensors.Mask`` alike.
        seed: Run seed.
        labels: Folder of pseudo labels, or None for the dataset's ground truth.
        superpixels: ``{"cache": folder or None, "n_segments": int}`` or None for no superpixels.

    Returns (on ``[(epoch, index)]``):
        ``{"image": (3, crop, crop) float32, "mask": (crop, crop) int64, "id": str}`` and
        ``"superpixels": (crop, crop) int64`` when asked.
    """

    def __init__(
        self, dataset: SegmentationDataset, transform: TrainTransform, seed: int, *,
        labels: Path | None = None, superpixels: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.dataset, self.transform, self.seed = dataset, transform, seed
        self.labels, self.superpixels = labels, superpixels

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, image_id: str) -> dict[str, Any]:
        """The untransformed image, label map and superpixels of one id as tv_tensors."""
        image = self.dataset.load_image(image_id)
        size = (image.shape[0], image.shape[1])
        if self.labels is not None:
            mask = read_pseudo_label(self.labels / f"{image_id}.png", size,
                                     self.dataset.classes.num_classes)  # fmt: skip
        else:
            mask = self.dataset.load_mask(image_id, size=size)
            if mask is None:
                raise WsssError(f"split {self.dataset.split!r} has no ground truth for "
                                f"{image_id!r}: give --labels")  # fmt: skip
        out = {
            "image": tv_tensors.Image(
                torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
            ),
            "mask": tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(mask))),
        }
        if self.superpixels is not None:
            cache = self.superpixels.get("cache")
            path = None if cache is None else Path(cache) / f"{image_id}.npz"
            segments = cached_segments(image, path, n_segments=self.superpixels["n_segments"])
            out["superpixels"] = tv_tensors.Mask(torch.from_numpy(skip_ignore_id(segments)))
        return out

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        image_id = self.dataset.ids[index]
        data = self.load(image_id)
        with sample_rng(self.seed, epoch, index):
            data = self.transform.pipeline(data)
        result = {k: v.as_subclass(torch.Tensor) for k, v in data.items()}
        result["mask"] = result["mask"].long()
        if "superpixels" in result:
            result["superpixels"] = result["superpixels"].long()
        result["id"] = image_id
        return result
