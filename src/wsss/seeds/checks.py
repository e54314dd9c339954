"""Shape and value checks shared by the seed schemes (messages show what was received)."""

from __future__ import annotations

import numpy as np

__all__ = ["check_seed_inputs", "keys_lookup"]


def check_seed_inputs(image: np.ndarray, cams: np.ndarray, keys: np.ndarray) -> None:
    """Check an ``(H, W, 3)`` uint8 image, ``(K, H, W)`` finite CAMs and ``K`` ids in [1, 254].

    Raises:
        ValueError: wrong shapes or dtype, sizes that differ, NaN values, ids out of range.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if cams.ndim != 3 or cams.shape[1:] != image.shape[:2]:
        raise ValueError(
            f"expected CAMs of shape (K, {image.shape[0]}, {image.shape[1]}) to match the image, "
            f"got {cams.shape}"
        )
    if keys.shape != (cams.shape[0],):
        raise ValueError(f"expected {cams.shape[0]} class ids (one per CAM), got {keys.shape}")
    if keys.size and (keys.min() < 1 or keys.max() > 254):
        raise ValueError(f"class ids must lie in [1, 254] (0 is background), got {keys.tolist()}")
    if not np.isfinite(cams).all():
        raise ValueError("CAMs contain NaN or infinite values")


def keys_lookup(index_map: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Map an index map (0 = background, ``k`` = ``keys[k - 1]``, 255 kept) to class ids.

    Shapes:
        index_map: ``(H, W)`` integers in ``[0, K] ∪ {255}``; keys ``(K,)``. Returns ``(H, W)``
        uint8.
    """
    lut = np.full(256, 255, dtype=np.uint8)
    lut[0] = 0
    lut[1 : len(keys) + 1] = keys
    return lut[np.asarray(index_map, dtype=np.int64)]
