"""`wsss synth` then `wsss eval` from the command line: the acceptance path of the foundation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cli_runner import run_wsss

_run = run_wsss


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_synth_is_byte_identical_and_gt_scores_100(tmp_path: Path, monkeypatch) -> None:
    args = ["--train", "6", "--val", "4", "--size", "64", "--seed", "3"]
    assert _run(["synth", str(tmp_path / "a"), *args], monkeypatch) == 0
    assert _run(["synth", str(tmp_path / "b"), *args], monkeypatch) == 0
    first = _digest(tmp_path / "a")
    # jpg, class, object and part png, annotation json per image (version 3); two lists, meta
    assert len(first) == 5 * 10 + 3
    assert first == _digest(tmp_path / "b")

    pred = tmp_path / "a" / "SegmentationClass"
    code = _run(
        ["eval", "--pred", str(pred), "--root", str(tmp_path / "a"), "--split", "val"], monkeypatch
    )
    assert code == 0
    result = json.loads((pred / "eval-val.json").read_text())
    assert result["miou"] == pytest.approx(100.0)
    assert result["pixel_accuracy"] == pytest.approx(100.0)


def test_damaged_copy_scores_what_numpy_computes(tmp_path: Path, monkeypatch) -> None:
    import shutil

    import numpy as np

    from wsss.io.images import read_label_png
    from wsss.io.palette import write_label_png

    root = tmp_path / "s"
    args = ["--train", "2", "--val", "5", "--size", "64", "--seed", "0"]
    assert _run(["synth", str(root), *args], monkeypatch) == 0
    pred = tmp_path / "pred"
    shutil.copytree(root / "SegmentationClass", pred)
    rng = np.random.default_rng(0)
    conf = np.zeros((11, 11), dtype=np.int64)
    for png in sorted((root / "SegmentationClass").glob("val_*.png")):
        gt = read_label_png(png)
        damaged = gt.copy()
        damaged[rng.random(gt.shape) < 0.2] = rng.integers(0, 11)  # wrong labels
        damaged[:8, :8] = 0  # a corner of background
        write_label_png(pred / png.name, damaged)
        ok = gt != 255
        np.add.at(conf, (gt[ok].astype(int), damaged[ok].astype(int)), 1)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    expected = 100 * np.mean(inter[union > 0] / union[union > 0])
    assert expected < 95
    code = _run(["eval", "--pred", str(pred), "--root", str(root), "--split", "val"], monkeypatch)
    assert code == 0
    result = json.loads((pred / "eval-val.json").read_text())
    assert result["miou"] == pytest.approx(expected, abs=1e-9)
