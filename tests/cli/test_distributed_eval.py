"""`wsss eval` under torchrun with 2 gloo processes gives exactly the single-process numbers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wsss.io.images import read_label_png
from wsss.io.palette import write_label_png


def _direct_miou(gt_dir: Path, pred_dir: Path, ids: list[str], n: int = 21) -> float:
    """Independent numpy mIoU: one confusion matrix, GT 255 ignored, pred 255 -> background."""
    conf = np.zeros((n, n), dtype=np.int64)
    for i in ids:
        gt = read_label_png(gt_dir / f"{i}.png").astype(np.int64)
        pred = read_label_png(pred_dir / f"{i}.png").astype(np.int64)
        pred[pred == 255] = 0
        keep = gt != 255
        np.add.at(conf, (gt[keep], pred[keep]), 1)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean() * 100)


@pytest.mark.distributed
def test_torchrun_two_processes_equal_one(voc_samples: Path, tmp_path: Path):
    pred = tmp_path / "pred"
    shutil.copytree(voc_samples / "SegmentationClass", pred)
    rng = np.random.default_rng(0)
    ids = (voc_samples / "ImageSets/Segmentation/samples.txt").read_text().split()
    for i in ids:  # damage: shift, random blocks of another class, some 255
        mask = read_label_png(pred / f"{i}.png")
        mask = np.roll(mask, 3, axis=1)
        y, x = rng.integers(0, 100, size=2)
        mask[y : y + 40, x : x + 60] = rng.integers(0, 21)
        mask[:5] = 255
        write_label_png(pred / f"{i}.png", mask)
    base = ["eval", "--pred", str(pred), "--root", str(voc_samples), "--split", "samples"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = tmp_path / "single.json"
    subprocess.run(
        [sys.executable, "-m", "wsss", "--quiet", *base, "--out", str(single)], check=True, env=env
    )
    double = tmp_path / "double.json"
    torchrun = Path(sys.executable).with_name("torchrun")
    subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "wsss", "--quiet", *base,
         "--out", str(double)],
        check=True,
        env=env,
        timeout=300,
    )  # fmt: skip
    one, two = json.loads(single.read_text()), json.loads(double.read_text())
    one.pop("folder"), two.pop("folder")
    assert one == two
    expected = _direct_miou(voc_samples / "SegmentationClass", pred, ids)
    assert one["miou"] == pytest.approx(expected, abs=1e-9)
    assert 0 < one["miou"] < 100
