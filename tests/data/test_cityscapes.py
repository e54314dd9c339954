"""Cityscapes on fake ``leftImg8bit`` / ``gtFine`` folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.data.cityscapes import CITYSCAPES_LUT, CityscapesSegmentation
from wsss.errors import WsssError

# The official trainId of each labelId 0..33 (cityscapesScripts labels.py), 255 = ignored.
OFFICIAL_TRAIN_IDS = [
    255, 255, 255, 255, 255, 255, 255, 0, 1, 255, 255, 2, 3, 4, 255, 255, 255, 5, 255, 6, 7, 8, 9,
    10, 11, 12, 13, 14, 15, 255, 255, 16, 17, 18,
]  # fmt: skip

RAW = np.array([[7, 8, 0, 33], [26, 255, 1, 34], [24, 24, 29, 31]], dtype=np.uint8)
MAPPED = np.array([[0, 1, 255, 18], [13, 255, 255, 255], [11, 11, 255, 16]], dtype=np.uint8)


def write_frame(root: Path, split: str, frame: str, raw: np.ndarray) -> None:
    city = frame.split("_")[0]
    img_dir = root / "leftImg8bit" / split / city
    gt_dir = root / "gtFine" / split / city
    img_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    h, w = raw.shape
    Image.fromarray(np.full((h, w, 3), 30, np.uint8)).save(img_dir / f"{frame}_leftImg8bit.png")
    Image.fromarray(raw, mode="L").save(gt_dir / f"{frame}_gtFine_labelIds.png")
    # a train-id file with different content must be ignored
    Image.fromarray(np.zeros_like(raw), mode="L").save(gt_dir / f"{frame}_gtFine_labelTrainIds.png")


@pytest.fixture
def city_root(tmp_path: Path) -> Path:
    write_frame(tmp_path, "train", "bochum_000000_000313", RAW)
    write_frame(tmp_path, "train", "aachen_000000_000019", RAW[::-1].copy())
    write_frame(tmp_path, "val", "frankfurt_000000_000294", RAW)
    return tmp_path


def test_lookup_table_matches_official_table() -> None:
    np.testing.assert_array_equal(CITYSCAPES_LUT[:34], OFFICIAL_TRAIN_IDS)
    assert (CITYSCAPES_LUT[34:] == 255).all()


def test_ids_masks_and_labels(city_root: Path) -> None:
    ds = CityscapesSegmentation(city_root, "train")
    assert ds.ids == ["aachen/aachen_000000_000019", "bochum/bochum_000000_000313"]
    sample = ds[1]
    assert sample.image.shape == (3, 4, 3)
    np.testing.assert_array_equal(sample.mask, MAPPED)
    expected = np.zeros(19, np.float32)
    expected[[0, 1, 11, 13, 16, 18]] = 1.0
    np.testing.assert_array_equal(sample.labels, expected)
    np.testing.assert_array_equal(ds[0].mask, MAPPED[::-1])


def test_env_var(city_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSSS_CITYSCAPES_ROOT", str(city_root))
    ds = CityscapesSegmentation(split="val")
    assert ds.ids == ["frankfurt/frankfurt_000000_000294"]
    assert ds.image_path(ds.ids[0]).name == "frankfurt_000000_000294_leftImg8bit.png"


def test_errors(city_root: Path, tmp_path: Path) -> None:
    with pytest.raises(WsssError, match="unknown Cityscapes split 'train_extra'"):
        CityscapesSegmentation(city_root, "train_extra")
    with pytest.raises(WsssError, match=r"leftImg8bit/test: missing split folder"):
        CityscapesSegmentation(city_root, "test")
    (city_root / "leftImg8bit" / "test" / "berlin").mkdir(parents=True)
    with pytest.raises(WsssError, match=r"leftImg8bit/test: empty split"):
        CityscapesSegmentation(city_root, "test")
    (
        city_root / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000294_gtFine_labelIds.png"
    ).unlink()
    with pytest.raises(WsssError, match="frankfurt_000000_000294_gtFine_labelIds.png: missing"):
        CityscapesSegmentation(city_root, "val")[0]
