"""Dilated "same" convolutions that leave out the taps which only ever read the zero padding.

A ``k x k`` convolution with dilation ``d``, stride 1 and padding ``d (k - 1) / 2`` reads, at
output row ``y``, the input rows ``y + d t`` for ``t = -(k-1)/2 .. (k-1)/2``. When ``d >= H`` every
row with ``t != 0`` lies outside ``[0, H)``, i.e. in the padding, for every ``y``: the convolution
is exactly its centre row of taps (and the same for columns with ``W``). DeepLab's ASPP meets this
on small inputs (Chen et al., 2017, Sec. 3.3, note it for rates near the map's size): on a
112-pixel crop at output stride 16 the last stage is 7 x 7, so the 3x3 branches of dilations 12
and 18 are 1x1 convolutions computed at 9 times their cost.

:class:`TrimmedConv2d` computes only the taps that can see the input. Outputs and the gradients of
the input and of every weight equal those of :class:`torch.nn.Conv2d` (the left-out taps' gradient
is 0 in both); float sums may differ in the last bits because the zero products are not added. The
weights keep their ``k x k`` shape, so checkpoints load either way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TrimmedConv2d", "trim_padding_taps"]


def _trimmable(conv: nn.Conv2d) -> bool:
    """True for a stride-1, zero-padded convolution whose padding is ``d (k - 1) / 2`` per axis."""
    if conv.stride != (1, 1) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return False
    k, d, p = conv.kernel_size, conv.dilation, conv.padding
    return all(k[a] % 2 == 1 and p[a] == d[a] * (k[a] // 2) for a in (0, 1))


class TrimmedConv2d(nn.Conv2d):
    """:class:`torch.nn.Conv2d` ("same" padding, stride 1) without the taps that read only padding.

    Shapes:
        forward: ``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``, as the convolution it replaces.
    """

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        size = input.shape[-2:]
        trim = [self.kernel_size[a] > 1 and self.dilation[a] >= size[a] for a in (0, 1)]
        if not any(trim):
            return super()._conv_forward(input, weight, bias)
        padding, dilation = list(self.padding), list(self.dilation)
        for a, cut in enumerate(trim):
            if cut:  # keep the centre row (a = 0) or column (a = 1) of taps
                c = self.kernel_size[a] // 2
                weight = weight.narrow(2 + a, c, 1)
                padding[a], dilation[a] = 0, 1
        return F.conv2d(input, weight, bias, 1, tuple(padding), tuple(dilation), self.groups)


def trim_padding_taps(module: nn.Module) -> int:
    """Turn every dilated "same" convolution inside ``module`` into a :class:`TrimmedConv2d`.

    The parameters, their names and the outputs stay as they are (see the module docstring).

    Returns:
        How many convolutions were turned.
    """
    turned = 0
    for m in module.modules():
        if type(m) is nn.Conv2d and max(m.dilation) > 1 and _trimmable(m):
            m.__class__ = TrimmedConv2d
            turned += 1
    return turned
