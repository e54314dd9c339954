"""The node update of Group-WSSS: a convolutional GRU (eq. 2, Ballas et al. 2016).

With message ``x = m_i^t`` and state ``h = h_i^{t-1}``::

    z = sigmoid(W_z * [x, h] + b_z)          update gate
    r = sigmoid(W_r * [x, h] + b_r)          reset gate
    n = tanh(W_n * [x, r h] + b_n)           candidate
    h' = (1 - z) h + z n

``*`` is a 2-D convolution with "same" padding; the two gates share one convolution
(``2 C_h`` output channels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvGRUCell", "conv_gru_cell"]


def conv_gru_cell(
    x: Tensor, h: Tensor, gate_weight: Tensor, gate_bias: Tensor | None, cand_weight: Tensor,
    cand_bias: Tensor | None,
) -> Tensor:  # fmt: skip
    """One ConvGRU step ``h' = F_A(h, x)`` (eq. 2).

    Args:
        x: Input (the message ``m_i^t``).
        h: Previous state ``h_i^{t-1}``.
        gate_weight: Convolution of the update and reset gates (in this order).
        gate_bias: Its bias, or None.
        cand_weight: Convolution of the candidate state.
        cand_bias: Its bias, or None.

    Returns:
        The new state.

    Shapes:
        x: ``(M, C_x, H, W)``; h: ``(M, C_h, H, W)``; gate_weight:
        ``(2 C_h, C_x + C_h, k, k)``; cand_weight: ``(C_h, C_x + C_h, k, k)`` with ``k`` odd;
        output: ``(M, C_h, H, W)``.
    """
    if x.ndim != 4 or h.ndim != 4 or x.shape[0] != h.shape[0] or x.shape[2:] != h.shape[2:]:
        raise ValueError(
            f"conv_gru_cell: expected x (M, C_x, H, W) and h (M, C_h, H, W), got "
            f"{tuple(x.shape)} and {tuple(h.shape)}"
        )
    c_in, c_h = x.shape[1] + h.shape[1], h.shape[1]
    k = cand_weight.shape[-1]
    if (tuple(gate_weight.shape) != (2 * c_h, c_in, k, k)
            or tuple(cand_weight.shape) != (c_h, c_in, k, k) or k % 2 == 0):  # fmt: skip
        raise ValueError(
            f"conv_gru_cell: expected odd square kernels (2*{c_h}, {c_in}, k, k) and "
            f"({c_h}, {c_in}, k, k), got {tuple(gate_weight.shape)} and {tuple(cand_weight.shape)}"
        )
    gates = torch.sigmoid(F.conv2d(torch.cat([x, h], 1), gate_weight, gate_bias, padding=k // 2))
    update, reset = gates.chunk(2, dim=1)
    candidate = torch.tanh(
        F.conv2d(torch.cat([x, reset * h], 1), cand_weight, cand_bias, padding=k // 2)
    )
    return (1 - update) * h + update * candidate


class ConvGRUCell(nn.Module):
    """Eq. (2): the ConvGRU aggregation function ``F_A``.

    Args:
        input_channels: Channels of the input ``C_x`` (the message).
        hidden_channels: Channels of the state ``C_h``.
        kernel_size: Odd convolution size (1 makes it a per-position GRU).

    Shapes:
        forward: x ``(M, C_x, H, W)``, h ``(M, C_h, H, W)`` -> ``(M, C_h, H, W)``.

    Example:
        >>> cell = ConvGRUCell(input_channels=4, hidden_channels=4)
        >>> cell(torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)).shape
        torch.Size([2, 4, 5, 5])
    """

    def __init__(self, *, input_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        c_in = input_channels + hidden_channels
        self.gates = nn.Conv2d(c_in, 2 * hidden_channels, kernel_size, padding=kernel_size // 2)
        self.candidate = nn.Conv2d(c_in, hidden_channels, kernel_size, padding=kernel_size // 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Default convolution weights, zero biases of the candidate and the gates."""
        for conv in (self.gates, self.candidate):
            conv.reset_parameters()
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        return conv_gru_cell(x, h, self.gates.weight, self.gates.bias, self.candidate.weight,
                             self.candidate.bias)  # fmt: skip
