"""The 2-layer GCN of WSGCN eq. (1), one set of weights per image, many images at once.

``Q = softmax(A relu(A V W1) W2)`` (Kipf & Welling's GCN without biases, as eq. 1), ``A`` the
normalised graph (:mod:`wsss.gcn.graphs`), ``V`` the node features, hidden width 16, dropout 0.3
on the hidden layer (as the authors' ``GCN``), outputs: background + the image's classes.

Two products make it cheap: ``A V`` is fixed, so it is computed once per image
(``A (V W1) = (A V) W1``), and the second layer applies ``A`` to ``relu(.) W2`` whose ``K``
columns (2-4 for most images) are fewer than the 16 hidden ones. Several images are stacked as
a padded batch ``(B, N, D)`` with a block-diagonal ``A`` over the ``B N`` slots and per-image
weights ``W1 (B, D, 16)``, ``W2 (B, 16, K)`` used through ``torch.bmm``; image ``b``'s outputs
depend only on its own weights, so training the batch equals training each image alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor, nn

__all__ = ["INITS", "Adjacency", "BatchedGCN", "gcn_forward"]

#: Logit of outputs an image does not have (its softmax probability is exactly 0).
MASKED_LOGIT = -1e9
#: ``zero_output``: Glorot ``W1``, ``W2 = 0`` (the first prediction is uniform, so the seeds, not
#: the draw, decide which way each node goes); ``glorot``: both Glorot-uniform (Kipf & Welling).
INITS: tuple[str, ...] = ("zero_output", "glorot")


class Adjacency(Protocol):
    """A fixed ``(M, M)`` matrix applied as ``A @ X`` (a dense tensor or a
    :class:`~wsss.graph.sparse.SparseOperator`)."""

    def __matmul__(self, x: Tensor) -> Tensor: ...


def gcn_forward(
    ax: Tensor,
    adjacency: Adjacency,
    w1: Tensor,
    w2: Tensor,
    *,
    class_mask: Tensor | None = None,
    dropout_mask: Tensor | None = None,
) -> Tensor:
    """Log-probabilities ``log softmax(A relu((A V) W1) W2)`` of eq. (1), batched.

    Args:
        ax: The precomputed first-layer propagation ``A V`` per image (zero rows for padding).
        adjacency: Block-diagonal ``A`` over the ``B N`` node slots.
        w1: First-layer weights of each image.
        w2: Second-layer weights of each image.
        class_mask: Outputs that exist per image; the others get probability 0.
        dropout_mask: Scaled keep mask of the hidden layer (``0`` or ``1 / (1 - p)``), training
            only.

    Returns:
        ``(B, N, K)`` log-probabilities.

    Shapes:
        ax: ``(B, N, D)``; w1: ``(B, D, H)``; w2: ``(B, H, K)``; class_mask: ``(B, K)``;
        dropout_mask: ``(B, N, H)``.
    """
    b, n, _ = ax.shape
    hidden = torch.relu(torch.bmm(ax, w1))
    if dropout_mask is not None:
        hidden = hidden * dropout_mask
    z = torch.bmm(hidden, w2)
    logits = (adjacency @ z.reshape(b * n, -1)).reshape(b, n, -1)
    if class_mask is not None:
        logits = logits.masked_fill(~class_mask[:, None, :], MASKED_LOGIT)
    return torch.log_softmax(logits, dim=2)


class BatchedGCN(nn.Module):
    """Per-image GCN weights for ``B`` images (eq. 1), initialised per image (:data:`INITS`).

    Args:
        in_features: ``D_b`` of each image (features padded with zeros to ``D = max D_b``), or
            one ``D`` for all.
        num_outputs: ``K_b`` of each image (1 + its number of classes); the batch has
            ``K = max K_b`` outputs, the rest masked.
        hidden: Hidden width (16).
        dropout: Dropout probability of the hidden layer (0.3).
        init: ``zero_output`` or ``glorot`` (:data:`INITS`).

    Shapes:
        forward: ax ``(B, N, D)`` -> ``(B, N, K)`` log-probabilities.

    Each image's weights and dropout masks come from its own ``torch.Generator``
    (:meth:`reset_parameters` / :meth:`forward`), so an image gets the same numbers alone or in
    any batch.
    """

    def __init__(
        self, *, in_features: int | Sequence[int], num_outputs: Sequence[int], hidden: int = 16,
        dropout: float = 0.3, init: str = "zero_output",
    ) -> None:  # fmt: skip
        super().__init__()
        if not num_outputs or min(num_outputs) < 1:
            raise ValueError(f"need at least one image with >= 1 output, got {num_outputs}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.init = init
        self.num_outputs = [int(k) for k in num_outputs]
        b, k = len(self.num_outputs), max(self.num_outputs)
        widths = [in_features] * b if isinstance(in_features, int) else list(in_features)
        if len(widths) != b:
            raise ValueError(f"{len(widths)} feature widths for {b} images")
        self.in_features = [int(d) for d in widths]
        self.hidden, self.dropout = hidden, dropout
        self.w1 = nn.Parameter(torch.zeros(b, max(self.in_features), hidden))
        self.w2 = nn.Parameter(torch.zeros(b, hidden, k))
        mask = torch.zeros(b, k, dtype=torch.bool)
        for i, kb in enumerate(self.num_outputs):
            mask[i, :kb] = True
        self.register_buffer("class_mask", mask)

    @torch.no_grad()
    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        """Initial weights, image ``b``'s drawn from ``generators[b]`` (CPU generators): Glorot-uniform
        ``W1``, and ``W2`` Glorot-uniform (``glorot``) or zero (``zero_output``, no draw)."""
        if len(generators) != self.w1.shape[0]:
            raise ValueError(f"{len(generators)} generators for {self.w1.shape[0]} images")
        h = self.hidden
        self.w1.zero_()
        self.w2.zero_()
        shapes = zip(generators, self.in_features, self.num_outputs, strict=True)
        for b, (gen, d, k) in enumerate(shapes):
            self.w1[b, :d] = _glorot((d, h), gen).to(self.w1)
            if self.init == "glorot":
                self.w2[b, :, :k] = _glorot((h, k), gen).to(self.w2)

    def dropout_mask(self, sizes: Sequence[int], generators: Sequence[torch.Generator]) -> Tensor:
        """The scaled keep mask ``(B, H, N)`` (hidden units first) of one training step; image
        ``b``'s ``sizes[b]`` nodes drawn from ``generators[b]`` (padding 0).

        Each unit keeps with probability ``1 - round(p 2^16) / 2^16`` (``1 - p`` to within
        ``2^-17``): four 16-bit draws per random 64-bit integer, about 3x faster than a float
        per unit with the CPU generator.
        """
        n, h = max(sizes), self.hidden
        threshold, scale = round(self.dropout * 2**16) - 2**15, 1 / (1 - self.dropout)
        masks = []
        for size, gen in zip(sizes, generators, strict=True):
            count = h * size
            bits = torch.randint(-(2**63), 2**63 - 1, ((count + 3) // 4,), dtype=torch.int64,
                                 generator=gen)  # fmt: skip
            draw = bits.view(torch.int16)[:count].view(h, size)
            keep = (draw >= threshold).to(self.w1.dtype).mul_(scale)
            masks.append(keep if size == n else torch.nn.functional.pad(keep, (0, n - size)))
        return torch.stack(masks).to(self.w1.device)

    def forward(
        self, ax: Tensor, adjacency: Adjacency, *, dropout_mask: Tensor | None = None
    ) -> Tensor:
        """Eq. (1) for the batch; see :func:`gcn_forward` (``dropout_mask (B, N, H)``)."""
        return gcn_forward(ax, adjacency, self.w1, self.w2, class_mask=self.class_mask,
                           dropout_mask=dropout_mask)  # fmt: skip


def _glorot(shape: tuple[int, int], generator: torch.Generator) -> Tensor:
    limit = math.sqrt(6.0 / (shape[0] + shape[1]))
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1).float() * limit
