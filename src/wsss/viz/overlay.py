"""Heatmaps and overlays of CAMs and label maps on images."""

from __future__ import annotations

import numpy as np

from wsss.io.palette import IGNORE_INDEX, colorize

# Anchor colours of a perceptually ordered blue -> cyan -> yellow -> red ramp (jet-like).
_RAMP = np.array(
    [[0, 0, 128], [0, 64, 255], [0, 200, 255], [120, 255, 120], [255, 220, 0], [255, 64, 0],
     [128, 0, 0]],
    dtype=np.float32,
)  # fmt: skip


def cam_heatmap(cam: np.ndarray) -> np.ndarray:
    """Colour a map with values in [0, 1] (clipped) on a blue-to-red ramp.

    Shapes:
        cam: ``(H, W)`` float. Returns ``(H, W, 3)`` uint8.
    """
    x = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float32)), 0.0, 1.0) * (len(_RAMP) - 1)
    lo = np.floor(x).astype(np.int64)
    hi = np.minimum(lo + 1, len(_RAMP) - 1)
    frac = (x - lo)[..., None]
    return (_RAMP[lo] * (1 - frac) + _RAMP[hi] * frac).round().astype(np.uint8)


def _blend(image: np.ndarray, layer: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    out = image.astype(np.float32) * (1 - alpha) + layer.astype(np.float32) * alpha
    return out.round().clip(0, 255).astype(np.uint8)


def overlay_cam(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the heatmap of ``cam`` over ``image``.

    Shapes:
        image: ``(H, W, 3)`` uint8; cam: ``(H, W)`` in [0, 1]. Returns ``(H, W, 3)`` uint8.
    """
    _check_same_size(image, cam)
    return _blend(image, cam_heatmap(cam), alpha)


def overlay_labels(image: np.ndarray, label: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Blend a label map in the VOC palette over ``image``; background (0) stays see-through,
    255 (unlabelled) is shown in the palette's cream colour at half strength.

    Shapes:
        image: ``(H, W, 3)`` uint8; label: ``(H, W)`` int. Returns ``(H, W, 3)`` uint8.
    """
    _check_same_size(image, label)
    label = np.asarray(label)
    weight = np.where(label == 0, 0.0, np.where(label == IGNORE_INDEX, alpha / 2, alpha))
    return _blend(image, colorize(label), weight[..., None].astype(np.float32))


def _check_same_size(image: np.ndarray, other: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {image.shape}")
    if other.shape[:2] != image.shape[:2]:
        raise ValueError(f"map of shape {other.shape} does not match image {image.shape[:2]}")
