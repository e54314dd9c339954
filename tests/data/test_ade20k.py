"""ADE20K on a fake ADEChallengeData2016 folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.data.ade20k import ADE20KSegmentation
from wsss.errors import WsssError

RAW_B = np.array([[0, 1, 2], [150, 150, 0]], dtype=np.uint8)  # 150: the last class
RAW_A = np.array([[5, 5, 5], [5, 0, 5]], dtype=np.uint8)


def write_pair(root: Path, folder: str, stem: str, raw: np.ndarray) -> None:
    h, w = raw.shape
    (root / "images" / folder).mkdir(parents=True, exist_ok=True)
    (root / "annotations" / folder).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(root / "images" / folder / f"{stem}.jpg")
    Image.fromarray(raw, mode="L").save(root / "annotations" / folder / f"{stem}.png")


@pytest.fixture
def ade_root(tmp_path: Path) -> Path:
    root = tmp_path / "ADEChallengeData2016"
    write_pair(root, "validation", "ADE_val_00000002", RAW_B)
    write_pair(root, "validation", "ADE_val_00000001", RAW_A)
    write_pair(root, "training", "ADE_train_00000001", RAW_A)
    (root / "images" / "validation" / "notes.txt").write_text("not an image")
    return root


def test_ids_sorted_and_masks_mapped(ade_root: Path) -> None:
    ds = ADE20KSegmentation(ade_root, "validation")
    assert ds.ids == ["ADE_val_00000001", "ADE_val_00000002"]
    sample = ds[1]
    np.testing.assert_array_equal(sample.mask, [[255, 0, 1], [149, 149, 255]])
    expected = np.zeros(150, np.float32)
    expected[[0, 1, 149]] = 1.0
    np.testing.assert_array_equal(sample.labels, expected)
    assert sample.image.shape == (2, 3, 3) and sample.id == "ADE_val_00000002"


def test_other_is_ignored_not_a_label(ade_root: Path) -> None:
    sample = ADE20KSegmentation(ade_root, "validation")[0]
    np.testing.assert_array_equal(sample.mask, [[4, 4, 4], [4, 255, 4]])
    assert sample.labels.sum() == 1.0 and sample.labels[4] == 1.0


def test_parent_folder_env_var_and_alias(ade_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSSS_ADE20K_ROOT", str(ade_root.parent))
    ds = ADE20KSegmentation(split="train")
    assert ds.ids == ["ADE_train_00000001"] and ds.root == ade_root


def test_out_of_range_id_is_an_error(ade_root: Path) -> None:
    write_pair(ade_root, "training", "ADE_train_00000002", np.array([[151]], np.uint8))
    ds = ADE20KSegmentation(ade_root, "training")
    with pytest.raises(WsssError, match=r"ADE_train_00000002\.png.*\[151\]"):
        ds[1]


def test_errors(ade_root: Path, tmp_path: Path) -> None:
    with pytest.raises(WsssError, match="unknown ADE20K split 'testing'"):
        ADE20KSegmentation(ade_root, "testing")
    with pytest.raises(WsssError, match="not an ADE20K root"):
        ADE20KSegmentation(tmp_path / "ADEChallengeData2016" / "images", "training")
    for f in (ade_root / "images" / "training").iterdir():
        f.unlink()
    with pytest.raises(WsssError, match=r"images/training: empty split"):
        ADE20KSegmentation(ade_root, "training")
    (ade_root / "images" / "training").rmdir()
    with pytest.raises(WsssError, match=r"images/training: missing split folder"):
        ADE20KSegmentation(ade_root, "training")
    for f in (ade_root / "annotations" / "validation").iterdir():
        f.unlink()
    (ade_root / "annotations" / "validation").rmdir()
    with pytest.raises(WsssError, match=r"annotations/validation: missing annotation folder"):
        ADE20KSegmentation(ade_root, "validation")
