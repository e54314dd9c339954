"""A tiny VOC-layout split with hand-made CAM files.

Each image has two objects, each painted in its class's plain colour (mild noise, JPEG without
chroma subsampling), and a background patch of its own colour. The CAMs are each GT class's
blurred mask, max 1; the first class's CAM also holds a weak 0.15 on the background patch, so the
seeds there are unlabelled (255) where the GT says background.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.ndimage import gaussian_filter

from fakes import make_voc
from wsss.io.cams import CamFile, write_cams

_COLOURS = np.full((256, 3), 100, np.uint8)
_COLOURS[[1, 2, 3, 15]] = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (220, 200, 60)]
PATCH = (slice(0, 3), slice(0, 12))  # background pixels with a weak CAM


def cams_from_mask(mask: np.ndarray, *, weak: np.ndarray | None = None) -> CamFile:
    """CAMs of the classes in ``mask``: each class's blurred indicator, max-normalised, the first
    one raised to ``weak`` where that is larger."""
    keys = [int(k) for k in np.unique(mask) if k not in (0, 255)]
    h, w = mask.shape
    maps = np.stack([gaussian_filter((mask == k).astype(np.float32), 1.5) for k in keys])
    maps = maps / maps.reshape(len(keys), -1).max(1)[:, None, None]
    if weak is not None:
        maps[0] = np.maximum(maps[0], weak)
    low = F.interpolate(torch.from_numpy(maps)[None], size=(math.ceil(h / 4), math.ceil(w / 4)),
                        mode="bilinear", align_corners=False, antialias=True)[0]  # fmt: skip
    low = low / low.amax(dim=(1, 2), keepdim=True)
    return CamFile(keys=np.asarray(keys, np.int64), cams=low.numpy(), size=(h, w), high_res=maps)


def _masks() -> dict[str, np.ndarray]:
    masks = {}
    for i in range(4):
        mask = np.zeros((30 + 3 * i, 38 + i), np.uint8)
        mask[6:20, 5 + i : 22 + i] = 1 + i % 3
        mask[22:28, 26:36] = 15
        masks[f"im{i}"] = mask
    return masks


@pytest.fixture
def weak_patch() -> tuple[slice, slice]:
    """The background pixels of every image whose first CAM is 0.15."""
    return PATCH


@pytest.fixture
def seed_data(tmp_path: Path) -> tuple[Path, Path]:
    """``(root, cam_dir)``: 4 images of about 30 x 40 pixels and their CAM files."""
    masks = _masks()
    root = make_voc(tmp_path / "voc", masks)
    rng = np.random.default_rng(1)
    cam_dir = tmp_path / "cams"
    for image_id, mask in masks.items():
        noise = rng.integers(-3, 4, size=(*mask.shape, 3))
        image = _COLOURS[mask].astype(np.int64) + noise
        image[PATCH] = (90, 160, 160)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            root / "JPEGImages" / f"{image_id}.jpg", quality=95, subsampling=0
        )
        weak = np.zeros(mask.shape, np.float32)
        weak[PATCH] = 0.15
        write_cams(cam_dir / f"{image_id}.npz", cams_from_mask(mask, weak=weak))
    return root, cam_dir
