"""The CAM floor of wsss refine: estimated per folder, removed, and the background share
reported; the crf's defaults hold on CAMs with a raised floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from refine_data import IDS, miou
from wsss.cli.main import app
from wsss.io.cams import CamFile
from wsss.refine import background_warnings
from wsss.refine.calibration import estimate_floor, remove_floor

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
    default = _refine(refine_data, "cams_flat", tmp_path / "auto")
    assert default.exit_code == 0 and "warning" not in default.output
    raw = _refine(refine_data, "cams_flat", tmp_path / "raw", "--cam-floor", "0")
    assert raw.exit_code == 0 and "warning: 3 of 3 images are <= 1% background" in raw.output
    assert miou(tmp_path / "auto", refine_data) > miou(tmp_path / "raw", refine_data) + 0.15
    irnet = _refine(refine_data, "cams_irnet", tmp_path / "irnet")
    assert irnet.exit_code == 0
    same = _refine(refine_data, "cams_irnet", tmp_path / "irnet0", "--cam-floor", "0")
    assert same.exit_code == 0
    assert (
        abs(miou(tmp_path / "irnet", refine_data) - miou(tmp_path / "irnet0", refine_data)) < 0.01
    )
