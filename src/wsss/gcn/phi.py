"""The low-level affinity ``Phi`` of WSGCN eq. (7) on colour and position, in a square window.

``Phi_ij = exp(-||I_i - I_j||^2 / (2 sigma1^2) - ||f_i - f_j||^2 / (2 sigma2^2))`` for ``j`` in the
5x5 window ``N_i`` centred on ``i`` (``window=2``), else 0; ``I`` is the image downscaled to the
stride-4 grid (0-255 values) and ``f`` the grid coordinates; ``sigma1 = sqrt(3)``, ``sigma2 = 10``.
It regularises the GCN output (Laplacian loss, eq. 6). The paper's side experiment computes that
loss with the GCN's graph ``A`` instead (68.0 -> 66.3 mIoU; ``laplacian_graph="adjacency"`` of
:class:`~wsss.gcn.infer.GcnPropagator`). Using ``Phi`` as the GCN's graph (graph (c) of
:mod:`wsss.gcn.graphs`, ``wsss refine``'s graph without an affinity run) is ours, not the paper's.

Scales: the paper's ``sigma1 = sqrt(3)`` on 0-255 colours and ``sigma2 = 10`` on stride-4 grid
positions make ``Phi`` nearly empty on real photos (median 1.3e-6 over the six VOC samples, 20 %
of the window pairs above 0.1, the normalised graph's self-weight median 0.62); the authors' code
uses colours / 255 with divisors 12 and 20 (median 0.78, every pair above 0.1, self-weight 0.09).

``variant="code"`` follows the authors' code (``compute_lap_test``): colours scaled to [0, 1] and
the exponent ``-||dI||^2 / 12 - ||df||^2 / 20``; its forward 3x5 window, symmetrised with
``max(A, A^T)``, is the same 5x5 window.

``variant="image"`` is ours: the colour term divided by twice the mean of ``||I_i - I_j||^2`` over
the image's window pairs (as GrabCut's ``beta``), the position term as the paper's. At stride 4 on
real photos the neighbours' colours differ by far more than the paper's ``sigma1 = sqrt(3)`` (a
median squared step of about 34 on the 0-255 scale, so ``Phi`` is mostly below 1e-5), and the
code's scaling makes the colour term negligible (``||dI||^2 / 255^2 / 12``), so neither follows
the image's contrast.

Pairs are enumerated once (half-plane offsets); node ``y * w + x`` is pixel ``(y, x)``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from wsss.graph.sparse import affinity_matrix

__all__ = ["PHI_VARIANTS", "phi_edges", "phi_matrix", "square_offsets"]

PhiVariant = Literal["paper", "code"]
#: ``paper``: eq. (7) with sigma1 = sqrt(3), sigma2 = 10 on 0-255 colours; ``code``: the authors'
#: (colours / 255, divisors 12 and 20); ``image``: ours, the colour scale from the image.
PHI_VARIANTS: tuple[str, ...] = ("paper", "code", "image")


def square_offsets(window: int = 2) -> Tensor:
    """Half-plane offsets of a ``(2 window + 1)^2`` square: ``dy > 0``, or ``dy == 0, dx > 0``.

    Returns:
        ``(K, 2)`` int64 ``(dy, dx)``, ``K = ((2 window + 1)^2 - 1) / 2`` (12 for the 5x5 window).

    Example:
        >>> square_offsets(1).tolist()
        [[0, 1], [1, -1], [1, 0], [1, 1]]
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    offsets = [(0, dx) for dx in range(1, window + 1)]
    offsets += [(dy, dx) for dy in range(1, window + 1) for dx in range(-window, window + 1)]
    return torch.tensor(offsets, dtype=torch.int64)


def _scales(
    variant: str, sigma_rgb: float | None, sigma_xy: float | None
) -> tuple[float, float, float]:
    """``(colour scale, colour divisor, position divisor)`` of the exponent."""
    if variant == "paper":
        s1 = math.sqrt(3.0) if sigma_rgb is None else sigma_rgb
        s2 = 10.0 if sigma_xy is None else sigma_xy
        return 1.0, 2 * s1 * s1, 2 * s2 * s2
    if variant == "code":
        return 1.0 / 255.0, 12.0, 20.0
    if variant == "image":  # the colour divisor is set from the image in phi_edges
        s2 = 10.0 if sigma_xy is None else sigma_xy
        return 1.0, math.nan, 2 * s2 * s2
    raise ValueError(f"variant must be one of {PHI_VARIANTS}, got {variant!r}")


def phi_edges(
    image: Tensor,
    *,
    window: int = 2,
    variant: PhiVariant = "paper",
    sigma_rgb: float | None = None,
    sigma_xy: float | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Every unordered pair of the square window with its ``Phi`` (eq. 7), once.

    Args:
        image: The image on the graph's grid, colours in 0-255 (uint8 or float).
        window: Half-size of the window (2: 5x5).
        variant: ``paper``, ``code`` or ``image`` (module docstring).
        sigma_rgb: ``sigma1`` of the paper variant (sqrt(3)).
        sigma_xy: ``sigma2`` of the paper and image variants (10).

    Returns:
        ``(src, dst, weight)``: ``(E,)`` int64, int64, float32 (float64 for a float64 image).

    Shapes:
        image: ``(h, w, 3)``.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (h, w, 3) image, got {tuple(image.shape)}")
    dtype = image.dtype if image.is_floating_point() else torch.float32
    scale, div_rgb, div_xy = _scales(variant, sigma_rgb, sigma_xy)
    rgb = image.to(dtype) * scale
    h, w = image.shape[:2]
    index = torch.arange(h * w, device=image.device).view(h, w)
    src, dst, colour, position = [], [], [], []
    for dy, dx in square_offsets(window).tolist():
        ys, xs = slice(0, max(h - dy, 0)), slice(max(-dx, 0), w - max(dx, 0))
        yd, xd = slice(dy, h), slice(max(dx, 0), w + min(dx, 0))
        diff = rgb[ys, xs] - rgb[yd, xd]
        colour.append((diff * diff).sum(-1).reshape(-1))
        position.append(torch.full_like(colour[-1], (dy * dy + dx * dx) / div_xy))
        src.append(index[ys, xs].reshape(-1))
        dst.append(index[yd, xd].reshape(-1))
    squared = torch.cat(colour)
    if math.isnan(div_rgb):  # image: twice the mean squared colour difference of the pairs
        div_rgb = 2 * float(squared.mean()) if squared.numel() and squared.mean() > 0 else 1.0
    weight = (-squared / div_rgb - torch.cat(position)).exp()
    return torch.cat(src), torch.cat(dst), weight


def phi_matrix(image: Tensor, *, self_loop: bool = True, **options: object) -> Tensor:
    """``Phi`` as a symmetric sparse ``(N, N)`` CSR matrix (``Phi_ii = 1`` when ``self_loop``).

    Args:
        image: ``(h, w, 3)`` image on the grid (see :func:`phi_edges`).
        self_loop: Store the diagonal ``exp(0) = 1`` (``i`` lies in its own window).
        **options: ``window``, ``variant``, ``sigma_rgb``, ``sigma_xy`` of :func:`phi_edges`.
    """
    src, dst, weight = phi_edges(image, **options)  # type: ignore[arg-type]
    n = image.shape[0] * image.shape[1]
    return affinity_matrix(src, dst, weight, n, self_loop=1.0 if self_loop else None)
