"""Phi of eq. (7): the 5x5 window and the weights, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from wsss.gcn.phi import phi_edges, phi_matrix, square_offsets


def test_square_window_offsets():
    offsets = square_offsets(2)
    assert len(offsets) == 12  # (25 - 1) / 2 unordered neighbours
    both = torch.cat([offsets, -offsets]).tolist()
    assert sorted(map(tuple, both)) == sorted(
        (dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0)
    )


def test_phi_pairs_and_weights_by_hand():
    image = torch.zeros(3, 4, 3)
    image[0, 0] = torch.tensor([3.0, 0.0, 0.0])
    src, dst, weight = phi_edges(image)
    n = 12
    pairs = {(min(s, d), max(s, d)): w for s, d, w in zip(src.tolist(), dst.tolist(),
                                                          weight.tolist(), strict=True)}  # fmt: skip
    assert len(pairs) == len(src)  # each unordered pair once
    expected = {(i, j) for i in range(n) for j in range(i + 1, n)
                if abs(i // 4 - j // 4) <= 2 and abs(i % 4 - j % 4) <= 2}  # fmt: skip
    assert set(pairs) == expected
    # node 0 = (0,0) red 3 vs node 6 = (1,2): colour 9 / (2*3), position 5 / (2*100)
    assert pairs[(0, 6)] == pytest.approx(math.exp(-9 / 6 - 5 / 200), rel=1e-6)
    assert pairs[(5, 10)] == pytest.approx(math.exp(-2 / 200), rel=1e-6)  # same colour, (1,1)


def test_phi_code_variant_scales():
    image = torch.zeros(1, 2, 3)
    image[0, 1, 0] = 255.0
    _, _, weight = phi_edges(image, variant="code")
    assert weight.item() == pytest.approx(math.exp(-1 / 12 - 1 / 20))
    with pytest.raises(ValueError, match="variant"):
        phi_edges(image, variant="other")  # type: ignore[arg-type]


def test_phi_matrix_symmetric_with_unit_diagonal():
    image = torch.randint(0, 4, (5, 6, 3), dtype=torch.uint8)
    dense = phi_matrix(image).to_dense()
    assert torch.equal(dense, dense.T)
    assert torch.all(dense.diagonal() == 1)
    assert (dense > 0).sum(1).max() == 25  # a full 5x5 window (interior pixel)


def test_phi_image_variant_scales_colour_by_the_image():
    image = torch.zeros(1, 3, 3)
    image[0, 1, 0] = 10.0  # pairs (0,1), (1,2): 100 each; (0,2): 0
    src, dst, weight = phi_edges(image, variant="image")
    div = 2 * 200 / 3  # twice the mean squared colour difference of the three pairs
    pairs = {(s, d): w for s, d, w in zip(src.tolist(), dst.tolist(), weight.tolist(), strict=True)}
    assert pairs[(0, 1)] == pytest.approx(math.exp(-100 / div - 1 / 200), rel=1e-6)
    assert pairs[(0, 2)] == pytest.approx(math.exp(-4 / 200), rel=1e-6)
    flat = phi_edges(torch.zeros(2, 2, 3), variant="image")[2]
    assert torch.isfinite(flat).all()  # a flat image has no colour term
