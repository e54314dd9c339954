"""Moving between the image size and the stride-4 CAM grid ``ceil(H/4) x ceil(W/4)``.

The CAM grid is a resize of the image (bilinear, ``align_corners=False``, see
:mod:`wsss.cam.infer`): cell ``i`` of ``h`` is centred on image row ``(i + 0.5) H / h - 0.5``. Both
helpers keep that geometry.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

__all__ = ["cam_size", "downscale_image", "upsample_labels"]


def cam_size(size: tuple[int, int]) -> tuple[int, int]:
    """The stride-4 size ``(ceil(H/4), ceil(W/4))`` of an ``(H, W)`` image."""
    return math.ceil(size[0] / 4), math.ceil(size[1] / 4)


def downscale_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased (Lanczos) resize of an RGB image to ``size``, as WSGCN's code does.

    Shapes:
        image: ``(H, W, 3)`` uint8; size ``(h, w)``; output ``(h, w, 3)`` uint8.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if tuple(image.shape[:2]) == tuple(size):
        return image
    resized = Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8).copy()


def upsample_labels(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling of a label map, centre-aligned.

    Output pixel ``y`` takes input row ``floor((y + 0.5) h / H)`` (PyTorch's ``nearest-exact``);
    for ``H = 4 h`` this is simply ``y // 4``.

    Shapes:
        label: ``(h, w)``; size ``(H, W)``; output ``(H, W)``, same dtype.
    """
    if label.ndim != 2:
        raise ValueError(f"expected an (h, w) label map, got shape {label.shape}")
    h, w = label.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.int64), w - 1)
    return label[rows[:, None], cols[None, :]]
