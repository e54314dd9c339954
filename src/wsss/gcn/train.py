"""Per-image GCN training (WSGCN sec. 3.3): Adam, lr 0.01, weight decay 5e-4, 250 steps.

:func:`train_gcn` trains one fresh GCN per image, for any number of images at once: their graphs
form one block-diagonal graph (each block padded to the largest image), their weights are
batched (:class:`~wsss.gcn.model.BatchedGCN`), and the loss is the sum of the images' losses,
so with Adam (an element-wise update) each image's weights follow exactly the trajectory they
follow alone. Each image draws its initial weights and dropout masks from its own generator
seeded with :attr:`GcnProblem.seed`: the result does not depend on the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from wsss.gcn.gradients import (
    ClosedFormStep,
    IntraOpThreads,
    LossCoefficients,
    narrow_threads,
)
from wsss.gcn.losses import PADDING, UNLABELLED, LossWeights, laplacian_operator, wsgcn_loss
from wsss.gcn.model import INITS, BatchedGCN
from wsss.graph.sparse import SparseOperator, _csr

__all__ = ["GcnProblem", "GcnSettings", "train_gcn"]


@dataclass(frozen=True, kw_only=True)
class GcnSettings:
    """Training settings (WSGCN sec. 4.1; SPEC section 4).

    Attributes:
        hidden: Hidden width (16).
        dropout: Dropout of the hidden layer (0.3).
        lr: Adam learning rate (0.01).
        weight_decay: Adam weight decay (5e-4).
        steps: Full-graph gradient steps (250).
        losses: The terms of eq. (2) and their weights.
        gradients: ``closed_form`` (:mod:`wsss.gcn.gradients`, about 2x faster on a CPU) or
            ``autograd`` (the reference it is tested against); the same maths.
        init: ``zero_output`` (``W2 = 0``: the first prediction is uniform) or ``glorot``
            (:data:`~wsss.gcn.model.INITS`).
        outputs: Outputs of every image's GCN (21: the paper's and the authors' code's, VOC's
            classes), the ones past the image's ``K`` = 1 + its classes fitting no seed; the
            result is renormalised over the image's ``K``. 0: ``K`` outputs per image.
        merge_absent: With ``closed_form`` gradients and ``zero_output``, train one output for
            all of an image's absent classes (``outputs - K`` of them): they fit no seed and
            start equal (``W2 = 0``), so every step keeps them equal and one output, counted
            that many times, gives the same training (up to float rounding; 21 -> 4 outputs
            for a typical VOC image). False: one output each, the reference.
    """

    hidden: int = 16
    dropout: float = 0.3
    lr: float = 0.01
    weight_decay: float = 5e-4
    steps: int = 250
    losses: LossWeights = field(default_factory=LossWeights)
    gradients: Literal["closed_form", "autograd"] = "closed_form"
    init: str = "zero_output"
    outputs: int = 21
    merge_absent: bool = True

    def __post_init__(self) -> None:
        if self.gradients not in ("closed_form", "autograd"):
            raise ValueError(f"gradients must be 'closed_form' or 'autograd', got "
                             f"{self.gradients!r}")  # fmt: skip
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.outputs < 0:
            raise ValueError(f"outputs must be 0 (the image's K) or positive, got {self.outputs}")


@dataclass
class GcnProblem:
    """One image's graph, node features, partial labels and seed.

    Attributes:
        adjacency: The normalised graph ``A`` of eq. (1), sparse CSR or dense
            (:mod:`wsss.gcn.graphs`).
        features: Node features ``V``.
        seeds: Output index of each node's partial label: 0 background, ``1..K-1`` the image's
            classes in order, 255 unlabelled.
        num_outputs: ``K`` = 1 + the number of the image's classes.
        phi: ``(src, dst, Phi)`` pairs of the Laplacian loss (:func:`wsss.gcn.phi.phi_edges`),
            node indices of this image; None when the loss is off.
        seed: Seed of this image's generator (weights and dropout).

    Shapes:
        adjacency: ``(N, N)``; features: ``(N, D)``; seeds: ``(N,)`` int64.
    """

    adjacency: Tensor
    features: Tensor
    seeds: Tensor
    num_outputs: int
    phi: tuple[Tensor, Tensor, Tensor] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        n = self.features.shape[0]
        if self.features.ndim != 2 or self.adjacency.shape != (n, n) or self.seeds.shape != (n,):
            raise ValueError(f"a problem needs features (N, D), adjacency (N, N), seeds (N,); got "
                             f"{tuple(self.features.shape)}, {tuple(self.adjacency.shape)}, "
                             f"{tuple(self.seeds.shape)}")  # fmt: skip
        labelled = self.seeds[self.seeds != UNLABELLED]
        if self.num_outputs < 1 or (labelled.numel() and (labelled.min() < 0 or
                                    labelled.max() >= self.num_outputs)):  # fmt: skip
            raise ValueError(f"seeds must lie in [0, {self.num_outputs}) or be {UNLABELLED}")


def _pad_csr(matrix: Tensor, n: int) -> Tensor:
    """A CSR ``(m, m)`` matrix as the top-left block of an ``(n, n)`` one."""
    crow = matrix.crow_indices()
    crow = torch.cat([crow, crow[-1:].expand(n - matrix.shape[0])])
    return _csr(crow, matrix.col_indices(), matrix.values(), n, n)


class DenseBlocks:
    """A block-diagonal ``A`` of ``B`` dense ``(n, n)`` blocks, applied block by block.

    ``A @ X`` with ``X (B n, C)`` is one ``torch.bmm``: ``O(B n^2)`` memory and work instead of
    the ``O((B n)^2)`` of the assembled matrix.

    Shapes:
        blocks: ``(B, n, n)``; ``op @ x``: ``(B n, C)`` -> ``(B n, C)``.
    """

    def __init__(self, blocks: Tensor) -> None:
        if blocks.ndim != 3 or blocks.shape[1] != blocks.shape[2]:
            raise ValueError(f"expected (B, n, n) blocks, got {tuple(blocks.shape)}")
        self.blocks = blocks

    def __matmul__(self, x: Tensor) -> Tensor:
        b, n, _ = self.blocks.shape
        return torch.bmm(self.blocks, x.reshape(b, n, -1)).reshape(b * n, -1)

    def t(self) -> DenseBlocks:
        """The transposed blocks (a view)."""
        return DenseBlocks(self.blocks.transpose(1, 2))


def _block_adjacency(problems: Sequence[GcnProblem], n: int) -> SparseOperator | DenseBlocks:
    """The block-diagonal ``A`` over ``B n`` slots (dense blocks if any graph is dense)."""
    mats = [p.adjacency for p in problems]
    first = problems[0].features
    if any(m.layout == torch.strided for m in mats):
        blocks = first.new_zeros(len(mats), n, n)
        for block, m in zip(blocks, mats, strict=True):
            size = m.shape[0]
            block[:size, :size] = m.to_dense() if m.layout != torch.strided else m
        return DenseBlocks(blocks)
    from wsss.graph.sparse import block_diagonal

    padded = [_pad_csr(m.to(first.dtype), n) for m in mats]
    return SparseOperator(padded[0] if len(padded) == 1 else block_diagonal(padded))


def _stack(problems: Sequence[GcnProblem], n: int) -> tuple[Tensor, Tensor]:
    """``(A V, seeds)`` padded to ``(B, n, D)`` and ``(B, n)``."""
    first = problems[0].features
    ax = first.new_zeros(len(problems), n, max(p.features.shape[1] for p in problems))
    seeds = torch.full((len(problems), n), PADDING, dtype=torch.int64, device=first.device)
    for b, p in enumerate(problems):
        size = p.features.shape[0]
        ax[b, :size, : p.features.shape[1]] = p.adjacency @ p.features
        seeds[b, :size] = p.seeds
    return ax, seeds


def _laplacian(problems: Sequence[GcnProblem], n: int) -> SparseOperator | None:
    """The Laplacian of all images' ``Phi`` pairs over the ``B n`` slots."""
    if any(p.phi is None for p in problems):
        return None
    src = torch.cat([p.phi[0] + b * n for b, p in enumerate(problems)])  # type: ignore[index]
    dst = torch.cat([p.phi[1] + b * n for b, p in enumerate(problems)])  # type: ignore[index]
    weight = torch.cat([p.phi[2] for p in problems]).to(problems[0].features.dtype)  # type: ignore[index]
    return laplacian_operator(src, dst, weight, len(problems) * n)


def train_gcn(problems: Sequence[GcnProblem], settings: GcnSettings | None = None) -> list[Tensor]:
    """Train one GCN per problem (all at once) and return each image's class probabilities.

    Args:
        problems: The images' graphs; all features of one dtype and device (widths may
            differ: they are zero-padded, and each image's weights only see its own).
        settings: Training settings (defaults: the paper's).

    Returns:
        For each problem, ``Q`` of eq. (1) after training (eval mode, no dropout) over its ``K``
        outputs: ``(N, K)``.

    Raises:
        ValueError: inconsistent shapes, or the Laplacian loss on without ``phi`` pairs.
    """
    s = settings or GcnSettings()
    if not problems:
        return []
    if len({(p.features.dtype, p.features.device) for p in problems}) != 1:
        raise ValueError("all problems need features of one dtype and device")
    sizes = [p.features.shape[0] for p in problems]
    n = max(sizes)
    adjacency = _block_adjacency(problems, n)
    ax, seeds = _stack(problems, n)
    laplacian = _laplacian(problems, n) if s.losses.laplacian else None
    if s.losses.laplacian and laplacian is None:
        raise ValueError("the Laplacian loss (beta2 > 0) needs the Phi pairs of every problem")
    widths = [p.features.shape[1] for p in problems]
    outputs = [max(p.num_outputs, s.outputs) for p in problems]
    pairs = list(zip(outputs, problems, strict=True))
    merge = (s.merge_absent and s.gradients == "closed_form" and s.init == "zero_output"
             and any(k > p.num_outputs + 1 for k, p in pairs))  # fmt: skip
    # merged: the image's K outputs, then one for all its absent classes (if it has any)
    slots = [p.num_outputs + (k > p.num_outputs) for k, p in pairs]
    model = BatchedGCN(in_features=widths, num_outputs=slots if merge else outputs, hidden=s.hidden,
                       dropout=s.dropout, init=s.init).to(ax)  # fmt: skip
    generators = [torch.Generator().manual_seed(p.seed) for p in problems]
    model.reset_parameters(generators)
    # the fused kernel: one call per step instead of ~10 small ops per tensor (0.85 -> 0.04 ms)
    optimizer = torch.optim.Adam(model.parameters(), lr=s.lr, weight_decay=s.weight_decay,
                                 fused=True)  # fmt: skip
    closed_form, narrow = None, None
    if s.gradients == "closed_form":
        multiplicity = None
        if merge:
            multiplicity = torch.ones(len(problems), max(slots), device=ax.device)
            for b, (k, p) in enumerate(pairs):
                if k > p.num_outputs:
                    multiplicity[b, p.num_outputs] = k - p.num_outputs
        coef = LossCoefficients.build(seeds, model.class_mask, s.losses, ax.dtype, multiplicity)
        closed_form = ClosedFormStep(ax, adjacency, coef, laplacian)
        narrow = narrow_threads(ax.device)
    with IntraOpThreads(narrow):  # the step's large products still use every thread
        for _ in range(s.steps):
            keep = model.dropout_mask(sizes, generators) if s.dropout > 0 else None
            if closed_form is not None:
                w1, w2 = model.w1.detach(), model.w2.detach()
                model.w1.grad, model.w2.grad = closed_form(w1, w2, keep)
            else:
                mask = None if keep is None else keep.transpose(1, 2)
                log_q = model(ax, adjacency, dropout_mask=mask)
                loss = wsgcn_loss(log_q, seeds, weights=s.losses, laplacian=laplacian,
                                  class_mask=model.class_mask)  # fmt: skip
                optimizer.zero_grad(set_to_none=True)
                loss["total"].sum().backward()
            optimizer.step()
    with torch.no_grad():
        q = model(ax, adjacency).exp()
    out = [q[b, :size, : p.num_outputs] for b, (size, p) in enumerate(zip(sizes, problems,
                                                                           strict=True))]  # fmt: skip
    if all(k == p.num_outputs for k, p in zip(outputs, problems, strict=True)):
        return out
    return [x / x.sum(1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny) for x in out]
