"""ConfusionMatrix / SegmentationScores on hand-computed cases."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from wsss.metrics.confusion import ConfusionMatrix, confusion_counts, scores_from_counts

# GT (255 = ignore) and prediction (255 = unlabelled), 3 classes.
GT = np.array([[0, 0, 1], [0, 1, 1], [255, 2, 2]], dtype=np.uint8)
PRED = np.array([[0, 1, 1], [0, 1, 255], [2, 2, 0]], dtype=np.uint8)
# Pairs (gt, pred) of the 8 GT-labelled pixels:
#   (0,0) (0,1) (1,1) / (0,0) (1,1) (1,255) / [ignored] (2,2) (2,0)
# Counts (rows GT, columns pred 0, 1, 2, 255):
HAND_COUNTS = np.array([[2, 1, 0, 0], [0, 2, 0, 1], [1, 0, 1, 0]])


def test_counts_by_hand() -> None:
    counts = confusion_counts(PRED, GT, 3)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, HAND_COUNTS)


def test_pred_255_as_background() -> None:
    # Column 255 folded into column 0: [[2,1,0],[1,2,0],[1,0,1]]
    # TP (2,2,1); GT (3,3,2); pred (4,3,1)
    # IoU: 2/(3+4-2)=40%, 2/(3+3-2)=50%, 1/(2+1-1)=50%  -> mIoU 46.667
    cm = ConfusionMatrix(3)
    cm.update(PRED, GT)
    s = cm.compute("background")
    np.testing.assert_allclose(s.iou, [40.0, 50.0, 50.0])
    assert s.miou == pytest.approx(140 / 3)
    assert s.pixel_accuracy == pytest.approx(100 * 5 / 8)
    np.testing.assert_allclose(s.recall, [200 / 3, 200 / 3, 50.0])
    np.testing.assert_allclose(s.precision, [50.0, 200 / 3, 100.0])
    assert s.mean_class_accuracy == pytest.approx((200 / 3 + 200 / 3 + 50) / 3)
    assert s.labelled_ratio == pytest.approx(100 * 7 / 8)
    assert s.num_pixels == 8
    assert s.present.tolist() == [True, True, True]


def test_pred_255_ignored() -> None:
    # Column 255 dropped: [[2,1,0],[0,2,0],[1,0,1]]
    # TP (2,2,1); GT (3,2,2); pred (3,3,1)
    # IoU: 2/(3+3-2)=50%, 2/(2+3-2)=66.7%, 1/(2+1-1)=50%  -> mIoU 55.556
    cm = ConfusionMatrix(3)
    cm.update(torch.from_numpy(PRED), torch.from_numpy(GT))
    s = cm.compute("ignore")
    np.testing.assert_allclose(s.iou, [50.0, 200 / 3, 50.0])
    assert s.miou == pytest.approx((50 + 200 / 3 + 50) / 3)
    assert s.pixel_accuracy == pytest.approx(100 * 5 / 7)
    assert s.labelled_ratio == pytest.approx(100 * 7 / 8)  # same for both policies
    assert s.pred_ignore == "ignore"


def test_absent_class_is_nan_and_predicted_only_class_is_zero() -> None:
    # GT all background, one pixel predicted as class 1, class 2 nowhere.
    # IoU0 = 3/4, IoU1 = 0/(0+1-0) = 0, IoU2 = NaN -> mIoU = 37.5
    gt = np.zeros((2, 2), dtype=np.uint8)
    pred = np.array([[0, 1], [0, 0]], dtype=np.uint8)
    s = ConfusionMatrix(3)
    s.update(pred, gt)
    scores = s.compute()
    assert scores.iou[0] == pytest.approx(75.0)
    assert scores.iou[1] == 0.0
    assert math.isnan(scores.iou[2])
    assert scores.miou == pytest.approx(37.5)
    assert scores.present.tolist() == [True, False, False]
    assert math.isnan(scores.recall[1]) and scores.precision[1] == 0.0
    d = scores.to_dict(["bg", "one", "two"])
    assert set(d["iou"]) == {"bg", "one"}
    assert d["iou"]["one"] == 0.0 and d["recall"]["one"] is None


def test_extra_absent_class_leaves_miou_unchanged() -> None:
    a, b = ConfusionMatrix(3), ConfusionMatrix(5)
    a.update(PRED, GT)
    b.update(PRED, GT)
    assert b.compute().miou == pytest.approx(a.compute().miou)
    assert np.isnan(b.compute().iou[3:]).all()


def test_empty_matrix_gives_nan_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ConfusionMatrix(4).compute()
    assert math.isnan(s.miou) and math.isnan(s.pixel_accuracy) and math.isnan(s.labelled_ratio)
    d = s.to_dict(["a", "b", "c", "d"])
    assert d["miou"] is None and d["iou"] == {}
    json.dumps(d, allow_nan=False)


def test_to_dict_is_json_ready() -> None:
    cm = ConfusionMatrix(4)
    cm.update(PRED, GT)
    d = cm.compute().to_dict(["background", "a", "b", "c"])
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["miou"] == pytest.approx(140 / 3)
    assert set(back["iou"]) == {"background", "a", "b"}
    with pytest.raises(ValueError, match="class names"):
        cm.compute().to_dict(["x"])


def _reference_counts(pred: np.ndarray, gt: np.ndarray, c: int) -> np.ndarray:
    """Pixel-by-pixel loop, independent of the bincount version."""
    out = np.zeros((c, c + 1), dtype=np.int64)
    for g, p in zip(gt.ravel().tolist(), pred.ravel().tolist(), strict=True):
        if g != 255:
            out[g, c if p == 255 else p] += 1
    return out


def test_merge_equals_single_accumulation() -> None:
    rng = np.random.default_rng(0)
    c = 5
    single, first, second = ConfusionMatrix(c), ConfusionMatrix(c), ConfusionMatrix(c)
    reference = np.zeros((c, c + 1), dtype=np.int64)
    for k in range(6):
        gt = rng.choice([0, 1, 2, 3, 4, 255], size=(17, 23)).astype(np.uint8)
        pred = rng.choice([0, 1, 2, 3, 255], size=(17, 23)).astype(np.uint8)
        single.update(pred, gt)
        (first if k < 2 else second).update(pred, gt)
        reference += _reference_counts(pred, gt, c)
    merged = first.merge(second)
    assert torch.equal(merged.counts, single.counts)
    np.testing.assert_array_equal(single.counts.numpy(), reference)
    assert merged.reduce().compute().miou == single.compute().miou  # reduce: no-op here


def test_reset() -> None:
    cm = ConfusionMatrix(3)
    cm.update(PRED, GT)
    cm.reset()
    assert int(cm.counts.sum()) == 0


@pytest.mark.parametrize(
    ("pred", "match"),
    [
        (np.array([[0, 5]], dtype=np.uint8), r"\[5\]"),
        (np.array([[0, -1]], dtype=np.int64), r"\[-1\]"),
        (np.array([[0.0, 1.0]]), "integer"),
        (np.array([[0, 1, 2]], dtype=np.uint8), "shape"),
    ],
)
def test_bad_predictions_raise(pred: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ConfusionMatrix(3).update(pred, np.array([[0, 1]], dtype=np.uint8))


def test_bad_gt_and_policy_raise() -> None:
    with pytest.raises(ValueError, match="GT"):
        confusion_counts(np.zeros((1, 2), np.uint8), np.array([[0, 7]], np.uint8), 3)
    with pytest.raises(ValueError, match="pred_ignore"):
        scores_from_counts(np.zeros((3, 4), np.int64), "drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="merge"):
        ConfusionMatrix(3).merge(ConfusionMatrix(4))


def test_large_image_is_fast() -> None:
    import time

    rng = np.random.default_rng(1)
    gt = rng.integers(0, 21, size=(375, 500), dtype=np.uint8)
    pred = rng.integers(0, 21, size=(375, 500), dtype=np.uint8)
    cm = ConfusionMatrix(21)
    start = time.perf_counter()
    for _ in range(10):
        cm.update(pred, gt)
    assert (time.perf_counter() - start) / 10 < 0.05
    assert int(cm.counts.sum()) == 10 * 375 * 500
