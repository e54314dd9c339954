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

The features are non-negative (the decoder ends in a ReLU), so every cosine is high; compare
``cos_global`` with ``cos_feature`` and ``cos_near`` rather than with 0.
"""

from __future__ import annotations

import math

import torch

from wsss.seg.deeplab import DeepLabV3Plus
from wsss.seg.escrf import ESCRF, pool_keys, pooled_keys

__all__ = ["PROBES", "psi_p_probes"]

#: Names of the probes, in report order.
PROBES = ("keys", "keys_90", "near", "cos_global", "cos_feature", "cos_near", "weight",
          "norm_corr")  # fmt: skip


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
    model: DeepLabV3Plus, images: torch.Tensor, *, radius: float = 12.0
) -> list[dict[str, float]]:
    """The probes of the module docstring for each image of a batch.

    Args:
        model: A DeepLabV3+ whose ``refine`` is an :class:`~wsss.seg.escrf.ESCRF` with psi_p.
        images: ImageNet-normalised batch (the probes need no superpixels).
        radius: Distance in input pixels counted as near.

    Shapes:
        images: ``(B, 3, H, W)``. Returns ``B`` dicts with the keys of :data:`PROBES`.

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
    near_mask &= cells[None, :] != pooled_keys((h, w), module.key_stride, features.device)[:, None]
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
        return torch.nn.functional.cosine_similarity(a, image_mean.expand_as(a), dim=1)

    incoming = p.sum(1).clamp_min(1e-300).log()  # (B, M)
    half_norm = 0.5 * key_embed.pow(2).sum(1)  # (B, M)
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
        })  # fmt: skip
    return out


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(a.norm() * b.norm())
    return float((a * b).sum()) / den if den > 0 and math.isfinite(den) else float("nan")
