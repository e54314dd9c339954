"""The WSGCN GCN written the usual way, as the side-by-side benches' reference: autograd,
``torch.optim.Adam``, the losses of eqs. (2)-(6) written out plainly (SPEC section 4).

The training loop (:func:`train_autograd`) takes a model as a function ``forward(keep,
training) -> log Q``; :class:`DenseGCN` is the authors' formulation (``GCN/layers.py`` and
``GCN/train.py`` of Xavier-Pan/WSGCN): a dense ``N x N`` graph, ``torch.mm(adj, torch.mm(x, W))``
in both layers at every step, and the Laplacian loss as ``trace(Q^T L Q) / N`` with a dense
``L``. Their layers carry a bias; eq. (1) and ``wsss.gcn`` have none, so neither does this.
The paper's losses are used, as ``wsss.gcn``'s defaults: the Laplacian on ``Q`` (the authors'
code: on ``log Q``) and the entropy summed over the outputs (their code: averaged over them).

Same inputs as ``wsss.gcn.train_gcn``: :class:`LibraryDraws` replays the initial weights and the
per-step dropout masks that ``train_gcn`` draws from a problem's seed, so both sides start from
the same weights and drop the same units; what remains different is the order of the floating
point operations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from wsss.gcn.losses import UNLABELLED, LossWeights
from wsss.gcn.model import BatchedGCN
from wsss.gcn.train import GcnProblem, GcnSettings

#: SPEC section 4 (the paper): every loss on, beta1 = 10 on the entropy, beta2 = 0.01 on the
#: Laplacian of ``Q``. Passed explicitly to both sides.
PAPER_LOSSES = LossWeights(fg=True, bg=True, entropy=10.0, laplacian=0.01, laplacian_on_log=False)
PAPER_SETTINGS = GcnSettings(hidden=16, dropout=0.3, lr=0.01, weight_decay=5e-4, steps=250,
                             losses=PAPER_LOSSES)  # fmt: skip

Forward = Callable[[Tensor | None, bool], Tensor]


class LibraryDraws:
    """The initial weights and the dropout masks ``train_gcn`` draws for one problem.

    ``train_gcn`` seeds a generator with ``problem.seed``, draws ``W1`` and ``W2`` from it
    (:meth:`BatchedGCN.reset_parameters`), then one keep mask per step
    (:meth:`BatchedGCN.dropout_mask`). This replays that sequence; the benches check it by
    comparing the outputs at step 0.

    Shapes:
        w1: ``(D, H)``; w2: ``(H, K)``; :meth:`mask`: ``(N, H)`` scaled keep mask.
    """

    def __init__(self, problem: GcnProblem, settings: GcnSettings, dtype: torch.dtype) -> None:
        n, d = problem.features.shape
        self._n = n
        self._gen = torch.Generator().manual_seed(problem.seed)
        self._model = BatchedGCN(in_features=[d], num_outputs=[problem.num_outputs],
                                 hidden=settings.hidden, dropout=settings.dropout).to(dtype)  # fmt: skip
        self._model.reset_parameters([self._gen])
        self.w1 = self._model.w1[0].detach().clone()
        self.w2 = self._model.w2[0].detach().clone()

    def mask(self) -> Tensor:
        """The next step's keep mask."""
        return self._model.dropout_mask([self._n], [self._gen])[0].transpose(0, 1)


def reference_loss(log_q: Tensor, seeds: Tensor, laplacian: Callable[[Tensor], Tensor],
                   losses: LossWeights = PAPER_LOSSES) -> Tensor:  # fmt: skip
    """Eq. (2): ``l_fg + l_bg + beta1 l_ent + beta2 l_lp`` of one image.

    ``l_fg`` and ``l_bg`` are ``F.nll_loss`` over the foreground and background seeds (eqs. 3-4,
    as the authors), ``l_ent`` the entropy of ``Q`` summed over the outputs and averaged over the
    unlabelled nodes (eq. 5), ``laplacian(Q)`` eq. (6).

    Shapes:
        log_q: ``(N, K)``; seeds: ``(N,)`` output indices, 255 unlabelled.
    """
    ignore = torch.full_like(seeds, UNLABELLED)
    foreground = torch.where((seeds >= 1) & (seeds != UNLABELLED), seeds, ignore)
    background = torch.where(seeds == 0, seeds, ignore)
    total = F.nll_loss(log_q, foreground, ignore_index=UNLABELLED) + F.nll_loss(
        log_q, background, ignore_index=UNLABELLED
    )
    q = log_q.exp()
    unlabelled = seeds == UNLABELLED
    entropy = -(q[unlabelled] * log_q[unlabelled]).sum(1).mean()
    return total + losses.entropy * entropy + losses.laplacian * laplacian(q)


def train_autograd(
    forward: Forward,
    parameters: list[Tensor],
    seeds: Tensor,
    laplacian: Callable[[Tensor], Tensor],
    settings: GcnSettings = PAPER_SETTINGS,
    draws: LibraryDraws | None = None,
) -> Tensor:
    """``settings.steps`` Adam steps on :func:`reference_loss`; returns ``Q`` in eval mode.

    Args:
        forward: ``forward(keep, training)``: log-probabilities ``(N, K)``; ``keep`` is the
            scaled keep mask of the hidden layer, or None for the model's own dropout.
        parameters: The weights Adam trains.
        seeds: Output index per node.
        laplacian: ``l_lp`` of ``Q``.
        settings: lr, weight decay, steps (the paper's).
        draws: Dropout masks of ``train_gcn``; None draws them with ``F.dropout``.
    """
    optimizer = torch.optim.Adam(parameters, lr=settings.lr, weight_decay=settings.weight_decay)
    for _ in range(settings.steps):
        keep = draws.mask() if draws is not None else None
        loss = reference_loss(forward(keep, True), seeds, laplacian, settings.losses)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return forward(None, False).exp()


def hidden_dropout(h: Tensor, keep: Tensor | None, p: float, training: bool) -> Tensor:
    """``h`` times the given keep mask, or ``F.dropout`` when there is none."""
    return h * keep if keep is not None else F.dropout(h, p, training=training)


class DenseGCN:
    """Eq. (1) on a dense graph, the authors' way: ``log_softmax(A relu(A V W1) W2)``.

    Args:
        adjacency: The normalised graph as a dense matrix.
        features: ``V``.
        w1: Initial ``W1`` (copied).
        w2: Initial ``W2`` (copied).
        dropout: Dropout of the hidden layer when no mask is given.

    Shapes:
        adjacency: ``(N, N)``; features: ``(N, D)``; w1: ``(D, H)``; w2: ``(H, K)``.
    """

    def __init__(self, adjacency: Tensor, features: Tensor, w1: Tensor, w2: Tensor,
                 dropout: float) -> None:  # fmt: skip
        self.adjacency, self.features, self.dropout = adjacency, features, dropout
        self.w1 = w1.clone().requires_grad_(True)
        self.w2 = w2.clone().requires_grad_(True)

    def parameters(self) -> list[Tensor]:
        """The trained weights."""
        return [self.w1, self.w2]

    def __call__(self, keep: Tensor | None, training: bool) -> Tensor:
        h = torch.relu(torch.mm(self.adjacency, torch.mm(self.features, self.w1)))
        h = hidden_dropout(h, keep, self.dropout, training)
        return torch.log_softmax(torch.mm(self.adjacency, torch.mm(h, self.w2)), dim=1)


def dense_laplacian(src: Tensor, dst: Tensor, weight: Tensor, n: int) -> Tensor:
    """The dense ``L = D - Phi`` of symmetric pairs (each unordered pair once).

    Shapes:
        src, dst, weight: ``(E,)``. Returns ``(N, N)``.
    """
    phi = weight.new_zeros(n, n)
    phi[src, dst] = weight
    phi[dst, src] = weight
    return torch.diag(phi.sum(1)) - phi


def trace_laplacian(laplacian: Tensor) -> Callable[[Tensor], Tensor]:
    """The authors' ``l_lp = trace(Q^T L Q) / N`` with a dense ``L`` (their ``gcn_train``); equal
    to eq. (6)'s ``1/(2N) sum_ij Phi_ij ||q_i - q_j||^2``."""
    n = laplacian.shape[0]
    return lambda q: torch.trace(torch.mm(q.transpose(0, 1), torch.mm(laplacian, q))) / n


def pair_laplacian(src: Tensor, dst: Tensor, weight: Tensor, n: int) -> Callable[[Tensor], Tensor]:
    """Eq. (6) over the pairs: ``sum_pairs Phi ||q_s - q_d||^2 / N`` (each pair once)."""
    return lambda q: (weight * (q[src] - q[dst]).pow(2).sum(1)).sum() / n
