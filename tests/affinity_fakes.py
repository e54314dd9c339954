"""A tiny split with a one-epoch CAM run, seeds and CAM files made from its masks (shared by the
affinity and propagation tests)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from fakes import make_voc
from wsss.cam.train import resolve_config, train
from wsss.data.voc import VOCSegmentation
from wsss.io.cams import CamFile, write_cams
from wsss.io.palette import write_label_png


def tiny_masks(n: int = 6, size: int = 32) -> dict[str, np.ndarray]:
    """``n`` masks (some 4 pixels wider) with one or two rectangles of classes 1..3."""
    rng = np.random.default_rng(0)
    masks = {}
    for i in range(n):
        mask = np.zeros((size, size + 4 * (i % 2)), np.uint8)
        for _ in range(1 + i % 2):
            y, x = rng.integers(0, size // 2, 2)
            mask[y : y + size // 2, x : x + size // 2] = rng.integers(1, 4)
        masks[f"img{i:02d}"] = mask
    return masks


def cams_from_mask(mask: np.ndarray, sigma: float = 2.0) -> CamFile:
    """Blurred class indicators, max-normalised, at stride 4 and full size."""
    keys = [int(k) for k in np.unique(mask) if k not in (0, 255)]
    h, w = mask.shape
    maps = np.stack([ndimage.gaussian_filter((mask == k).astype(np.float32), sigma) for k in keys])
    maps = maps / maps.reshape(len(keys), -1).max(1)[:, None, None]
    low = F.interpolate(torch.from_numpy(maps)[None], size=(math.ceil(h / 4), math.ceil(w / 4)),
                        mode="bilinear", align_corners=False, antialias=True)[0]  # fmt: skip
    low = low / low.amax(dim=(1, 2), keepdim=True)
    return CamFile(keys=np.asarray(keys, np.int64), cams=low.numpy(), size=(h, w), high_res=maps)


def make_tiny_run(base: Path) -> dict[str, Path]:
    """``{"root", "cam", "seeds", "cams"}``: the split, a trained CAM run (small backbone, one
    epoch), seeds (the masks with a 255 band along object borders) and CAM files."""
    masks = tiny_masks()
    root = make_voc(base / "voc", masks)
    config = resolve_config(dataset="voc", root=root, backbone="small", epochs=1, batch_size=3,
                            lr=0.05, crop=24, long_side=(24, 36))  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(config, base / "cam", dataset=VOCSegmentation(root, split="train"), progress=False)
    finally:
        torch.set_num_threads(threads)
    for image_id, mask in masks.items():
        fg = mask > 0
        band = ndimage.binary_dilation(fg) & ~ndimage.binary_erosion(fg)
        write_label_png(base / "seeds" / f"{image_id}.png", np.where(band, 255, mask))
        write_cams(base / "cams" / f"{image_id}.npz", cams_from_mask(mask))
    return {"root": root, "cam": base / "cam", "seeds": base / "seeds", "cams": base / "cams"}
