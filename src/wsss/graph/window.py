"""Pixel pairs within a radius on an ``h x w`` grid (IRNet / AffinityNet "path index" layout).

Offsets: every ``(dy, dx)`` with ``dy**2 + dx**2 < radius**2`` in the half-plane ``dy > 0`` or
``(dy == 0 and dx > 0)``, so each unordered pair of pixels appears once (SPEC section 3; IRNet and
AffinityNet enumerate the same set). Radius 5 gives 34 offsets, radius 10 gives 152.

Edge order (the contract every function here keeps): edge ``e`` is the ``e``-th ``True`` of
:func:`window_mask` ``(K, h, w)`` in row-major order, i.e. sorted by offset, then by the source
pixel's row and column. Per-offset maps ``(..., K, h, w)`` (one value per source pixel and
offset, as the affinity networks compute them) become per-edge values with
:func:`gather_window`. Node ``y * w + x`` is pixel ``(y, x)``.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "gather_window",
    "line_paths",
    "shift_map",
    "window_edges",
    "window_mask",
    "window_offsets",
]


def window_offsets(radius: float) -> torch.Tensor:
    """The half-plane offsets within ``radius`` (strictly inside the circle).

    Args:
        radius: Positive radius in pixels (IRNet: 5 for the random walk, 10 for training).

    Returns:
        ``(K, 2)`` int64 ``(dy, dx)``: first ``(0, 1) ... (0, ceil(r) - 1)``, then ``dy = 1, 2, ...``
        each with ``dx`` increasing.

    Example:
        >>> window_offsets(2).tolist()
        [[0, 1], [1, -1], [1, 0], [1, 1]]
    """
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}")
    reach = math.ceil(radius) - 1
    offsets = [(0, dx) for dx in range(1, reach + 1) if dx * dx < radius * radius]
    for dy in range(1, reach + 1):
        offsets += [(dy, dx) for dx in range(-reach, reach + 1) if dy * dy + dx * dx < radius**2]
    return torch.tensor(offsets, dtype=torch.int64).reshape(-1, 2)


def window_mask(
    h: int, w: int, radius: float, *, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Which (offset, source pixel) pairs have their destination inside the image.

    Shapes:
        Returns ``(K, h, w)`` bool; ``[k, y, x]`` is True iff ``(y + dy_k, x + dx_k)`` is a pixel.
    """
    offsets = window_offsets(radius).to(device)
    ys = torch.arange(h, device=device).view(1, h, 1) + offsets[:, 0].view(-1, 1, 1)
    xs = torch.arange(w, device=device).view(1, 1, w) + offsets[:, 1].view(-1, 1, 1)
    return (ys < h) & (xs >= 0) & (xs < w)


def window_edges(
    h: int, w: int, radius: float, *, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each unordered pair of pixels closer than ``radius``, once.

    Args:
        h: Grid height.
        w: Grid width.
        radius: Window radius.
        device: Where to put the indices.

    Returns:
        ``(src, dst)`` int64 node indices ``y * w + x``, ``(E,)`` each, in the module's edge
        order; ``dst = src + dy * w + dx``. Add both directions with
        :func:`~wsss.graph.sparse.affinity_matrix`.

    Example:
        >>> src, dst = window_edges(2, 2, 2)
        >>> list(zip(src.tolist(), dst.tolist()))
        [(0, 1), (2, 3), (1, 2), (0, 2), (1, 3), (0, 3)]
    """
    mask = window_mask(h, w, radius, device=device)
    k, y, x = mask.nonzero(as_tuple=True)
    offsets = window_offsets(radius).to(device)
    src = y * w + x
    dst = (y + offsets[k, 0]) * w + x + offsets[k, 1]
    return src, dst


def gather_window(maps: torch.Tensor, radius: float) -> torch.Tensor:
    """Per-offset maps to per-edge values (the order of :func:`window_edges`).

    Shapes:
        maps: ``(..., K, h, w)``. Returns ``(..., E)``.
    """
    h, w = maps.shape[-2:]
    mask = window_mask(h, w, radius, device=maps.device)
    if maps.shape[-3] != mask.shape[0]:
        raise ValueError(
            f"radius {radius} has {mask.shape[0]} offsets, maps have {maps.shape[-3]}: "
            f"{tuple(maps.shape)}"
        )
    return maps.flatten(-3)[..., mask.flatten()]


def shift_map(x: torch.Tensor, dy: int, dx: int, fill: float = 0.0) -> torch.Tensor:
    """``out[..., y, x] = x[..., y + dy, x + dx]``, ``fill`` where that leaves the map.

    Shapes:
        x: ``(..., h, w)``. Returns the same shape.
    """
    h, w = x.shape[-2:]
    out = torch.full_like(x, fill)
    ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
    xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    if ys.start < ys.stop and xs.start < xs.stop:
        out[..., yd, xd] = x[..., ys, xs]
    return out


def line_paths(radius: float) -> torch.Tensor:
    """For each offset, the pixels on the segment from ``(0, 0)`` to ``(dy, dx)`` (IRNet).

    A pixel ``(py, px)`` of the segment's bounding box is on the path if its distance to the
    line through the two end points is below 1 (IRNet sec. 3.2: the class boundary "between" two
    pixels). Both end points are included; shorter paths are padded with ``(0, 0)``, which leaves
    a maximum over the path unchanged.

    Returns:
        ``(K, L, 2)`` int64 pixel offsets, ``L`` the longest path.
    """
    paths = []
    for dy, dx in window_offsets(radius).tolist():
        length_sq = dy * dy + dx * dx
        points = [
            (py, px)
            for py in range(min(0, dy), max(0, dy) + 1)
            for px in range(min(0, dx), max(0, dx) + 1)
            if (dy * px - dx * py) ** 2 < length_sq
        ]
        paths.append(points)
    longest = max(len(p) for p in paths)
    padded = [p + [(0, 0)] * (longest - len(p)) for p in paths]
    return torch.tensor(padded, dtype=torch.int64)
