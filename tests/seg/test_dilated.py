"""TrimmedConv2d equals the convolution it replaces; trim_padding_taps turns only "same" dilated ones."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPP

from wsss.seg.dilated import TrimmedConv2d, trim_padding_taps


@pytest.mark.parametrize(
    ("kernel", "dilation", "size"),
    [
        (3, 6, (5, 5)),
        (3, 6, (4, 9)),
        (3, 6, (9, 4)),
        (3, 2, (7, 7)),
        (5, 3, (3, 3)),
        (3, 12, (12, 12)),
    ],
)
def test_trimmed_equals_conv2d(kernel: int, dilation: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 5, kernel, padding=dilation * (kernel // 2), dilation=dilation).double()
    trimmed = copy.deepcopy(conv)
    assert trim_padding_taps(trimmed) == 1 and isinstance(trimmed, TrimmedConv2d)
    x = torch.randn(2, 4, *size, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    out, out2 = conv(x), trimmed(x2)
    torch.testing.assert_close(out2, out)
    g = torch.randn_like(out)
    out.backward(g)
    out2.backward(g)
    torch.testing.assert_close(x2.grad, x.grad)
    torch.testing.assert_close(trimmed.weight.grad, conv.weight.grad)
    torch.testing.assert_close(trimmed.bias.grad, conv.bias.grad)
    if size[0] <= dilation:  # the off-centre rows only read padding: their gradient is 0
        c = kernel // 2
        assert trimmed.weight.grad[:, :, :c].abs().max() == 0
        assert trimmed.weight.grad[:, :, c + 1 :].abs().max() == 0


def test_trimmed_reads_fewer_taps_on_small_inputs() -> None:
    conv = TrimmedConv2d(3, 3, 3, padding=8, dilation=8, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, :, 1, 1] = torch.eye(3)  # identity through the centre tap only
    x = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(conv(x), x)


def test_trim_turns_only_same_dilated_convolutions() -> None:
    aspp = ASPP(16, [6, 12, 18], 8)
    assert trim_padding_taps(aspp) == 3
    assert trim_padding_taps(aspp) == 0  # already turned
    others = nn.Sequential(
        nn.Conv2d(3, 3, 3, padding=1),  # not dilated
        nn.Conv2d(3, 3, 3, padding=2, dilation=2, stride=2),  # strided
        nn.Conv2d(3, 3, 3, padding=1, dilation=2),  # not "same"
    )
    assert trim_padding_taps(others) == 0
    assert set(aspp.state_dict()) == set(ASPP(16, [6, 12, 18], 8).state_dict())
