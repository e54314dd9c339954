"""``wsss refine`` on the real VOC samples with imperfect CAMs made from their masks."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.ndimage import distance_transform_edt, gaussian_filter
from typer.testing import CliRunner

from wsss.cli.main import app, main
from wsss.io.cams import CamFile, write_cams
from wsss.io.images import read_image, read_label_png

runner = CliRunner()
IDS = ["2007_000175", "2007_001284", "2007_006946"]


def _invoke(args: list[str]) -> None:
    result = runner.invoke(app, ["--quiet", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output


def _cams(mask: np.ndarray) -> CamFile:
    """Peaked, blurred CAMs: each class's distance to its border, so the argmax at a background
    threshold misses the object's rim (like a real CAM's discriminative-part bias)."""
    keys = [int(k) for k in np.unique(mask) if k not in (0, 255)]
    h, w = mask.shape
    maps = []
    for k in keys:
        dist = distance_transform_edt(mask == k).astype(np.float32)
        blurred = gaussian_filter(dist / dist.max(), 3)
        maps.append(blurred / blurred.max())
    low = F.interpolate(torch.from_numpy(np.stack(maps))[None], size=(math.ceil(h / 4),
                        math.ceil(w / 4)), mode="bilinear", antialias=True)[0]  # fmt: skip
    low = low / low.amax(dim=(1, 2), keepdim=True)
    return CamFile(keys=np.asarray(keys), cams=low.numpy(), size=(h, w))


@pytest.fixture(scope="module")
def refine_data(voc_samples: Path, tmp_path_factory) -> dict[str, Path]:
    """Half-size copies of three samples (to keep the test fast), their GT and CAM files."""
    base = tmp_path_factory.mktemp("refine")
    images, cams, gts = base / "images", base / "cams", base / "gt"
    for folder in (images, cams, gts):
        folder.mkdir()
    for image_id in IDS:
        image = Image.fromarray(read_image(voc_samples / "JPEGImages" / f"{image_id}.jpg"))
        gt = Image.fromarray(read_label_png(voc_samples / "SegmentationClass" / f"{image_id}.png"))
        size = (image.width // 2, image.height // 2)
        image.resize(size, Image.BILINEAR).save(images / f"{image_id}.jpg", quality=95)
        mask = np.asarray(gt.resize(size, Image.NEAREST))
        np.save(gts / f"{image_id}.npy", mask)
        write_cams(cams / f"{image_id}.npz", _cams(mask))
    return {"images": images, "cams": cams, "gt": gts}


def _miou(pred_dir: Path | None, data: dict[str, Path], threshold: float = 0.15) -> float:
    conf = np.zeros((21, 21), np.int64)
    for image_id in IDS:
        gt = np.load(data["gt"] / f"{image_id}.npy")
        if pred_dir is None:  # the CAMs' argmax at a background threshold
            cam = np.load(data["cams"] / f"{image_id}.npz")
            up = F.interpolate(torch.from_numpy(cam["cams"].astype(np.float32))[None],
                               size=gt.shape, mode="bilinear")[0]  # fmt: skip
            scores = torch.cat([torch.full_like(up[:1], threshold), up])
            pred = np.concatenate([[0], cam["keys"]])[scores.argmax(0).numpy()]
        else:
            pred = read_label_png(pred_dir / f"{image_id}.png")
        valid = gt != 255
        pairs = gt[valid].astype(np.int64) * 21 + pred[valid].astype(np.int64)
        conf += np.bincount(pairs, minlength=441).reshape(21, 21)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    return float((inter[union > 0] / union[union > 0]).mean())


def test_refine_gcn_beats_cam_argmax_and_resumes(refine_data, tmp_path: Path):
    out = tmp_path / "gcn"
    args = ["refine", "--images", str(refine_data["images"]), "--cams", str(refine_data["cams"]),
            "--out", str(out), "--method", "gcn", "--batch-size", "3"]  # fmt: skip
    _invoke(args)
    cam_miou = max(_miou(None, refine_data, t) for t in (0.1, 0.15, 0.2, 0.3))
    gcn_miou = _miou(out, refine_data)
    assert gcn_miou > cam_miou + 0.03, (gcn_miou, cam_miou)
    # resume: a finished file is kept, a deleted one is made again, identically
    first = out / f"{IDS[0]}.png"
    kept = (out / f"{IDS[1]}.png").stat().st_mtime_ns
    before = read_label_png(first)
    first.unlink()
    _invoke([*args[:-2], "--batch-size", "1"])  # batch size does not change the labels
    assert (out / f"{IDS[1]}.png").stat().st_mtime_ns == kept
    assert np.array_equal(read_label_png(first), before)


def test_refine_crf_runs(refine_data, tmp_path: Path):
    out = tmp_path / "crf"
    _invoke(["refine", "--images", str(refine_data["images"]), "--cams", str(refine_data["cams"]),
             "--out", str(out), "--method", "crf"])  # fmt: skip
    assert _miou(out, refine_data) > 0.5


def _run(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["wsss", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return int(exc.value.code or 0), capsys.readouterr().err


def test_errors_name_the_file(refine_data, tmp_path: Path, monkeypatch, capsys):
    cams = tmp_path / "cams"
    cams.mkdir()
    good = np.load(refine_data["cams"] / f"{IDS[0]}.npz")
    write_cams(cams / "nosuch.npz", CamFile(keys=good["keys"], cams=good["cams"],
                                            size=tuple(good["size"])))  # fmt: skip
    base = ["refine", "--images", str(refine_data["images"]), "--out", str(tmp_path / "o")]
    code, err = _run([*base, "--cams", str(cams)], monkeypatch, capsys)
    assert code == 2 and "nosuch.jpg: missing image" in err
    (cams / "nosuch.npz").unlink()
    (cams / f"{IDS[0]}.npz").write_bytes(b"not a zip")
    code, err = _run([*base, "--cams", str(cams)], monkeypatch, capsys)
    assert code == 2 and f"{IDS[0]}.npz: corrupt CAM file" in err
    code, err = _run([*base, "--cams", str(refine_data["cams"]), "--method", "rw"], monkeypatch,
                     capsys)  # fmt: skip
    assert code == 2 and "needs --affinity" in err
    code, err = _run([*base, "--cams", str(refine_data["cams"]), "--method", "nope"], monkeypatch,
                     capsys)  # fmt: skip
    assert code == 2 and "unknown refine method 'nope'" in err
