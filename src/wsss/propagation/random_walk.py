"""Random-walk label propagation of IRNet and AffinityNet (SPEC section 3), sparse and exact.

With the symmetric affinity ``A`` (window radius 5, self-loops 1) and ``P = D^-1 A^beta`` (the
transpose of the authors' column-normalised ``T``), the propagated scores are
``X_rw = P^(2^k) X`` computed by ``2^k`` sparse products, which equals the authors'
``x^T T^(2^k)`` with ``T`` squared ``k`` times densely (``k = 8``: 256 steps).

==========  ==========  =====  ========  ==============================================
method      stride      beta   k         scores ``X`` and background
==========  ==========  =====  ========  ==============================================
``irn``     4           10     8         CAMs x (1 - boundary); after upsampling, divided by
                                         their maximum, a constant background plane 0.25
``psa``     8           8      8         [(1 - max_c CAM)^16, CAMs] (AffinityNet ``alpha``)
==========  ==========  =====  ========  ==============================================

The propagated maps are upsampled bilinearly by the stride (``align_corners=False``), cropped
to the image and the argmax taken over background and the image's classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from wsss.graph.power import sparse_matrix_power_apply
from wsss.graph.sparse import affinity_matrix, transition_matrix
from wsss.graph.window import window_edges

__all__ = [
    "RW_PRESETS",
    "RandomWalkSettings",
    "psa_background",
    "random_walk",
    "random_walk_labels",
    "random_walk_settings",
]


@dataclass(frozen=True)
class RandomWalkSettings:
    """Parameters of one random-walk scheme.

    Attributes:
        method: ``irn`` or ``psa``.
        stride: Grid stride of the graph (IRNet 4, AffinityNet 8).
        radius: Window radius of the graph (5).
        beta: Exponent of the affinities (IRNet 10, AffinityNet 8).
        exp_times: ``k``: the walk takes ``2^k`` steps (8).
        bg_threshold: IRNet's background score after max-normalising (``sem_seg_bg_thres``).
        alpha: AffinityNet's background exponent ``(1 - max CAM)^alpha`` (``infer_aff`` 16).
    """

    method: str = "irn"
    stride: int = 4
    radius: float = 5.0
    beta: float = 10.0
    exp_times: int = 8
    bg_threshold: float = 0.25
    alpha: float = 16.0


#: The authors' settings (IRNet ``make_sem_seg_labels``; AffinityNet ``infer_aff``).
RW_PRESETS: dict[str, RandomWalkSettings] = {
    "irn": RandomWalkSettings(method="irn", stride=4, beta=10.0, exp_times=8, bg_threshold=0.25),
    "psa": RandomWalkSettings(method="psa", stride=8, beta=8.0, exp_times=8, alpha=16.0),
}


def random_walk_settings(method: str, **overrides: float | int | None) -> RandomWalkSettings:
    """The preset of ``method`` with the non-None ``overrides`` applied.

    Raises:
        KeyError: unknown method (the message lists the valid ones).
    """
    if method not in RW_PRESETS:
        raise KeyError(f"unknown random walk {method!r}; valid names: {', '.join(RW_PRESETS)}")
    values = {
        **RW_PRESETS[method].__dict__,
        **{k: v for k, v in overrides.items() if v is not None},
    }
    return RandomWalkSettings(**values)


def _as_matrix(affinity: torch.Tensor, size: tuple[int, int], radius: float) -> torch.Tensor:
    """A CSR affinity matrix from itself or from per-edge weights in window order."""
    if affinity.layout == torch.sparse_csr:
        return affinity
    n = size[0] * size[1]
    src, dst = window_edges(size[0], size[1], radius, device=affinity.device)
    if affinity.shape != src.shape:
        raise ValueError(
            f"{tuple(affinity.shape)} edge weights for a {size[0]}x{size[1]} grid at radius "
            f"{radius}, which has {len(src)} edges"
        )
    return affinity_matrix(src, dst, affinity, n)


def random_walk(
    affinity: torch.Tensor,
    scores: torch.Tensor,
    *,
    beta: float,
    exp_times: int,
    radius: float = 5.0,
) -> torch.Tensor:
    """``P^(2^exp_times) X`` with ``P = D^-1 A^beta`` (SPEC section 3), by sparse products.

    Args:
        affinity: ``(N, N)`` symmetric sparse CSR affinity with self-loops, or per-edge weights
            ``(E,)`` in the order of ``window_edges(h, w, radius)`` (self-loops 1 are added).
        scores: Maps to propagate.
        beta: Exponent of the affinities.
        exp_times: ``k``; ``2^k`` steps.
        radius: Window radius of per-edge weights.

    Shapes:
        scores: ``(K, h, w)`` with ``N = h * w``. Returns ``(K, h, w)``.
    """
    if scores.ndim != 3:
        raise ValueError(f"expected (K, h, w) scores, got {tuple(scores.shape)}")
    k, h, w = scores.shape
    matrix = _as_matrix(affinity, (h, w), radius)
    if matrix.shape != (h * w, h * w):
        raise ValueError(f"a {tuple(matrix.shape)} affinity matrix for a {h}x{w} grid")
    trans = transition_matrix(matrix.to(scores.dtype), beta=beta, normalize="row")
    x = scores.reshape(k, h * w).transpose(0, 1)
    return sparse_matrix_power_apply(trans, x, 2**exp_times).transpose(0, 1).reshape(k, h, w)


def psa_background(cams: torch.Tensor, alpha: float) -> torch.Tensor:
    """AffinityNet's background score ``(1 - max_c CAM)^alpha`` (1 where there is no class).

    Shapes:
        cams: ``(C, h, w)``. Returns ``(h, w)``.
    """
    if cams.shape[0] == 0:
        return torch.ones(cams.shape[-2:], dtype=cams.dtype, device=cams.device)
    return (1 - cams.amax(dim=0)).clamp_min(0).pow(alpha)


def random_walk_labels(
    affinity: torch.Tensor,
    cams: torch.Tensor,
    keys: Sequence[int] | np.ndarray,
    *,
    size: tuple[int, int],
    settings: RandomWalkSettings | str = "irn",
    boundary: torch.Tensor | None = None,
    background: torch.Tensor | None = None,
) -> np.ndarray:
    """The label map of one image from its CAMs and affinity graph (SPEC section 3).

    Args:
        affinity: Sparse CSR ``(N, N)`` or per-edge weights ``(E,)`` (see :func:`random_walk`).
        cams: The image's class maps on the graph's grid (max-normalised CAMs).
        keys: The class id of each map (background 0 is never among them).
        size: The image's ``(H, W)``; ``h = ceil(H / stride)``, ``w = ceil(W / stride)``.
        settings: :class:`RandomWalkSettings` or a preset name (``irn``, ``psa``).
        boundary: IRNet: the boundary map; the CAMs are multiplied by ``1 - boundary``.
        background: AffinityNet: the background score on the grid (default
            :func:`psa_background` of ``cams``).

    Returns:
        ``(H, W)`` uint8 label map (0 background, else ``keys``; never 255).

    Shapes:
        cams: ``(C, h, w)``; boundary, background: ``(h, w)``.
    """
    s = random_walk_settings(settings) if isinstance(settings, str) else settings
    if cams.ndim != 3 or len(keys) != cams.shape[0]:
        raise ValueError(f"expected (C, h, w) CAMs for {len(keys)} keys, got {tuple(cams.shape)}")
    h, w = cams.shape[-2:]
    if (-(-size[0] // s.stride), -(-size[1] // s.stride)) != (h, w):
        raise ValueError(
            f"CAMs {h}x{w} do not match a {size[0]}x{size[1]} image at stride {s.stride}"
        )
    labels = np.concatenate([[0], np.asarray(keys, dtype=np.int64)]).astype(np.uint8)
    if s.method == "irn":
        scores = cams if boundary is None else cams * (1 - boundary)
    else:
        bg = psa_background(cams, s.alpha) if background is None else background
        scores = torch.cat([bg[None], cams])
    if scores.shape[0] == 0:
        return np.zeros(size, dtype=np.uint8)
    rw = random_walk(affinity, scores, beta=s.beta, exp_times=s.exp_times, radius=s.radius)
    up = F.interpolate(rw[None], size=(h * s.stride, w * s.stride), mode="bilinear",
                       align_corners=False)[0, :, : size[0], : size[1]]  # fmt: skip
    if s.method == "irn":
        up = up / up.max().clamp_min(torch.finfo(up.dtype).tiny)
        up = torch.cat([torch.full_like(up[:1], s.bg_threshold), up])
    return labels[up.argmax(dim=0).cpu().numpy()]
