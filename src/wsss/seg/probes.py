"""Probes of ES-CRF's learned pairwise term psi_p: is its message local, or a global average?

For every query ``i`` of an image the weights ``psi_p(i, j)`` over the keys ``j`` (eqs. 5-7) are
normalised to ``p_ij = psi_p(i, j) / sum_j psi_p(i, j)``, and :func:`psi_p_probes` measures
(each a mean over the queries of the image):

==================  =================================================================================
``keys``            effective number of keys carrying the weight: ``exp(-sum_j p_ij log p_ij)``
                    (the perplexity; ``M - 1`` for a uniform kernel, 1 for one key)
``keys_90``         the fewest keys holding 90 % of the weight
``near``            share of the weight on keys whose centre lies within ``radius`` input pixels of
                    the query's centre (key centre: the mean of its cells' centres)
``cos_global``      cosine of the message ``m_i = sum_j p_ij F_j`` with the image-mean feature
``cos_feature``     the same for ``F_i`` itself (reference: what a message equal to ``F_i`` scores)
``cos_near``        the same for the plain mean of the keys within ``radius`` (reference: a local
                    message that ignores the content)
``weight``          ``sum_j psi_p(i, j)``: the pairwise term's share of ``Z_i`` (eq. 4)
``norm_corr``       Pearson correlation, over the keys, of ``log sum_i p_ij`` (the weight a key
                    receives) with ``|f_j|^2 / 2`` (its embedding's squared norm): near 1 when the
                    key's own norm decides the weights (issue 19)
==================  =================================================================================

Given the ground truth (a query's class is the label at its cell centre, a key's class mix the
share of its cells of each class; 255 left out):

======================  =============================================================================
``same_class``          for the queries on an object (class > 0): share of the weight on keys of the
                        query's class (a CRF message from the same object, Fig. 3(c))
``same_class_uniform``  the same for equal weights on every other key (what a global average gets)
``same_class_near``     the same for equal weights on the keys within ``radius`` (a local average)
``same_bg``, ...        the three for the background queries (class 0): a kernel that sends every
                        query's weight to the same keys (e.g. the objects') scores high above and
                        low here
======================  =============================================================================

The features are non-negative (the decoder ends in a ReLU), so every cosine is high; compare
``cos_global`` with ``cos_feature`` and ``cos_near`` rather than with 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from wsss.seg.deeplab import DeepLabV3Plus
from wsss.seg.escrf import ESCRF, downsample_segments, pool_keys, pooled_keys

__all__ = ["PROBES", "psi_p_probes"]

#: Names of the probes, in report order (the last six need the ground truth).
PROBES = ("keys", "keys_90", "near", "cos_global", "cos_feature", "cos_near", "weight",
          "norm_corr", "same_class", "same_class_uniform", "same_class_near", "same_bg",
          "same_bg_uniform", "same_bg_near")  # fmt: skip


def _centres(size: tuple[int, int], stride: tuple[float, float], key_stride: int,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Query and key centres in input pixels, ``(N, 2)`` and ``(M, 2)``."""
    h, w = size
    ys = (torch.arange(h, device=device, dtype=torch.float64) + 0.5) * stride[0]
    xs = (torch.arange(w, device=device, dtype=torch.float64) + 0.5) * stride[1]
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))  # (2, h, w)
    (keys,) = pool_keys((grid[None],), key_stride)
    return grid.flatten(1).T, keys[0].flatten(1).T


@torch.no_grad()
def psi_p_probes(
    model: DeepLabV3Plus, images: torch.Tensor, masks: torch.Tensor | None = None, *,
    num_classes: int | None = None, radius: float = 12.0,
) -> list[dict[str, float]]:  # fmt: skip
    """The probes of the module docstring for each image of a batch.

    Args:
        model: A DeepLabV3+ whose ``refine`` is an :class:`~wsss.seg.escrf.ESCRF` with psi_p.
        images: ImageNet-normalised batch (the probes need no superpixels).
        masks: Ground truth (255 ignored), or None to leave out the ``same_class`` probes (NaN).
        num_classes: Classes of ``masks`` (None: the model's).
        radius: Distance in input pixels counted as near.

    Shapes:
        images: ``(B, 3, H, W)``; masks: ``(B, H, W)`` int64. Returns ``B`` dicts with the keys of
        :data:`PROBES` (NaN for an image without object queries).

    Raises:
        ValueError: the model has no ES-CRF pairwise term.
    """
    module = model.refine
    if not isinstance(module, ESCRF) or not module.pairwise:
        raise ValueError("the model has no ES-CRF pairwise term to probe")
    features = model.features(images)
    B, _, h, w = features.shape
    psi, keys, key_embed = (t.double() for t in module.pairwise_weights(features, images))
    features = features.double()
    stride = (images.shape[-2] / h, images.shape[-1] / w)
    q_xy, k_xy = _centres((h, w), stride, module.key_stride, features.device)
    near_mask = torch.cdist(q_xy, k_xy) <= radius  # (N, M)
    cells = torch.arange(k_xy.shape[0], device=features.device)
    own_mask = cells[None, :] == pooled_keys((h, w), module.key_stride, features.device)[:, None]
    near_mask &= ~own_mask
    total = psi.sum(-1, keepdim=True)
    p = psi / total.clamp_min(1e-300)
    entropy = -(p * p.clamp_min(1e-300).log()).sum(-1)
    cumulative = p.sort(-1, descending=True).values.cumsum(-1)
    keys_90 = (cumulative < 0.9).sum(-1) + 1
    flat = features.flatten(2)  # (B, C, N)
    image_mean = flat.mean(-1, keepdim=True)  # (B, C, 1)
    message = torch.bmm(p, keys.transpose(1, 2)).transpose(1, 2)  # (B, C, N)
    local = near_mask.double() / near_mask.sum(-1, keepdim=True).clamp_min(1)
    local_mean = torch.einsum("nm,bcm->bcn", local, keys)

    def cosine(a: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(a, image_mean.expand_as(a), dim=1)

    incoming = p.sum(1).clamp_min(1e-300).log()  # (B, M)
    half_norm = 0.5 * key_embed.pow(2).sum(1)  # (B, M)
    others = (~own_mask).double()
    uniform = others / others.sum(-1, keepdim=True).clamp_min(1)
    same = {name: torch.full((B,), float("nan"), dtype=torch.float64) for name in PROBES[8:]}
    if masks is not None:
        k = num_classes or model.num_classes
        labels = downsample_segments(masks.long(), (h, w)).flatten(1)  # (B, N)
        valid = labels < k
        onehot = F.one_hot(labels.clamp(max=k - 1), k).double() * valid[..., None]  # (B, N, K)
        grid = onehot.transpose(1, 2).reshape(B, k, h, w)
        (mix,) = pool_keys((grid,), module.key_stride)  # (B, K, M) share of each class
        mix = mix.flatten(2)
        groups = (("same_class", valid & (labels > 0)), ("same_bg", valid & (labels == 0)))
        for suffix, weights in (("", p), ("_uniform", uniform[None]), ("_near", local[None])):
            per_class = torch.einsum("bnm,bkm->bnk", weights.expand(B, -1, -1), mix)
            mass = per_class.gather(2, labels.clamp(max=k - 1)[..., None])[..., 0]
            for name, chosen in groups:
                for b in range(B):
                    if chosen[b].any():
                        same[name + suffix][b] = mass[b][chosen[b]].mean()
    out = []
    for b in range(B):
        out.append({
            "keys": float(entropy[b].exp().mean()), "keys_90": float(keys_90[b].double().mean()),
            "near": float((p[b] * near_mask).sum(-1).mean()),
            "cos_global": float(cosine(message)[b].mean()),
            "cos_feature": float(cosine(flat)[b].mean()),
            "cos_near": float(cosine(local_mean)[b].mean()),
            "weight": float(total[b].mean()),
            "norm_corr": _pearson(incoming[b], half_norm[b]),
            **{name: float(values[b]) for name, values in same.items()},
        })  # fmt: skip
    return out


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(a.norm() * b.norm())
    return float((a * b).sum()) / den if den > 0 and math.isfinite(den) else float("nan")
