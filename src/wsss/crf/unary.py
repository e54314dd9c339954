"""Unary potentials (negative log probabilities) with pydensecrf's conventions."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from wsss.errors import WsssError

__all__ = ["unary_from_labels", "unary_from_probs"]


def unary_from_probs(probs: Tensor, *, clip: float | None = 1e-5) -> Tensor:
    """Unary energy ``-log(clip(p, clip, 1))`` of class probabilities.

    Same values as ``pydensecrf.utils.unary_from_softmax(probs, clip=clip)``.

    Args:
        probs: Class probabilities, classes on dimension 1.
        clip: Lower bound applied before the log (``None``: no clipping; zeros give ``inf``).

    Returns:
        The unary energy, same shape and dtype (float32 for non-float input).

    Shapes:
        probs: ``(B, L, H, W)`` (any shape works; the classes axis is not touched).
    """
    if not probs.is_floating_point():
        probs = probs.to(torch.float32)
    if clip is not None:
        probs = probs.clamp(clip, 1.0)
    return -torch.log(probs)


def unary_from_labels(
    labels: Tensor, n_labels: int, *, gt_prob: float, zero_unsure: bool = True
) -> Tensor:
    """Unary energy of a hard label map, as ``pydensecrf.utils.unary_from_labels``.

    The given label gets ``-log(gt_prob)``, every other label ``-log((1 - gt_prob) / (n_labels -
    1))``. With ``zero_unsure=True`` (pydensecrf's default), label value ``k >= 1`` is class
    ``k - 1`` and value 0 means "unsure": such pixels get the uniform ``-log(1 / n_labels)`` for
    every class. With ``zero_unsure=False`` (IRNet), value ``k`` is class ``k``.

    Args:
        labels: Integer label map.
        n_labels: Number of classes ``L`` (with ``zero_unsure``, not counting the value 0).
        gt_prob: Confidence in the given labels, in ``(0, 1)``.
        zero_unsure: Treat value 0 as "unsure" (see above).

    Returns:
        float32 unary energy with the classes inserted on dimension 1.

    Shapes:
        labels: ``(B, H, W)``; output ``(B, L, H, W)``.

    Raises:
        WsssError: ``gt_prob`` outside ``(0, 1)``, ``n_labels < 2``, or a label out of range.
    """
    if not 0.0 < gt_prob < 1.0:
        raise WsssError(f"gt_prob must lie in (0, 1), got {gt_prob}")
    if n_labels < 2:
        raise WsssError(f"unary_from_labels needs n_labels >= 2, got {n_labels}")
    if labels.ndim != 3:
        raise WsssError(
            f"unary_from_labels expects labels of shape (B, H, W), got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise WsssError(f"unary_from_labels expects an integer label map, got {labels.dtype}")
    labels = labels.to(torch.int64)
    cls = labels - 1 if zero_unsure else labels
    low, high = (-1 if zero_unsure else 0), n_labels - 1
    if labels.numel() and (int(cls.min()) < low or int(cls.max()) > high):
        top = n_labels if zero_unsure else n_labels - 1
        raise WsssError(
            f"labels must lie in [0, {top}] for n_labels={n_labels}, zero_unsure={zero_unsure}; "
            f"got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    other = -math.log((1.0 - gt_prob) / (n_labels - 1))
    shape = (*labels.shape[:1], n_labels, *labels.shape[1:])
    unary = torch.full(shape, other, dtype=torch.float32, device=labels.device)
    unary.scatter_(1, cls.clamp(min=0).unsqueeze(1), -math.log(gt_prob))
    if zero_unsure:
        unsure = (labels == 0).unsqueeze(1).expand_as(unary)
        unary = unary.masked_fill(unsure, -math.log(1.0 / n_labels))
    return unary
