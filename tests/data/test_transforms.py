"""Training / evaluation transforms: shapes, mask values, padding, flip consistency, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from shared_data import VOC_SAMPLES
from wsss.data.base import Sample
from wsss.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EvalTransform,
    RandomLongSideResize,
    TrainTransform,
)

LABELS = np.array([1, 0, 1], dtype=np.float32)


def blocks_sample(h: int = 40, w: int = 60) -> Sample:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[: h // 2, w // 3 :] = 3
    mask[h // 2 :, : w // 2] = 7
    return Sample(image, mask, LABELS, "blocks")


def coordinate_sample(size: int = 32) -> Sample:
    """Red encodes x (8 * x), green encodes y (8 * y); the mask is x mod 5."""
    y, x = np.mgrid[:size, :size]
    image = np.stack([8 * x, 8 * y, np.zeros_like(x)], axis=-1).astype(np.uint8)
    return Sample(image, (x % 5).astype(np.uint8), LABELS, "coords")


def test_shapes_and_dtypes() -> None:
    torch.manual_seed(0)
    out = TrainTransform(long_side=(50, 70), crop=48)(blocks_sample())
    assert out["image"].shape == (3, 48, 48) and out["image"].dtype == torch.float32
    assert out["mask"].shape == (48, 48) and out["mask"].dtype == torch.int64
    assert type(out["image"]) is torch.Tensor and type(out["mask"]) is torch.Tensor
    torch.testing.assert_close(out["labels"], torch.tensor([1.0, 0.0, 1.0]))
    assert out["id"] == "blocks"


def test_mask_values_from_original_set_or_ignore() -> None:
    transform = TrainTransform(long_side=(20, 90), crop=48)
    for seed in range(10):
        torch.manual_seed(seed)
        values = set(transform(blocks_sample())["mask"].unique().tolist())
        assert values <= {0, 3, 7, 255}


def test_padding_uses_ignore_and_mean_colour() -> None:
    image = np.empty((40, 20, 3), np.uint8)
    image[:] = (200, 100, 50)
    sample = Sample(image, np.full((40, 20), 3, np.uint8), LABELS, "tall")
    transform = TrainTransform(
        long_side=(20, 20), crop=32, flip=False, color_jitter=None, mean=(0.5,) * 3, std=(0.25,) * 3
    )
    torch.manual_seed(0)
    out = transform(sample)
    mask, img = out["mask"], out["image"]
    inside = mask == 3
    assert int(inside.sum()) == 20 * 10  # long side 40 -> 20, short side 20 -> 10
    rows, cols = torch.nonzero(inside, as_tuple=True)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (20, 10)
    assert bool((mask[~inside] == 255).all())
    assert bool((img[:, ~inside] == 0).all())  # padded with 0 after normalising
    expected = (torch.tensor([200.0, 100.0, 50.0]) / 255 - 0.5) / 0.25
    torch.testing.assert_close(img[:, inside], expected[:, None].expand(3, 200))


def test_flip_and_crop_move_image_and_mask_together() -> None:
    transform = TrainTransform(
        long_side=(32, 32), crop=16, color_jitter=None, mean=(0.0,) * 3, std=(1.0,) * 3
    )
    flipped = set()
    for seed in range(12):
        torch.manual_seed(seed)
        out = transform(coordinate_sample())
        x = torch.round(out["image"][0] * 255 / 8).long()
        y = torch.round(out["image"][1] * 255 / 8).long()
        torch.testing.assert_close(out["mask"], x % 5)
        assert bool((y == y[:, :1]).all())  # rows stay rows
        step = x[:, 1:] - x[:, :-1]
        assert bool((step == step[0, 0]).all()) and abs(int(step[0, 0])) == 1
        flipped.add(int(step[0, 0]) == -1)
    assert flipped == {True, False}


def test_long_side_bounds_are_inclusive() -> None:
    resize = RandomLongSideResize(10, 12)
    image = tv_tensors.Image(torch.zeros(3, 30, 20, dtype=torch.uint8))
    seen = set()
    for seed in range(60):
        torch.manual_seed(seed)
        h, w = resize(image).shape[-2:]
        assert abs(w - h * 2 / 3) <= 1
        seen.add(h)
    assert seen == {10, 11, 12}
    with pytest.raises(ValueError, match="min_size <= max_size"):
        RandomLongSideResize(12, 10)


def test_resize_is_nearest_for_masks() -> None:
    mask = tv_tensors.Mask(torch.tensor([[0, 200], [9, 4]], dtype=torch.uint8))
    out = RandomLongSideResize(5, 5)(mask)
    assert set(out.unique().tolist()) == {0, 200, 9, 4}


def test_colour_jitter_changes_the_image_only() -> None:
    sample = blocks_sample(32, 32)
    common = dict(long_side=(32, 32), crop=32, flip=False)
    torch.manual_seed(0)
    jittered = TrainTransform(color_jitter=(0.5, 0.5, 0.5, 0.2), **common)(sample)
    plain = TrainTransform(color_jitter=None, **common)(sample)
    torch.testing.assert_close(jittered["mask"], torch.from_numpy(sample.mask).long())
    assert not torch.allclose(jittered["image"], plain["image"])


def test_seeded_determinism() -> None:
    transform = TrainTransform(long_side=(30, 80), crop=40)
    runs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        runs.append(transform(blocks_sample()))
    assert torch.equal(runs[0]["image"], runs[1]["image"])
    assert torch.equal(runs[0]["mask"], runs[1]["mask"])
    assert not torch.equal(runs[0]["image"], runs[2]["image"])


def test_sample_without_mask_and_collate() -> None:
    sample = blocks_sample()
    sample.mask = None
    torch.manual_seed(0)
    out = TrainTransform(long_side=(30, 40), crop=24)(sample)
    assert "mask" not in out and out["image"].shape == (3, 24, 24)
    batch = torch.utils.data.default_collate([out, out])
    assert batch["image"].shape == (2, 3, 24, 24) and batch["labels"].shape == (2, 3)


def test_eval_transform_values() -> None:
    image = np.zeros((2, 3, 3), np.uint8)
    image[1, 2] = (10, 20, 30)
    mask = np.array([[0, 1, 255], [2, 2, 0]], np.uint8)
    out = EvalTransform()(Sample(image, mask, LABELS, "e"))
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(
        out["image"][:, 1, 2], (torch.tensor([10.0, 20, 30]) / 255 - mean) / std
    )
    torch.testing.assert_close(out["image"][:, 0, 0], -mean / std)
    assert out["mask"].dtype == torch.int64 and out["mask"].tolist() == mask.tolist()
    assert "mask" not in EvalTransform()(Sample(image, None, LABELS, "e"))


@pytest.mark.parametrize(
    ("image", "mask", "match"),
    [
        (np.zeros((4, 4), np.uint8), None, r"\(H, W, 3\)"),
        (np.zeros((4, 4, 3), np.float32), None, "uint8"),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8), r"mask must be \(4, 4\)"),
    ],
)
def test_boundary_checks(image: np.ndarray, mask: np.ndarray | None, match: str) -> None:
    for transform in (TrainTransform(crop=4), EvalTransform()):
        with pytest.raises(ValueError, match=match):
            transform(Sample(image, mask, LABELS, "bad"))


def test_real_voc_sample_with_defaults() -> None:
    if not (VOC_SAMPLES / "ImageSets/Segmentation/samples.txt").is_file():
        pytest.skip("VOC samples not available")
    from wsss.data.voc import VOCSegmentation

    ds = VOCSegmentation(VOC_SAMPLES, "samples", transform=TrainTransform())
    raw = ds.load(ds.ids[0])
    torch.manual_seed(0)
    out = ds[0]
    assert out["image"].shape == (3, 512, 512) and out["mask"].shape == (512, 512)
    assert set(out["mask"].unique().tolist()) <= set(np.unique(raw.mask).tolist()) | {255}
    torch.testing.assert_close(out["labels"], torch.from_numpy(raw.labels))
