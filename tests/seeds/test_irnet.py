"""IRNet seeds: hand-built images whose seeds are known, the merge rule, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsss.errors import WsssError
from wsss.io.cams import CamFile
from wsss.seeds import IrnetSeeds, confident_labels, irnet_seeds, merge_confident


def _target(h: int = 32, w: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A red square (CAM 1.0) inside a blue frame (CAM 0.2) on grey (CAM 0), and the seed
    expected with IRNet's thresholds 0.30 / 0.05: class 7, 255, 0."""
    image = np.full((h, w, 3), 128, np.uint8)
    cams = np.zeros((1, h, w), np.float32)
    expected = np.zeros((h, w), np.uint8)
    frame, square = (slice(4, 28), slice(6, 34)), (slice(10, 22), slice(14, 26))
    image[frame] = (0, 0, 255)
    cams[(0, *frame)] = 0.2
    expected[frame] = 255
    image[square] = (255, 0, 0)
    cams[(0, *square)] = 1.0
    expected[square] = 7
    return image, cams, expected


def test_blob_gives_class_then_unlabelled_then_background():
    image, cams, expected = _target()
    seed = irnet_seeds(image, cams, np.array([7]))
    assert seed.dtype == np.uint8 and seed.shape == (32, 40)
    np.testing.assert_array_equal(seed, expected)


def test_thresholds_are_used():
    image, cams, expected = _target()
    # conf_bg above the frame's 0.2: the frame is confident background too.
    seed = irnet_seeds(image, cams, np.array([7]), conf_fg=0.3, conf_bg=0.25)
    np.testing.assert_array_equal(seed, np.where(expected == 255, 0, expected))
    # conf_fg below 0.2: the frame is confident foreground.
    seed = irnet_seeds(image, cams, np.array([7]), conf_fg=0.15, conf_bg=0.05)
    np.testing.assert_array_equal(seed, np.where(expected == 255, 7, expected))


def test_two_classes_keep_their_ids():
    image, cams, expected = _target()
    second = np.zeros_like(cams)
    image[0:3, 0:10] = (0, 255, 0)
    second[0, 0:3, 0:10] = 0.9
    seed = irnet_seeds(image, np.concatenate([cams, second]), np.array([7, 15]))
    expected[0:3, 0:10] = 15
    np.testing.assert_array_equal(seed, expected)


def test_crf_snaps_labels_to_colour_edges():
    image, cams, expected = _target()
    blurred = cams.copy()
    blurred[0, 9, 14:26] = 1.0  # one row of the blue frame gets a strong CAM
    seed = irnet_seeds(image, blurred, np.array([7]))
    assert (seed[9, 14:26] == 255).all()  # the CRF gives the blue row back to the frame
    np.testing.assert_array_equal(seed, expected)


def test_confident_labels_is_the_refined_argmax():
    # Two colour halves, one CAM each; one pixel below the threshold is absorbed by its half.
    cams = torch.zeros(2, 6, 6)
    cams[0, :3] = 0.9
    cams[1, 3:] = 0.8
    cams[1, 5, 5] = 0.1
    image = torch.zeros(1, 3, 6, 6, dtype=torch.uint8)
    image[0, 0, :3] = 255
    image[0, 2, 3:] = 255
    labels = confident_labels(image, cams, 0.3)
    assert labels.dtype == torch.int64
    expected = torch.tensor([[1] * 6] * 3 + [[2] * 6] * 3)
    torch.testing.assert_close(labels, expected)


def test_merge_rule_by_hand():
    fg = torch.tensor([[0, 3, 0, 2], [3, 0, 1, 0]])
    bg = torch.tensor([[0, 3, 3, 0], [0, 2, 1, 0]])
    # fg class where fg is foreground (even if bg says background), 0 where both are
    # background, 255 where only bg finds an object.
    expected = torch.tensor([[0, 3, 255, 2], [3, 255, 1, 0]])
    torch.testing.assert_close(merge_confident(fg, bg), expected)


def test_no_classes_is_all_background():
    seed = irnet_seeds(np.zeros((5, 7, 3), np.uint8), np.zeros((0, 5, 7)), np.array([]))
    np.testing.assert_array_equal(seed, np.zeros((5, 7), np.uint8))


def test_bad_inputs_and_options():
    image, cams, _ = _target()
    with pytest.raises(ValueError, match=r"expected CAMs of shape \(K, 32, 40\).*\(1, 31, 40\)"):
        irnet_seeds(image, cams[:, 1:], np.array([7]))
    with pytest.raises(ValueError, match="NaN"):
        irnet_seeds(image, np.full_like(cams, np.nan), np.array([7]))
    with pytest.raises(ValueError, match="class ids"):
        irnet_seeds(image, cams, np.array([0]))
    with pytest.raises(WsssError, match="conf_bg <= conf_fg"):
        IrnetSeeds(conf_fg=0.05, conf_bg=0.3)
    with pytest.raises(ValueError, match="high_res"):
        IrnetSeeds()(image, CamFile(keys=np.array([7]), cams=cams[:, ::4, ::4], size=(32, 40)))


def test_module_form_equals_function():
    image, cams, expected = _target()
    cam = CamFile(keys=np.array([7]), cams=cams[:, ::4, ::4], size=(32, 40), high_res=cams)
    np.testing.assert_array_equal(IrnetSeeds()(image, cam), expected)


def test_two_thresholds_share_a_lattice_and_equal_two_calls(voc_samples):
    # A real photograph with smooth random CAMs: the shared-lattice pair (irnet_seeds' path)
    # gives exactly the maps of two separate CRFs.
    from PIL import Image

    path = sorted((voc_samples / "JPEGImages").glob("*.jpg"))[0]
    rgb = np.asarray(Image.open(path).convert("RGB"))[::2, ::2]
    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(3, 1, 6, 8, generator=gen)
    cams = 0.5 * torch.nn.functional.interpolate(coarse, size=rgb.shape[:2], mode="bilinear")[:, 0]
    both = confident_labels(image, cams, (0.30, 0.05))
    assert both.shape == (2, *rgb.shape[:2])
    for got, threshold in zip(both, (0.30, 0.05), strict=True):
        alone = confident_labels(image, cams, threshold)
        assert (alone > 0).any()
        torch.testing.assert_close(got, alone, rtol=0, atol=0)
    assert (both[0] == 0).any() and not torch.equal(both[0], both[1])
