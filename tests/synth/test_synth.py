"""The synthetic VOC benchmark: layout, determinism, resume, version 2 kept, the WSSS problem.

Version-3 statistics that ``docs/synthetic.md`` states are in ``test_statistics.py``.
"""

from __future__ import annotations

import collections
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import distance_transform_cdt

from wsss.data.base import labels_from_mask
from wsss.data.ids import read_id_list
from wsss.data.voc import VOCSegmentation
from wsss.errors import WsssError
from wsss.io.images import read_image, read_label_png
from wsss.io.palette import VOC_PALETTE
from wsss.synth import CLASS_DESIGNS, SYNTH_CLASSES, generate_benchmark, make_grid_figure
from wsss.synth.design import GENERATOR_VERSION, SCENES, check_design
from wsss.synth.design3 import CLASS_DESIGNS_V3, check_design3
from wsss.synth.generate import annotation, image_rng, part_map, render_sample
from wsss.synth.render import void_band
from wsss.synth.render3 import render_image3

SIZE = 64
N_TRAIN, N_VAL = 60, 40
K = SYNTH_CLASSES.num_classes


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "bench"
    generate_benchmark(root, n_train=N_TRAIN, n_val=N_VAL, size=SIZE, seed=3, progress=False)
    return root


@pytest.fixture(scope="module")
def renders() -> list:
    """200 version-2 images rendered in memory (seed 0, train split)."""
    return [render_sample(0, "train", k, SIZE, "2") for k in range(200)]


@pytest.fixture(scope="module")
def bench2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth2") / "bench"
    generate_benchmark(root, n_train=N_TRAIN, n_val=N_VAL, size=SIZE, seed=3, progress=False,
                       version="2")  # fmt: skip
    return root


def _masks(root: Path, split: str, folder: str = "SegmentationClass") -> list[np.ndarray]:
    ids = read_id_list(root / "ImageSets" / "Segmentation" / f"{split}.txt")
    return [read_label_png(root / folder / f"{i}.png") for i in ids]


# -- design -------------------------------------------------------------------------------------
def test_design_tables_are_consistent() -> None:
    check_design()
    check_design3()
    assert GENERATOR_VERSION == "3"
    assert SYNTH_CLASSES.names[0] == "background" and SYNTH_CLASSES.has_background
    assert SYNTH_CLASSES.num_labels == len(CLASS_DESIGNS) >= 8
    bodies = collections.Counter(d.body.family for d in CLASS_DESIGNS)
    assert all(n == 2 for n in bodies.values()), bodies  # version 2: every body shared by a pair
    assert len({d.part for d in CLASS_DESIGNS}) == len(CLASS_DESIGNS)  # parts are unique
    # version 3: the same names, parts and scenes; shapes still shared by pairs, textures not
    assert [d.name for d in CLASS_DESIGNS_V3] == list(SYNTH_CLASSES.names[1:])
    assert [(d.part, d.scene) for d in CLASS_DESIGNS_V3] == [
        (d.part, d.scene) for d in CLASS_DESIGNS
    ]
    shapes = collections.Counter(d.shape for d in CLASS_DESIGNS_V3)
    assert all(n == 2 for n in shapes.values()), shapes
    assert len({d.texture for d in CLASS_DESIGNS_V3}) == len(CLASS_DESIGNS_V3)


def test_void_band_hand_computed() -> None:
    inst = np.zeros((6, 6), dtype=np.uint8)
    inst[2:4, 2:4] = 1
    expected = np.zeros((6, 6), dtype=bool)
    expected[2:4, 1:5] = True  # the square and its left/right neighbours
    expected[1:5, 2:4] = True  # and its top/bottom neighbours (corners untouched)
    np.testing.assert_array_equal(void_band(inst), expected)
    assert not void_band(np.full((4, 4), 3, dtype=np.uint8)).any()


# -- layout -------------------------------------------------------------------------------------
def test_layout_is_voc(bench: Path) -> None:
    lists = bench / "ImageSets" / "Segmentation"
    train, val = read_id_list(lists / "train.txt"), read_id_list(lists / "val.txt")
    assert train == [f"train_{k:05d}" for k in range(N_TRAIN)]
    assert val == [f"val_{k:05d}" for k in range(N_VAL)]
    ids = set(train + val)
    for folder, suffix in (("JPEGImages", ".jpg"), ("SegmentationClass", ".png")):
        assert {p.stem for p in (bench / folder).iterdir()} == ids
        assert all(p.suffix == suffix for p in (bench / folder).iterdir())
    assert {p.name for p in bench.iterdir()} == {
        "JPEGImages", "SegmentationClass", "SegmentationObject", "SegmentationPart",
        "SynthAnnotations", "ImageSets", "meta.json",
    }  # fmt: skip
    for folder, suffix in (("SegmentationPart", ".png"), ("SynthAnnotations", ".json")):
        assert {p.name for p in (bench / folder).iterdir()} == {f"{i}{suffix}" for i in ids}
    with Image.open(bench / "JPEGImages" / "val_00007.jpg") as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (SIZE, SIZE))
    with Image.open(bench / "SegmentationClass" / "val_00007.png") as im:
        assert (im.format, im.mode, im.size) == ("PNG", "P", (SIZE, SIZE))
        palette = np.asarray(im.getpalette(), dtype=np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(palette, VOC_PALETTE[: len(palette)])
    for mask in _masks(bench, "train"):
        assert set(np.unique(mask).tolist()) <= set(range(K)) | {255}


def test_meta_and_voc_reader(bench: Path) -> None:
    meta = json.loads((bench / "meta.json").read_text())
    assert meta["classes"] == list(SYNTH_CLASSES.names)
    assert meta["generator_version"] == "3"
    assert meta["extra_folders"] == ["SegmentationPart", "SynthAnnotations"]
    assert (meta["seed"], meta["size"], meta["counts"]) == (
        3,
        SIZE,
        {"train": N_TRAIN, "val": N_VAL},
    )
    dataset = VOCSegmentation(bench, "val")
    dataset.classes = SYNTH_CLASSES
    sample = dataset[0]
    assert sample.image.shape == (SIZE, SIZE, 3) and sample.mask.shape == (SIZE, SIZE)
    assert 1 <= sample.labels.sum() <= 3


# -- determinism and resume ---------------------------------------------------------------------
def test_same_seed_is_byte_identical_other_seed_differs(tmp_path: Path) -> None:
    kwargs = dict(n_train=5, n_val=3, size=48, progress=False)
    generate_benchmark(tmp_path / "a", seed=7, **kwargs)
    generate_benchmark(tmp_path / "b", seed=7, **kwargs)
    generate_benchmark(tmp_path / "c", seed=8, **kwargs)
    a, b, c = (_files(tmp_path / name) for name in "abc")
    assert len(a) == 5 * 8 + 3 and a == b
    assert a.keys() == c.keys()
    images = [k for k in a if k.startswith("JPEGImages")]
    assert all(a[k] != c[k] for k in images)


def test_resume_rewrites_identical_bytes(bench: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bench, copy)
    for rel in (
        "JPEGImages/train_00003.jpg",
        "SegmentationClass/val_00010.png",
        "SegmentationObject/train_00059.png",
        "SegmentationPart/val_00001.png",
        "SynthAnnotations/train_00010.json",
        "ImageSets/Segmentation/val.txt",
        "meta.json",
    ):
        (copy / rel).unlink()
    stamp = (copy / "JPEGImages" / "train_00004.jpg").stat().st_mtime_ns
    generate_benchmark(copy, n_train=N_TRAIN, n_val=N_VAL, size=SIZE, seed=3, progress=False)
    assert _files(copy) == _files(bench)
    assert (copy / "JPEGImages" / "train_00004.jpg").stat().st_mtime_ns == stamp  # skipped


def test_image_does_not_depend_on_order(bench: Path) -> None:
    rendered = render_sample(3, "val", 17, SIZE)
    np.testing.assert_array_equal(
        read_label_png(bench / "SegmentationClass" / "val_00017.png"), rendered.label
    )
    again = render_image3(image_rng(3, 1, 17), SIZE)
    np.testing.assert_array_equal(again.image, rendered.image)
    for k in (59, 0, 31):  # rendered in another order than written: the same masks
        r = render_sample(3, "train", k, SIZE)
        np.testing.assert_array_equal(
            read_label_png(bench / "SegmentationPart" / f"train_{k:05d}.png"), part_map(r)
        )
        record = json.loads((bench / "SynthAnnotations" / f"train_{k:05d}.json").read_text())
        assert record == annotation(r)
    decoded = read_image(bench / "JPEGImages" / "val_00017.jpg").astype(int)
    assert np.abs(decoded - rendered.image).mean() < 6  # the same picture, JPEG-compressed


def test_refuses_other_parameters_and_bad_arguments(bench: Path, tmp_path: Path) -> None:
    with pytest.raises(WsssError, match="generator_version='3'"):
        generate_benchmark(bench, n_train=2, n_val=2, size=SIZE, seed=3, progress=False,
                           version="2")  # fmt: skip
    with pytest.raises(WsssError, match="unknown generator version"):
        generate_benchmark(tmp_path / "x", n_train=2, n_val=2, progress=False, version="1")
    with pytest.raises(WsssError, match="seed=3"):
        generate_benchmark(bench, n_train=2, n_val=2, size=SIZE, seed=4, progress=False)
    with pytest.raises(WsssError, match="size"):
        generate_benchmark(bench, n_train=2, n_val=2, size=96, seed=3, progress=False)
    with pytest.raises(WsssError, match="at least one image"):
        generate_benchmark(tmp_path / "x", n_train=0, n_val=2, progress=False)
    with pytest.raises(WsssError, match="at least 32"):
        generate_benchmark(tmp_path / "x", n_train=1, n_val=1, size=16, progress=False)


def test_grid_figure(bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    make_grid_figure(bench, out, n=6)
    with Image.open(out) as im:
        width, height = im.size
    assert width > 4 * 2 * SIZE and height > 2 * SIZE  # 4 pairs per row, 2 rows


# -- masks and labels ---------------------------------------------------------------------------
def test_labels_come_from_masks_and_1_to_3_objects(renders: list, bench: Path) -> None:
    for r in renders:
        drawn = {o.class_id for o in r.objects}
        expected = np.zeros(SYNTH_CLASSES.num_labels, dtype=np.float32)
        expected[[c - 1 for c in drawn]] = 1
        np.testing.assert_array_equal(labels_from_mask(r.label, SYNTH_CLASSES), expected)
        assert 1 <= len(r.objects) <= 3
        for o in r.objects:  # every object keeps unoccluded, unbanded pixels of its class
            inside = r.instances == o.instance_id
            assert inside.any() and (r.label[inside] == o.class_id).all()
    counts = collections.Counter(len(r.objects) for r in renders)
    assert set(counts) == {1, 2, 3}
    for mask in _masks(bench, "val", "SegmentationObject"):
        assert 1 <= len(set(np.unique(mask).tolist()) - {0, 255}) <= 3


def test_void_band_along_borders(bench: Path) -> None:
    touching, total = 0, 0
    for mask in _masks(bench, "train"):
        void = mask == 255
        assert void.any()
        for a, b in ((mask[:, 1:], mask[:, :-1]), (mask[1:, :], mask[:-1, :])):
            # no two touching labelled pixels of different labels: the band separates them
            assert not ((a != b) & (a != 255) & (b != 255)).any()
        # the band is thin (~2 px): void pixels lie next to labelled ones
        assert distance_transform_cdt(void, metric="chessboard").max() <= 3
        padded = np.pad(~void, 1)
        near = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
        touching, total = touching + int(near[void].sum()), total + int(void.sum())
    assert touching / total > 0.85


# -- the WSSS problem ---------------------------------------------------------------------------
def test_every_class_and_scene_appears_with_context_bias(renders: list) -> None:
    classes = collections.Counter(o.class_id for r in renders for o in r.objects)
    assert set(classes) == set(range(1, K))
    assert set(r.scene for r in renders) == set(SCENES)
    preferred = np.mean(
        [r.scene == CLASS_DESIGNS[r.objects[0].class_id - 1].scene for r in renders]
    )
    assert 0.37 < preferred < 0.63  # 0.4 + 0.6 / 6 = 0.5 expected


def test_part_is_a_small_fraction_of_each_object(renders: list) -> None:
    big = [o for r in renders for o in r.objects if o.area >= 150]
    fractions = np.array([o.part_area / o.area for o in big])
    assert len(fractions) > 100
    assert 0.05 <= np.median(fractions) <= 0.12
    assert np.mean((fractions > 0.02) & (fractions < 0.16)) > 0.95


def _colour_bins(image: np.ndarray, bins: int = 8) -> np.ndarray:
    q = image.astype(np.int64) // (256 // bins)
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def _miou(gts: list[np.ndarray], preds: list[np.ndarray]) -> float:
    conf = np.zeros((K, K), dtype=np.int64)
    for gt, pred in zip(gts, preds, strict=True):
        ok = gt != 255
        np.add.at(conf, (gt[ok].astype(np.int64), pred[ok].astype(np.int64)), 1)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    return float(np.mean(inter[union > 0] / union[union > 0]))


def _colour_only_predictions(bench: Path, prior_weight: float) -> tuple[list, list]:
    """Per-pixel colour-histogram naive Bayes, argmax restricted to background + the image's
    classes (i.e. told the image-level labels)."""
    counts = np.zeros((K, 8**3))
    for sample_id in read_id_list(bench / "ImageSets" / "Segmentation" / "train.txt"):
        image = read_image(bench / "JPEGImages" / f"{sample_id}.jpg")
        mask = read_label_png(bench / "SegmentationClass" / f"{sample_id}.png")
        ok = mask != 255
        np.add.at(counts, (mask[ok].astype(np.int64), _colour_bins(image)[ok]), 1)
    log_lik = np.log((counts + 1) / (counts.sum(1, keepdims=True) + counts.shape[1]))
    log_prior = np.log(counts.sum(1) / counts.sum())
    gts, preds = [], []
    for sample_id in read_id_list(bench / "ImageSets" / "Segmentation" / "val.txt"):
        image = read_image(bench / "JPEGImages" / f"{sample_id}.jpg")
        mask = read_label_png(bench / "SegmentationClass" / f"{sample_id}.png")
        allowed = np.array([0, *(c for c in np.unique(mask) if 0 < c < 255)])
        scores = (
            log_lik[allowed][:, _colour_bins(image)] + prior_weight * log_prior[allowed, None, None]
        )
        gts.append(mask)
        preds.append(allowed[scores.argmax(0)])
    return gts, preds


def test_colour_alone_cannot_segment(bench: Path) -> None:
    best = 0.0
    for prior_weight in (0.0, 0.5, 1.0):
        gts, preds = _colour_only_predictions(bench, prior_weight)
        assert _miou(gts, gts) == pytest.approx(1.0)
        best = max(best, _miou(gts, preds))
    assert best < 0.3, f"a colour-only classifier reaches mIoU {best:.3f}"


def test_colour_does_not_tell_the_present_classes_apart(renders: list) -> None:
    """Given the object masks, a colour histogram picks an object's class among the image's
    classes no better than chance: the class is in the shape of the part, not the colour."""
    counts = np.zeros((K, 8**3))
    for r in renders[:120]:
        ok = r.label != 255
        np.add.at(counts, (r.label[ok].astype(np.int64), _colour_bins(r.image)[ok]), 1)
    log_lik = np.log((counts + 1) / (counts.sum(1, keepdims=True) + counts.shape[1]))
    hits, chance = [], []
    for r in renders[120:]:
        present = sorted({o.class_id for o in r.objects})
        if len(present) < 2:
            continue
        for o in r.objects:
            pixels = _colour_bins(r.image)[r.instances == o.instance_id]
            guess = present[int(log_lik[present][:, pixels].sum(1).argmax())]
            hits.append(guess == o.class_id)
            chance.append(1 / len(present))
    assert len(hits) >= 40
    assert np.mean(hits) < np.mean(chance) + 0.2, (np.mean(hits), np.mean(chance))


# -- version 2 stays reachable ------------------------------------------------------------------
#: sha256 of image + label + instance bytes of version-2 renders (seed 11, 48 px), computed with
#: the code of main at 7d41625, before version 3 existed.
V2_RENDERS = {
    ("train", 0): "3ae6cc3691d9809581cda2598242bc62eb80c751dd132ed9c2716c763c53f24a",
    ("train", 1): "24e3cbe521a9f6ab79f116c9666fb7ac2dc547a8fc6aee14935ba3e174c58b07",
    ("val", 5): "701a3aa7c84711e63c9f4f394e7397041981d799421294aecf7aeae7e14460d6",
}


def test_version_2_renders_as_before() -> None:
    for (split, k), digest in V2_RENDERS.items():
        r = render_sample(11, split, k, 48, "2")
        data = r.image.tobytes() + r.label.tobytes() + r.instances.tobytes()
        assert hashlib.sha256(data).hexdigest() == digest, (split, k)
        assert r.textures == () and r.clutter is None


def test_version_2_folder_layout(bench2: Path, bench: Path) -> None:
    meta = json.loads((bench2 / "meta.json").read_text())
    assert meta["generator_version"] == "2" and "extra_folders" not in meta
    assert {p.name for p in bench2.iterdir()} == {
        "JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets", "meta.json",
    }  # fmt: skip
    r = render_sample(3, "val", 17, SIZE, "2")
    np.testing.assert_array_equal(
        read_label_png(bench2 / "SegmentationClass" / "val_00017.png"), r.label
    )
    assert not np.array_equal(
        r.label, read_label_png(bench / "SegmentationClass" / "val_00017.png")
    )
    with pytest.raises(WsssError, match="generator_version='2'"):
        generate_benchmark(bench2, n_train=2, n_val=2, size=SIZE, seed=3, progress=False)
