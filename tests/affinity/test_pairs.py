"""Pair labels from hand-made seeds and the balanced loss by hand."""

from __future__ import annotations

import math

import pytest
import torch

from wsss.affinity.pairs import EPS, PairLabels, affinity_loss, downsample_labels, pair_labels
from wsss.graph import window_offsets


def test_pair_labels_by_hand():
    # row 0: bg bg 1 ; row 1: 255 1 2
    seeds = torch.tensor([[[0, 0, 1], [255, 1, 2]]])
    p = pair_labels(seeds, 2)
    offsets = window_offsets(2).tolist()  # (0,1) (1,-1) (1,0) (1,1)
    assert offsets == [[0, 1], [1, -1], [1, 0], [1, 1]]
    right, down_left, down, down_right = range(4)
    # (0,0)-(0,1): bg-bg; (0,1)-(0,2): 0 vs 1 negative; (1,1)-(1,2): 1 vs 2 negative
    assert p.bg_pos[0, right, 0, 0] and p.neg[0, right, 0, 1] and p.neg[0, right, 1, 1]
    # (1,0) is 255: nothing with it
    assert not p.neg[0, right, 1, 0] and not p.bg_pos[0, down, 0, 0] and not p.neg[0, down, 0, 0]
    # (0,2)-(1,1): 1 and 1, foreground positive; (0,2)-(1,2): 1 vs 2 negative
    assert p.fg_pos[0, down_left, 0, 2] and p.neg[0, down, 0, 2]
    # (0,1)-(1,2): 0 vs 2 negative; (0,0)-(1,1): 0 vs 1 negative
    assert p.neg[0, down_right, 0, 1] and p.neg[0, down_right, 0, 0]
    # destinations outside the map are never labelled
    assert not (p.bg_pos | p.fg_pos | p.neg)[0, right, :, 2].any()
    assert int(p.bg_pos.sum()) == 1 and int(p.fg_pos.sum()) == 1 and int(p.neg.sum()) == 6
    # the three sets are disjoint
    assert not (p.bg_pos & p.neg).any() and not (p.fg_pos & p.neg).any()


def test_pair_labels_counts_with_radius():
    seeds = torch.zeros(1, 6, 6, dtype=torch.long)
    p = pair_labels(seeds, 3)
    from wsss.graph import window_edges

    assert int(p.bg_pos.sum()) == len(window_edges(6, 6, 3)[0])
    assert not p.fg_pos.any() and not p.neg.any()


def test_affinity_loss_by_hand():
    shape = (1, 2, 1, 2)
    a = torch.tensor([0.9, 0.5, 0.2, 0.7]).view(shape)
    m = lambda *v: torch.tensor(v, dtype=torch.bool).view(shape)  # noqa: E731
    labels = PairLabels(bg_pos=m(1, 0, 0, 0), fg_pos=m(0, 1, 0, 1), neg=m(0, 0, 1, 0))
    bg = -math.log(0.9 + EPS)
    fg = (-math.log(0.5 + EPS) - math.log(0.7 + EPS)) / 2
    neg = -math.log(1 + EPS - 0.2)
    expected = bg / 4 + fg / 4 + neg / 2
    assert affinity_loss(a, labels).item() == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="differ"):
        affinity_loss(a[:, :1], labels)


def test_downsample_labels_takes_centres():
    labels = torch.arange(64).view(1, 8, 8)
    out = downsample_labels(labels, (2, 2))
    assert out.tolist() == [[[18, 22], [50, 54]]]  # pixel (2, 2), (2, 6), (6, 2), (6, 6)
