"""One WSGCN training step without autograd: eq. (1) forward and the closed-form gradient of
eq. (2) with respect to the two weight matrices.

Autograd spends most of a step on bookkeeping: about 60 small kernels per step for a graph of
11,750 nodes with 3 outputs (issue 4). The losses of eqs. (3)-(6) have short gradients with
respect to the logits ``L = A relu((A V) W1) W2`` (``q = softmax(L)``; outputs an image does not
have get a very negative logit, so ``q = 0`` there):

* eqs. (3)-(4), node ``i`` with seed ``t_i`` and weight ``c_i = 1 / |V_fg|`` or ``1 / |V_bg|``:
  ``dl/dL_i = c_i (q_i - e_{t_i})``;
* eq. (5), ``E_i = -sum_c q_ic log q_ic`` over ``V_ig``: ``dE_i/dL_ic = -q_ic (log q_ic + E_i)``;
* eq. (6) on ``q``, ``l = tr(q^T Lap q) / |V|`` with the symmetric Laplacian ``Lap``:
  ``dl/dq = 2 Lap q / |V|``, then through the softmax ``g -> q (g - sum_c q_c g_c)``; on
  ``log q`` (the authors' variant): ``dl/dlog q = 2 Lap log q / |V|`` on the existing outputs,
  then ``g -> g - q sum_c g_c``.

The rest is the chain rule through eq. (1): ``dZ = A^T G``, ``dW2 = H^T dZ``,
``dW1 = (A V)^T (dZ W2^T * keep * [pre-activation > 0])``.

Layout: everything per node is stored outputs-first, ``(B, K, N)`` and ``(B, H, N)``: with
``K`` = 2-4 outputs, reductions and products over a last dimension of 3 are 5-10x slower on a CPU
than over the long node dimension. Only the sparse products see ``(B N, K)``.
:class:`ClosedFormStep` is checked against autograd through :func:`~wsss.gcn.losses.wsgcn_loss`
(``tests/gcn/test_gradients.py``); :func:`~wsss.gcn.train.train_gcn` uses it by default.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from wsss.gcn.losses import PADDING, UNLABELLED, LossWeights
from wsss.gcn.model import MASKED_LOGIT
from wsss.graph.sparse import SparseOperator

__all__ = [
    "ClosedFormStep",
    "IntraOpThreads",
    "LossCoefficients",
    "logit_gradient",
    "narrow_threads",
]


class TransposableAdjacency(Protocol):
    """A fixed ``(M, M)`` matrix applied as ``A @ X``, with its transpose ``A.t()``."""

    def __matmul__(self, x: Tensor) -> Tensor: ...

    def t(self) -> TransposableAdjacency: ...


@dataclass(frozen=True)
class LossCoefficients:
    """Per-node constants of eq. (2) for a fixed batch, computed once before training.

    Attributes:
        ce: ``1/|V_fg|`` or ``1/|V_bg|`` per seed node (0 where the term is off, and elsewhere).
        target: ``ce`` at each node's seed output (one-hot, scaled).
        entropy: ``beta1 / |V_ig|`` per unlabelled node (0 elsewhere); ``beta1 / (|V_ig| K_b)``
            with ``entropy_mean="entries"``.
        laplacian: ``2 beta2 / |V_b|`` per image (0 when the term is off).
        logit_bias: 0 for existing outputs, :data:`~wsss.gcn.model.MASKED_LOGIT` for the others.
        class_mask: Existing outputs as 0/1.
        on_log: Eq. (6) on ``log q`` (the authors' code) instead of ``q``.
        multiplicity: None, or how many identical outputs of the image's GCN each output
            stands for (0 for masked ones): the outputs of absent classes, which fit no seed and
            start from ``W2 = 0``, stay equal to each other, so :func:`~wsss.gcn.train.train_gcn`
            trains one for all of them (the softmax and the sums over outputs count it that
            many times). ``log_multiplicity`` is its log (0 where it is 0).

    Shapes:
        ce, entropy: ``(B, 1, N)``; target: ``(B, K, N)``; laplacian: ``(B, 1, 1)``;
        logit_bias, class_mask, multiplicity, log_multiplicity: ``(B, K, 1)``.
    """

    ce: Tensor
    target: Tensor
    entropy: Tensor
    laplacian: Tensor
    logit_bias: Tensor
    class_mask: Tensor
    on_log: bool
    multiplicity: Tensor | None = None
    log_multiplicity: Tensor | None = None

    @classmethod
    def build(cls, seeds: Tensor, class_mask: Tensor, weights: LossWeights, dtype: torch.dtype,
              multiplicity: Tensor | None = None) -> LossCoefficients:  # fmt: skip
        """The coefficients of ``seeds (B, N)`` (see :mod:`wsss.gcn.losses`) and
        ``class_mask (B, K)`` bool under ``weights``; ``multiplicity (B, K)``: the outputs each
        one stands for (None: one each)."""
        fg = (seeds >= 1) & (seeds != UNLABELLED)
        bg = seeds == 0

        def per_node(mask: Tensor, scale: float) -> Tensor:
            count = mask.sum(1, keepdim=True).clamp_min(1).to(dtype)
            return (mask.to(dtype) * (scale / count)).unsqueeze(1)

        ce = per_node(fg, float(weights.fg)) + per_node(bg, float(weights.bg))
        target = torch.zeros(seeds.shape[0], class_mask.shape[1], seeds.shape[1], dtype=dtype,
                             device=seeds.device)  # fmt: skip
        target.scatter_(1, torch.where(fg | bg, seeds, 0).unsqueeze(1), ce)
        nodes = (seeds != PADDING).sum(1).clamp_min(1).to(dtype)
        mask = class_mask[:, :, None].to(dtype)
        entropy = per_node(seeds == UNLABELLED, weights.entropy)
        counts, log_counts = None, None
        if multiplicity is not None:
            counts = (multiplicity.to(dtype) * class_mask)[:, :, None]
            log_counts = torch.where(counts > 0, counts, 1).log()
        if weights.entropy_mean == "entries":
            entropy = entropy / (mask if counts is None else counts).sum(1, keepdim=True)
        return cls(
            ce=ce, target=target, entropy=entropy,
            laplacian=(2 * weights.laplacian / nodes)[:, None, None],
            logit_bias=(1 - mask) * MASKED_LOGIT, class_mask=mask, on_log=weights.laplacian_on_log,
            multiplicity=counts, log_multiplicity=log_counts,
        )  # fmt: skip


class IntraOpThreads(contextlib.AbstractContextManager):
    """Run a block with ``n`` intra-op threads (None: unchanged), then restore the count.
    Reusable and re-entrant."""

    def __init__(self, n: int | None) -> None:
        self.n = n
        self._saved: list[int] = []

    def __enter__(self) -> None:
        self._saved.append(torch.get_num_threads())
        if self.n is not None and self.n != self._saved[-1]:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        old = self._saved.pop()
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def narrow_threads(device: torch.device) -> int | None:
    """Threads for a step's small kernels: 1 on a CPU whose OpenMP threads sleep between
    parallel regions (``OMP_WAIT_POLICY=PASSIVE``), where waking the others costs more than
    they save on ``(B, K, N)`` tensors (a 250-step GCN at 500x375: 1.23 s -> 0.87 s); None
    (all threads) otherwise. Results are bit-identical either way."""
    passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    return 1 if device.type == "cpu" and passive and torch.get_num_threads() > 1 else None


def _node_major(x: Tensor) -> Tensor:
    """``(B, K, N)`` -> ``(B N, K)`` (a copy)."""
    return x.transpose(1, 2).reshape(-1, x.shape[1])


def _output_major(x: Tensor, b: int) -> Tensor:
    """``(B N, K)`` -> ``(B, K, N)`` (a copy)."""
    return x.reshape(b, -1, x.shape[1]).transpose(1, 2).contiguous()


def logit_gradient(
    logits: Tensor, coef: LossCoefficients, laplacian: SparseOperator | None = None
) -> Tensor:
    """``d l / d L`` of the summed per-image losses of eq. (2).

    Args:
        logits: ``A relu((A V) W1) W2`` before masking, outputs first.
        coef: :meth:`LossCoefficients.build` of the batch.
        laplacian: :func:`~wsss.gcn.losses.laplacian_operator` over the ``B N`` slots; needed
            when ``coef.laplacian`` is non-zero.

    Returns:
        The gradient ``(B, K, N)``: 0 on masked outputs and padding. With
        ``coef.multiplicity``, the gradient of one of the equal outputs each merged one stands
        for.

    Shapes:
        logits: ``(B, K, N)``.
    """
    count = coef.multiplicity
    if count is None:
        log_q = torch.log_softmax(logits + coef.logit_bias, dim=1)
        q = log_q.exp()
        counted = q
    else:  # one output per group of equal ones: counted as often in the softmax and the sums
        shifted = logits + coef.logit_bias
        log_q = shifted - torch.logsumexp(shifted + coef.log_multiplicity, dim=1, keepdim=True)
        q = log_q.exp()
        counted = q * count
    entropy = (counted * log_q).sum(1, keepdim=True)  # -E_i
    grad = q * (coef.ce - coef.entropy * (log_q - entropy)) - coef.target
    if laplacian is not None:
        values = log_q * coef.class_mask if coef.on_log else q
        g = _output_major(laplacian @ _node_major(values), logits.shape[0]) * coef.laplacian
        if coef.on_log:
            g *= coef.class_mask
            grad += g - q * (g if count is None else g * count).sum(1, keepdim=True)
        else:
            grad += q * (g - (counted * g).sum(1, keepdim=True))
    return grad


class ClosedFormStep:
    """Gradients of the summed eq. (2) losses with respect to ``W1`` and ``W2`` for a fixed batch:
    one forward and one hand-written backward pass of eq. (1).

    Args:
        ax: ``A V`` per image (zero rows for padding).
        adjacency: Block-diagonal ``A`` over the ``B N`` slots, with a ``.t()`` transpose
            (:class:`~wsss.graph.sparse.SparseOperator`, :class:`~wsss.gcn.train.DenseBlocks`).
        coef: Per-node loss constants.
        laplacian: The ``Phi`` Laplacian of eq. (6), None when the term is off.

    The products with ``A V`` and ``A`` always run on the thread count at construction; call the
    step inside ``IntraOpThreads(narrow_threads(device))`` to run everything else narrower.

    Shapes:
        ax: ``(B, N, D)``; ``step(w1, w2, keep)``: w1 ``(B, D, H)``, w2 ``(B, H, K)``, keep
        ``(B, H, N)`` -> ``(dW1, dW2)`` of the weights' shapes.
    """

    def __init__(
        self,
        ax: Tensor,
        adjacency: TransposableAdjacency,
        coef: LossCoefficients,
        laplacian: SparseOperator | None = None,
    ) -> None:
        if coef.laplacian.any() and laplacian is None:
            raise ValueError("the Laplacian loss needs the Phi Laplacian (laplacian=...)")
        self.ax = ax
        self.adjacency, self.adjacency_t = adjacency, adjacency.t()
        self.coef, self.laplacian = coef, laplacian
        self._wide = IntraOpThreads(torch.get_num_threads())

    def __call__(self, w1: Tensor, w2: Tensor, keep: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(dW1, dW2)``; ``keep`` is the scaled dropout keep mask (``0`` or ``1 / (1 - p)``)."""
        b, wide = self.ax.shape[0], self._wide
        # (A V) W1 with A V node-major is faster than W1^T (A V)^T; then one transposing copy
        with wide:
            pre = torch.bmm(self.ax, w1)
        pre = pre.transpose(1, 2).contiguous()
        active = (pre > 0).to(pre.dtype)
        gate = active if keep is None else active.mul_(keep)
        hidden = pre.mul_(gate)  # relu, dropout
        z = _node_major(torch.bmm(w2.transpose(1, 2), hidden))
        with wide:
            z = self.adjacency @ z
        grad = _node_major(logit_gradient(_output_major(z, b), self.coef, self.laplacian))
        with wide:
            grad = self.adjacency_t @ grad
        grad_z = _output_major(grad, b)
        grad_w2 = torch.bmm(hidden, grad_z.transpose(1, 2))
        count = self.coef.multiplicity
        # dL/dH sums over every output: a merged one counts as often as it stands for
        w2_counted = w2 if count is None else w2 * count.transpose(1, 2)
        grad_hidden = torch.bmm(w2_counted, grad_z).mul_(gate)
        with wide:
            return torch.bmm(self.ax.transpose(1, 2), grad_hidden.transpose(1, 2)), grad_w2
