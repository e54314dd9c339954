"""The baselines ES-CRF compares with (its Tables 1-2): a Non-local block and a Joint-CRF head.

Vanilla-CRF (the dense CRF as post-processing of the predicted probabilities) is an option of
prediction (:func:`~wsss.seg.predict.predict_image` ``crf=True``), not a network.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from wsss.crf.dense_crf import PRESETS, DenseCRF
from wsss.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from wsss.seg.deeplab import DeepLabV3Plus

__all__ = ["JointCRF", "NonLocal", "non_local_attention"]


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    weights = torch.bmm(q.transpose(1, 2), k).softmax(-1)  # (B, rows, N)
    return torch.bmm(weights, v.transpose(1, 2))


def non_local_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *, chunk: int = 1024
) -> torch.Tensor:
    """``y_i = sum_j softmax_j(q_i . k_j) v_j`` (embedded Gaussian), in checkpointed query chunks.

    Shapes:
        query, key: ``(B, d, N)``; value: ``(B, c, N)``. Returns ``(B, N, c)``.
    """
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    n = query.shape[-1]
    parts = []
    for s in range(0, n, chunk):
        args = (query[:, :, s : s + chunk], key, value)
        use = grad and chunk < n
        parts.append(checkpoint(_attend, *args, use_reentrant=False) if use else _attend(*args))
    return torch.cat(parts, 1)


class NonLocal(nn.Module):
    """Non-local block (Wang et al. 2018, embedded Gaussian) in the ES-CRF refiner slot.

    ``z = x + W_z(y)``, ``y = softmax(theta(x)^T phi(x)) g(x)``; ``W_z`` is a 1x1 convolution and
    a GroupNorm whose scale starts at 0, so the block starts as the identity.

    Args:
        channels: Channels ``C`` of the features.
        inner_channels: Channels of theta, phi, g (``C / 2``).
        chunk: Query rows per step (memory bound as in ES-CRF).

    Shapes:
        features: ``(B, C, h, w)`` -> ``(B, C, h, w)`` (images and superpixels are ignored).
    """

    needs_superpixels = False

    def __init__(self, *, channels: int, inner_channels: int | None = None, chunk: int = 1024):
        super().__init__()
        inner = inner_channels or max(1, channels // 2)
        self.theta, self.phi, self.g = (nn.Conv2d(channels, inner, 1) for _ in range(3))
        self.out = nn.Conv2d(inner, channels, 1, bias=False)
        self.norm = nn.GroupNorm(max(1, min(8, channels // 4)), channels)
        nn.init.zeros_(self.norm.weight)
        self.chunk = chunk

    def forward(
        self, features: torch.Tensor, images: Any = None, superpixels: Any = None
    ) -> torch.Tensor:
        b, _, h, w = features.shape
        y = non_local_attention(self.theta(features).flatten(2), self.phi(features).flatten(2),
                                self.g(features).flatten(2), chunk=self.chunk)  # fmt: skip
        y = y.transpose(1, 2).reshape(b, -1, h, w)
        return features + self.norm(self.out(y))


class JointCRF(DeepLabV3Plus):
    """DeepLabV3+ whose scores go through mean-field dense-CRF layers, trained end to end.

    The output is ``log Q`` of the CRF marginals (unary ``-log_softmax`` of the network's scores,
    the AffinityNet kernel parameters, ``n_iter`` iterations at the input resolution), so the same
    cross-entropy trains it. The CRF learns CRF-as-RNN's parameters (Zheng et al. 2015): a weight
    per kernel and label, starting at AffinityNet's Potts weights 3 and 10, and the label
    compatibility matrix, starting at Potts ``1 - I``. Arguments as :class:`DeepLabV3Plus`, plus
    ``n_iter``.

    Shapes:
        input ``(B, 3, H, W)`` -> output ``(B, K, H, W)`` log-probabilities.
    """

    def __init__(self, *, n_iter: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.crf = DenseCRF(n_iter=n_iter, trainable_compat=True, num_labels=self.num_classes,
                            **PRESETS["psa"])  # fmt: skip
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(
        self, images: torch.Tensor, superpixels: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = super().forward(images, superpixels)
        rgb = ((images * self.std + self.mean).clamp(0, 1) * 255).detach()
        # exact log Q (the last update's log_softmax): a clamped log(Q) gives no gradient to the
        # pixels the CRF makes confidently wrong, and training then sharpens the CRF unopposed
        return self.crf(rgb, -F.log_softmax(logits.float(), dim=1), log=True)
