"""ES-CRF: embedded superpixel CRF message passing on high-level features (ES-CRF paper, eqs. 4-8).

.. math::

    F^*_i = \\frac{1}{Z_i}\\Big(F_i + \\sum_{j \\ne i} \\psi_p(i, j) F_j + F^S_i\\Big)  \\quad (4)

    \\psi_p(i, j) = \\mu(i, j)\\, k(f_i, f_j)  \\quad (5) \\qquad
    k(f_i, f_j) = \\mathrm{conv}([I_i, p_i]) \\cdot \\mathrm{conv}([I_j, p_j])  \\quad (6)

    \\mu(i, j) = \\mathrm{sigmoid}(\\mathrm{conv}[F_i, F_j])  \\quad (7) \\qquad
    F^S_i = \\sum_{l \\in Q(i)} \\tfrac{1}{n} F_l  \\quad (8)

Readings of passages the paper leaves open (no public code exists):

1. **Kernel.** Eq. 6 is a raw dot product, which can be negative, while ``Z_i`` of eq. 4 is a
   partition function. We use a normalised Gaussian of the embeddings' difference,
   ``k(i, j) = softmax_{j != i}(-|f_i - f_j|^2 / 2)``: non-negative weights summing to 1 and a true
   function of the pair, eq. 3's Gaussian kernel with a learned metric (``|f_i - f_j|^2 =
   (x_i - x_j)^T W^T W (x_i - x_j)`` for ``f = W x``). It equals ``softmax_j(f_i . f_j -
   |f_j|^2 / 2)``: the query's own ``-|f_i|^2 / 2`` cancels in the softmax over ``j``, the key's does
   not. The plain ``softmax_j(f_i . f_j)`` (``kernel="dot"``, the form before issue 19) therefore
   carries an extra factor ``exp(|f_j|^2 / 2)`` per key, so the key's own norm ranks the keys the
   same way for every query: a near-uniform global average at initialisation, the same few keys
   for every query after training (probes in docs/seg.md). ``F^p_i =
   sum_j mu k F_j`` is a gated weighted mean of ``F``, on the same footing as the superpixel mean
   ``F^S`` (Fig. 1(b): "F, F^p and F^s are fused").
2. **Z_i** is the total weight of the three terms, ``Z_i = 1 + sum_{j != i} mu(i, j) k(i, j) + 1``,
   so ``F*`` is a convex combination of ``F_i``, the pairwise message and ``F^S_i`` (as ``P-hat`` in
   eq. 13). An ablated term (psi_p only / psi_s only, Table 2) drops out of ``Z`` too.
3. **mu** is one scalar per pair: a 1x1 convolution of the concatenation ``[F_i, F_j]`` to one channel,
   which is exactly ``w_q . F_i + w_k . F_j + b`` (computed as two 1x1 convolutions, never per pair).
   Having no ``F_i``-``F_j`` interaction, its key half ranks the keys the same way for every query;
   the pair-specific part of psi_p is the kernel.
4. **conv([I, p])** is one 1x1 convolution of the image scaled to [0, 1] (the model's
   ImageNet-normalised input, un-normalised) and averaged over each feature cell, concatenated with
   sinusoidal ("cosine", [45] = Vaswani et al.) embeddings of the cell centre in input pixels:
   ``sin`` and ``cos`` of ``y`` and ``x`` at ``num_frequencies`` wavelengths spaced geometrically in
   ``wavelengths``. Pixel units keep distances the same for crops and whole images. The shortest
   wavelength is 4 key pitches (16 px at stride 4; 32 px for 2x2 pooled keys), so no channel is
   constant on the query or key grid (a wavelength of twice the pitch samples ``cos`` at its zeros).
5. **Initialisation** (``kernel="gaussian"``). The convolution has no bias (it cancels in
   ``f_i - f_j``), ``d = 3 + 4 K`` outputs and starts as the identity on ``[I, p]`` multiplied per
   channel by :func:`gaussian_input_scale`: the initial kernel is
   ``exp(-|I_i - I_j|^2 / (2 * 0.1^2))`` times a spatial kernel of standard deviation 8 px (2
   feature cells) that keeps falling across the image, i.e. local and content-dependent from the
   first step, as eq. 3 (the scale is a fixed reparametrisation of the same convolution; it keeps
   every weight near 1 for the optimiser).
6. **G** is every other position of the feature map (dense, as DenseCRF; eq. 1).
7. **Where.** ``F`` is the DeepLabV3+ decoder output (stride 4), right before the classifier, since
   Fig. 2 and eq. 10 put ES-CRF between the features and the class weights.
8. **Superpixels.** SLIC is run once on the full-resolution image; its map is reduced to the feature
   resolution by nearest sampling at cell centres, and ``F^S_i`` averages ``F`` over the cells of
   ``i``'s superpixel (``n`` counted at feature resolution). Augmentation transforms the map with
   the image.
9. **Pooled keys (CPU configuration only).** With ``key_stride = s > 1`` the keys ``j`` are the
   ``s x s`` cells of the feature map (``F``, ``f`` and the key gate averaged over the cell, all
   linear in the cell's positions) while every position stays a query, and ``j != i`` becomes
   "not ``i``'s own cell". It cuts the pairs ``s**2``-fold; ``s = 1`` (the default) is eq. 4.

Memory: the pairwise term never holds more than ``chunk x N`` pair weights per image (``N = h * w``):
queries are processed in chunks of ``chunk`` rows (each row sees all keys, so the softmax is exact)
and, with autograd on, each chunk is recomputed in the backward pass (``torch.utils.checkpoint``)
instead of being stored. Peak extra memory is ``O(B * chunk * N)``; time stays ``O(B N^2 (d + C))``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from wsss.data.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "ESCRF",
    "KERNELS",
    "cosine_position_embedding",
    "downsample_segments",
    "es_crf",
    "gaussian_input_scale",
    "pair_weights",
    "pairwise_message",
    "pool_keys",
    "pooled_keys",
    "superpixel_mean",
]

#: Kernels of psi_p (:func:`pair_weights`).
KERNELS = ("gaussian", "dot")


def cosine_position_embedding(
    size: tuple[int, int], *, stride: tuple[float, float], num_frequencies: int = 7,
    wavelengths: tuple[float, float] = (16.0, 1024.0), device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:  # fmt: skip
    """Sinusoidal embeddings of the cell centres of an ``h x w`` grid, in input pixels.

    Args:
        size: ``(h, w)`` of the grid.
        stride: Input pixels per cell along ``(y, x)``.
        num_frequencies: Wavelengths per axis.
        wavelengths: Shortest and longest wavelength in input pixels (geometric spacing).
        device: Output device.
        dtype: Output dtype.

    Returns:
        ``(4 * num_frequencies, h, w)``: ``sin y, cos y, sin x, cos x`` blocks.
    """
    h, w = size
    lo, hi = wavelengths
    steps = torch.arange(num_frequencies, device=device, dtype=torch.float64)
    ratio = steps / max(1, num_frequencies - 1)
    omega = 2 * math.pi / (lo * (hi / lo) ** ratio)
    ys = (torch.arange(h, device=device, dtype=torch.float64) + 0.5) * stride[0]
    xs = (torch.arange(w, device=device, dtype=torch.float64) + 0.5) * stride[1]
    ay, ax = omega[:, None] * ys[None], omega[:, None] * xs[None]  # (K, h), (K, w)
    blocks = [ay.sin()[:, :, None].expand(-1, h, w), ay.cos()[:, :, None].expand(-1, h, w),
              ax.sin()[:, None, :].expand(-1, h, w), ax.cos()[:, None, :].expand(-1, h, w)]  # fmt: skip
    return torch.cat(blocks).to(dtype)


def downsample_segments(superpixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Superpixel ids at a lower resolution: nearest sampling at the centres of the output cells.

    Shapes:
        superpixels: ``(B, H, W)`` int64. Returns ``(B, h, w)`` int64.
    """
    if superpixels.ndim != 3:
        raise ValueError(f"expected (B, H, W) superpixels, got {tuple(superpixels.shape)}")
    H, W = superpixels.shape[-2:]
    h, w = size
    ys = ((torch.arange(h, device=superpixels.device) + 0.5) * H / h).long().clamp_(max=H - 1)
    xs = ((torch.arange(w, device=superpixels.device) + 0.5) * W / w).long().clamp_(max=W - 1)
    return superpixels[:, ys][:, :, xs]


def superpixel_mean(features: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """``F^S`` of eq. 8: each position gets the mean of ``features`` over its segment.

    Args:
        features: Feature map ``F``.
        segments: Non-negative segment id of each position (ids are per image).

    Shapes:
        features: ``(B, C, h, w)``; segments: ``(B, h, w)`` int64. Returns ``(B, C, h, w)``.
    """
    B, C, h, w = features.shape
    if segments.shape != (B, h, w):
        raise ValueError(f"segments must be {(B, h, w)}, got {tuple(segments.shape)}")
    if segments.dtype != torch.int64 or (segments.numel() and int(segments.min()) < 0):
        raise ValueError("segments must be non-negative int64 ids")
    num = int(segments.max()) + 1 if segments.numel() else 1
    ids = (segments + num * torch.arange(B, device=segments.device)[:, None, None]).reshape(-1)
    flat = features.permute(0, 2, 3, 1).reshape(-1, C)
    sums = flat.new_zeros(B * num, C).index_add(0, ids, flat)
    counts = torch.bincount(ids, minlength=B * num).clamp_(min=1).to(flat.dtype)
    means = (sums / counts[:, None])[ids]
    return means.reshape(B, h, w, C).permute(0, 3, 1, 2)


def pair_weights(
    query: torch.Tensor, keys: torch.Tensor, gate_q: torch.Tensor, gate_k: torch.Tensor,
    own: torch.Tensor, kernel: str = "gaussian",
) -> torch.Tensor:  # fmt: skip
    """``psi_p(i, j) = mu(i, j) k(i, j)`` of some queries against all keys (eqs. 5-7).

    ``k(i, j) = softmax_{j != own(i)}(l_ij)`` with ``l_ij = -|q_i - e_j|^2 / 2`` (``gaussian``,
    written ``q_i . e_j - |e_j|^2 / 2``: the ``-|q_i|^2 / 2`` term is the same for every key of a
    query and cancels in the softmax) or ``l_ij = q_i . e_j`` (``dot``), and
    ``mu(i, j) = sigmoid(gate_q_i + gate_k_j)``.

    Shapes:
        query: ``(B, d, n)``; keys: ``(B, d, M)``; gate_q: ``(B, n)``; gate_k: ``(B, M)``; own:
        ``(n,)`` int64. Returns ``(B, n, M)`` (0 at each query's left-out key).
    """
    logits = torch.bmm(query.transpose(1, 2), keys)  # (B, n, M)
    if kernel == "gaussian":
        logits = logits - 0.5 * keys.pow(2).sum(1)[:, None, :]
    elif kernel != "dot":
        raise ValueError(f"unknown kernel {kernel!r}; valid names: {', '.join(KERNELS)}")
    cols = torch.arange(keys.shape[-1], device=keys.device)
    left_out = cols[None, :] == own[:, None]
    k = logits.masked_fill(left_out, float("-inf")).softmax(dim=-1)  # eq. 6, reading 1
    return torch.sigmoid(gate_q[:, :, None] + gate_k[:, None, :]) * k  # eqs. 5, 7


def _pairwise_chunk(
    feats: torch.Tensor, query: torch.Tensor, keys: torch.Tensor, gate_q: torch.Tensor,
    gate_k: torch.Tensor, own: torch.Tensor, kernel: str,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Message and weight sum of one chunk of query rows (``own``: each row's left-out key)."""
    weights = pair_weights(query, keys, gate_q, gate_k, own, kernel)
    return torch.bmm(weights, feats.transpose(1, 2)), weights.sum(-1)


def pairwise_message(
    features: torch.Tensor, embed: torch.Tensor, gate_q: torch.Tensor, gate_k: torch.Tensor,
    *, query_embed: torch.Tensor | None = None, own: torch.Tensor | None = None,
    chunk: int = 1024, kernel: str = "gaussian",
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """``sum_{j != i} psi_p(i, j) F_j`` and ``sum_{j != i} psi_p(i, j)`` (eqs. 4-7), in query chunks.

    ``psi_p(i, j) = sigmoid(gate_q_i + gate_k_j) * k(i, j)`` with the kernel of
    :func:`pair_weights` between ``q = query_embed`` (default: ``embed``, the keys are the queries)
    and ``embed``.

    Args:
        features: ``F`` at the key positions, flattened.
        embed: Kernel embeddings ``f = conv([I, p])`` of the key positions, flattened.
        gate_q: Query half of the compatibility logit (``w_q . F_i + b``).
        gate_k: Key half of the compatibility logit (``w_k . F_j``).
        query_embed: Kernel embeddings of the query positions, or None when the queries are the
            keys (``N = M``).
        own: The key each query leaves out (eq. 4's ``j != i``), or None for key ``i`` (``N = M``).
        chunk: Query rows per step; with autograd each chunk is recomputed in backward.
        kernel: ``gaussian`` (``softmax_j(-|f_i - f_j|^2 / 2)``) or ``dot``
            (``softmax_j(f_i . f_j)``, the form before issue 19, kept for comparison).

    Shapes:
        features: ``(B, C, M)``; embed: ``(B, d, M)``; gate_q: ``(B, N)``; gate_k: ``(B, M)``;
        query_embed: ``(B, d, N)``; own: ``(N,)`` int64 in ``[0, M)``. Returns ``(B, N, C)`` and
        ``(B, N)``.
    """
    query = embed if query_embed is None else query_embed
    B, C, M = features.shape
    N = query.shape[-1]
    bad = (embed.shape[0] != B or embed.shape[-1] != M or query.shape[:2] != embed.shape[:2]
           or gate_q.shape != (B, N) or gate_k.shape != (B, M))  # fmt: skip
    if bad:
        raise ValueError(f"shapes disagree: features {tuple(features.shape)}, embed "
                         f"{tuple(embed.shape)}, queries {tuple(query.shape)}, gates "
                         f"{tuple(gate_q.shape)}, {tuple(gate_k.shape)}")  # fmt: skip
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; valid names: {', '.join(KERNELS)}")
    if own is None:
        if N != M:
            raise ValueError(f"{N} queries and {M} keys: give the key each query leaves out")
        own = torch.arange(N, device=features.device)
    if own.shape != (N,):
        raise ValueError(f"own must be ({N},), got {tuple(own.shape)}")
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    if M == 1:  # the only key is left out
        return features.new_zeros(B, N, C), features.new_zeros(B, N)
    messages, sums = [], []
    grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (features, embed, query, gate_q, gate_k)
    )
    for s in range(0, N, chunk):
        args = (features, query[:, :, s : s + chunk], embed, gate_q[:, s : s + chunk], gate_k,
                own[s : s + chunk], kernel)  # fmt: skip
        if grad and chunk < N:
            msg, total = checkpoint(_pairwise_chunk, *args, use_reentrant=False)
        else:
            msg, total = _pairwise_chunk(*args)
        messages.append(msg)
        sums.append(total)
    return torch.cat(messages, 1), torch.cat(sums, 1)


def pooled_keys(
    size: tuple[int, int], key_stride: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """The key cell of each position when keys are ``key_stride x key_stride`` cell means.

    Shapes:
        Returns ``(h * w,)`` int64: ``(y // s) * ceil(w / s) + x // s`` in row-major order.
    """
    h, w = size
    ys = torch.arange(h, device=device) // key_stride
    xs = torch.arange(w, device=device) // key_stride
    return (ys[:, None] * (-(-w // key_stride)) + xs[None, :]).reshape(-1)


def pool_keys(tensors: tuple[torch.Tensor, ...], key_stride: int) -> tuple[torch.Tensor, ...]:
    """The key-side maps: ``key_stride x key_stride`` cell means (reading 9), or the maps themselves.

    Shapes:
        each ``(B, c, h, w)`` -> ``(B, c, ceil(h / s), ceil(w / s))``.
    """
    if key_stride < 1:
        raise ValueError(f"key_stride must be positive, got {key_stride}")
    if key_stride == 1:
        return tensors
    return tuple(F.avg_pool2d(t, key_stride, ceil_mode=True) for t in tensors)


def es_crf(
    features: torch.Tensor, segments: torch.Tensor | None, *, embed: torch.Tensor | None = None,
    gate_q: torch.Tensor | None = None, gate_k: torch.Tensor | None = None, chunk: int = 1024,
    key_stride: int = 1, kernel: str = "gaussian",
) -> torch.Tensor:  # fmt: skip
    """Eq. 4: ``F* = (F + sum_j psi_p F_j + F^S) / Z`` with ``Z = 1 + sum_j psi_p + 1``.

    Args:
        features: ``F``.
        segments: Superpixel ids at the feature resolution, or None to leave out ``F^S`` (eq. 8).
        embed: ``f = conv([I, p])`` at the feature resolution (eq. 6), or None to leave out the
            pairwise term (then ``gate_q`` and ``gate_k`` are not needed).
        gate_q: ``w_q . F_i + b`` (eq. 7).
        gate_k: ``w_k . F_j`` (eq. 7).
        chunk: Query rows per step of the pairwise term.
        key_stride: 1: every position is a key (eq. 4). ``s > 1``: the keys are the means of
            ``F``, ``f`` and ``gate_k`` over ``s x s`` cells (all linear in the cell's pixels),
            and each query leaves out its own cell: ``s**2`` times fewer pairs (reading 9).
        kernel: See :func:`pair_weights`.

    Shapes:
        features: ``(B, C, h, w)``; segments: ``(B, h, w)`` int64; embed: ``(B, d, h, w)``;
        gate_q, gate_k: ``(B, 1, h, w)``. Returns ``(B, C, h, w)``.
    """
    B, C, h, w = features.shape
    total = features
    z = torch.ones_like(features[:, :1])
    if embed is not None:
        if gate_q is None or gate_k is None:
            raise ValueError("the pairwise term needs gate_q and gate_k")
        keys, key_embed, key_gate = pool_keys((features, embed, gate_k), key_stride)
        msg, weight = pairwise_message(
            keys.reshape(B, C, -1), key_embed.reshape(B, embed.shape[1], -1),
            gate_q.reshape(B, -1), key_gate.reshape(B, -1),
            query_embed=embed.reshape(B, embed.shape[1], -1),
            own=pooled_keys((h, w), key_stride, features.device), chunk=chunk, kernel=kernel,
        )  # fmt: skip
        total = total + msg.transpose(1, 2).reshape(B, C, h, w)
        z = z + weight.reshape(B, 1, h, w)
    if segments is not None:
        total = total + superpixel_mean(features, segments)
        z = z + 1
    return total / z


def gaussian_input_scale(
    num_frequencies: int, wavelengths: tuple[float, float], *, bandwidth: float, colour_scale: float
) -> torch.Tensor:
    """Per-channel scale of ``[I, p]`` under which an identity ``conv`` gives the initial kernel.

    With ``f = [I / colour_scale, a_k p_k]`` the Gaussian kernel is
    ``exp(-|I_i - I_j|^2 / (2 colour_scale^2) - sum_k a_k^2 (2 - cos(w_k dy) - cos(w_k dx)))``
    (``|sin a - sin b|^2 + |cos a - cos b|^2 = 2 - 2 cos(a - b)``), a function of the colour
    difference and the displacement ``(dy, dx)`` only. ``a_k = lambda_k / (2 pi bandwidth
    sqrt(K))`` makes the position part ``exp(-(dy^2 + dx^2) / (2 bandwidth^2))`` for displacements
    well below the shortest wavelength (each of the ``K`` frequencies contributes ``1 / K`` of the
    curvature), and the long wavelengths keep it falling over the whole image.

    Returns:
        ``(3 + 4 K,)``: ``1 / colour_scale`` three times, then ``a`` for each of the ``sin y,
        cos y, sin x, cos x`` blocks of :func:`cosine_position_embedding`.
    """
    K = num_frequencies
    lo, hi = wavelengths
    ratio = torch.arange(K, dtype=torch.float64) / max(1, K - 1)
    lam = lo * (hi / lo) ** ratio
    amp = lam / (2 * math.pi * bandwidth * math.sqrt(K))
    colour = torch.full((3,), 1.0 / colour_scale, dtype=torch.float64)
    return torch.cat([colour, amp.repeat(4)]).float()


class ESCRF(nn.Module):
    """The ES-CRF module (eqs. 4-8): refines features with pairwise and superpixel messages.

    Args:
        channels: Channels ``C`` of the features it refines.
        embed_channels: Channels ``d`` of the kernel embedding ``conv([I, p])``; None: ``3 + 4 *
            num_frequencies`` (``gaussian``: the identity at initialisation; ``dot``: 32).
        num_frequencies: Wavelengths per axis of the cosine position embedding.
        wavelengths: Shortest and longest wavelength, in input pixels. The defaults suit a
            stride-4 feature map with every position a key (shortest: 4 key pitches).
        kernel: ``gaussian`` (reading 1: ``softmax_j(-|f_i - f_j|^2 / 2)``, a local kernel at
            initialisation) or ``dot`` (``softmax_j(f_i . f_j)`` with PyTorch's default
            initialisation: the form before issue 19, for comparison).
        bandwidth: ``gaussian``: spatial standard deviation of the initial kernel, input pixels.
        colour_scale: ``gaussian``: colour standard deviation of the initial kernel ([0, 1] units).
        window: ``gaussian`` only: also multiply the kernel by a fixed, unlearned spatial Gaussian
            ``exp(-|x_i - x_j|^2 / (2 window^2))`` (input pixels; the cell centres divided by
            ``window`` are appended to ``f``), so psi_p stays local whatever is learned. None (the
            default): eq. 6's learned embedding alone.
        pairwise: Use psi_p (Table 2 ablation).
        superpixel: Use psi_s / ``F^S`` (Table 2 ablation).
        chunk: Query rows per step of the pairwise term (bounds memory, see the module notes).
        key_stride: Keys are means over ``key_stride x key_stride`` cells (1: every position, eq.
            4; the ``small`` CPU configuration uses 2, see :func:`es_crf`).

    Shapes:
        features: ``(B, C, h, w)``; images: ``(B, 3, H, W)`` ImageNet-normalised; superpixels:
        ``(B, H, W)`` int64 (needed when ``superpixel``). Output ``(B, C, h, w)``.

    Example:
        >>> m = ESCRF(channels=8, num_frequencies=2)
        >>> m(torch.randn(2, 8, 4, 4), torch.randn(2, 3, 16, 16),
        ...   torch.zeros(2, 16, 16, dtype=torch.long)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(
        self, *, channels: int, embed_channels: int | None = None, num_frequencies: int = 7,
        wavelengths: tuple[float, float] = (16.0, 1024.0), kernel: str = "gaussian",
        bandwidth: float = 8.0, colour_scale: float = 0.1, window: float | None = None,
        pairwise: bool = True,
        superpixel: bool = True, chunk: int = 1024, key_stride: int = 1,
    ) -> None:  # fmt: skip
        super().__init__()
        if not (pairwise or superpixel):
            raise ValueError("ES-CRF needs at least one of pairwise and superpixel")
        if key_stride < 1:
            raise ValueError(f"key_stride must be positive, got {key_stride}")
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; valid names: {', '.join(KERNELS)}")
        if bandwidth <= 0 or colour_scale <= 0 or (window is not None and window <= 0):
            raise ValueError(f"bandwidth, colour_scale and window must be positive, got "
                             f"{bandwidth}, {colour_scale}, {window}")  # fmt: skip
        if window is not None and kernel != "gaussian":
            raise ValueError("a spatial window needs the gaussian kernel")
        self.pairwise, self.superpixel, self.chunk = pairwise, superpixel, chunk
        self.key_stride, self.kernel, self.window = key_stride, kernel, window
        self.num_frequencies, self.wavelengths = num_frequencies, tuple(wavelengths)
        self.needs_superpixels = superpixel
        inputs = 3 + 4 * num_frequencies
        gaussian = kernel == "gaussian"
        d = embed_channels or (inputs if gaussian else 32)
        if pairwise and gaussian and d < inputs:
            raise ValueError(f"the gaussian kernel starts from the identity on [I, p]: "
                             f"embed_channels must be >= {inputs}, got {d}")  # fmt: skip
        self.embed = nn.Conv2d(inputs, d, 1, bias=not gaussian) if pairwise else None
        self.gate_query = nn.Conv2d(channels, 1, 1) if pairwise else None
        self.gate_key = nn.Conv2d(channels, 1, 1, bias=False) if pairwise else None
        scale = torch.ones(inputs)
        if gaussian:
            scale = gaussian_input_scale(num_frequencies, self.wavelengths, bandwidth=bandwidth,
                                         colour_scale=colour_scale)  # fmt: skip
            if self.embed is not None:
                with torch.no_grad():  # identity on [I, p]; extra outputs start small
                    self.embed.weight.mul_(0.1)
                    self.embed.weight[:inputs, :, 0, 0] = torch.eye(inputs)
        self.register_buffer("input_scale", scale.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def kernel_embedding(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``conv([I, p])`` on an ``h x w`` grid (eq. 6): image in [0, 1] averaged per cell.

        ``gaussian``: each input channel is first multiplied by :func:`gaussian_input_scale`; with
        a ``window``, the cell centres (input pixels) divided by it are appended.

        Shapes:
            images: ``(B, 3, H, W)`` normalised. Returns ``(B, d, h, w)`` (``d + 2`` with a window).
        """
        assert self.embed is not None
        unit = (images * self.std + self.mean).clamp(0, 1)
        colour = F.adaptive_avg_pool2d(unit, size)
        stride = (images.shape[-2] / size[0], images.shape[-1] / size[1])
        pos = cosine_position_embedding(size, stride=stride, num_frequencies=self.num_frequencies,
                                        wavelengths=self.wavelengths, device=images.device,
                                        dtype=images.dtype)  # fmt: skip
        pos = pos[None].expand(images.shape[0], -1, -1, -1)
        f = self.embed(torch.cat([colour, pos], dim=1) * self.input_scale)
        if self.window is None:
            return f
        ys = (torch.arange(size[0], device=f.device, dtype=f.dtype) + 0.5) * stride[0]
        xs = (torch.arange(size[1], device=f.device, dtype=f.dtype) + 0.5) * stride[1]
        centres = torch.stack(torch.meshgrid(ys, xs, indexing="ij")) / self.window
        return torch.cat([f, centres[None].expand(f.shape[0], -1, -1, -1)], dim=1)

    def _segments(self, images: torch.Tensor, superpixels: torch.Tensor | None,
                  size: tuple[int, int]) -> torch.Tensor | None:  # fmt: skip
        if not self.superpixel:
            return None
        if superpixels is None or superpixels.shape != (images.shape[0], *images.shape[-2:]):
            got = None if superpixels is None else tuple(superpixels.shape)
            raise ValueError(f"superpixels must be (B, H, W) = "
                             f"{(images.shape[0], *images.shape[-2:])}, got {got}")  # fmt: skip
        return downsample_segments(superpixels, size)

    def forward(
        self, features: torch.Tensor, images: torch.Tensor, superpixels: torch.Tensor | None = None
    ) -> torch.Tensor:
        if features.ndim != 4 or images.ndim != 4 or images.shape[0] != features.shape[0]:
            raise ValueError(f"expected (B, C, h, w) features and (B, 3, H, W) images, got "
                             f"{tuple(features.shape)} and {tuple(images.shape)}")  # fmt: skip
        size = (features.shape[-2], features.shape[-1])
        segments = self._segments(images, superpixels, size)
        if not self.pairwise:
            return es_crf(features, segments)
        assert self.gate_query is not None and self.gate_key is not None
        embed = self.kernel_embedding(images, size)
        return es_crf(features, segments, embed=embed, gate_q=self.gate_query(features),
                      gate_k=self.gate_key(features), chunk=self.chunk,
                      key_stride=self.key_stride, kernel=self.kernel)  # fmt: skip

    def pairwise_weights(
        self, features: torch.Tensor, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every ``psi_p(i, j)`` of eq. 4 at once, the keys' features and embeddings (for probes:
        no chunks, so ``O(B N M)`` memory).

        Shapes:
            features: ``(B, C, h, w)``; images: ``(B, 3, H, W)``. Returns ``(B, h w, M)`` weights
            (queries row-major; keys the ``key_stride`` cells, row-major), ``(B, C, M)`` and
            ``(B, d, M)``.
        """
        if self.embed is None or self.gate_query is None or self.gate_key is None:
            raise ValueError("this ES-CRF has no pairwise term")
        h, w = features.shape[-2:]
        embed = self.kernel_embedding(images, (h, w))
        keys, key_embed, key_gate = pool_keys((features, embed, self.gate_key(features)),
                                              self.key_stride)  # fmt: skip
        weights = pair_weights(embed.flatten(2), key_embed.flatten(2),
                               self.gate_query(features).flatten(1), key_gate.flatten(1),
                               pooled_keys((h, w), self.key_stride, features.device),
                               self.kernel)  # fmt: skip
        return weights, keys.flatten(2), key_embed.flatten(2)
