"""IRNet affinity from a hand-made boundary map; AffinityNet affinities; network shapes."""

from __future__ import annotations

import pytest
import torch

from wsss.affinity import AffinityNet, IRNetAffinity, boundary_to_affinity, feature_to_affinity
from wsss.affinity.infer import image_affinity
from wsss.graph import gather_window, window_edges, window_offsets
from wsss.models.backbones import create_backbone


def test_vertical_wall_cuts_affinity():
    h, w, r = 9, 10, 5
    boundary = torch.zeros(1, h, w)
    boundary[0, :, 5] = 1.0  # a wall in column 5
    edges = gather_window(boundary_to_affinity(boundary, r), r)[0]
    src, dst = window_edges(h, w, r)
    xs, xd = src % w, dst % w
    across = ((xs < 5) & (xd > 5)) | ((xs > 5) & (xd < 5))
    touching = (xs == 5) | (xd == 5)
    within = ~across & ~touching
    assert across.any() and within.any()
    assert (edges[across] == 0).all() and (edges[touching] == 0).all()
    assert (edges[within] == 1).all()


def test_soft_boundary_takes_the_path_maximum():
    boundary = torch.zeros(1, 1, 5)
    boundary[0, 0, 2] = 0.3
    boundary[0, 0, 3] = 0.6
    a = boundary_to_affinity(boundary, 4)  # offsets (0,1), (0,2), (0,3) first
    assert a[0, 2, 0, 0].item() == pytest.approx(0.4)  # (0,0)-(0,3) crosses 0.3 and 0.6
    assert a[0, 1, 0, 0].item() == pytest.approx(0.7)  # (0,0)-(0,2) crosses 0.3
    assert a[0, 0, 0, 0].item() == 1.0


def test_feature_affinity_by_hand():
    f = torch.zeros(1, 2, 2, 2)
    f[0, :, 1, 1] = torch.tensor([1.0, 0.5])
    a = feature_to_affinity(f, 2)
    offsets = window_offsets(2).tolist()
    diag = offsets.index([1, 1])
    assert a[0, diag, 0, 0].item() == pytest.approx(torch.exp(torch.tensor(-1.5)).item())
    mean = feature_to_affinity(f, 2, distance="mean")
    assert mean[0, diag, 0, 0].item() == pytest.approx(torch.exp(torch.tensor(-0.75)).item())
    with pytest.raises(ValueError, match="distance"):
        feature_to_affinity(f, 2, distance="l2")  # type: ignore[arg-type]


def test_networks_shapes_and_frozen_backbone():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 30, 37)
    irn = IRNetAffinity(backbone=create_backbone("small"), radius=10)
    out = irn(images)
    assert out.shape == (2, len(window_offsets(10)), 8, 10)
    assert irn.features(images).shape == (2, 160, 8, 10)
    out.mean().backward()
    assert all(p.grad is None for p in irn.backbone.parameters())
    assert irn.head.weight.grad is not None
    irn.train()
    assert not irn.backbone.training
    psa = AffinityNet(backbone=create_backbone("small"), radius=5)
    assert psa(images).shape == (2, 34, 4, 5)
    assert psa.features(images).shape == (2, 448, 4, 5)
    # initial affinities are neither all 0 nor all 1 (the L1 head starts small)
    first = psa(images)
    assert 0.05 < first.mean().item() < 0.99


def test_image_affinity_graph_sizes():
    torch.manual_seed(0)
    image = torch.randn(3, 21, 30)
    irn = IRNetAffinity(backbone=create_backbone("small")).eval()
    g = image_affinity(irn, image)
    assert g.size == (6, 8) and g.stride == 4 and g.boundary is not None
    assert g.weights.shape == window_edges(6, 8, 5)[0].shape
    assert ((g.weights >= 0) & (g.weights <= 1)).all()
    psa = AffinityNet(backbone=create_backbone("small")).eval()
    g = image_affinity(psa, image)
    assert g.size == (3, 4) and g.stride == 8 and g.boundary is None
    with pytest.raises(TypeError):
        image_affinity(torch.nn.Identity(), image)


@pytest.mark.parametrize("distance", ["l1", "mean"])
def test_affinitynet_survives_first_sgd_steps(distance):
    # Issue 12: the L1 head started with its last convolution divided by 448 at the same learning
    # rate, so its first SGD step grew the weights ~100x, every affinity underflowed to 0 and the
    # gradient vanished for good (flat loss). The head lr of the PSA presets is 0.1 to 1.
    from wsss.affinity.pairs import affinity_loss, pair_labels
    from wsss.engine.training import make_sgd

    torch.manual_seed(0)
    psa = AffinityNet(backbone=create_backbone("small"), radius=5, distance=distance).train()
    optimizer = make_sgd(psa.param_groups(0.1), momentum=0.9, weight_decay=5e-4)
    images = torch.randn(4, 3, 64, 64)
    labels = torch.zeros(4, 8, 8, dtype=torch.long)
    labels[:, :, 4:] = 1
    pairs = pair_labels(labels, 5)
    for _ in range(3):
        optimizer.zero_grad()
        affinity_loss(psa(images), pairs).mean().backward()
        optimizer.step()
    head_grad = psa.head.weight.grad.abs().sum().item()
    affinity = psa(images).detach()
    assert head_grad > 0
    assert (affinity[pairs.bg_pos | pairs.fg_pos] > 1e-3).float().mean() > 0.5
