"""The graph dropout layer of Group-WSSS (eqs. 10-11), applied to every node after each round.

With ``o`` the channel mean of a node's features and ``r`` uniform in ``[0, 1)``::

    s = sigmoid(o)                         if r < delta_r   (importance map)
    s = 1(o < delta_d * max(o))            otherwise        (drop the most activated regions)
    h_hat = h * s                          (eq. 11, spatial-wise; form "paper")
    h_hat = (h * s + h) / 2                (form "authors": the authors' code's ADL layer)

The drop branch reads eq. (10) as a binary mask (``mode="binary"``, the default): the paper's
prose ("drops the highly activated semantic regions"), SPEC section 5 and the ADL layer it
follows (Choe & Shim 2019) all use the indicator alone. Eq. (10) as printed multiplies the
indicator by ``o``; ``mode="scaled"`` gives that literal form. One ``r`` is drawn per node and
round.

**Evaluation.** The paper uses the layer while training only (Fig. 2; SPEC: "off in
evaluation"). Left out at inference, it changes the features' scale between training and
inference: ``sigmoid(o)`` is about 0.5-0.6, so in four rounds out of five training shrinks each
round's features by about half, and the readout sees features several times larger at
inference than it was trained on. In evaluation mode the layer therefore applies the
*expected* mask over ``r`` by default (``eval_rule="expected"``)::

    E_r[s] = delta_r sigmoid(o) + (1 - delta_r) 1(o < delta_d max(o))
    h_hat  = h * E_r[s]                    (form "paper")
    h_hat  = (h * E_r[s] + h) / 2          (form "authors")

which is, for the same ``h``, exactly the mean of the training outputs (the rescaling of
classic, non-inverted dropout). ``eval_rule="identity"`` gives the previous behaviour (the
layer is the identity in evaluation mode), with its train / inference mismatch.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from wsss.group.checks import check_nodes

__all__ = ["DROP_EVAL_RULES", "DROP_FORMS", "DropEval", "DropForm", "DropMode", "GraphDropout",
           "expected_graph_dropout", "graph_dropout"]  # fmt: skip

DropMode = Literal["binary", "scaled"]
DropForm = Literal["paper", "authors"]
DropEval = Literal["expected", "identity"]
#: How the mask is applied in training: ``h s`` (eq. 11) or ``(h s + h) / 2`` (authors' code).
DROP_FORMS: tuple[str, ...] = ("paper", "authors")
#: The layer in evaluation mode: the expected mask over ``r`` (default) or the identity.
DROP_EVAL_RULES: tuple[str, ...] = ("expected", "identity")


def _check_options(where: str, mode: str, form: str) -> None:
    if mode not in ("binary", "scaled"):
        raise ValueError(f"{where}: mode must be 'binary' or 'scaled', got {mode!r}")
    if form not in DROP_FORMS:
        raise ValueError(f"{where}: form must be one of {', '.join(DROP_FORMS)}, got {form!r}")


def _branches(h: Tensor, delta_d: float, mode: str) -> tuple[Tensor, Tensor]:
    """The importance map ``sigmoid(o)`` and the drop mask of eq. (10), each ``(B, K, 1, H, W)``."""
    o = h.mean(dim=2, keepdim=True)  # (B, K, 1, H, W)
    peak = o.flatten(2).amax(dim=2)[..., None, None, None]
    keep = (o < peak * delta_d).to(h.dtype)
    return torch.sigmoid(o), keep if mode == "binary" else o * keep


def _apply(h: Tensor, s: Tensor, form: str) -> Tensor:
    """Eq. (11) (``paper``) or the authors' ``(h s + h) / 2``."""
    return h * s if form == "paper" else (h * s + h) / 2


def graph_dropout(
    h: Tensor, r: Tensor, *, delta_r: float = 0.8, delta_d: float = 0.7, mode: DropMode = "binary",
    form: DropForm = "paper",
) -> Tensor:  # fmt: skip
    """Eqs. (10)-(11) with given random numbers ``r``.

    Args:
        h: Node features ``h_i^t``.
        r: One number in ``[0, 1)`` per node; ``r < delta_r`` selects the importance map.
        delta_r: Drop-rate threshold ``delta_r`` (0.8).
        delta_d: Drop threshold ``delta_d`` (0.7), relative to each node's maximum of ``o``.
        mode: ``binary`` (indicator mask) or ``scaled`` (``o`` times the indicator, eq. 10 as
            printed).
        form: ``paper`` (``h * s``, eq. 11) or ``authors`` (``(h * s + h) / 2``).

    Returns:
        ``h * s`` (or ``(h * s + h) / 2``) with ``s`` broadcast over the channels.

    Shapes:
        h: ``(B, K, C, H, W)``; r: ``(B, K)``; output: ``(B, K, C, H, W)``.
    """
    check_nodes("graph_dropout", h)
    if tuple(r.shape) != tuple(h.shape[:2]):
        raise ValueError(
            f"graph_dropout: expected r of shape {tuple(h.shape[:2])}, got {tuple(r.shape)}"
        )
    _check_options("graph_dropout", mode, form)
    importance, dropped = _branches(h, delta_d, mode)
    chosen = r[..., None, None, None] < delta_r
    return _apply(h, torch.where(chosen, importance, dropped), form)


def expected_graph_dropout(
    h: Tensor, *, delta_r: float = 0.8, delta_d: float = 0.7, mode: DropMode = "binary",
    form: DropForm = "paper",
) -> Tensor:  # fmt: skip
    """The mean of :func:`graph_dropout` over ``r ~ U[0, 1)`` for the same ``h`` (evaluation).

    ``E_r[s] = delta_r sigmoid(o) + (1 - delta_r) drop(o)``, applied as in training (both forms
    are linear in ``s``, so this is the exact expectation of the training output).

    Shapes:
        h: ``(B, K, C, H, W)``; output: ``(B, K, C, H, W)``.
    """
    check_nodes("expected_graph_dropout", h)
    _check_options("expected_graph_dropout", mode, form)
    importance, dropped = _branches(h, delta_d, mode)
    return _apply(h, delta_r * importance + (1 - delta_r) * dropped, form)


class GraphDropout(nn.Module):
    """The graph dropout layer (eqs. 10-11); in evaluation mode its expectation (or the identity).

    Args:
        delta_r: Probability of the importance-map branch (0.8).
        delta_d: Drop threshold relative to the maximum (0.7).
        mode: ``binary`` or ``scaled`` (see :func:`graph_dropout`).
        form: ``paper`` or ``authors`` (see :func:`graph_dropout`).
        eval_rule: ``expected`` (:func:`expected_graph_dropout`, the default) or ``identity``
            (no layer at inference: the train / inference scale mismatch of the module notes).

    Shapes:
        forward: ``(B, K, C, H, W)`` -> ``(B, K, C, H, W)``.

    Example:
        >>> layer = GraphDropout(eval_rule="identity").eval()
        >>> h = torch.randn(1, 2, 3, 4, 4)
        >>> bool((layer(h) == h).all())
        True
    """

    def __init__(
        self, *, delta_r: float = 0.8, delta_d: float = 0.7, mode: DropMode = "binary",
        form: DropForm = "paper", eval_rule: DropEval = "expected",
    ) -> None:  # fmt: skip
        super().__init__()
        if not 0 <= delta_r <= 1 or not 0 <= delta_d <= 1:
            raise ValueError(f"delta_r and delta_d must lie in [0, 1], got {delta_r}, {delta_d}")
        _check_options("GraphDropout", mode, form)
        self.delta_r, self.delta_d, self.mode, self.form = delta_r, delta_d, mode, form
        self.eval_rule: DropEval = "expected"
        self.set_eval_rule(eval_rule)

    def set_eval_rule(self, rule: DropEval) -> None:
        """Choose the evaluation-mode behaviour (``expected`` or ``identity``)."""
        if rule not in DROP_EVAL_RULES:
            raise ValueError(f"eval rule must be one of {', '.join(DROP_EVAL_RULES)}, got {rule!r}")
        self.eval_rule = rule

    def forward(self, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Apply the layer; ``r`` is drawn on ``h``'s device (from ``generator`` if given)."""
        check_nodes("GraphDropout", h)
        options = {"delta_r": self.delta_r, "delta_d": self.delta_d, "mode": self.mode,
                   "form": self.form}  # fmt: skip
        if not self.training:
            return h if self.eval_rule == "identity" else expected_graph_dropout(h, **options)
        r = torch.rand(h.shape[:2], generator=generator, device=h.device, dtype=h.dtype)
        return graph_dropout(h, r, **options)

    def extra_repr(self) -> str:
        return (f"delta_r={self.delta_r}, delta_d={self.delta_d}, mode={self.mode!r}, "
                f"form={self.form!r}, eval_rule={self.eval_rule!r}")  # fmt: skip
