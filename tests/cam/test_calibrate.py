"""CAM calibration (``wsss.cam.calibrate``): the power that maps a CAM's best background threshold
to the papers' 0.15, on hand-made CAM files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from wsss.cam.calibrate import (
    REFERENCE_THRESHOLD,
    calibrate_cams,
    calibration_exponent,
    power_cams,
    prepare_calibrated_folder,
    threshold_from_sweep,
)
from wsss.errors import WsssError
from wsss.io.cams import CamFile, read_cams, write_cams


def _cam(seed: int, classes: int = 2, size: tuple[int, int] = (12, 16)) -> CamFile:
    rng = np.random.default_rng(seed)
    high = rng.random((classes, *size)).astype(np.float32)
    high /= high.reshape(classes, -1).max(1)[:, None, None]
    low = high[:, ::4, ::4]
    return CamFile(keys=np.arange(1, classes + 1), cams=low, size=size, high_res=high)


@pytest.mark.parametrize("threshold", [0.05, 0.15, 0.4, 0.65, 0.9])
def test_the_exponent_maps_the_threshold_to_the_reference(threshold: float) -> None:
    gamma = calibration_exponent(threshold)
    assert threshold**gamma == pytest.approx(REFERENCE_THRESHOLD, rel=1e-12)
    assert (gamma > 1) == (threshold > REFERENCE_THRESHOLD)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.2, 1.5])
def test_a_threshold_outside_the_open_unit_interval_is_refused(threshold: float) -> None:
    with pytest.raises(WsssError, match="strictly between 0 and 1"):
        calibration_exponent(threshold)


def test_the_power_keeps_the_argmax_the_maxima_and_moves_the_threshold() -> None:
    cam, threshold = _cam(0), 0.65
    gamma = calibration_exponent(threshold)
    out = power_cams(cam, gamma)
    assert out.high_res is not None and cam.high_res is not None
    assert np.array_equal(out.high_res.argmax(0), cam.high_res.argmax(0))
    assert np.allclose(out.high_res.reshape(2, -1).max(1), 1.0)
    # a pixel is foreground at the raw threshold iff it is at 0.15 after the power (off-boundary)
    raw, mapped = cam.high_res.max(0), out.high_res.max(0)
    clear = np.abs(raw - threshold) > 1e-4
    assert np.array_equal((raw > threshold)[clear], (mapped > REFERENCE_THRESHOLD)[clear])
    assert out.cams.shape == cam.cams.shape and out.size == cam.size


def test_a_folder_is_written_once_resumed_and_redone_for_another_exponent(tmp_path) -> None:
    src, dst = tmp_path / "cams", tmp_path / "calibrated"
    ids = ["a", "b", "c"]
    for k, i in enumerate(ids):
        write_cams(src / f"{i}.npz", _cam(k))
    record = prepare_calibrated_folder(dst, threshold=0.5, source="test")
    assert json.loads((dst / "calibration.json").read_text()) == record
    assert record["gamma"] == pytest.approx(math.log(0.15) / math.log(0.5))
    assert calibrate_cams(src, dst, ids, record["gamma"]) == 3
    first = read_cams(dst / "b.npz")
    expected = power_cams(read_cams(src / "b.npz"), record["gamma"])
    assert np.allclose(first.cams.astype(np.float32), expected.cams, atol=1e-3)
    assert calibrate_cams(src, dst, ids, record["gamma"]) == 0  # resumed: nothing to redo
    prepare_calibrated_folder(dst, threshold=0.5, source="test")  # same exponent: files kept
    assert len(list(dst.glob("*.npz"))) == 3
    other = prepare_calibrated_folder(dst, threshold=0.3, source="test")
    assert not list(dst.glob("*.npz"))  # another scale: the derived files are dropped
    assert calibrate_cams(src, dst, ids, other["gamma"]) == 3


def test_a_missing_cam_file_is_named(tmp_path) -> None:
    with pytest.raises(WsssError, match="missing CAM file") as err:
        calibrate_cams(tmp_path / "cams", tmp_path / "out", ["x"], 2.0)
    assert "x.npz" in str(err.value)


def test_a_best_threshold_at_the_ends_of_the_sweep_is_clamped_and_said() -> None:
    curve = [{"threshold": k / 20, "miou": 0.0} for k in range(20)]
    assert threshold_from_sweep({"best_threshold": 0.65, "curve": curve}, "train") == (
        0.65,
        "ground truth of train",
    )
    threshold, source = threshold_from_sweep({"best_threshold": 0.0, "curve": curve}, "train")
    assert threshold == 0.05 and "best 0.00 clamped to 0.05" in source
