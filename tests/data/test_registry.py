"""The dataset registry: one parametrized test over every entry, on tiny fake roots."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared_data import VOC_SAMPLES
from wsss.data.base import SegmentationDataset
from wsss.data.registry import DATASETS, DEFAULT_SPLITS, create_dataset, dataset_class
from wsss.errors import WsssError
from wsss.io.palette import write_label_png

NAMES = ["voc", "coco", "ade20k", "cityscapes", "synthetic"]
MASK = np.array([[0, 1], [1, 255]], dtype=np.uint8)


def _rgb(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((2, 2, 3), 120, np.uint8)).save(path)


def _grey(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values, mode="L").save(path)


def voc_layout(root: Path, split: str = "train") -> None:
    _rgb(root / "JPEGImages" / "img1.jpg")
    write_label_png(root / "SegmentationClass" / "img1.png", MASK)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("img1\n")


def synthetic_layout(root: Path) -> None:
    voc_layout(root)
    (root / "meta.json").write_text(json.dumps({"classes": ["background", "disc", "square"]}))


def ade20k_layout(root: Path) -> None:
    _rgb(root / "images" / "training" / "img1.jpg")
    _grey(root / "annotations" / "training" / "img1.png", MASK + 1)  # 1, 2 -> labels 0, 1


def cityscapes_layout(root: Path) -> None:
    _rgb(root / "leftImg8bit" / "train" / "ulm" / "ulm_000000_000019_leftImg8bit.png")
    raw = np.array([[0, 7], [7, 8]], dtype=np.uint8)  # road = 0, sidewalk = 1
    _grey(root / "gtFine" / "train" / "ulm" / "ulm_000000_000019_gtFine_labelIds.png", raw)


LAYOUTS: dict[str, Callable[[Path], None]] = {
    "voc": voc_layout,
    "coco": voc_layout,
    "ade20k": ade20k_layout,
    "cityscapes": cityscapes_layout,
    "synthetic": synthetic_layout,
}
# label id 1 of a background dataset is label index 0
EXPECTED_LABELS = {
    "voc": [0],
    "coco": [0],
    "synthetic": [0],
    "ade20k": [0, 1],
    "cityscapes": [0, 1],
}


def test_registry_keys() -> None:
    assert list(DATASETS) == NAMES
    assert set(DEFAULT_SPLITS) == set(NAMES)
    assert DEFAULT_SPLITS["ade20k"] == "training"


@pytest.mark.parametrize("name", NAMES)
def test_create_each_dataset(name: str, tmp_path: Path) -> None:
    if name == "synthetic":
        pytest.importorskip("wsss.data.synthetic")
    LAYOUTS[name](tmp_path)
    ds = create_dataset(name, tmp_path)
    assert isinstance(ds, SegmentationDataset)
    assert ds.split == DEFAULT_SPLITS[name] and len(ds) == 1
    sample = ds[0]
    assert sample.image.shape == (2, 2, 3) and sample.mask.shape == (2, 2)
    assert sample.labels.shape == (ds.classes.num_labels,)
    assert np.flatnonzero(sample.labels).tolist() == EXPECTED_LABELS[name]


def test_synthetic_entry_is_the_synthetic_class() -> None:
    synthetic = pytest.importorskip("wsss.data.synthetic")
    assert dataset_class("synthetic") is synthetic.SyntheticSegmentation


def test_transform_is_passed_on(tmp_path: Path) -> None:
    voc_layout(tmp_path, "val")
    ds = create_dataset("voc", tmp_path, "val", transform=lambda s: s.id)
    assert ds[0] == "img1"


def test_env_var_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ade20k_layout(tmp_path)
    monkeypatch.setenv("WSSS_ADE20K_ROOT", str(tmp_path))
    assert create_dataset("ade20k").ids == ["img1"]


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(WsssError, match="unknown dataset 'kitti'") as info:
        create_dataset("kitti")
    for name in NAMES:
        assert name in str(info.value)


def test_real_voc_samples() -> None:
    if not (VOC_SAMPLES / "ImageSets/Segmentation/samples.txt").is_file():
        pytest.skip("VOC samples not available")
    ds = create_dataset("voc", VOC_SAMPLES, "samples")
    assert len(ds) == 6
    sample = ds[0]
    assert sample.mask.shape == sample.image.shape[:2]
    assert sample.labels.sum() >= 1
