"""COCO conversion on a hand-built 2-image instances file, and the dataset on its output."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.data.classes import COCO_CLASSES
from wsss.data.coco import COCOSegmentation, convert_coco
from wsss.errors import WsssError

# The official category ids of instances_*.json (1..90 with gaps), in the order of their names.
OFFICIAL_IDS = [
    *range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70,
    *range(72, 83), *range(84, 91),
]  # fmt: skip

# Image 1 is 8 wide, 6 high. Polygon rectangles [x0, x1) x [y0, y1) with integer corners cover
# exactly those pixels in pycocotools.
PERSON, DOG, CAR, BOTTLE = 1, 18, 3, 44  # COCO category ids
EXPECTED_139 = np.array(
    [
        [1, 1, 1, 1, 0, 0, 40, 0],
        [1, 1, 1, 1, 0, 0, 0, 255],
        [1, 1, 1, 255, 17, 17, 0, 255],
        [1, 1, 0, 17, 17, 17, 0, 255],
        [0, 0, 0, 17, 17, 255, 0, 0],
        [0, 0, 0, 0, 0, 255, 0, 0],
    ],
    dtype=np.uint8,
)


def rect(x0: int, y0: int, x1: int, y1: int) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def annotations() -> list[dict]:
    return [
        # person over x 0..3, y 0..2
        {"id": 1, "image_id": 139, "category_id": PERSON, "iscrowd": 0,
         "segmentation": [rect(0, 0, 4, 3)]},
        # dog over x 3..5, y 2..4: overlaps the person at (3, 2) -> 255
        {"id": 2, "image_id": 139, "category_id": DOG, "iscrowd": 0,
         "segmentation": [rect(3, 2, 6, 5)]},
        # a second person over x 0..1, y 2..3: overlap with the same class stays 1
        {"id": 3, "image_id": 139, "category_id": PERSON, "iscrowd": 0,
         "segmentation": [rect(0, 2, 2, 4)]},
        # crowd car, uncompressed column-major RLE: (x5, y4..5) and (x7, y1..3) -> 255
        {"id": 4, "image_id": 139, "category_id": CAR, "iscrowd": 1,
         "segmentation": {"counts": [34, 2, 7, 3, 2], "size": [6, 8]}},
        # bottle: a degenerate part (2 points) is dropped, the other covers (6, 0)
        {"id": 5, "image_id": 139, "category_id": BOTTLE, "iscrowd": 0,
         "segmentation": [[0, 5, 1, 5], rect(6, 0, 7, 1)]},
    ]  # fmt: skip


def make_coco(tmp_path: Path) -> tuple[Path, Path]:
    """A 2-image instances file (image 285 has no annotation) and its images."""
    image_dir = tmp_path / "val2017"
    image_dir.mkdir()
    rng = np.random.default_rng(0)
    for name, (w, h) in {"000000000139.jpg": (8, 6), "000000000285.jpg": (5, 3)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(image_dir / name)
    categories = [
        {"id": cid, "name": name, "supercategory": "x"}
        for cid, name in zip(OFFICIAL_IDS, COCO_CLASSES.names[1:], strict=True)
    ]
    random.Random(0).shuffle(categories)  # the file's order must not matter
    data = {
        "images": [
            {"id": 285, "file_name": "000000000285.jpg", "width": 5, "height": 3},
            {"id": 139, "file_name": "000000000139.jpg", "width": 8, "height": 6},
        ],
        "annotations": annotations(),
        "categories": categories,
    }
    json_path = tmp_path / "instances_val2017.json"
    json_path.write_text(json.dumps(data), encoding="utf-8")
    return json_path, image_dir


@pytest.fixture
def converted(tmp_path: Path) -> Path:
    json_path, image_dir = make_coco(tmp_path)
    out = tmp_path / "coco"
    assert convert_coco(json_path, image_dir, out, "val", progress=False) == 2
    return out


def test_official_ids_cover_the_80_classes() -> None:
    assert len(OFFICIAL_IDS) == 80 == COCO_CLASSES.num_labels
    assert len(set(OFFICIAL_IDS)) == 80


def test_masks_value_by_value(converted: Path) -> None:
    png = Image.open(converted / "SegmentationClass" / "000000000139.png")
    assert png.mode == "P"
    np.testing.assert_array_equal(np.asarray(png), EXPECTED_139)
    empty = np.asarray(Image.open(converted / "SegmentationClass" / "000000000285.png"))
    np.testing.assert_array_equal(empty, np.zeros((3, 5), np.uint8))


def test_category_names(converted: Path) -> None:
    names = COCO_CLASSES.names
    assert (names[1], names[3], names[17], names[40], names[80]) == (
        "person", "car", "dog", "bottle", "toothbrush",
    )  # fmt: skip


def test_layout_and_hard_links(converted: Path, tmp_path: Path) -> None:
    split = converted / "ImageSets" / "Segmentation" / "val.txt"
    assert split.read_text().split() == ["000000000139", "000000000285"]
    for stem in ("000000000139", "000000000285"):
        out = converted / "JPEGImages" / f"{stem}.jpg"
        assert out.stat().st_ino == (tmp_path / "val2017" / f"{stem}.jpg").stat().st_ino
    assert not list(converted.rglob(".*tmp*"))  # no temporary files left behind


def test_resume_skips_existing(converted: Path, tmp_path: Path) -> None:
    json_path, image_dir = tmp_path / "instances_val2017.json", tmp_path / "val2017"
    png = converted / "SegmentationClass" / "000000000285.png"
    png.write_bytes(b"sentinel")  # an existing file is taken as done
    assert convert_coco(json_path, image_dir, converted, "val", progress=False) == 0
    assert png.read_bytes() == b"sentinel"
    (converted / "SegmentationClass" / "000000000139.png").unlink()
    (converted / "JPEGImages" / "000000000285.jpg").unlink()
    assert convert_coco(json_path, image_dir, converted, "val", progress=False) == 1
    assert (converted / "JPEGImages" / "000000000285.jpg").is_file()
    redone = np.asarray(Image.open(converted / "SegmentationClass" / "000000000139.png"))
    np.testing.assert_array_equal(redone, EXPECTED_139)


def test_dataset_samples_and_labels(converted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSSS_COCO_ROOT", str(converted))
    ds = COCOSegmentation(split="val")
    assert ds.ids == ["000000000139", "000000000285"] and len(ds) == 2
    sample = ds[0]
    assert sample.image.shape == (6, 8, 3) and sample.image.dtype == np.uint8
    np.testing.assert_array_equal(sample.mask, EXPECTED_139)
    expected = np.zeros(80, np.float32)
    expected[[0, 16, 39]] = 1.0  # person, dog, bottle; the crowd car is not a label
    np.testing.assert_array_equal(sample.labels, expected)
    np.testing.assert_array_equal(ds[1].labels, np.zeros(80, np.float32))


def test_missing_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    with pytest.raises(WsssError, match="nope.json"):
        convert_coco(tmp_path / "nope.json", tmp_path / "img", tmp_path / "out", "val")


MALFORMED = [
    "{not json",
    "[]",
    '{"images": [], "categories": []}',
    '{"images": [], "annotations": [], "categories": []}',
    '{"images": [{}], "annotations": [], "categories": []}',
    '{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [], "categories": []}',
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_json_names_the_file(tmp_path: Path, text: str) -> None:
    (tmp_path / "img").mkdir()
    bad = tmp_path / "bad_instances.json"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(WsssError, match="bad_instances.json"):
        convert_coco(bad, tmp_path / "img", tmp_path / "out", "val", progress=False)


def _rewrite(json_path: Path, edit) -> None:
    data = json.loads(json_path.read_text())
    edit(data)
    json_path.write_text(json.dumps(data))


def test_unknown_category_is_an_error(tmp_path: Path) -> None:
    json_path, image_dir = make_coco(tmp_path)
    _rewrite(json_path, lambda d: d["categories"].append({"id": 91, "name": "unicorn"}))
    with pytest.raises(WsssError, match="unicorn"):
        convert_coco(json_path, image_dir, tmp_path / "out", "val", progress=False)


def test_image_size_mismatch_and_missing_image(tmp_path: Path) -> None:
    json_path, image_dir = make_coco(tmp_path)
    _rewrite(json_path, lambda d: d["images"][0].update(width=6))
    with pytest.raises(WsssError, match="000000000285.jpg.*5x3"):
        convert_coco(json_path, image_dir, tmp_path / "out", "val", progress=False)
    _rewrite(json_path, lambda d: d["images"][0].update(width=5))
    (image_dir / "000000000285.jpg").unlink()
    with pytest.raises(WsssError, match="missing COCO image"):
        convert_coco(json_path, image_dir, tmp_path / "out", "val", progress=False)


def test_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(WsssError, match="not a converted COCO root"):
        COCOSegmentation(tmp_path, "val")
    with pytest.raises(WsssError, match="does not exist"):
        COCOSegmentation(tmp_path / "missing", "val")
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("\n")
    with pytest.raises(WsssError, match="empty split"):
        COCOSegmentation(tmp_path, "val")


def test_categories_out_of_official_order_are_an_error(tmp_path: Path) -> None:
    json_path, image_dir = make_coco(tmp_path)

    def swap(data: dict) -> None:
        for cat in data["categories"]:
            if cat["name"] in ("person", "bicycle"):
                cat["id"] = 3 - cat["id"]  # person <-> bicycle ids

    _rewrite(json_path, swap)
    with pytest.raises(WsssError, match="order"):
        convert_coco(json_path, image_dir, tmp_path / "out", "val", progress=False)
