"""CAM threshold sweep: hand-computed case and a brute-force loop over thresholds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsss.metrics.cam_sweep import DEFAULT_THRESHOLDS, CamSweep, sweep_counts

# One row of 4 pixels, classes 1 and 2 in the image, 3 classes in all.
KEYS = np.array([1, 2])
CAMS = np.array([[[0.1, 0.3, 0.0, 0.5]], [[0.2, 0.1, 0.0, 0.6]]])
GT = np.array([[2, 1, 0, 1]], dtype=np.uint8)


def test_hand_computed_sweep() -> None:
    # Pixel maxima: 0.2 (class 2), 0.3 (class 1), 0.0 (-> background), 0.6 (class 2).
    # t=0.00: labels 2 1 0 2 -> IoU bg 1/1, c1 1/2, c2 1/2       -> mIoU 66.67
    # t=0.25: labels 0 1 0 2 -> IoU bg 1/2, c1 1/2, c2 0/2       -> mIoU 33.33
    # t=0.55: labels 0 0 0 2 -> IoU bg 1/3, c1 0/2, c2 0/2       -> mIoU 11.11
    sweep = CamSweep(3, thresholds=[0.0, 0.25, 0.55])
    sweep.update(KEYS, CAMS, GT)
    result = sweep.compute()
    np.testing.assert_allclose(result.miou, [200 / 3, 100 / 3, 100 / 9])
    np.testing.assert_allclose(result.at(0.25).iou, [50.0, 50.0, 0.0])
    assert result.best_threshold == 0.0 and result.best_index == 0
    assert result.curve[2] == (0.55, pytest.approx(100 / 9))
    with pytest.raises(KeyError, match="not swept"):
        result.at(0.3)


def test_value_equal_to_threshold_is_background() -> None:
    # argmax([t, cam]) with a tie picks the background plane.
    counts = sweep_counts(
        np.array([1]), np.array([[[0.25, 0.2500001]]]), np.array([[1, 1]]), num_classes=2,
        thresholds=[0.25],
    )  # fmt: skip
    np.testing.assert_array_equal(counts[0], [[0, 0, 0], [1, 1, 0]])


def _brute_force(keys, cams, gt, c, thresholds) -> np.ndarray:
    """Label every pixel at every threshold with argmax over [t, CAMs] and count in a loop."""
    out = np.zeros((len(thresholds), c, c + 1), dtype=np.int64)
    labels_of = np.concatenate([[0], keys])
    for i, t in enumerate(thresholds):
        planes = np.concatenate([np.full((1, *gt.shape), t), cams.astype(np.float64)])
        label = labels_of[planes.argmax(axis=0)]
        valid = gt != 255
        np.add.at(out[i], (gt[valid].astype(np.int64), label[valid]), 1)
    return out


def test_equals_brute_force_loop() -> None:
    rng = np.random.default_rng(3)
    c = 6
    sweep = CamSweep(c)
    reference = np.zeros((len(DEFAULT_THRESHOLDS), c, c + 1), dtype=np.int64)
    for _ in range(5):
        keys = np.sort(rng.choice(np.arange(1, c), size=int(rng.integers(0, 4)), replace=False))
        cams = rng.random((len(keys), 13, 17)).astype(np.float16)
        on = rng.random(cams.shape) < 0.3  # values exactly on thresholds (exact in float16)
        cams[on] = rng.choice([0.0, 0.25, 0.5, 0.75], size=int(on.sum()))
        gt = rng.choice([0, 1, 2, 3, 4, 5, 255], size=(13, 17)).astype(np.uint8)
        sweep.update(keys, cams, gt)
        reference += _brute_force(keys, cams, gt, c, DEFAULT_THRESHOLDS)
    np.testing.assert_array_equal(sweep.counts.numpy(), reference)
    assert int(reference[:, :, 1:].sum()) > 0  # some foreground labels at all


def test_merge_equals_single_accumulation() -> None:
    rng = np.random.default_rng(4)
    single, first, second = CamSweep(4), CamSweep(4), CamSweep(4)
    for k in range(4):
        cams = torch.rand(2, 9, 11)
        gt = torch.from_numpy(rng.integers(0, 4, size=(9, 11)).astype(np.uint8))
        single.update(torch.tensor([1, 3]), cams, gt)
        (first if k < 3 else second).update(torch.tensor([1, 3]), cams, gt)
    assert torch.equal(first.merge(second).reduce().counts, single.counts)


def test_image_without_classes_is_all_background() -> None:
    gt = np.array([[0, 1], [255, 0]], dtype=np.uint8)
    counts = sweep_counts(np.zeros(0, np.int64), np.zeros((0, 2, 2)), gt, num_classes=2)
    assert counts.shape == (20, 2, 3)
    for m in counts:
        np.testing.assert_array_equal(m, [[2, 0, 0], [1, 0, 0]])


def test_default_thresholds_are_exact() -> None:
    assert len(DEFAULT_THRESHOLDS) == 20
    assert DEFAULT_THRESHOLDS[0] == 0.0 and DEFAULT_THRESHOLDS[-1] == 0.95
    assert 0.15 in DEFAULT_THRESHOLDS and 0.2 in DEFAULT_THRESHOLDS and 0.3 in DEFAULT_THRESHOLDS


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="increasing"):
        CamSweep(3, thresholds=[0.2, 0.1])
    with pytest.raises(ValueError, match="non-empty"):
        CamSweep(3, thresholds=[])
    with pytest.raises(ValueError, match="keys"):
        sweep_counts(np.array([3]), np.zeros((1, 1, 4)), GT, num_classes=3)
    with pytest.raises(ValueError, match="CAMs"):
        sweep_counts(KEYS, np.zeros((2, 2, 4)), GT, num_classes=3)
    with pytest.raises(ValueError, match="merge"):
        CamSweep(3).merge(CamSweep(3, thresholds=[0.1]))
