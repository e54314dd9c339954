"""The per-image GCN losses of WSGCN, eqs. (2)-(7), batch-first over several images' graphs.

Layout: predictions are log-probabilities ``log_q (B, N, K)`` of ``B`` images padded to ``N``
nodes and ``K`` outputs (background = output 0, then the image's classes). ``seeds (B, N)``
int64 holds, per node, the output index of its partial pseudo label (0 background,
``1..K-1`` a class), :data:`UNLABELLED` (255) for unlabelled nodes and :data:`PADDING` (-1) for
padding (no node). Every loss returns one value per image ``(B,)``; the images' losses are
summed for training, so each image's parameters get exactly the gradient they would get alone.

* eq. (3) ``l_fg = -1/|V_fg| sum_{i in V_fg} log (q_i)_{p_i}``
* eq. (4) ``l_bg = -1/|V_bg| sum_{i in V_bg} log (q_i)_0``
* eq. (5) ``l_ent = -1/|V_ig| sum_{i in V_ig} sum_c (q_i)_c log (q_i)_c``; the authors' code
  takes the mean over the ``|V_ig| K`` entries instead (``entropy_mean="entries"``; ``K = 21``
  there, an effective ``beta1`` of 10/21)
* eq. (6) ``l_lp = 1/(2|V|) sum_i sum_j Phi_ij ||q_i - q_j||^2`` (each unordered pair once,
  so ``1/|V|``), with ``Phi`` of eq. (7) (:mod:`wsss.gcn.phi`)
* eq. (2) ``l = l_fg + l_bg + beta1 l_ent + beta2 l_lp``, ``beta1 = 10``, ``beta2 = 0.01``

An image without nodes of a group (no foreground seed, say) gets 0 for that term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from wsss.graph.sparse import SparseOperator, csr_from_coo

__all__ = [
    "ENTROPY_MEANS",
    "PADDING",
    "UNLABELLED",
    "LossWeights",
    "background_loss",
    "entropy_loss",
    "foreground_loss",
    "laplacian_loss",
    "laplacian_operator",
    "wsgcn_loss",
]

#: Seed value of an unlabelled node (the VOC ignore index).
UNLABELLED = 255
#: Seed value of a padding slot (not a node of the image).
PADDING = -1
#: ``nodes``: eq. (5), a mean over ``|V_ig|``; ``entries``: over ``|V_ig| K`` (authors' code).
ENTROPY_MEANS: tuple[str, ...] = ("nodes", "entries")


def _check(log_q: Tensor, seeds: Tensor) -> None:
    if log_q.ndim != 3 or seeds.shape != log_q.shape[:2]:
        raise ValueError(f"expected log_q (B, N, K) and seeds (B, N), got {tuple(log_q.shape)} "
                         f"and {tuple(seeds.shape)}")  # fmt: skip


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Per-row mean of ``values`` over ``mask`` (0 for an empty mask). ``(B, N)`` -> ``(B,)``."""
    total = torch.where(mask, values, torch.zeros_like(values)).sum(1)
    return total / mask.sum(1).clamp_min(1).to(values.dtype)


def _seed_nll(log_q: Tensor, seeds: Tensor, mask: Tensor) -> Tensor:
    target = torch.where(mask, seeds, torch.zeros_like(seeds))
    picked = log_q.gather(2, target.unsqueeze(2)).squeeze(2)
    return _masked_mean(-picked, mask)


def foreground_loss(log_q: Tensor, seeds: Tensor) -> Tensor:
    """Cross-entropy averaged over the seed-foreground nodes (WSGCN eq. 3).

    Shapes:
        log_q: ``(B, N, K)``; seeds: ``(B, N)``. Returns ``(B,)``.
    """
    _check(log_q, seeds)
    return _seed_nll(log_q, seeds, (seeds >= 1) & (seeds != UNLABELLED))


def background_loss(log_q: Tensor, seeds: Tensor) -> Tensor:
    """Cross-entropy averaged over the seed-background nodes (WSGCN eq. 4).

    Shapes:
        log_q: ``(B, N, K)``; seeds: ``(B, N)``. Returns ``(B,)``.
    """
    _check(log_q, seeds)
    return _seed_nll(log_q, seeds, seeds == 0)


def entropy_loss(log_q: Tensor, seeds: Tensor) -> Tensor:
    """Entropy of the predictions averaged over the unlabelled nodes (WSGCN eq. 5).

    Shapes:
        log_q: ``(B, N, K)``; seeds: ``(B, N)``. Returns ``(B,)``.
    """
    _check(log_q, seeds)
    q = log_q.exp()
    entropy = -(q * log_q.clamp_min(torch.finfo(log_q.dtype).min)).sum(2)
    return _masked_mean(entropy, seeds == UNLABELLED)


def laplacian_operator(src: Tensor, dst: Tensor, weight: Tensor, num_slots: int) -> SparseOperator:
    """The graph Laplacian ``L = D - Phi`` of symmetric pairs, as a sparse operator.

    ``sum_i v_i . (L v)_i = 1/2 sum_ij Phi_ij ||v_i - v_j||^2`` (the double sum of eq. 6), and
    one sparse product replaces gathering every pair (several times faster with its backward).

    Args:
        src: Flat node index ``b * N + i`` of each pair's first node (each unordered pair once).
        dst: Flat node index of the other node.
        weight: ``Phi`` of each pair (eq. 7).
        num_slots: ``B N``.

    Shapes:
        src, dst, weight: ``(E,)``. Returns a symmetric ``(B N, B N)`` operator.
    """
    degree = torch.zeros(num_slots, dtype=weight.dtype, device=weight.device)
    degree.index_add_(0, src, weight).index_add_(0, dst, weight)
    nodes = torch.arange(num_slots, device=weight.device)
    rows, cols = torch.cat([src, dst, nodes]), torch.cat([dst, src, nodes])
    values = torch.cat([-weight, -weight, degree])
    return SparseOperator(csr_from_coo(rows, cols, values, (num_slots, num_slots)), symmetric=True)


def laplacian_loss(
    values: Tensor,
    laplacian: SparseOperator,
    num_nodes: Tensor,
    *,
    class_mask: Tensor | None = None,
) -> Tensor:
    """``1/(2|V_b|) sum_ij Phi_ij ||v_i - v_j||^2`` per image (WSGCN eq. 6), as
    ``tr(V^T L V) / |V_b|``.

    Args:
        values: Node predictions (``q``; the authors' code: ``log q``).
        laplacian: :func:`laplacian_operator` of the images' ``Phi`` pairs (flat indices).
        num_nodes: ``|V_b|``, the number of nodes of each image.
        class_mask: Outputs that exist for each image; the others are left out (needed for
            ``log q``, whose padded outputs are not constant).

    Shapes:
        values: ``(B, N, K)``; num_nodes: ``(B,)``; class_mask: ``(B, K)`` bool. Returns ``(B,)``.
    """
    b, n, k = values.shape
    if class_mask is not None:
        values = values * class_mask[:, None, :].to(values.dtype)
    flat = values.reshape(b * n, k)
    quadratic = (flat * (laplacian @ flat)).reshape(b, n * k).sum(1)
    return quadratic / num_nodes.to(values.dtype).clamp_min(1)


@dataclass(frozen=True, kw_only=True)
class LossWeights:
    """Which terms of eq. (2) are on, and their weights.

    Attributes:
        fg: Use ``l_fg`` (eq. 3).
        bg: Use ``l_bg`` (eq. 4).
        entropy: ``beta1`` (10); 0 turns ``l_ent`` off.
        laplacian: ``beta2`` (0.01); 0 turns ``l_lp`` off.
        laplacian_on_log: Apply eq. (6) to ``log q`` as the authors' code does, not to ``q``.
        entropy_mean: ``entries`` (the authors' code, the default: divided also by the number
            of outputs ``K`` of the image's GCN, 21 by default, so an effective ``beta1`` of
            10/21) or ``nodes`` (eq. 5 as printed); chosen by measurement (``docs/gcn.md``).
    """

    fg: bool = True
    bg: bool = True
    entropy: float = 10.0
    laplacian: float = 0.01
    laplacian_on_log: bool = False
    entropy_mean: str = "entries"

    def __post_init__(self) -> None:
        if self.entropy_mean not in ENTROPY_MEANS:
            raise ValueError(f"entropy_mean must be one of {ENTROPY_MEANS}, got "
                             f"{self.entropy_mean!r}")  # fmt: skip


def wsgcn_loss(
    log_q: Tensor,
    seeds: Tensor,
    *,
    weights: LossWeights = LossWeights(),
    laplacian: SparseOperator | None = None,
    class_mask: Tensor | None = None,
) -> dict[str, Tensor]:
    """The total loss of eq. (2) per image and its terms.

    Args:
        log_q: Log-probabilities (padded outputs at a very negative value).
        seeds: Output index per node (see the module docstring).
        weights: Switches and weights of the terms.
        laplacian: :func:`laplacian_operator` of the ``Phi`` pairs for ``l_lp``; required when
            ``weights.laplacian > 0``.
        class_mask: Outputs that exist per image (for ``laplacian_on_log``, and ``K`` of
            ``entropy_mean="entries"``; default: all ``K`` outputs).

    Returns:
        ``{"total", "fg", "bg", "ent", "lp"}``, each ``(B,)`` (0 for terms that are off).

    Shapes:
        log_q: ``(B, N, K)``; seeds: ``(B, N)``; class_mask: ``(B, K)``.
    """
    _check(log_q, seeds)
    zero = log_q.new_zeros(log_q.shape[0])
    terms = {
        "fg": foreground_loss(log_q, seeds) if weights.fg else zero,
        "bg": background_loss(log_q, seeds) if weights.bg else zero,
        "ent": entropy_loss(log_q, seeds) if weights.entropy else zero,
        "lp": zero,
    }
    if weights.entropy and weights.entropy_mean == "entries":
        outputs = (log_q.new_full((log_q.shape[0],), log_q.shape[2]) if class_mask is None
                   else class_mask.sum(1).to(log_q.dtype))  # fmt: skip
        terms["ent"] = terms["ent"] / outputs
    if weights.laplacian:
        if laplacian is None:
            raise ValueError("the Laplacian loss needs the Phi Laplacian (laplacian=...)")
        num_nodes = (seeds != PADDING).sum(1)
        values = log_q if weights.laplacian_on_log else log_q.exp()
        mask = class_mask if weights.laplacian_on_log else None
        terms["lp"] = laplacian_loss(values, laplacian, num_nodes, class_mask=mask)
    total = terms["fg"] + terms["bg"] + weights.entropy * terms["ent"]
    terms["total"] = total + weights.laplacian * terms["lp"]
    return terms
