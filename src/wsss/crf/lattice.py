"""High-dimensional Gaussian filtering on a permutohedral lattice, in torch tensor ops.

The lattice of Adams, Baek & Davis (Eurographics 2010) approximates the Gaussian filter
``out_i = sum_j exp(-|f_i - f_j|^2 / 2) v_j`` in three steps: *splat* every value onto the d + 1
vertices of the lattice simplex enclosing its feature (barycentric weights), *blur* the lattice with
a ``[1/2, 1, 1/2]`` kernel along each of its d + 1 directions, and *slice* (interpolate) back. The
embedding, rounding, rank and barycentric rules, the blur weights and the final ``1 / (1 + 2^-d)``
scale follow Krähenbühl's dense CRF code (as shipped in ``pydensecrf``), so the filter agrees with
it up to float rounding.

Everything that depends only on the features (vertex ids, barycentric weights, blur neighbours) is
computed once by :func:`build_lattice`, without Python loops over points: vertex keys are packed
into int64 codes, sorted once, and neighbours are found with ``searchsorted``. Splat, blur and slice
are then weighted row gathers (``embedding_bag`` in ``sum`` mode), so :meth:`Lattice.apply` costs
``O((N (d + 1) + 3 M (d + 1)) C)``. :func:`lattice_filter` is differentiable in the values; its
backward pass is the exact transpose (the same filter with the blur directions in reverse order).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from wsss.errors import WsssError

__all__ = ["GaussianKernel", "Lattice", "build_lattice", "lattice_filter"]

_MAX_CODE = 2**62  # vertex keys are packed into one int64 when their ranges allow it


class _Tables(NamedTuple):
    """What :func:`build_lattice` finds; everything else is derived from it."""

    vertex: Tensor  # (d+1, N) vertex id of each point's d+1 enclosing vertices
    bary: Tensor  # (d+1, N) barycentric weights
    order: Tensor  # (N(d+1),) flat (r, n) positions sorted by vertex id
    offsets: Tensor  # (M,) start of each vertex's run in ``order``
    blur_index: Tensor  # (d+1, M, 3) [self, n1, n2] along each direction
    blur_weight: Tensor  # (d+1, M, 3) [1, 1/2, 1/2], 0 where the neighbour is absent

    @property
    def alpha(self) -> float:
        """pydensecrf's output scale ``1 / (1 + 2^-d)``."""
        return _f32(1.0 / (1.0 + 2.0 ** -(self.vertex.shape[0] - 1)))

    def filter_vector(self, values: Tensor) -> Tensor:
        """Cheap single-channel filter ``(N,) -> (N,)`` (scatter splat, gather slice)."""
        m = self.offsets.shape[0]
        lat = torch.zeros(m, dtype=values.dtype, device=values.device)
        lat.index_add_(0, self.vertex.reshape(-1), (self.bary * values).reshape(-1))
        lat = lat[:, None]
        for j in range(self.vertex.shape[0]):
            lat = F.embedding_bag(
                self.blur_index[j], lat, mode="sum", per_sample_weights=self.blur_weight[j]
            )
        return (self.bary * lat[:, 0][self.vertex]).sum(0) * self.alpha


class Lattice:
    """A permutohedral lattice built for one set of feature vectors (see :func:`build_lattice`).

    Filtering computes ``factor * diag(scale) K diag(scale) v`` with ``K`` the lattice filter;
    ``scale`` and ``factor`` (default: ones and 1) are folded into the splat and slice weights. A
    lattice built with a ``batch`` vector holds one independent block per image, so a batch of
    images is filtered in one call.

    Attributes:
        num_points: ``N``, the number of feature vectors (pixels).
        num_vertices: ``M``, the number of lattice vertices in use.
        dim: ``d``, the feature dimension.
    """

    def __init__(self, tables: _Tables, scale: Tensor | None = None, factor: float = 1.0):
        self.dim = tables.vertex.shape[0] - 1
        self.num_points = tables.vertex.shape[1]
        self.num_vertices = tables.offsets.shape[0]
        bary = tables.bary if scale is None else tables.bary * scale
        # splat: one bag per vertex over the points that touch it
        self._splat = (
            tables.order % self.num_points,
            bary.reshape(-1)[tables.order],
            tables.offsets,
        )
        # slice: one bag of d + 1 vertices per point
        self._slice = (
            tables.vertex.t().contiguous(),
            (bary * (tables.alpha * factor)).t().contiguous(),
        )
        self._blur = (tables.blur_index, tables.blur_weight)
        self._cast: dict[torch.dtype, tuple[Tensor, Tensor, Tensor]] = {}

    @property
    def device(self) -> torch.device:
        """The device the lattice lives on."""
        return self._slice[0].device

    def _weights(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        weights = (self._splat[1], self._blur[1], self._slice[1])
        if dtype == weights[0].dtype:
            return weights
        if dtype not in self._cast:
            self._cast[dtype] = tuple(w.to(dtype) for w in weights)  # type: ignore[assignment]
        return self._cast[dtype]

    def apply(self, values: Tensor, *, reverse: bool = False) -> Tensor:
        """Splat, blur and slice, outside autograd (use :func:`lattice_filter` for gradients).

        Args:
            values: Values to filter, contiguous.
            reverse: Blur the directions in reverse order, which gives the transpose operator.

        Returns:
            The filtered values, same dtype.

        Shapes:
            values: ``(N, C)``; output ``(N, C)``.
        """
        splat_w, blur_w, slice_w = self._weights(values.dtype)
        with torch.no_grad():
            lat = F.embedding_bag(
                self._splat[0], values, self._splat[2], mode="sum", per_sample_weights=splat_w
            )
            order = range(self.dim, -1, -1) if reverse else range(self.dim + 1)
            for j in order:
                lat = F.embedding_bag(
                    self._blur[0][j], lat, mode="sum", per_sample_weights=blur_w[j]
                )
            return F.embedding_bag(self._slice[0], lat, mode="sum", per_sample_weights=slice_w)

    def filter(self, values: Tensor) -> Tensor:
        """Filter ``values`` (differentiable in ``values``); see :func:`lattice_filter`."""
        return lattice_filter(self, values)


class _LatticeFilter(torch.autograd.Function):
    """Linear lattice filter whose backward is its exact transpose."""

    @staticmethod
    def forward(ctx, values: Tensor, lattice: Lattice) -> Tensor:  # type: ignore[override]
        ctx.lattice = lattice
        return lattice.apply(values)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return ctx.lattice.apply(grad.contiguous(), reverse=True), None


def lattice_filter(lattice: Lattice, values: Tensor) -> Tensor:
    """Approximate Gaussian filtering ``sum_j exp(-|f_i - f_j|^2 / 2) v_j`` (unnormalised).

    The result carries the lattice's own constant scale, which cancels in any normalised use (see
    :class:`GaussianKernel`). Differentiable in ``values``; the backward pass is the exact transpose
    (the same filter with the blur directions in reverse order).

    Args:
        lattice: Built from the features with :func:`build_lattice`.
        values: Values attached to the points.

    Returns:
        Filtered values.

    Shapes:
        values: ``(N, C)``; output ``(N, C)``.
    """
    if values.ndim != 2 or values.shape[0] != lattice.num_points:
        raise WsssError(
            f"lattice_filter expects values of shape (N={lattice.num_points}, C), "
            f"got {tuple(values.shape)}"
        )
    if not values.is_floating_point():
        raise WsssError(f"lattice_filter expects floating-point values, got {values.dtype}")
    return _LatticeFilter.apply(values.contiguous(), lattice)


class GaussianKernel:
    """A lattice filter with pydensecrf's symmetric normalisation (``NORMALIZE_SYMMETRIC``).

    ``apply(Q) = weight * D^-1/2 K D^-1/2 Q`` with ``K`` the lattice filter and
    ``D = diag(K 1 + 1e-20)``, so the lattice's constant factor cancels and the operator is
    symmetric (up to the order of the blur directions). The diagonal scalings and ``weight`` are
    folded into the splat and slice weights.

    Args:
        features: Feature vectors, already divided by their standard deviations.
        batch: Image index of every point (see :func:`build_lattice`).
        weight: Constant factor on the output (e.g. a Potts compatibility).

    Attributes:
        norm: ``(N,)`` the normalisation ``D^-1/2``.
        peak: ``max |apply(1)|``, a bound on ``|apply(v)|`` for values in ``[0, 1]``.

    Shapes:
        features: ``(N, d)``; batch: ``(N,)``.
    """

    def __init__(self, features: Tensor, batch: Tensor | None = None, *, weight: float = 1.0):
        tables = _build_tables(features, batch, _MAX_CODE)
        self.norm = (tables.filter_vector(torch.ones_like(tables.bary[0])) + 1e-20).rsqrt()
        self.lattice = Lattice(tables, self.norm, weight)
        # all filter weights are >= 0, so |apply(v)| <= peak for values in [0, 1]
        self.peak = abs(weight) * float((self.norm * tables.filter_vector(self.norm)).max())

    def apply(self, values: Tensor) -> Tensor:
        """Normalised filtering of ``(N, C)`` values (differentiable in the values)."""
        return lattice_filter(self.lattice, values)


def _f32(x: float) -> float:
    """Round a Python float to float32 precision (pydensecrf computes these constants in float)."""
    return float(torch.tensor(x, dtype=torch.float32))


def _elevate(features: Tensor) -> Tensor:
    """Project features onto the plane ``x . 1 = 0`` in ``R^(d+1)`` (Adams et al., p.5).

    Shapes:
        features: ``(N, d)``; output ``(d+1, N)`` (coordinate-major, as every step below).
    """
    n, d = features.shape
    inv_std = _f32(math.sqrt(2.0 / 3.0) * (d + 1))
    scale = [_f32(inv_std / math.sqrt((i + 2) * (i + 1))) for i in range(d)]
    feats = features.t().contiguous()
    elevated = torch.empty(d + 1, n, dtype=torch.float32, device=features.device)
    running = torch.zeros(n, dtype=torch.float32, device=features.device)
    for j in range(d, 0, -1):  # loop over the d coordinates, vectorised over points
        cf = feats[j - 1] * scale[j - 1]
        torch.sub(running, cf, alpha=float(j), out=elevated[j])
        running = running + cf
    elevated[0] = running
    return elevated


def _simplex(elevated: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest 0-coloured vertex, rank order and barycentric weights of each elevated point.

    Small integers are kept in float32 (exact) to avoid conversions.

    Returns:
        ``rem0`` int64, ``rank`` int64 and ``bary`` float32, each ``(d+1, N)``.
    """
    d1, n = elevated.shape
    rounded = torch.round(elevated * _f32(1.0 / d1))  # half to even, as the SSE code's mode
    rem0 = rounded * d1
    diff = elevated - rem0
    rank = rounded.sum(0).expand(d1, n).clone()
    for i in range(d1 - 1):  # rank = position in a stable descending sort of diff
        less = (diff[i : i + 1] < diff[i + 1 :]).to(torch.float32)
        rank[i] += less.sum(0)
        rank[i + 1 :] += 1.0 - less
    wrap = (rank < 0).to(torch.float32) - (rank >= d1).to(torch.float32)
    rank.add_(wrap, alpha=d1)
    rem0.add_(wrap, alpha=d1)
    v = (elevated - rem0) * _f32(1.0 / d1)
    index = (d1 - 1 - rank).to(torch.int64)
    bary = torch.zeros(d1 + 1, n, dtype=torch.float32, device=elevated.device)
    bary.scatter_add_(0, index, v)
    bary.scatter_add_(0, index + 1, -v)
    bary[0] += 1.0 + bary[d1]
    return rem0.to(torch.int64), (d1 - 1) - index, bary[:d1]


def _packed_codes(
    rem0: Tensor, rank: Tensor, image: Tensor, max_code: int
) -> tuple[Tensor, Tensor] | None:
    """int64 codes of the ``d+1`` enclosing vertices of every point, and the steps to neighbours.

    The key of vertex ``r`` of a point is ``rem0[:d] + canonical[r, rank[:d]]`` with
    ``canonical[r, k] = r`` for ``k <= d - r`` and ``r - (d + 1)`` otherwise, plus the image
    index. Keys are packed in mixed radix with a margin, so a neighbour's code is the vertex's code
    plus a constant step.

    Returns:
        ``codes`` ``(d+1, N)`` and the code steps ``(d+1,)`` to the ``n1`` neighbour along each
        direction, or ``None`` if the codes would exceed ``max_code``.
    """
    d1, n = rem0.shape
    d = d1 - 1
    lo = rem0[:d].amin(1) - (2 * d + 1)
    spans = [int(s) for s in rem0[:d].amax(1) + (2 * d + 1) - lo + 1]
    if math.prod(spans) * (int(image.max()) + 1) >= max_code:
        return None
    strides = [math.prod(spans[:i]) for i in range(d + 1)]  # the last one is the image's
    stride = torch.tensor(strides[:d], dtype=torch.int64, device=rem0.device)[:, None]
    base = ((rem0[:d] - lo[:, None]) * stride).sum(0) + image * strides[d]
    # by_rank[k] = stride of the coordinate whose rank is k (coordinate d has no stride)
    by_rank = torch.zeros(d1, n, dtype=torch.int64, device=rem0.device)
    by_rank.scatter_(0, rank[:d], stride.expand(d, n))
    suffix = by_rank.flip(0).cumsum(0)  # suffix[m] = sum of by_rank[d - m:]
    top = torch.cat([torch.zeros_like(suffix[:1]), suffix[:d]])
    total = sum(strides[:d])
    r = torch.arange(d1, device=rem0.device)[:, None]
    codes = base + r * total - d1 * top
    step = [d1 * strides[j] - total for j in range(d)] + [-total]
    return codes, torch.tensor(step, dtype=torch.int64, device=rem0.device)


def _row_codes(rem0: Tensor, rank: Tensor, image: Tensor) -> tuple[Tensor, Tensor]:
    """Fallback for very spread keys: lexicographic ids of the vertex keys and of their neighbours.

    Returns:
        ``codes`` ``(d+1, N)`` (ids of the vertices) and ``queries`` ``(d+1, M)`` (ids of the
        ``n1`` neighbours of the ``M`` sorted vertices; ids absent from ``codes``: no neighbour).
    """
    d1, n = rem0.shape
    d = d1 - 1
    r = torch.arange(d1, device=rem0.device)
    canonical = torch.where(r[None, :] <= (d - r)[:, None], r[:, None], r[:, None] - d1)
    keys = (rem0[None, :d] + canonical[:, rank[:d]]).permute(0, 2, 1)  # (d+1, N, d)
    keys = torch.cat([keys, image[None, :, None].expand(d1, n, 1)], dim=2)
    uniq, codes = torch.unique(keys.reshape(-1, d1), dim=0, return_inverse=True)
    step = torch.full((d1, d1), -1, dtype=torch.int64, device=rem0.device)
    step[torch.arange(d), torch.arange(d)] = d  # n1 along j: -1 everywhere, +d at j
    step[:, d] = 0
    rows = (uniq[None] + step[:, None, :]).reshape(-1, d1)
    _, ids = torch.unique(torch.cat([uniq, rows]), dim=0, return_inverse=True)
    # re-express everything in the joint id space (monotone in the vertex ids)
    vertex_ids = ids[: len(uniq)]
    return vertex_ids[codes].view(d1, n), ids[len(uniq) :].view(d1, -1)


def _blur_tables(uniq: Tensor, queries: Tensor) -> tuple[Tensor, Tensor]:
    """``[self, n1, n2]`` gather ids and ``[1, 1/2, 1/2]`` weights per direction (0 if absent).

    Only the ``n1`` neighbours are searched: ``n2(n1(v)) = v`` gives the others.

    Args:
        uniq: Sorted codes of the ``M`` vertices.
        queries: Codes of their ``n1`` neighbours along each direction, ``(d+1, M)``.

    Returns:
        Ids and weights, each ``(d+1, M, 3)``.
    """
    d1, m = queries.shape
    pos = torch.searchsorted(uniq, queries).clamp_(max=m - 1)
    found = uniq[pos] == queries
    own = torch.arange(m, device=uniq.device).expand(d1, m)
    half = found.to(torch.float32) * 0.5
    # n2 of n1(v) is v; absent neighbours write to a spare column m that is dropped
    target = torch.where(found, pos, m)
    n2 = torch.cat([own, own[:, :1]], dim=1).scatter(1, target, own)[:, :m]
    w2 = torch.zeros(d1, m + 1, device=uniq.device).scatter(1, target, half)[:, :m]
    index = torch.stack([own, torch.where(found, pos, own), n2], dim=-1)
    weight = torch.stack([torch.ones_like(half), half, w2], dim=-1)
    return index, weight


def build_lattice(
    features: Tensor, batch: Tensor | None = None, *, max_code: int = _MAX_CODE
) -> Lattice:
    """Build the permutohedral lattice for a set of feature vectors (no autograd).

    Args:
        features: Feature vectors, already divided by their standard deviations (e.g.
            ``(x / sxy, y / sxy, r / srgb, g / srgb, b / srgb)``); computed in float32.
        batch: Image index of every point (as in PyTorch Geometric); points of different images
            never interact. ``None`` means one image.
        max_code: Largest packed int64 key before falling back to row-wise ``unique`` (a testing
            knob).

    Returns:
        The lattice, on the features' device.

    Shapes:
        features: ``(N, d)`` with ``N >= 1`` and ``d >= 1``; batch: ``(N,)`` int64.
    """
    return Lattice(_build_tables(features, batch, max_code))


def _build_tables(features: Tensor, batch: Tensor | None, max_code: int) -> _Tables:
    if features.ndim != 2 or features.shape[0] < 1 or features.shape[1] < 1:
        raise WsssError(
            f"build_lattice expects features of shape (N, d), got {tuple(features.shape)}"
        )
    n, d = features.shape
    if batch is not None and batch.shape != (n,):
        raise WsssError(f"build_lattice expects batch of shape ({n},), got {tuple(batch.shape)}")
    with torch.no_grad():
        feats = features.detach().to(torch.float32)
        image = torch.zeros(n, dtype=torch.int64, device=feats.device) if batch is None else batch
        image = image.to(device=feats.device, dtype=torch.int64)
        rem0, rank, bary = _simplex(_elevate(feats))  # each (d+1, N)
        packed = _packed_codes(rem0, rank, image, max_code)
        codes, queries = packed if packed is not None else _row_codes(rem0, rank, image)
        flat = codes.reshape(-1)
        if packed is not None and int(flat.max()) < 2**31:  # int32 sorts twice as fast
            flat = flat.to(torch.int32)
        sorted_codes, order = torch.sort(flat, stable=True)
        sorted_codes = sorted_codes.to(torch.int64)
        uniq, inverse, counts = torch.unique_consecutive(
            sorted_codes, return_inverse=True, return_counts=True
        )
        if packed is not None:  # queries are code steps: add them to every vertex code
            queries = uniq[None, :] + queries[:, None]
        vertex = torch.empty_like(inverse).scatter_(0, order, inverse).view(d + 1, n)
        offsets = torch.cumsum(counts, 0) - counts
        return _Tables(vertex, bary, order, offsets, *_blur_tables(uniq, queries))
