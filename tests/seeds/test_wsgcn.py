"""WSGCN seeds: the top-fraction rule on ramps, background, conflicts, both variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsss.errors import WsssError
from wsss.io.cams import CamFile
from wsss.seeds import (
    WsgcnSeeds,
    background_score,
    combine_confident,
    refine_scores,
    top_fraction_mask,
    wsgcn_seeds,
)


def _halves(h: int = 10, w: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Red left half with a CAM ramp of 100 distinct values in [0.5, 1]; blue right half, CAM 0."""
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = (200, 30, 30)
    image[:, w // 2 :] = (30, 30, 200)
    cams = np.zeros((1, h, w), np.float32)
    cams[0, :, : w // 2] = np.linspace(0.5, 1.0, h * w // 2).reshape(h, w // 2)
    return image, cams


def test_ramp_keeps_exactly_the_top_30_percent():
    image, cams = _halves()
    seed = wsgcn_seeds(image, cams, np.array([5]))
    assert seed.dtype == np.uint8 and seed.shape == (10, 20)
    left = seed[:, :10]
    assert (left == 5).sum() == 30 and (left == 255).sum() == 70
    assert cams[0, :, :10][left == 5].min() > cams[0, :, :10][left == 255].max()
    assert (seed[:, 10:] == 0).all()  # (1 - 0)^32 = 1: confident background


def test_code_variant_keeps_one_less_and_same_background():
    image, cams = _halves()
    seed = wsgcn_seeds(image, cams, np.array([5]), variant="code")
    # sorted[int(100 * 0.7)] = the 71st value is the cut, strictly above it: 29 values.
    assert (seed[:, :10] == 5).sum() == 29
    assert (seed[:, 10:] == 0).all()


def test_top_fraction_mask_by_hand():
    values = torch.tensor([[0.05, 0.1, 0.2, 0.3], [0.4, 0.5, 0.6, 0.7], [0.8, 0.9, 1.0, 0.95]])
    region = torch.ones_like(values, dtype=torch.bool)
    region[2, 3] = False  # 0.95 is outside the region
    # 9 values > 0.1 in the region (0.2 .. 1.0); round(0.3 * 9) = 3: 0.8, 0.9, 1.0.
    mask = top_fraction_mask(values, region, top=0.3, min_score=0.1)
    assert sorted(values[mask].tolist()) == pytest.approx([0.8, 0.9, 1.0])
    # Code: ascending[int(9 * 0.7) = 6] = 0.8, strictly above: 0.9, 1.0.
    mask = top_fraction_mask(values, region, top=0.3, min_score=0.1, variant="code")
    assert sorted(values[mask].tolist()) == pytest.approx([0.9, 1.0])
    # min_score: 0.1 itself is never kept, even with top = 1.
    mask = top_fraction_mask(values, region, top=1.0, min_score=0.1)
    assert mask.sum() == 9 and not mask[0, :2].any()
    # Nothing above min_score, or a fraction that rounds to 0 pixels: nothing kept.
    assert not top_fraction_mask(values, region, min_score=1.0).any()
    assert not top_fraction_mask(values, region, top=0.05).any()


def test_ramp_with_low_values_counts_only_those_above_min_score():
    values = torch.linspace(0.0, 1.0, 201)[None].repeat(2, 1)  # 0.000, 0.005, ..., 1.000
    region = torch.zeros_like(values, dtype=torch.bool)
    region[0] = True
    mask = top_fraction_mask(values, region)
    above = (values[0] > 0.1).sum().item()  # 180 values: 0.105 .. 1.0
    assert mask.sum() == round(0.3 * above) == 54
    assert not mask[1].any()
    assert values[mask].min() > values[0][region[0] & ~mask[0]].max()


def test_ties_at_the_cut_are_all_kept():
    values = torch.tensor([0.2, 0.3, 0.5, 0.6, 0.6, 0.6, 0.9, 0.2, 0.4, 0.5])
    region = torch.ones(10, dtype=torch.bool)
    # round(0.3 * 10) = 3: 0.9 and two of the three 0.6 -> every 0.6 goes with them.
    mask = top_fraction_mask(values, region)
    assert sorted(values[mask].tolist()) == pytest.approx([0.6, 0.6, 0.6, 0.9])
    # Code: ascending[7] = 0.6 is the cut, strictly above it: 0.9 only.
    code = top_fraction_mask(values, region, variant="code")
    assert values[code].tolist() == pytest.approx([0.9])
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(top_fraction_mask(values[perm], region), mask[perm])


def test_combine_by_hand():
    fg = torch.tensor([[0, 2, 0], [1, 0, 3]])
    bg = torch.tensor([[True, True, False], [False, False, True]])
    expected = torch.tensor([[0, 255, 255], [1, 255, 255]])
    torch.testing.assert_close(combine_confident(fg, bg), expected)


def test_background_score_and_refinement():
    cams = torch.tensor([[[0.0, 0.5]], [[0.25, 0.0]]])  # (2, 1, 2)
    torch.testing.assert_close(background_score(cams, 4), torch.tensor([[0.75**4, 0.5**4]]))
    torch.testing.assert_close(background_score(cams[:0], 32), torch.ones(1, 2))
    image = torch.zeros(1, 3, 1, 2, dtype=torch.uint8)
    scores = torch.cat([background_score(cams, 4)[None], cams])
    probs = refine_scores(image, scores)
    assert probs.shape == (3, 1, 2)
    torch.testing.assert_close(probs.sum(0), torch.ones(1, 2))


def test_no_classes_and_options():
    seed = wsgcn_seeds(np.zeros((3, 4, 3), np.uint8), np.zeros((0, 3, 4)), np.array([]))
    np.testing.assert_array_equal(seed, np.zeros((3, 4), np.uint8))
    with pytest.raises(WsssError, match=r"0 < top <= 1.*variant in"):
        WsgcnSeeds(top=1.5, variant="paper")
    with pytest.raises(WsssError, match="fg_alpha <= bg_alpha"):
        WsgcnSeeds(fg_alpha=32, bg_alpha=4)
    with pytest.raises(ValueError, match="variant"):
        wsgcn_seeds(*_halves(), np.array([5]), variant="paper")  # type: ignore[arg-type]


def test_module_downscales_the_image_to_the_cam_size():
    image, cams = _halves(10, 20)
    big = image.repeat(4, axis=0).repeat(4, axis=1)[:38, :79]  # 38 x 79 -> 10 x 20 at stride 4
    cam = CamFile(keys=np.array([5]), cams=cams, size=(38, 79))
    seed = WsgcnSeeds()(big, cam)
    assert seed.shape == (10, 20)
    np.testing.assert_array_equal(seed, wsgcn_seeds(image, cams, np.array([5])))
