"""Half-size copies of real VOC photos with CAM files made from their ground truth
(:mod:`wsss.refine.gt_cams`) in both calibrations, for ``wsss refine`` tests (the fixture is
registered in ``tests/refine/conftest.py``), and the mIoU of labels or CAMs over them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.io.images import read_image, read_label_png
from wsss.refine.gt_cams import CALIBRATIONS, write_gt_cams

#: Three samples: one class, two classes, and a person filling half the picture.
IDS = ["2007_000175", "2007_001284", "2007_006946"]


@pytest.fixture(scope="session")
def refine_data(voc_samples: Path, tmp_path_factory) -> dict[str, Path]:
    """``images``, ``gt`` (``<id>.npy``) and ``cams_<calibration>`` folders of half-size copies."""
    base = tmp_path_factory.mktemp("refine")
    images, gts = base / "images", base / "gt"
    for folder in (images, gts):
        folder.mkdir()
    masks = {}
    for image_id in IDS:
        image = Image.fromarray(read_image(voc_samples / "JPEGImages" / f"{image_id}.jpg"))
        gt = Image.fromarray(read_label_png(voc_samples / "SegmentationClass" / f"{image_id}.png"))
        size = (image.width // 2, image.height // 2)
        image.resize(size, Image.BILINEAR).save(images / f"{image_id}.jpg", quality=95)
        masks[image_id] = np.asarray(gt.resize(size, Image.NEAREST))
        np.save(gts / f"{image_id}.npy", masks[image_id])
    out = {"images": images, "gt": gts}
    for calibration in CALIBRATIONS:
        out[f"cams_{calibration}"] = base / f"cams_{calibration}"
        write_gt_cams(masks, out[f"cams_{calibration}"], calibration=calibration)
    out["cams"] = out["cams_irnet"]
    return out


def miou(pred_dir: Path | None, data: dict[str, Path], threshold: float = 0.15,
         cams: str = "cams") -> float:  # fmt: skip
    """mIoU over :data:`IDS` of the label PNGs in ``pred_dir``, or (None) of the CAMs' argmax at
    a background ``threshold``."""
    import torch
    import torch.nn.functional as F

    conf = np.zeros((21, 21), np.int64)
    for image_id in IDS:
        gt = np.load(data["gt"] / f"{image_id}.npy")
        if pred_dir is None:
            cam = np.load(data[cams] / f"{image_id}.npz")
            up = F.interpolate(torch.from_numpy(cam["cams"].astype(np.float32))[None],
                               size=gt.shape, mode="bilinear")[0]  # fmt: skip
            scores = torch.cat([torch.full_like(up[:1], threshold), up])
            pred = np.concatenate([[0], cam["keys"]])[scores.argmax(0).numpy()]
        else:
            pred = read_label_png(pred_dir / f"{image_id}.png")
        valid = gt != 255
        pairs = gt[valid].astype(np.int64) * 21 + pred[valid].astype(np.int64)
        conf += np.bincount(pairs, minlength=441).reshape(21, 21)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    return float((inter[union > 0] / union[union > 0]).mean())
