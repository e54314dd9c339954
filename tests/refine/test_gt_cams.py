"""CAMs made from ground truth (wsss.refine.gt_cams): deterministic, and failing like real CAMs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsss.io.images import read_label_png
from wsss.refine.gt_cams import FLAT_FLOOR, cams_from_mask


@pytest.fixture(scope="module")
def mask(voc_samples: Path) -> np.ndarray:
    return read_label_png(voc_samples / "SegmentationClass" / "2007_000799.png")  # horse, person


def test_deterministic_per_seed_and_image(mask):
    a = cams_from_mask(mask, image_id="x", seed=0)
    assert np.array_equal(a.cams, cams_from_mask(mask, image_id="x", seed=0).cams)
    assert not np.array_equal(a.cams, cams_from_mask(mask, image_id="x", seed=1).cams)
    assert not np.array_equal(a.cams, cams_from_mask(mask, image_id="y", seed=0).cams)
    assert a.keys.tolist() == [13, 15] and a.size == mask.shape
    assert a.cams.shape == (2, -(-mask.shape[0] // 4), -(-mask.shape[1] // 4))
    np.testing.assert_allclose(a.cams.reshape(2, -1).max(1), 1.0, rtol=1e-6)


def test_peaked_leaky_and_calibrated(mask):
    cam = cams_from_mask(mask, image_id="2007_000799")
    up = F.interpolate(torch.from_numpy(cam.cams)[None], size=mask.shape, mode="bilinear")[0]
    for k, key in enumerate(cam.keys):
        inside, outside = mask == key, (mask != key) & (mask != 255)
        # peaked: half the maximum covers only part of the object
        assert (up[k].numpy()[inside] > 0.5).mean() < 0.7
        # leaking: some context outside the object is above IRNet's 0.15
        assert (up[k].numpy()[outside] > 0.15).mean() > 0.01
    flat = cams_from_mask(mask, image_id="2007_000799", calibration="flat")
    assert flat.cams.min() >= FLAT_FLOOR - 1e-6
    # the same ranking of cells: a monotone map of the irnet maps
    order = np.argsort(cam.cams[0].ravel(), kind="stable")
    assert np.all(np.diff(flat.cams[0].ravel()[order]) >= -1e-6)
    with pytest.raises(ValueError, match="calibration"):
        cams_from_mask(mask, image_id="x", calibration="softmax")
