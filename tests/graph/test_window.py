"""Window offsets and edges counted by hand; per-offset maps to edges; line paths."""

from __future__ import annotations

import math

import pytest
import torch

from wsss.graph import (
    gather_window,
    line_paths,
    shift_map,
    window_edges,
    window_mask,
    window_offsets,
)


def test_offsets_radius_5_by_hand():
    offsets = window_offsets(5)
    # dy = 0: dx 1..4 (4); dy = 1, 2: |dx| <= 4 (9 each); dy = 3: |dx| <= 3 (7); dy = 4: |dx| <= 2 (5)
    assert len(offsets) == 4 + 9 + 9 + 7 + 5 == 34
    pairs = {tuple(o) for o in offsets.tolist()}
    assert len(pairs) == 34
    assert all(dy * dy + dx * dx < 25 for dy, dx in pairs)
    assert all(dy > 0 or (dy == 0 and dx > 0) for dy, dx in pairs)
    # the half-plane holds exactly one of (d, -d)
    assert not any((-dy, -dx) in pairs for dy, dx in pairs)
    assert (3, 3) in pairs and (0, 5) not in pairs and (3, 4) not in pairs


@pytest.mark.parametrize("radius", [1, 2, 3.5, 5, 10])
def test_offsets_cover_the_disc(radius):
    full = {(dy, dx) for dy in range(-11, 12) for dx in range(-11, 12)
            if 0 < dy * dy + dx * dx < radius * radius}  # fmt: skip
    half = {tuple(o) for o in window_offsets(radius).tolist()}
    assert half | {(-dy, -dx) for dy, dx in half} == full
    assert 2 * len(half) == len(full)


def test_bad_radius():
    with pytest.raises(ValueError, match="positive"):
        window_offsets(0)


def test_edges_count_and_uniqueness():
    h, w, r = 7, 9, 3
    src, dst = window_edges(h, w, r)
    pairs = {(min(a, b), max(a, b)) for a, b in zip(src.tolist(), dst.tolist(), strict=True)}
    assert len(pairs) == len(src)  # each unordered pair once
    expected = set()
    for i in range(h * w):
        for j in range(h * w):
            (yi, xi), (yj, xj) = divmod(i, w), divmod(j, w)
            if i < j and (yi - yj) ** 2 + (xi - xj) ** 2 < r * r:
                expected.add((i, j))
    assert pairs == expected
    assert int(window_mask(h, w, r).sum()) == len(src)


def test_gather_window_matches_edge_order():
    h, w, r = 5, 6, 3
    offsets = window_offsets(r)
    # a map whose value at (k, y, x) encodes the destination node
    ys = torch.arange(h).view(1, h, 1) + offsets[:, 0].view(-1, 1, 1)
    xs = torch.arange(w).view(1, 1, w) + offsets[:, 1].view(-1, 1, 1)
    maps = (ys * w + xs).float()
    _src, dst = window_edges(h, w, r)
    assert torch.equal(gather_window(maps[None], r)[0].long(), dst)
    with pytest.raises(ValueError, match="offsets"):
        gather_window(maps[:3], r)


def test_shift_map():
    x = torch.arange(12.0).view(3, 4)
    out = shift_map(x, 1, -1, fill=-1)
    assert out[0, 1] == x[1, 0] and out[1, 2] == x[2, 1]
    assert (out[2] == -1).all() and (out[:, 0] == -1).all()
    assert torch.equal(shift_map(x, 0, 0), x)
    assert (shift_map(x, 5, 0, fill=7) == 7).all()


def test_line_paths_by_hand():
    paths = line_paths(5)
    offsets = window_offsets(5).tolist()
    straight = paths[offsets.index([0, 3])]
    assert {tuple(p) for p in straight.tolist()} == {(0, 0), (0, 1), (0, 2), (0, 3)}
    diagonal = paths[offsets.index([2, 2])]
    # (0, 1) lies 1/sqrt(2) < 1 from the diagonal: on the path; (0, 2) lies sqrt(2) away
    assert {tuple(p) for p in diagonal.tolist()} == {(0, 0), (0, 1), (1, 0), (1, 1), (1, 2),
                                                     (2, 1), (2, 2)}  # fmt: skip
    vertical = paths[offsets.index([4, 0])]
    assert {tuple(p) for p in vertical.tolist()} == {(y, 0) for y in range(5)}
    for (dy, dx), path in zip(offsets, paths.tolist(), strict=True):
        assert [0, 0] in path and [dy, dx] in path
        assert all(abs(dy * px - dx * py) < math.sqrt(dy * dy + dx * dx) for py, px in path)
