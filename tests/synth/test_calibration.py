"""The calibration figures of the synthetic benchmark on hand-made and tiny inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wsss.data.synthetic import SyntheticSegmentation
from wsss.errors import WsssError
from wsss.io.cams import CamFile, write_cams
from wsss.io.palette import write_label_png
from wsss.synth import calibration as cal
from wsss.synth.generate import generate_benchmark


def _truth(scene: str = "indoor") -> cal.ImageTruth:
    """A 10x10 image: one cat (class 6, preferred scene indoor) in rows 2-5, columns 2-7; its
    part is column 7; a void band column 1; the rest background."""
    label = np.zeros((10, 10), dtype=np.uint8)
    label[2:6, 2:8] = 6
    label[2:6, 1] = 255
    instances = np.where(label == 6, 1, np.where(label == 255, 255, 0)).astype(np.uint8)
    parts = np.where(label == 6, 1, label).astype(np.uint8)
    parts[2:6, 7] = 2
    objects = [{"instance_id": 1, "class_id": 6, "visible": 24, "part_visible": 4}]
    return cal.ImageTruth(label, instances, parts, scene, objects)


def _counts() -> cal._CamCounts:
    return cal._CamCounts([], [0, 0], [0, 0], [0, 0], [0, 0])


def test_cam_pixel_counts_hand_computed() -> None:
    truth = _truth()
    cam = np.zeros((1, 10, 10), dtype=np.float32)
    cam[0, 2:6, 6:8] = 1.0  # the part and one body column
    cam[0, 8:10, :] = 0.5  # a false positive on 20 background pixels
    counts = _counts()
    cal.cam_pixel_counts(np.array([6]), cam, truth, 0.3, counts)
    assert counts.coverage == [pytest.approx(8 / 24)]
    assert counts.part == [4, 4] and counts.body == [4, 20]
    assert counts.fp_preferred == [20, 100 - 24 - 4] and counts.fp_other == [0, 0]
    other = _counts()  # the same CAM on another scene counts as "other"; a higher threshold
    cal.cam_pixel_counts(np.array([6]), cam, _truth("sky"), 0.6, other)
    assert other.fp_other == [0, 72] and other.fp_preferred == [0, 0]
    assert other.coverage == [pytest.approx(8 / 24)]


def test_cam_pixel_counts_of_a_class_without_cam() -> None:
    counts = _counts()
    cal.cam_pixel_counts(np.zeros(0, dtype=np.int64), np.zeros((0, 10, 10)), _truth(), 0.1, counts)
    assert counts.coverage == [0.0] and counts.part == [0, 4] and counts.fp_preferred == [0, 0]


def test_confusion_summary_separates_finding_from_naming() -> None:
    from wsss.metrics.confusion import ConfusionMatrix

    gt = np.array([[0, 0, 1, 1], [0, 0, 2, 2]], dtype=np.uint8)
    swapped = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], dtype=np.uint8)
    cm = ConfusionMatrix(3)
    cm.update(swapped, gt)
    summary = cal._confusion_summary(cm, ("background", "a", "b"))
    assert summary["fg_bg_iou"] == pytest.approx(100.0)
    assert summary["class_accuracy_on_fg"] == pytest.approx(0.0)
    assert summary["miou"] == pytest.approx(100.0 / 3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("calib")
    roots = {}
    for version in ("2", "3"):
        roots[version] = base / f"v{version}"
        generate_benchmark(roots[version], n_train=12, n_val=6, size=48, seed=5, progress=False,
                           version=version)  # fmt: skip
    return roots


def test_truth_of_both_versions(tiny: dict[str, Path]) -> None:
    for version, root in tiny.items():
        dataset = SyntheticSegmentation(root, "train")
        for image_id, t in cal.truths(dataset):
            mask = dataset.load_mask(image_id)
            np.testing.assert_array_equal(t.label, mask)  # re-rendered (2) or read (3): the same
            assert set(np.unique(t.parts).tolist()) <= {0, 1, 2, 255}
            np.testing.assert_array_equal(t.parts == 255, mask == 255)
            np.testing.assert_array_equal(
                (t.parts == 1) | (t.parts == 2), (mask > 0) & (mask < 255)
            )
            assert [o["instance_id"] for o in t.objects] == list(range(1, len(t.objects) + 1))
        stats = cal.data_statistics(dataset)
        assert stats["images"] == 12 and 1 <= stats["objects_per_image"] <= 3, version
        assert 5 < stats["object_pixels"] < 60 and 0 < stats["part_share_median"] < 20


def test_statistics_of_perfect_predictions_and_cams(tiny: dict[str, Path], tmp_path: Path) -> None:
    dataset = SyntheticSegmentation(tiny["3"], "train")
    for image_id in dataset.ids:
        mask = dataset.load_mask(image_id)
        write_label_png(tmp_path / "pred" / f"{image_id}.png", mask)
        keys = np.flatnonzero(dataset.load(image_id).labels) + 1
        cams = np.stack([(mask == k).astype(np.float32) for k in keys])
        low = cams[:, ::4, ::4]
        write_cams(tmp_path / "cams" / f"{image_id}.npz",
                   CamFile(keys=keys, cams=low, size=mask.shape, high_res=cams))  # fmt: skip
    seg = cal.segmentation_statistics(dataset, tmp_path / "pred")
    assert seg["miou"] == pytest.approx(100.0) and seg["fg_bg_iou"] == pytest.approx(100.0)
    cam = cal.cam_statistics(dataset, tmp_path / "cams")
    assert cam["miou"] == pytest.approx(100.0) and cam["coverage_median"] == pytest.approx(100.0)
    assert cam["part_coverage"] == cam["body_coverage"] == pytest.approx(100.0)
    assert cam["fp_preferred_scene"] == cam["fp_other_scene"] == pytest.approx(0.0)


def test_colour_oracle_and_refusals(tiny: dict[str, Path], tmp_path: Path) -> None:
    train, val = (SyntheticSegmentation(tiny["3"], s) for s in ("train", "val"))
    result = cal.colour_oracle(train, val)
    assert 0 < result["miou"] < 100
    with pytest.raises(WsssError, match="missing|exist"):
        cal.cam_statistics(train, tmp_path / "none")
