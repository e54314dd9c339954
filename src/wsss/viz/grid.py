"""Image grids with captions, saved as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from wsss.io.atomic import atomic_path

_CAPTION_H = 14


def _fit(tile: np.ndarray, height: int) -> np.ndarray:
    if tile.ndim == 2:
        tile = np.repeat(tile[..., None], 3, axis=2)
    if tile.shape[0] == height:
        return tile
    width = max(1, round(tile.shape[1] * height / tile.shape[0]))
    return np.asarray(Image.fromarray(tile).resize((width, height), Image.Resampling.NEAREST))


def make_grid(
    rows: Sequence[Sequence[np.ndarray]],
    *,
    titles: Sequence[str] | None = None,
    height: int = 128,
    pad: int = 2,
) -> np.ndarray:
    """Lay out tiles row by row, each scaled to ``height`` pixels, with column titles on top.

    Args:
        rows: Rows of ``(h, w, 3)`` or ``(h, w)`` uint8 tiles (rows may differ in length).
        titles: Optional caption per column.
        height: Tile height in the grid.
        pad: White gap between tiles.

    Returns:
        ``(H, W, 3)`` uint8 grid.
    """
    if not rows:
        raise ValueError("make_grid needs at least one row")
    fitted = [[_fit(np.asarray(t, dtype=np.uint8), height) for t in row] for row in rows]
    ncol = max(len(r) for r in fitted)
    col_w = [max((r[c].shape[1] for r in fitted if c < len(r)), default=0) for c in range(ncol)]
    top = _CAPTION_H if titles else 0
    out_h = top + len(fitted) * (height + pad) + pad
    out_w = sum(col_w) + pad * (ncol + 1)
    canvas = np.full((out_h, out_w, 3), 255, dtype=np.uint8)
    for i, row in enumerate(fitted):
        y = top + pad + i * (height + pad)
        x = pad
        for c, tile in enumerate(row):
            canvas[y : y + height, x : x + tile.shape[1]] = tile
            x += col_w[c] + pad
    if titles:
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        x = pad
        for c, title in enumerate(list(titles)[:ncol]):
            draw.text((x + 2, 1), title, fill=(0, 0, 0))
            x += col_w[c] + pad
        canvas = np.asarray(image).copy()
    return canvas


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB uint8 array as PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
