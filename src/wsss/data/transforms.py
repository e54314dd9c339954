"""Training and evaluation transforms on :class:`~wsss.data.base.Sample`, with ``transforms.v2``.

Both map a sample to a dict ``{"image", "mask" (if the sample has one), "labels", "id"}`` that
the default collate function batches. Random choices use torch's global generator, so
``torch.manual_seed`` fixes them (DataLoader workers are seeded from it too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from wsss.data.base import Sample
from wsss.io.palette import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomLongSideResize(v2.Transform):
    """Resize so that the longer side is a random integer in ``[min_size, max_size]`` (inclusive).

    The aspect ratio is kept. ``v2.RandomResize`` draws the *shorter* side (upper bound
    exclusive) and ``v2.RandomShortestSize`` also works on the shorter side, hence this class.
    Images use ``interpolation``; masks always use nearest neighbour (as every v2 resize does).

    Args:
        min_size: Smallest long side.
        max_size: Largest long side.
        interpolation: Interpolation of images.
        antialias: Antialias images when shrinking.
    """

    def __init__(
        self,
        min_size: int,
        max_size: int,
        *,
        interpolation: v2.InterpolationMode = v2.InterpolationMode.BILINEAR,
        antialias: bool = True,
    ) -> None:
        super().__init__()
        if not 1 <= min_size <= max_size:
            raise ValueError(f"need 1 <= min_size <= max_size, got {min_size}, {max_size}")
        self.min_size = min_size
        self.max_size = max_size
        self.interpolation = interpolation
        self.antialias = antialias

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"long_side": int(torch.randint(self.min_size, self.max_size + 1, ()))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(
            F.resize,
            inpt,
            size=None,
            max_size=params["long_side"],
            interpolation=self.interpolation,
            antialias=self.antialias,
        )


def _to_tv_tensors(sample: Sample) -> dict[str, Any]:
    """The sample's image and mask as ``tv_tensors``, checked for shape and dtype."""
    image, mask = sample.image, sample.mask
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        got = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"sample {sample.id!r}: image must be an (H, W, 3) array, got {got}")
    if image.dtype != np.uint8:
        raise ValueError(f"sample {sample.id!r}: image must be uint8, got {image.dtype}")
    out = {
        "image": tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
    }
    if mask is not None:
        if not isinstance(mask, np.ndarray) or mask.shape != image.shape[:2]:
            got = getattr(mask, "shape", type(mask).__name__)
            raise ValueError(f"sample {sample.id!r}: mask must be {image.shape[:2]}, got {got}")
        out["mask"] = tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8)))
    return out


def _to_output(sample: Sample, out: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"image": out["image"].as_subclass(torch.Tensor)}
    if "mask" in out:
        result["mask"] = out["mask"].as_subclass(torch.Tensor).to(torch.int64)
    result["labels"] = torch.as_tensor(np.asarray(sample.labels), dtype=torch.float32)
    result["id"] = sample.id
    return result


class TrainTransform:
    """Training augmentation: random long-side resize, flip, colour jitter, pad and crop.

    Steps: resize the long side to a random integer in ``long_side`` (bilinear image, nearest
    mask), horizontal flip with probability 0.5, colour jitter (image only), scale to [0, 1] and
    normalise, pad to at least ``crop`` (image with 0, i.e. the mean colour after normalising;
    mask with ``ignore_index``; the padding is split between both sides at a random offset, as
    ``v2.RandomCrop(pad_if_needed=True)`` does), then a random ``crop x crop`` window.
    Image-level labels are passed through unchanged (a crop may cut a class out).

    Args:
        long_side: ``(lo, hi)`` range of the resized long side, inclusive.
        crop: Side of the square output.
        flip: Random horizontal flip.
        color_jitter: ``(brightness, contrast, saturation, hue)`` of ``v2.ColorJitter``, or None.
        mean: Per-channel mean of the normalisation (of images scaled to [0, 1]).
        std: Per-channel standard deviation of the normalisation.
        ignore_index: Mask value of padded pixels.

    Returns (on call):
        ``{"image": (3, crop, crop) float32, "mask": (crop, crop) int64 (only if the sample has a
        mask), "labels": (L,) float32, "id": str}``.
    """

    def __init__(
        self,
        *,
        long_side: tuple[int, int] = (320, 640),
        crop: int = 512,
        flip: bool = True,
        color_jitter: tuple[float, float, float, float] | None = (0.3, 0.3, 0.3, 0.1),
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        if crop < 1:
            raise ValueError(f"crop must be positive, got {crop}")
        steps: list[v2.Transform] = [RandomLongSideResize(*long_side)]
        if flip:
            steps.append(v2.RandomHorizontalFlip(p=0.5))
        if color_jitter is not None:
            steps.append(v2.ColorJitter(*color_jitter))
        steps += [
            v2.ToDtype(torch.float32, scale=True),  # images only; masks stay uint8
            v2.Normalize(mean=list(mean), std=list(std)),
            v2.RandomCrop(
                crop,
                pad_if_needed=True,
                fill={tv_tensors.Image: 0.0, tv_tensors.Mask: ignore_index},
            ),
        ]
        self.pipeline = v2.Compose(steps)

    def __call__(self, sample: Sample) -> dict[str, Any]:
        return _to_output(sample, self.pipeline(_to_tv_tensors(sample)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pipeline})"


class EvalTransform:
    """Evaluation: no resize or crop, only conversion to tensors and normalisation.

    Args:
        mean: Per-channel mean of the normalisation (of images scaled to [0, 1]).
        std: Per-channel standard deviation of the normalisation.

    Returns (on call):
        ``{"image": (3, H, W) float32, "mask": (H, W) int64 (only if the sample has a mask),
        "labels": (L,) float32, "id": str}``.
    """

    def __init__(
        self, *, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
    ) -> None:
        self.pipeline = v2.Compose(
            [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]
        )

    def __call__(self, sample: Sample) -> dict[str, Any]:
        return _to_output(sample, self.pipeline(_to_tv_tensors(sample)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pipeline})"


def normalize_image(image: np.ndarray) -> torch.Tensor:
    """An ``(H, W, 3)`` uint8 image as the networks' input: ``(3, H, W)`` float32, scaled to
    [0, 1] and normalised with the ImageNet mean and std (as :class:`EvalTransform`)."""
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    return (x - mean) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
