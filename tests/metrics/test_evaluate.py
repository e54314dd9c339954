"""evaluate_predictions / evaluate_cams on the real VOC samples."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared_data import VOC_SAMPLES
from wsss.data.voc import VOCSegmentation
from wsss.errors import WsssError
from wsss.io.cams import CamFile, write_cams
from wsss.io.palette import write_label_png
from wsss.metrics.evaluate import evaluate_cams, evaluate_predictions

VOC_ROOT = VOC_SAMPLES
pytestmark = pytest.mark.skipif(not VOC_ROOT.is_dir(), reason="VOC samples not found")


@pytest.fixture(scope="module")
def dataset() -> VOCSegmentation:
    return VOCSegmentation(VOC_ROOT, split="samples")


@pytest.fixture(scope="module")
def masks(dataset: VOCSegmentation) -> dict[str, np.ndarray]:
    return {i: dataset.load_mask(i) for i in dataset.ids}


def _write(folder: Path, labels: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for image_id, label in labels.items():
        write_label_png(folder / f"{image_id}.png", label)
    return folder


def _damage(gt: np.ndarray, k: int) -> np.ndarray:
    """Background band on the left, unlabelled block, wrong-class block, void mapped to 0."""
    pred = np.where(gt == 255, 0, gt).astype(np.uint8)
    h, w = gt.shape
    pred[:, : w // 6] = 0
    pred[h // 3 : h // 2, w // 3 : w // 2] = 255
    pred[h // 2 :, 2 * w // 3 :] = (k % 20) + 1
    return pred


def _direct_scores(preds, gts, c: int) -> dict[str, float]:
    """Intersections and unions per class with boolean masks (independent of the matrix)."""
    out = {}
    for policy in ("background", "ignore"):
        inter, union = np.zeros(c), np.zeros(c)
        correct = counted = 0
        for pred, gt in zip(preds, gts, strict=True):
            valid = gt != 255
            if policy == "ignore":
                valid &= pred != 255
            p = np.where(pred == 255, 0, pred)
            for cls in range(c):
                inter[cls] += np.sum((p == cls) & (gt == cls) & valid)
                union[cls] += np.sum(((p == cls) | (gt == cls)) & valid)
            correct += np.sum((p == gt) & valid)
            counted += np.sum(valid)
        out[f"miou_{policy}"] = 100 * float(np.mean(inter[union > 0] / union[union > 0]))
        out[f"acc_{policy}"] = 100 * correct / counted
    labelled = sum(np.sum((g != 255) & (p != 255)) for p, g in zip(preds, gts, strict=True))
    out["labelled_ratio"] = 100 * labelled / sum(np.sum(g != 255) for g in gts)
    return out


def test_gt_as_prediction_scores_100(tmp_path, dataset, masks) -> None:
    result = evaluate_predictions(dataset, _write(tmp_path, masks), progress=False)
    assert result["num_images"] == len(dataset.ids) == 6
    for key in ("miou", "miou_pred255_background", "miou_pred255_ignored", "pixel_accuracy"):
        assert result[key] == pytest.approx(100.0), key
    assert result["labelled_ratio"] == 100.0
    assert result["boundary"]["mean_f"] == pytest.approx(100.0)
    assert result["boundary"]["image_mean_f"] == pytest.approx(100.0)
    present = set(np.unique(np.concatenate([m.ravel() for m in masks.values()]))) - {255}
    names = {dataset.classes.names[c] for c in present}
    assert set(result["iou"]) == names and len(names) < 21
    json.dumps(result, allow_nan=False)


def test_damaged_prediction_matches_direct_computation(tmp_path, dataset, masks) -> None:
    preds = {i: _damage(m, k) for k, (i, m) in enumerate(masks.items())}
    folder = _write(tmp_path, preds)
    result = evaluate_predictions(dataset, folder, boundary=False, progress=False)
    ignored = evaluate_predictions(dataset, folder, pred_ignore="ignore", progress=False)
    direct = _direct_scores(list(preds.values()), list(masks.values()), 21)
    assert result["miou"] == pytest.approx(direct["miou_background"], abs=1e-9)
    assert result["miou_pred255_ignored"] == pytest.approx(direct["miou_ignore"], abs=1e-9)
    assert result["pixel_accuracy"] == pytest.approx(direct["acc_background"], abs=1e-9)
    assert ignored["miou"] == pytest.approx(direct["miou_ignore"], abs=1e-9)
    assert ignored["pixel_accuracy"] == pytest.approx(direct["acc_ignore"], abs=1e-9)
    assert result["labelled_ratio"] == pytest.approx(direct["labelled_ratio"], abs=1e-9)
    assert 0 < result["miou"] < 100 and result["labelled_ratio"] < 100
    assert result["boundary"] is None and 0 < ignored["boundary"]["mean_f"] < 100


def test_missing_prediction_names_the_file(tmp_path, dataset, masks) -> None:
    folder = _write(tmp_path, masks)
    missing = folder / f"{dataset.ids[3]}.png"
    missing.unlink()
    with pytest.raises(WsssError, match="missing") as err:
        evaluate_predictions(dataset, folder, progress=False)
    assert str(missing) in str(err.value)


def test_bad_prediction_names_the_file(tmp_path, dataset, masks) -> None:
    first = dataset.ids[0]
    bad = dict(masks)
    bad[first] = masks[first][:-1]  # one row short
    with pytest.raises(WsssError, match="size") as err:
        evaluate_predictions(dataset, _write(tmp_path / "size", bad), progress=False)
    assert first in str(err.value)
    bad[first] = np.full_like(masks[first], 30)
    with pytest.raises(WsssError, match="out of range") as err:
        evaluate_predictions(dataset, _write(tmp_path / "range", bad), progress=False)
    assert first in str(err.value)


def _gt_cams(mask: np.ndarray, value: float, stride4: bool) -> CamFile:
    """Maps equal to ``value`` on each GT class (0 elsewhere), or constant stride-4 maps."""
    keys = np.array([c for c in np.unique(mask) if c not in (0, 255)], dtype=np.int64)
    h, w = mask.shape
    small = (len(keys), -(-h // 4), -(-w // 4))
    if stride4:
        return CamFile(keys, np.full(small, value), (h, w))
    high = np.stack([np.where(mask == k, value, 0.0) for k in keys])
    return CamFile(keys, np.zeros(small), (h, w), high_res=high)


def test_perfect_cams(tmp_path, dataset, masks) -> None:
    for image_id, mask in masks.items():
        write_cams(tmp_path / f"{image_id}.npz", _gt_cams(mask, 0.5, stride4=False))
    result = evaluate_cams(dataset, tmp_path, progress=False)
    curve = {p["threshold"]: p["miou"] for p in result["curve"]}
    # Correct at every threshold below 0.5; at 0.5 and above everything is background.
    assert all(curve[t] == pytest.approx(100.0) for t in curve if t < 0.5)
    assert all(curve[t] < 100.0 for t in curve if t >= 0.5)
    assert result["best_threshold"] == 0.0
    assert result["miou_at"] == {"0.15": pytest.approx(100.0), "0.20": pytest.approx(100.0)}
    assert result["num_images"] == 6
    json.dumps(result, allow_nan=False)


def test_stride4_cams_are_upsampled(tmp_path, dataset, masks) -> None:
    # Constant maps stay constant when upsampled: at t < 0.5 every labelled pixel gets the first
    # key (value ties between keys -> first), at t >= 0.5 background.
    for image_id, mask in masks.items():
        write_cams(tmp_path / f"{image_id}.npz", _gt_cams(mask, 0.5, stride4=True))
    result = evaluate_cams(dataset, tmp_path, thresholds=[0.3, 0.6], progress=False)
    assert [p["threshold"] for p in result["curve"]] == [0.15, 0.2, 0.3, 0.6]
    for t, key_first in ((0.3, True), (0.6, False)):
        inter, union = np.zeros(21), np.zeros(21)
        for mask in masks.values():
            keys = [c for c in np.unique(mask) if c not in (0, 255)]
            label = np.full(mask.shape, keys[0] if key_first and keys else 0)
            valid = mask != 255
            for c in range(21):
                inter[c] += np.sum((label == c) & (mask == c) & valid)
                union[c] += np.sum(((label == c) | (mask == c)) & valid)
        expected = 100 * np.mean(inter[union > 0] / union[union > 0])
        got = next(p["miou"] for p in result["curve"] if p["threshold"] == t)
        assert got == pytest.approx(expected, abs=1e-9), t


def test_cam_errors_name_the_file(tmp_path, dataset, masks) -> None:
    first = dataset.ids[0]
    with pytest.raises(WsssError, match="missing CAM") as err:
        evaluate_cams(dataset, tmp_path, progress=False)
    assert first in str(err.value)
    cam = _gt_cams(masks[first], 0.5, stride4=True)
    wrong = CamFile(cam.keys, np.zeros((len(cam.keys), 2, 2)), (8, 8))
    write_cams(tmp_path / f"{first}.npz", wrong)
    with pytest.raises(WsssError, match="GT mask") as err:
        evaluate_cams(dataset, tmp_path, progress=False)
    assert first in str(err.value)


SCRIPT = """
import json, sys
from pathlib import Path
import torch.distributed
from wsss.data.voc import VOCSegmentation
from wsss.engine import init_distributed
from wsss.metrics.evaluate import evaluate_cams, evaluate_predictions
info = init_distributed()
ds = VOCSegmentation(sys.argv[1], split="samples")
out = {"world": info.world, "preds": evaluate_predictions(ds, Path(sys.argv[2]), progress=False),
       "cams": evaluate_cams(ds, Path(sys.argv[3]), progress=False)}
Path(sys.argv[4] + f".{info.rank}").write_text(json.dumps(out))
torch.distributed.destroy_process_group()  # else gloo may abort at exit
"""


@pytest.mark.distributed
def test_two_processes_equal_one(tmp_path, dataset, masks) -> None:
    preds = _write(tmp_path / "pred", {i: _damage(m, k) for k, (i, m) in enumerate(masks.items())})
    cams = tmp_path / "cams"
    for image_id, mask in masks.items():
        write_cams(cams / f"{image_id}.npz", _gt_cams(mask, 0.7, stride4=False))
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out.json"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    args = [*cmd, str(script), str(VOC_ROOT), str(preds), str(cams), str(out)]
    proc = subprocess.run(args, env=env, timeout=120, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[:3000]
    single = {
        "preds": evaluate_predictions(dataset, preds, progress=False),
        "cams": evaluate_cams(dataset, cams, progress=False),
    }
    expected = json.loads(json.dumps(single))
    for rank in (0, 1):
        got = json.loads(Path(f"{out}.{rank}").read_text())
        assert got.pop("world") == 2
        assert got == expected
    assert not math.isnan(expected["preds"]["boundary"]["image_mean_f"])
