"""T rounds of group-wise message passing (Group-WSSS eqs. 5-8, 2, 10-11).

One round ``t = 1..T`` for every node ``i`` of a group, from the (dropped-out) states
``h^{t-1}``::

    m_ji = softmax_r(h_i P Q^T h_j^T) h_j          eqs. (5), (7), edges j -> i sharing a class
    m_ii = self-attention(h_i) + h_i               eq. (6)
    m_i  = sum_j w_ij m_ji + m_ii                  eq. (8): w_ij = 1 (options: mean, joint)
    h_i  = ConvGRU(h_i, m_i)                       eq. (2)
    h_i  = graph_dropout(h_i)                      eqs. (10)-(11); its expectation in eval

The layers are shared by the ``T`` rounds (the recurrence of a gated GNN). The last round's
output, after its graph dropout, is ``h^T`` (Fig. 2 feeds ``h_hat^T`` to the readout).
"""

from __future__ import annotations

from torch import Tensor, nn

from wsss.group.checks import check_adjacency, check_nodes
from wsss.group.coattention import CoAttention
from wsss.group.conv_gru import ConvGRUCell
from wsss.group.dropout import DropEval, DropForm, DropMode, GraphDropout
from wsss.group.messages import MessageNorm, check_norm
from wsss.group.seeding import part_stream
from wsss.group.self_attention import SelfEdge

__all__ = ["GroupGNN"]


class GroupGNN(nn.Module):
    """The group-wise GNN: node features ``h^0`` -> ``h^T``.

    Args:
        channels: Node channels ``C`` (the backbone's output channels).
        reduction: ``d`` of eq. (5) (4), also the query/key reduction of the self edge.
        steps: Rounds of message passing ``T`` (3).
        gru_kernel: Kernel size of the ConvGRU (the paper does not give it; 1 as the authors'
            code).
        graph_dropout: Use the graph dropout layer (the ablation "w/o dropout" turns it off).
        delta_r: Drop-rate threshold of eq. (10) (0.8).
        delta_d: Drop threshold of eq. (10) (0.7).
        drop_mode: ``binary`` or ``scaled`` reading of eq. (10) (see :mod:`wsss.group.dropout`).
        drop_form: ``paper`` (``h s``, eq. 11) or ``authors`` (``(h s + h) / 2``).
        drop_eval: The dropout layer in evaluation mode: ``expected`` (its mean over ``r``) or
            ``identity`` (see :mod:`wsss.group.dropout`).
        messages: Weights of the neighbours' messages in eq. (8): ``sum`` (the paper),
            ``mean`` or ``joint`` (see :mod:`wsss.group.messages`).
        seed: Initialise each layer from its own stream (:mod:`wsss.group.seeding`); None: the
            global stream.

    Shapes:
        forward: h0 ``(B, K, C, H, W)``, adjacency ``(B, K, K)`` bool -> ``(B, K, C, H, W)``.
    """

    def __init__(
        self, *, channels: int, reduction: int = 4, steps: int = 3, gru_kernel: int = 1,
        graph_dropout: bool = True, delta_r: float = 0.8, delta_d: float = 0.7,
        drop_mode: DropMode = "binary", drop_form: DropForm = "paper",
        drop_eval: DropEval = "expected", messages: MessageNorm = "sum", seed: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        check_norm("GroupGNN", messages)
        self.steps, self.messages = steps, messages
        with part_stream(seed, "coattention"):
            self.coattention = CoAttention(channels=channels, reduction=reduction)
        with part_stream(seed, "self_edge"):
            self.self_edge = SelfEdge(channels=channels, reduction=reduction)
        with part_stream(seed, "update"):
            self.update = ConvGRUCell(input_channels=channels, hidden_channels=channels,
                                      kernel_size=gru_kernel)  # fmt: skip
        self.dropout = (GraphDropout(delta_r=delta_r, delta_d=delta_d, mode=drop_mode,
                                     form=drop_form, eval_rule=drop_eval)
                        if graph_dropout else None)  # fmt: skip

    def step(self, h: Tensor, adjacency: Tensor) -> Tensor:
        """One round of message passing and update, ``h^{t-1} -> h^t`` (before dropout).

        The message is ``message_sum(coattention(h), self_edge(h))`` (eq. 8, or its normalised
        variant), computed with :meth:`CoAttention.aggregate` (no per-edge maps).
        """
        message = self.coattention.aggregate(h, adjacency, self.messages) + self.self_edge(h)
        b, k = h.shape[:2]
        updated = self.update(message.flatten(0, 1), h.flatten(0, 1))
        return updated.unflatten(0, (b, k))

    def set_drop_eval(self, rule: DropEval) -> None:
        """The graph dropout layer's evaluation-mode rule (no effect without the layer)."""
        if self.dropout is not None:
            self.dropout.set_eval_rule(rule)

    def forward(self, h0: Tensor, adjacency: Tensor) -> Tensor:
        check_nodes("GroupGNN", h0)
        check_adjacency("GroupGNN", adjacency, h0)
        h = h0
        for _ in range(self.steps):
            h = self.step(h, adjacency)
            if self.dropout is not None:
                h = self.dropout(h)
        return h
