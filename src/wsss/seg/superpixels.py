"""SLIC superpixels for ES-CRF (scikit-image), computed once per image and cached as ``.npz``.

The cache file ``<dir>/<id>.npz`` (no pickle) holds ``segments`` int16 ``(H, W)`` (ids from 0),
``n_segments`` and ``compactness`` (the SLIC parameters, checked on read: a cache made with other
parameters is recomputed). Writes are atomic, so several processes may fill one cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wsss.io.atomic import atomic_path

__all__ = ["DEFAULT_COMPACTNESS", "DEFAULT_SEGMENTS", "cached_segments", "slic_segments"]

#: ES-CRF: 200 blocks per ADE20K image (600 for Cityscapes).
DEFAULT_SEGMENTS = 200
#: scikit-image's default compactness for RGB images.
DEFAULT_COMPACTNESS = 10.0


def slic_segments(
    image: np.ndarray, *, n_segments: int = DEFAULT_SEGMENTS,
    compactness: float = DEFAULT_COMPACTNESS,
) -> np.ndarray:  # fmt: skip
    """SLIC superpixels of an RGB image (``skimage.segmentation.slic``, connectivity enforced).

    Shapes:
        image: ``(H, W, 3)`` uint8. Returns ``(H, W)`` int16 ids ``0 .. S - 1``.
    """
    from skimage.segmentation import slic

    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {image.shape}")
    if n_segments < 1:
        raise ValueError(f"n_segments must be positive, got {n_segments}")
    labels = slic(image, n_segments=n_segments, compactness=compactness, start_label=0,
                  channel_axis=-1)  # fmt: skip
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(labels.shape).astype(np.int16)


def cached_segments(
    image: np.ndarray, path: str | Path | None, *, n_segments: int = DEFAULT_SEGMENTS,
    compactness: float = DEFAULT_COMPACTNESS,
) -> np.ndarray:  # fmt: skip
    """:func:`slic_segments`, read from ``path`` if a matching cache file exists, else written there.

    Args:
        image: ``(H, W, 3)`` uint8.
        path: The cache file, or None for no cache.
        n_segments: SLIC's approximate number of segments.
        compactness: SLIC's compactness.
    """
    if path is not None and Path(path).is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                segments = data["segments"]
                same = (int(data["n_segments"]) == n_segments
                        and float(data["compactness"]) == compactness)  # fmt: skip
            if same and segments.shape == image.shape[:2]:
                return segments
        except (OSError, ValueError, KeyError):
            pass  # unreadable or stale: recompute
    segments = slic_segments(image, n_segments=n_segments, compactness=compactness)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, segments=segments, n_segments=np.int64(n_segments),
                                compactness=np.float64(compactness))  # fmt: skip
    return segments
