"""Probes of ES-CRF's psi_p: hand-built weights, and the two kernels at initialisation."""

from __future__ import annotations

import math

import pytest
import torch

from wsss.seg.probes import PROBES, psi_p_probes
from wsss.seg.registry import create_seg_model


def _model(kernel: str = "gaussian", seed: int = 0):
    torch.manual_seed(seed)
    return create_seg_model("escrf", backbone="small", num_classes=3, kernel=kernel).eval()


def _images(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(2, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bilinear")


def test_probes_of_hand_built_weights(monkeypatch):
    """64 px images: 16x16 queries at stride 4, 8x8 keys of 2x2 cells (centres 8 px apart)."""
    model, images = _model(), _images()
    features = model.features(images).detach()
    keys = torch.nn.functional.avg_pool2d(features, 2).flatten(2)  # (B, C, 64)
    n, m = 256, 64
    # query (y, x) = cell (0, 0) has centre (2, 2) px; every query puts 0.5 on key 9, at (12, 12)
    one_hot = torch.zeros(2, n, m)
    one_hot[:, :, 9] = 0.5
    monkeypatch.setattr(model.refine, "pairwise_weights",
                        lambda f, i: (one_hot, keys, torch.zeros(2, 3, m)))  # fmt: skip
    rows = psi_p_probes(model, images)
    assert len(rows) == 2 and set(rows[0]) == set(PROBES)
    centres = (torch.arange(16) + 0.5) * 4
    qy, qx = torch.meshgrid(centres, centres, indexing="ij")
    dist = ((qy - 12) ** 2 + (qx - 12) ** 2).sqrt().flatten()
    own9 = (qy.flatten() // 8 == 1) & (qx.flatten() // 8 == 1)  # key 9 is their own cell
    for b, row in enumerate(rows):
        assert row["keys"] == pytest.approx(1.0) and row["keys_90"] == pytest.approx(1.0)
        assert row["weight"] == pytest.approx(0.5)
        assert row["near"] == pytest.approx(float(((dist <= 12) & ~own9).float().mean()))
        mean = features[b].flatten(1).mean(1)
        cos = torch.nn.functional.cosine_similarity(keys[b, :, 9], mean, dim=0)
        assert row["cos_global"] == pytest.approx(float(cos), abs=1e-5)
        assert math.isnan(row["norm_corr"])  # all key norms equal: no correlation defined
    uniform = torch.full((2, n, m), 1.0 / (m - 1))
    own = (qy.flatten() // 8 * 8 + qx.flatten() // 8).long()
    uniform[:, torch.arange(n), own] = 0
    monkeypatch.setattr(model.refine, "pairwise_weights",
                        lambda f, i: (uniform, keys, torch.randn(2, 3, m)))  # fmt: skip
    row = psi_p_probes(model, images)[0]
    assert row["keys"] == pytest.approx(m - 1, rel=1e-6)
    assert row["keys_90"] == pytest.approx(math.ceil(0.9 * (m - 1)))
    assert row["cos_global"] > 0.99  # the mean of every other key is nearly the image mean


def test_same_class_probes_by_hand(monkeypatch):
    """Left half class 1, right half class 2: all weight on key 0 (top left, class 1)."""
    model, images = _model(), _images()
    masks = torch.ones(2, 64, 64, dtype=torch.long)
    masks[:, :, 32:] = 2
    masks[1, :8] = 255  # ignored queries do not count
    features = model.features(images).detach()
    keys = torch.nn.functional.avg_pool2d(features, 2).flatten(2)
    weights = torch.zeros(2, 256, 64)
    weights[:, :, 0] = 1.0
    monkeypatch.setattr(model.refine, "pairwise_weights",
                        lambda f, i: (weights, keys, torch.randn(2, 3, 64)))  # fmt: skip
    rows = psi_p_probes(model, images, masks)
    assert rows[0]["same_class"] == pytest.approx(0.5)
    assert rows[0]["same_class_uniform"] == pytest.approx(31 / 63)
    assert 0.5 < rows[0]["same_class_near"] < 1  # near keys of a query mostly share its half
    # image 1: the top two cell rows are ignored, key 0 holds no class: nothing on the same class
    assert rows[1]["same_class"] == 0.0
    assert math.isnan(rows[0]["same_bg"])  # no background query
    masks[0, :32], masks[0, 32:] = 1, 0  # class 1 above background: key 0 is all class 1
    rows = psi_p_probes(model, images, masks)
    assert rows[0]["same_class"] == pytest.approx(1.0) and rows[0]["same_bg"] == 0.0
    assert rows[0]["same_bg_uniform"] == pytest.approx(31 / 63)
    assert math.isnan(psi_p_probes(model, images)[0]["same_class"])  # no ground truth given


@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_kernel_is_local_at_initialisation_and_the_dot_kernel_is_not(seed: int):
    images = _images(seed)
    gauss = psi_p_probes(_model("gaussian", seed), images)
    dot = psi_p_probes(_model("dot", seed), images)
    for g, d in zip(gauss, dot, strict=True):
        assert g["near"] > 0.5 and g["keys"] < 15  # of 63 keys
        assert d["near"] < 0.25 and d["keys"] > 40
        assert abs(g["norm_corr"]) < 0.3 < d["norm_corr"]  # the key's norm decides the dot kernel
        assert g["cos_global"] < d["cos_global"]


def test_probes_need_a_pairwise_term():
    torch.manual_seed(0)
    model = create_seg_model("escrf", backbone="small", num_classes=3, pairwise=False)
    with pytest.raises(ValueError, match="no ES-CRF pairwise term"):
        psi_p_probes(model, _images())
