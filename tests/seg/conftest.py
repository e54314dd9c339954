"""A tiny VOC-layout dataset with rectangles of classes 1..3 (shared by the seg tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fakes import make_voc


@pytest.fixture
def tiny_voc(tmp_path: Path) -> Path:
    """Eight 24x24 images, each with one or two labelled rectangles and a 255 border band."""
    rng = np.random.default_rng(0)
    masks = {}
    for i in range(8):
        mask = np.zeros((24, 24), np.uint8)
        for _ in range(1 + i % 2):
            y, x = rng.integers(0, 12, 2)
            mask[y : y + 8, x : x + 8] = rng.integers(1, 4)
        mask[0, :] = 255
        masks[f"img{i:02d}"] = mask
    root = make_voc(tmp_path / "voc", masks)
    lists = root / "ImageSets" / "Segmentation"
    (lists / "val.txt").write_text("".join(f"img{i:02d}\n" for i in range(3)))
    return root
