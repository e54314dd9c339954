"""The CAM floor of wsss refine: estimated per folder, removed, and the background share
reported; the crf's defaults hold on CAMs with a raised floor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from refine_data import IDS, miou
from wsss.cli.main import app
from wsss.errors import WsssError
from wsss.io.cams import CamFile
from wsss.refine import background_warnings
from wsss.refine.calibration import estimate_bg_threshold, estimate_floor, remove_floor

runner = CliRunner()


def test_floor_estimate_and_removal(refine_data):
    assert estimate_floor(refine_data["cams_irnet"], IDS) < 0.02  # ReLU-like: nothing to remove
    floor = estimate_floor(refine_data["cams_flat"], IDS)
    assert 0.25 <= floor < 0.4
    cam = CamFile(keys=np.array([3]), cams=np.array([[[floor, 1.0, 0.0]]], np.float32), size=(1, 9))
    np.testing.assert_allclose(remove_floor(cam, floor).cams, [[[0.0, 1.0, 0.0]]])
    assert remove_floor(cam, 0.0) is cam


def test_background_warnings_name_extreme_images():
    shares = {"a": 1.0, "b": 0.5, "c": 0.0, "d": 0.999}
    messages = background_warnings(shares)
    assert len(messages) == 2
    assert "2 of 4 images" in messages[0] and "a, d" in messages[0]
    assert "1 of 4 images" in messages[1] and "c" in messages[1]
    assert background_warnings({"a": 0.7}) == []


def _refine(data: dict[str, Path], cams: str, out: Path, *extra: str):
    args = ["refine", "--images", str(data["images"]), "--cams", str(data[cams]), "--out", str(out),
            "--method", "crf", *extra]  # fmt: skip
    return runner.invoke(app, args, catch_exceptions=False)


def test_crf_defaults_hold_on_a_raised_floor(refine_data, tmp_path: Path):
    """With the floor removed, 0.15 works on the flat CAMs; as given, every pixel is foreground,
    and refine says so."""
    default = _refine(refine_data, "cams_flat", tmp_path / "auto", "--bg-threshold", "0.15")
    assert default.exit_code == 0 and "warning" not in default.output
    raw = _refine(refine_data, "cams_flat", tmp_path / "raw", "--cam-floor", "0",
                  "--bg-threshold", "0.15")  # fmt: skip
    assert raw.exit_code == 0 and "warning: 3 of 3 images are <= 1% background" in raw.output
    assert miou(tmp_path / "auto", refine_data) > miou(tmp_path / "raw", refine_data) + 0.15
    irnet = _refine(refine_data, "cams_irnet", tmp_path / "irnet", "--bg-threshold", "0.15")
    assert irnet.exit_code == 0
    same = _refine(refine_data, "cams_irnet", tmp_path / "irnet0", "--cam-floor", "0",
                   "--bg-threshold", "0.15")  # fmt: skip
    assert same.exit_code == 0
    assert (
        abs(miou(tmp_path / "irnet", refine_data) - miou(tmp_path / "irnet0", refine_data)) < 0.01
    )


def _crf_sweep(data: dict[str, Path], cams: str, thresholds: list[float]) -> dict[float, float]:
    """mIoU over the fixture of ``refine --method crf`` (floor removed) at each plane."""
    from wsss.refine import CamCrfRefiner, refine_folder

    scores = {}
    for t in thresholds:
        out = data["images"].parent / f"sweep_{cams}_{t:.2f}"
        refine_folder(data["images"], data[cams], out, CamCrfRefiner(bg_threshold=t),
                      progress=False)  # fmt: skip
        scores[t] = miou(out, data)
    return scores


def test_auto_bg_threshold_holds_on_two_calibrations(refine_data, tmp_path: Path):
    """Issue 14: the default plane (``auto``, the folder's median) is within 2 points of the best
    plane of a sweep on CAMs of both calibrations; the fixed 0.15 is not on the flat ones."""
    sweep = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]
    for cams in ("cams_irnet", "cams_flat"):
        result = _refine(refine_data, cams, tmp_path / cams)
        assert result.exit_code == 0, result.output
        saved = json.loads((tmp_path / cams / "refine.json").read_text())
        assert saved["bg_threshold_rule"] == "auto"
        floor = estimate_floor(refine_data[cams], IDS)
        assert saved["bg_threshold"] == pytest.approx(
            estimate_bg_threshold(refine_data[cams], IDS, floor), abs=1e-6
        )
        assert f"bg threshold {saved['bg_threshold']:.3f}" in " ".join(result.output.split())
        scores = _crf_sweep(refine_data, cams, sweep)
        best = max(scores.values())
        auto = miou(tmp_path / cams, refine_data)
        print(cams, saved["bg_threshold"], auto, scores)
        assert auto >= best - 0.02, (cams, auto, scores)
        if cams == "cams_flat":
            assert scores[0.15] < best - 0.02, scores  # the old default fails here


def test_bg_threshold_option_errors(refine_data, tmp_path: Path):
    for value in ("high", "1.5"):
        with pytest.raises(
            WsssError, match=r"--bg-threshold must be 'auto' or a number in \[0, 1\)"
        ):
            _refine(refine_data, "cams_irnet", tmp_path / "x", "--bg-threshold", value)
