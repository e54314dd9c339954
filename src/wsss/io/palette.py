"""The PASCAL VOC colour palette and label PNGs written in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wsss.io.atomic import atomic_path

IGNORE_INDEX = 255


def voc_palette(n: int = 256) -> np.ndarray:
    """The VOC devkit colour map (bit-interleaved class index).

    Returns:
        ``(n, 3)`` uint8 array; row ``k`` is the RGB colour of label ``k`` (255 -> (224, 224, 192)).
    """
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for k in range(n):
        r = g = b = 0
        c = k
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[k] = (r, g, b)
    return cmap


VOC_PALETTE: np.ndarray = voc_palette()


def colorize(label: np.ndarray) -> np.ndarray:
    """Map a label map to RGB with the VOC palette.

    Shapes:
        label: ``(H, W)`` integer in [0, 255]. Returns ``(H, W, 3)`` uint8.
    """
    return VOC_PALETTE[np.asarray(label, dtype=np.uint8)]


def write_label_png(path: str | Path, label: np.ndarray) -> None:
    """Write a label map as a palette ('P' mode) PNG in the VOC palette, atomically.

    Args:
        path: Destination ``.png``.
        label: ``(H, W)`` array of class ids in [0, 255] (255 = ignore / unlabelled).
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label map must be (H, W), got shape {label.shape}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f"label ids must lie in [0, 255], got [{label.min()}, {label.max()}]")
    image = Image.fromarray(label.astype(np.uint8), mode="P")
    image.putpalette(VOC_PALETTE.reshape(-1).tolist())
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=False)
