"""Boundary F-score on hand-made masks and against a pixel-loop reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from wsss.metrics.boundary import (
    BoundaryFScore,
    boundary_counts,
    boundary_f_score,
    boundary_map,
    disk,
)


def _square(top: int, left: int, size: int, shape: tuple[int, int] = (10, 10)) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[top : top + size, left : left + size] = 1
    return mask


def test_boundary_map_by_hand() -> None:
    # A 2x2 square in a 4x4 image: its 4 pixels and their 8 outside 4-neighbours (no corners).
    mask = _square(1, 1, 2, (4, 4)).astype(bool)
    expected = np.array(
        [
            [0, 1, 1, 0],
            [1, 1, 1, 1],
            [1, 1, 1, 1],
            [0, 1, 1, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(boundary_map(mask, np.ones_like(mask)), expected)


def test_boundary_map_ignores_pairs_with_void() -> None:
    # Column 2 is void: the square's right edge (against void) is no boundary; the left edge is.
    mask = _square(1, 1, 1, (3, 4)).astype(bool)  # single pixel at (1, 1)
    valid = np.ones_like(mask)
    valid[:, 2] = False
    expected = np.array(
        [
            [0, 1, 0, 0],
            [1, 1, 0, 0],
            [0, 1, 0, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(boundary_map(mask, valid), expected)


def test_disk() -> None:
    np.testing.assert_array_equal(disk(0), [[True]])
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    assert disk(1.5).all() and disk(1.5).shape == (3, 3)  # sqrt(2) <= 1.5
    assert disk(2).sum() == 13


def test_square_shifted_by_one_pixel() -> None:
    # GT square rows 2..5, cols 2..5; prediction one row lower. Each boundary has 28 pixels
    # (12 on the inner ring, 16 outside 4-neighbours); the same for class 0 (complement).
    gt = _square(2, 2, 4)
    pred = _square(3, 2, 4)
    # Tolerance 1: every boundary pixel of one lies next to (or on) one of the other.
    one = boundary_counts(pred, gt, num_classes=2, tolerance=1)
    np.testing.assert_array_equal(one.counts, [[28, 28, 28, 28], [28, 28, 28, 28]])
    assert boundary_f_score(pred, gt, num_classes=2, tolerance=1) == pytest.approx(100.0)
    # Tolerance 0: shared pixels: row 2 (4), rows 3-4 sides (4), row 5 sides (2), row 6 (4),
    # column 1 rows 3-5 (3), column 6 rows 3-5 (3) = 20 -> P = R = F = 20/28.
    zero = boundary_counts(pred, gt, num_classes=2, tolerance=0)
    np.testing.assert_array_equal(zero.counts, [[20, 28, 20, 28], [20, 28, 20, 28]])
    assert boundary_f_score(pred, gt, num_classes=2, tolerance=0) == pytest.approx(100 * 20 / 28)


def test_shift_by_two_needs_tolerance_two() -> None:
    gt = _square(2, 2, 4)
    pred = _square(4, 2, 4)
    assert boundary_f_score(pred, gt, num_classes=2, tolerance=1) < 100.0
    assert boundary_f_score(pred, gt, num_classes=2, tolerance=2) == pytest.approx(100.0)


def test_davis_conventions() -> None:
    gt = _square(2, 2, 4)
    empty = np.zeros_like(gt)
    # Prediction without boundary: P = 1, R = 0 -> F = 0 for both classes.
    assert boundary_f_score(empty, gt, num_classes=2) == 0.0
    # No boundary anywhere (one class everywhere, predicted correctly): F = 1.
    assert boundary_f_score(empty, empty, num_classes=2) == pytest.approx(100.0)
    # Only void: no class present.
    void = np.full_like(gt, 255)
    assert math.isnan(boundary_f_score(empty, void, num_classes=2))


def test_void_pixels_are_not_counted() -> None:
    # Prediction is GT with the void band labelled as background: counts equal GT vs GT.
    gt = _square(2, 2, 4)
    gt[1, 2:6] = 255
    pred = np.where(gt == 255, 0, gt).astype(np.uint8)
    a = boundary_counts(pred, gt, num_classes=2, tolerance=0, void="exclude")
    b = boundary_counts(gt, gt, num_classes=2, tolerance=0, void="exclude")
    np.testing.assert_array_equal(a.counts, b.counts)
    assert a.counts[:, 0].tolist() == a.counts[:, 1].tolist()  # all predicted pixels matched


def _reference_counts(pred: np.ndarray, gt: np.ndarray, c: int, tol: float) -> np.ndarray:
    """Pixel loops straight from the definition (independent of the vectorised code)."""
    h, w = gt.shape
    valid = gt != 255

    def boundary(label: np.ndarray, cls: int) -> set[tuple[int, int]]:
        out = set()
        for y in range(h):
            for x in range(w):
                for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    v, u = y + dy, x + dx
                    inside = 0 <= v < h and 0 <= u < w and valid[y, x] and valid[v, u]
                    if inside and (label[y, x] == cls) != (label[v, u] == cls):
                        out.add((y, x))
        return out

    def matched(a: set[tuple[int, int]], b: set[tuple[int, int]]) -> int:
        return sum(any((y - v) ** 2 + (x - u) ** 2 <= tol**2 for v, u in b) for y, x in a)

    counts = np.zeros((c, 4), dtype=np.int64)
    for cls in range(c):
        pb, gb = boundary(pred, cls), boundary(gt, cls)
        counts[cls] = (matched(pb, gb), len(pb), matched(gb, pb), len(gb))
    return counts


@pytest.mark.parametrize("tol", [0, 1, 2])
def test_against_pixel_loop(tol: int) -> None:
    rng = np.random.default_rng(tol)
    gt = np.kron(rng.integers(0, 3, size=(4, 5)), np.ones((3, 3), dtype=np.int64)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = gt.copy()
    noise = rng.random(gt.shape) < 0.15
    pred[noise] = rng.integers(0, 3, size=int(noise.sum()))
    pred[rng.random(gt.shape) < 0.05] = 255
    got = boundary_counts(pred, gt, num_classes=3, tolerance=tol, void="exclude")
    expected = _reference_counts(pred, gt, 3, tol)
    assert (expected[:, 0] < expected[:, 1]).any()  # a case with unmatched pixels
    np.testing.assert_array_equal(got.counts, expected)


def test_dataset_scores_by_hand() -> None:
    # Image A: the 1-px shifted square at tolerance 0 -> both classes (20, 28, 20, 28), F = 20/28.
    # Image B: a 2x2 square predicted exactly -> both classes (12, 12, 12, 12), F = 1.
    # Dataset F per class = 32/40 = 80 %; mean over images = (20/28 + 1) / 2.
    acc = BoundaryFScore(2, tolerance=0)
    acc.update(_square(3, 2, 4), _square(2, 2, 4))
    acc.update(torch.from_numpy(_square(5, 5, 2)), torch.from_numpy(_square(5, 5, 2)))
    s = acc.compute()
    np.testing.assert_allclose(s.f, [80.0, 80.0])
    np.testing.assert_allclose(s.precision, [80.0, 80.0])
    assert s.mean_f == pytest.approx(80.0)
    assert s.image_mean_f == pytest.approx(100 * (20 / 28 + 1) / 2, abs=1e-6)
    assert s.num_images == 2
    d = s.to_dict(["background", "square"])
    assert set(d["f"]) == {"background", "square"}
    json.dumps(d, allow_nan=False)


def test_absent_classes_are_nan_and_unlisted() -> None:
    acc = BoundaryFScore(4)
    acc.update(_square(3, 2, 4), _square(2, 2, 4))
    s = acc.compute()
    assert s.present.tolist() == [True, True, False, False]
    assert np.isnan(s.f[2:]).all()
    assert set(s.to_dict(["a", "b", "c", "d"])["f"]) == {"a", "b"}


def test_merge_equals_single_accumulation() -> None:
    rng = np.random.default_rng(7)
    single, first, second = BoundaryFScore(4), BoundaryFScore(4), BoundaryFScore(4)
    for k in range(5):
        gt = np.kron(rng.integers(0, 4, (5, 6)), np.ones((4, 4), np.int64)).astype(np.uint8)
        pred = np.roll(gt, shift=int(rng.integers(-2, 3)), axis=1)
        gt[rng.random(gt.shape) < 0.05] = 255
        single.update(pred, gt)
        (first if k % 2 else second).update(pred, gt)
    merged = first.merge(second).reduce()
    for name in ("counts", "class_images", "f_sum", "num_images"):
        assert torch.equal(getattr(merged, name), getattr(single, name))
    assert merged.compute().image_mean_f == single.compute().image_mean_f


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        BoundaryFScore(3, tolerance=-1)
    with pytest.raises(ValueError, match="shape"):
        boundary_counts(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), num_classes=2)
    with pytest.raises(ValueError, match=r"\[9\]"):
        boundary_counts(np.full((2, 2), 9, np.uint8), np.zeros((2, 2), np.uint8), num_classes=2)


def test_void_band_is_filled_with_the_nearest_label() -> None:
    # An 8x8 square of class 1 at rows/cols 4..11 of a 16x16 background image, with a 2-pixel
    # void band over its border: rows/cols 3..4 and 11..12 as VOC draws it.
    gt = np.zeros((16, 16), np.uint8)
    gt[3:13, 3:13] = 255
    gt[5:11, 5:11] = 1
    # Filled: ring 3 is nearest to background, ring 4 nearest to the square -> square 4..11.
    truth = np.zeros_like(gt)
    truth[4:12, 4:12] = 1
    assert boundary_f_score(truth, gt, num_classes=2, tolerance=0) == pytest.approx(100.0)
    # A prediction shifted by 1 px matches within 1 px but not exactly.
    shifted = np.roll(truth, 1, axis=1)
    assert boundary_f_score(shifted, gt, num_classes=2, tolerance=1) == pytest.approx(100.0)
    assert boundary_f_score(shifted, gt, num_classes=2, tolerance=0) < 100.0
    # Excluding void, the GT has no class boundary left at all (recall trivially 1).
    counts = boundary_counts(truth, gt, num_classes=2, tolerance=0, void="exclude")
    assert counts.counts[:, 3].tolist() == [0, 0]
