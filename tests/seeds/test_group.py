"""Group-WSSS's pseudo-label rule (SPEC section 2) on hand-made CAMs and saliency maps, and on a
split through ``make_seeds`` and ``wsss seeds``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_runner import run_wsss
from wsss.data.voc import VOCSegmentation
from wsss.errors import WsssError
from wsss.io.cams import CamFile, read_cams
from wsss.io.images import read_label_png
from wsss.seeds import CONFIG_FILE, GroupSeeds, create_seeder, group_seeds, make_seeds

KEYS = np.array([3, 7])


def _cams(pixels: list[tuple[float, float]]) -> np.ndarray:
    """``(2, N, 1)`` CAMs: one pixel a row, ``(CAM of class 3, CAM of class 7)`` each."""
    return np.array(pixels, np.float32)[:, None, :].transpose(2, 0, 1)


def test_constant_background_argmax_and_conflicts():
    cams = _cams([(0.95, 0.92), (0.95, 0.3), (0.3, 0.5), (0.1, 0.2), (0.25, 0.1), (0.91, 0.9)])
    # both > 0.9: 255; class 3; class 7; background; tie with the background: background;
    # 0.9 is not above 0.9: class 3
    assert group_seeds(cams, KEYS).tolist() == [[255], [3], [7], [0], [0], [3]]
    assert group_seeds(cams, KEYS, bg_score=0.4).tolist() == [[255], [3], [7], [0], [0], [3]]
    assert group_seeds(cams, KEYS, bg_score=0.6).tolist() == [[255], [3], [0], [0], [0], [3]]
    # a background plane above the conflict threshold conflicts with any class above it
    assert group_seeds(cams, KEYS, bg_score=0.93).tolist() == [[255], [255], [0], [0], [0], [255]]
    assert group_seeds(cams, KEYS, conflict=0.85).tolist()[-1] == [255]
    assert group_seeds(np.zeros((0, 2, 2), np.float32), np.zeros(0)).tolist() == [[0, 0], [0, 0]]


def test_saliency_background():
    cams = _cams([(0.95, 0.1), (0.6, 0.1), (0.6, 0.1), (0.95, 0.1), (0.2, 0.1)])
    s = np.array([[0.9], [0.8], [0.2], [0.05], [0.1]], np.float32)
    # background 1 - S = 0.1, 0.2, 0.8, 0.95 (> 0.9 with the CAM's 0.95: conflict), 0.9
    assert group_seeds(cams, KEYS, saliency=s).tolist() == [[3], [3], [0], [255], [0]]
    with pytest.raises(ValueError, match="saliency map of shape"):
        group_seeds(cams, KEYS, saliency=s[:2])


def test_code_variant_rules():
    # min-max normalisation: class 3 spans 0.2-0.6 -> 0-1
    cams = _cams([(0.6, 0.0), (0.2, 0.5), (0.4, 1.0), (0.3, 0.0)])
    s = np.array([[1.0], [0.0], [1.0], [0.2]], np.float32)
    spec = group_seeds(cams, KEYS, saliency=s)
    code = group_seeds(cams, KEYS, saliency=s, variant="code")
    assert spec.tolist() == [[3], [0], [7], [0]]
    # row 1: background (1 - S = 1) against 0.0 and 0.5, sure (S = 0, no CAM above 0.8);
    # row 3: background (0.8) but salient (S = 0.2 >= 32 / 255): unsure
    assert code.tolist() == [[3], [0], [7], [255]]
    # a background pixel with a CAM above 0.8 is unsure even without saliency
    near = _cams([(0.85, 0.0), (1.0, 0.0)] + [(0.0, 0.0)] * 48)
    assert group_seeds(near, KEYS, bg_score=0.9, variant="code")[:2].tolist() == [[255], [3]]
    # less than 1 % labelled foreground: the whole image unlabelled
    tiny = _cams([(1.0, 0.0)] + [(0.0, 0.0)] * 199)
    assert (group_seeds(tiny, KEYS, variant="code") == 255).all()
    assert (group_seeds(tiny, KEYS)[1:] == 0).all()


def test_seeder_options_and_errors():
    seeder = create_seeder("group", bg_score=0.3, variant="code")
    assert isinstance(seeder, GroupSeeds) and seeder.full_resolution and seeder.uses_saliency
    for bad in ({"bg_score": 1.5}, {"conflict": 0.0}, {"variant": "paper"}):
        with pytest.raises(WsssError):
            GroupSeeds(**bad)  # type: ignore[arg-type]
    image = np.zeros((1, 2, 3), np.uint8)
    cam = CamFile(keys=KEYS, cams=np.zeros((2, 1, 1), np.float32), size=(1, 2), high_res=None)
    with pytest.raises(ValueError, match="full-resolution"):
        seeder(image, cam)


def _saliency_from_gt(root: Path, data: VOCSegmentation, folder: Path) -> None:
    folder.mkdir()
    for image_id in data.ids:
        salient = (data.load_mask(image_id) > 0).astype(np.uint8) * 255
        Image.fromarray(salient).save(folder / f"{image_id}.png")


def test_group_seeds_for_a_split(seed_data, weak_patch, tmp_path: Path, monkeypatch):
    root, cam_dir = seed_data
    data = VOCSegmentation(root)
    plain, salient = tmp_path / "plain", tmp_path / "salient"
    make_seeds(data, cam_dir, plain, create_seeder("group"), progress=False)
    sal_dir = tmp_path / "saliency"
    _saliency_from_gt(root, data, sal_dir)
    cli = ["seeds", "--cams", str(cam_dir), "--out", str(salient), "--root", str(root),
           "--method", "group", "--saliency", str(sal_dir)]  # fmt: skip
    assert run_wsss(cli, monkeypatch) == 0
    for image_id in data.ids:
        gt = data.load_mask(image_id)
        cam = read_cams(cam_dir / f"{image_id}.npz")
        by_hand = group_seeds(cam.high_res, cam.keys)
        np.testing.assert_array_equal(read_label_png(plain / f"{image_id}.png"), by_hand)
        seed = read_label_png(salient / f"{image_id}.png")
        assert seed.shape == gt.shape
        # a perfect saliency map: background exactly where the GT says so, except where a
        # class CAM ties or conflicts with it; objects keep their CAM's class
        assert (seed[gt == 0] == 0).mean() > 0.95
        inside = (gt > 0) & (seed != 255)
        np.testing.assert_array_equal(seed[inside], gt[inside])
        assert (seed[weak_patch] == 0).all()  # the weak 0.15 CAM loses to 1 - S = 1
    saved = json.loads((salient / CONFIG_FILE).read_text())
    assert saved["method"] == "group" and saved["saliency"] == str(sal_dir.resolve())
    assert saved["conflict"] == 0.9 and saved["size"] == "image"
    with pytest.raises(WsssError, match="irnet seeds take no saliency"):
        make_seeds(data, cam_dir, tmp_path / "x", create_seeder("irnet"), saliency=sal_dir,
                   progress=False)  # fmt: skip
    (sal_dir / "im2.png").unlink()
    with pytest.raises(WsssError, match=r"im2\.png: missing saliency map"):
        make_seeds(data, cam_dir, tmp_path / "y", create_seeder("group"), saliency=sal_dir,
                   progress=False)  # fmt: skip
