"""Bad input gives a one-line error naming the file, a non-zero exit, no traceback, and leaves
earlier outputs untouched."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wsss.cli.main import main
from wsss.io.images import read_label_png
from wsss.io.palette import write_label_png


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["wsss", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def gt_preds(voc_copy: Path, tmp_path: Path) -> Path:
    """Predictions equal to the ground truth of the VOC samples."""
    pred = tmp_path / "pred"
    shutil.copytree(voc_copy / "SegmentationClass", pred)
    return pred


def _eval(root: Path, pred: Path, split: str = "samples") -> list[str]:
    return ["--quiet", "eval", "--pred", str(pred), "--root", str(root), "--split", split]


def test_gt_against_itself_is_100(voc_copy, gt_preds, monkeypatch, capsys):
    code, _out, err = run_cli(_eval(voc_copy, gt_preds), monkeypatch, capsys)
    assert code == 0, err
    result = json.loads((gt_preds / "eval-samples.json").read_text())
    assert result["miou"] == pytest.approx(100.0)
    present = set()
    for png in (voc_copy / "SegmentationClass").glob("*.png"):
        present |= set(np.unique(read_label_png(png)).tolist()) - {255}
    from wsss.data.classes import VOC_CLASSES

    assert set(result["iou"]) == {VOC_CLASSES.names[i] for i in present}


@pytest.mark.parametrize(
    "damage, pattern",
    [
        ("missing", r"2007_000799\.png: missing"),
        (
            "size",
            r"pred/2007_000799\.png: prediction size 10x10 \(WxH\) does not match the "
            r"image's and ground truth's 500x441",
        ),
        (
            "gt-size",
            r"SegmentationClass/2007_000799\.png: mask size 10x12 \(WxH\) does not "
            r"match the image's 500x441",
        ),
        ("range", r"2007_000799\.png: class id\(s\) \[42\] out of range"),
        ("escape", r"samples\.txt: unsafe image id '\.\./x'"),
        ("empty", r"samples\.txt: empty split"),
    ],
)
def test_bad_input_one_line_error(voc_copy, gt_preds, monkeypatch, capsys, damage, pattern):
    assert run_cli(_eval(voc_copy, gt_preds), monkeypatch, capsys)[0] == 0
    report = gt_preds / "eval-samples.json"
    before = report.read_bytes()
    gt = voc_copy / "SegmentationClass" / "2007_000799.png"
    split = voc_copy / "ImageSets" / "Segmentation" / "samples.txt"
    if damage == "missing":
        (gt_preds / "2007_000799.png").unlink()
    elif damage == "size":
        write_label_png(gt_preds / "2007_000799.png", np.zeros((10, 10), np.uint8))
    elif damage == "gt-size":  # the ground truth is wrong, the prediction right
        write_label_png(gt, np.zeros((12, 10), np.uint8))
    elif damage == "range":
        mask = read_label_png(gt)
        mask[0, 0] = 42
        write_label_png(gt_preds / "2007_000799.png", mask)
    elif damage == "escape":
        split.write_text(split.read_text() + "../x\n")
    elif damage == "empty":
        split.write_text("\n")
    code, out, err = run_cli(_eval(voc_copy, gt_preds), monkeypatch, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wsss: error: "), err
    import re

    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err + out
    assert report.read_bytes() == before


def test_corrupt_jpeg_in_viz(voc_copy, tmp_path, monkeypatch, capsys):
    jpg = voc_copy / "JPEGImages" / "2007_000175.jpg"
    jpg.write_bytes(jpg.read_bytes()[:2000])
    args = ["viz", "--root", str(voc_copy), "--split", "samples", "--out", str(tmp_path / "g.png")]
    code, _out, err = run_cli(args, monkeypatch, capsys)
    assert code == 2
    assert re_one_line(err, r"2007_000175\.jpg: corrupt or unreadable image")
    assert not (tmp_path / "g.png").exists()


def re_one_line(err: str, pattern: str) -> bool:
    import re

    lines = err.strip().splitlines()
    return len(lines) == 1 and re.search(pattern, lines[0]) is not None


def test_debug_shows_traceback_and_console_script(voc_copy, tmp_path):
    split = voc_copy / "ImageSets" / "Segmentation" / "samples.txt"
    split.write_text("\n")
    cmd = [sys.executable, "-m", "wsss", "eval", "--pred", str(tmp_path), "--root", str(voc_copy)]
    plain = subprocess.run([*cmd, "--split", "samples"], capture_output=True, text=True)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "wsss", "--debug", *cmd[3:], "--split", "samples"],
        capture_output=True,
        text=True,
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr
