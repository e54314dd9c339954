"""The random walk: sparse == dense, labels by hand, settings, and real VOC samples where it
must improve (or keep) the CAM argmax with a boundary map made from the masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from wsss.affinity import boundary_to_affinity, feature_to_affinity
from wsss.data.voc import VOCSegmentation
from wsss.graph import affinity_matrix, dense_random_walk, gather_window, window_edges
from wsss.metrics.confusion import confusion_counts, scores_from_counts
from wsss.propagation import (
    RW_PRESETS,
    psa_background,
    random_walk,
    random_walk_labels,
    random_walk_settings,
)


def test_random_walk_equals_dense_formulation():
    h, w = 9, 11
    src, _ = window_edges(h, w, 5)
    weights = torch.rand(len(src), generator=torch.Generator().manual_seed(0))
    scores = torch.rand(3, h, w, generator=torch.Generator().manual_seed(1))
    out = random_walk(weights, scores, beta=10, exp_times=8)
    src, dst = window_edges(h, w, 5)
    dense_a = affinity_matrix(src, dst, weights.double(), h * w).to_dense()
    ref = dense_random_walk(dense_a, scores.reshape(3, -1).T.double(), beta=10, exp_times=8)
    assert (out.reshape(3, -1).T.double() - ref).abs().max() <= 1e-5
    # a CSR matrix gives the same
    csr = affinity_matrix(src, dst, weights, h * w)
    torch.testing.assert_close(random_walk(csr, scores, beta=10, exp_times=8), out)
    with pytest.raises(ValueError, match="edges"):
        random_walk(weights[:-1], scores, beta=10, exp_times=1)


def test_walk_stays_inside_a_closed_region():
    # a wall cuts the grid; a class seeded on the left never reaches the right
    boundary = torch.zeros(8, 12)
    boundary[:, 6] = 1.0
    weights = gather_window(boundary_to_affinity(boundary[None], 5), 5)[0]
    cams = torch.zeros(1, 8, 12)
    cams[0, 3, 2] = 1.0
    labels = random_walk_labels(weights, cams, [7], size=(32, 48), boundary=boundary)
    assert labels.shape == (32, 48) and labels.dtype == np.uint8
    assert set(np.unique(labels[:, : 4 * 6])) == {7}
    assert set(np.unique(labels[:, 4 * 7 :])) == {0}


def test_labels_without_classes_are_background():
    labels = random_walk_labels(torch.zeros(len(window_edges(2, 3, 5)[0])), torch.zeros(0, 2, 3), [],
                                size=(7, 10))  # fmt: skip
    assert labels.shape == (7, 10) and not labels.any()
    psa = random_walk_labels(torch.ones(len(window_edges(1, 2, 5)[0])), torch.zeros(0, 1, 2), [],
                             size=(7, 10), settings="psa")  # fmt: skip
    assert not psa.any()


def test_size_and_settings_checks():
    with pytest.raises(ValueError, match="stride 4"):
        random_walk_labels(torch.zeros(1), torch.zeros(1, 2, 2), [1], size=(20, 20))
    with pytest.raises(KeyError, match="irn, psa"):
        random_walk_settings("gcn")
    s = random_walk_settings("psa", beta=4, alpha=None)
    assert s.beta == 4 and s.alpha == 16 and s.stride == 8
    assert RW_PRESETS["irn"].beta == 10 and RW_PRESETS["irn"].exp_times == 8


def test_psa_background_by_hand():
    cams = torch.tensor([[[0.5, 1.0]], [[0.2, 0.0]]])
    torch.testing.assert_close(psa_background(cams, 2), torch.tensor([[0.25, 0.0]]))


# -- real VOC samples ------------------------------------------------------------------------------
def _peaked_cams(mask: np.ndarray) -> tuple[list[int], torch.Tensor]:
    """CAM-like maps: each class's distance to its border (peaked inside, weak near the border),
    blurred and at stride 4, so that their argmax misses the objects' outer parts."""
    keys = [int(k) for k in np.unique(mask) if k not in (0, 255)]
    maps = []
    for k in keys:
        d = ndimage.distance_transform_edt(mask == k)
        maps.append(ndimage.gaussian_filter((d / d.max()).astype(np.float32), 6))
    h, w = mask.shape
    low = F.interpolate(torch.from_numpy(np.stack(maps))[None], antialias=True, mode="bilinear",
                        size=(math.ceil(h / 4), math.ceil(w / 4)))[0]  # fmt: skip
    return keys, low / low.amax(dim=(1, 2), keepdim=True)


def _mask_boundary(mask: np.ndarray, stride: int) -> torch.Tensor:
    """An ideal boundary network's output: 1 on class borders (incl. the 255 band), max-pooled."""
    edges = ndimage.maximum_filter(mask, 3) != ndimage.minimum_filter(mask, 3)
    pooled = F.max_pool2d(torch.from_numpy(edges.astype(np.float32))[None, None], stride, stride,
                          ceil_mode=True)  # fmt: skip
    return pooled[0, 0]


def _cam_argmax(keys, low, size, threshold):
    h, w = low.shape[-2:]
    up = F.interpolate(low[None], size=(4 * h, 4 * w), mode="bilinear")[0, :, : size[0], : size[1]]
    scores = torch.cat([torch.full_like(up[:1], threshold), up])
    return np.concatenate([[0], keys]).astype(np.uint8)[scores.argmax(0).numpy()]


def test_rw_improves_cams_on_voc_samples(voc_samples):
    torch.set_num_threads(2)
    data = VOCSegmentation(voc_samples, split="samples")
    counts = {"cam": 0, "irn": 0, "psa": 0}
    for image_id in data.ids:
        mask = data.load_mask(image_id)
        size = mask.shape
        keys, low = _peaked_cams(mask)
        boundary = _mask_boundary(mask, 4)
        weights = gather_window(boundary_to_affinity(boundary[None], 5), 5)[0]
        irn = random_walk_labels(weights, low, keys, size=size, boundary=boundary)
        # AffinityNet: features = scaled one-hot classes at stride 8, CAMs pooled 2x2
        onehot = torch.from_numpy(np.stack([mask == k for k in range(21)] + [mask == 255]))
        feats = F.adaptive_avg_pool2d(onehot[None].float(), (math.ceil(size[0] / 8),
                                                             math.ceil(size[1] / 8)))  # fmt: skip
        psa_weights = gather_window(feature_to_affinity(4 * feats, 5), 5)[0]
        cams8 = F.avg_pool2d(F.pad(low, (0, low.shape[2] % 2, 0, low.shape[1] % 2))[None], 2)[0]
        psa = random_walk_labels(psa_weights, cams8, keys, size=size, settings="psa")
        assert irn.shape == psa.shape == size and 255 not in irn and 255 not in psa
        cam = _cam_argmax(keys, low, size, 0.15)
        for name, pred in (("cam", cam), ("irn", irn), ("psa", psa)):
            counts[name] = counts[name] + confusion_counts(pred, mask, 21)
    miou = {k: scores_from_counts(v, "background").miou for k, v in counts.items()}
    assert miou["irn"] >= miou["cam"] + 5, miou
    assert miou["psa"] >= miou["cam"], miou
