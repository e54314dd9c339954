"""ConvGRU update (eq. 2), graph dropout (eqs. 10-11) and readout (eq. 9)."""

from __future__ import annotations

import pytest
import torch

from wsss.group import (
    ConvGRUCell,
    GraphDropout,
    Readout,
    conv_gru_cell,
    graph_dropout,
    readout_logits,
)
from wsss.group.dropout import expected_graph_dropout


def test_conv_gru_by_hand_with_1x1_kernels():
    gen = torch.Generator().manual_seed(0)
    x, h = torch.randn(2, 3, 2, 2, generator=gen), torch.randn(2, 2, 2, 2, generator=gen)
    wg, bg = torch.randn(4, 5, 1, 1, generator=gen), torch.randn(4, generator=gen)
    wc, bc = torch.randn(2, 5, 1, 1, generator=gen), torch.randn(2, generator=gen)
    out = conv_gru_cell(x, h, wg, bg, wc, bc)
    # one position of one sample, with plain matrices
    xv, hv = x[1, :, 0, 1], h[1, :, 0, 1]
    gates = torch.sigmoid(wg[:, :, 0, 0] @ torch.cat([xv, hv]) + bg)
    z, r = gates[:2], gates[2:]
    n = torch.tanh(wc[:, :, 0, 0] @ torch.cat([xv, r * hv]) + bc)
    torch.testing.assert_close(out[1, :, 0, 1], (1 - z) * hv + z * n)


def test_conv_gru_closed_update_gate_keeps_the_state():
    cell = ConvGRUCell(input_channels=3, hidden_channels=2, kernel_size=3)
    with torch.no_grad():
        cell.gates.weight.zero_()
        cell.gates.bias.fill_(-1e4)  # z = r = 0
    h = torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(cell(torch.randn(1, 3, 4, 4), h), h)


def test_conv_gru_gradcheck():
    gen = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()

    args = (
        rand(1, 2, 3, 3),
        rand(1, 2, 3, 3),
        rand(4, 4, 3, 3),
        rand(4),
        rand(2, 4, 3, 3),
        rand(2),
    )
    assert torch.autograd.gradcheck(conv_gru_cell, args)


def test_conv_gru_shape_errors():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ConvGRUCell(input_channels=2, hidden_channels=2, kernel_size=2)
    cell = ConvGRUCell(input_channels=2, hidden_channels=2)
    with pytest.raises(ValueError, match=r"got \(1, 2, 3, 3\) and \(1, 2, 4, 4\)"):
        cell(torch.randn(1, 2, 3, 3), torch.randn(1, 2, 4, 4))
    with pytest.raises(ValueError, match="odd square kernels"):
        conv_gru_cell(torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 3), torch.randn(4, 3, 1, 1),
                      None, torch.randn(2, 4, 1, 1), None)  # fmt: skip


def _peaked() -> torch.Tensor:
    """Two nodes of 2 channels on 1 x 3 positions; channel means o = [1, 2, 4] and [-1, 0, 3]."""
    o = torch.tensor([[[1.0, 2.0, 4.0]], [[-1.0, 0.0, 3.0]]])  # (K, 1, 3)
    return torch.stack([o - 1, o + 1], dim=1)[None]  # (1, 2, 2, 1, 3), mean over C = o


def test_graph_dropout_rule_by_hand():
    h = _peaked()
    o = h.mean(dim=2, keepdim=True)
    # r < delta_r: importance map sigmoid(o)
    torch.testing.assert_close(graph_dropout(h, torch.tensor([[0.1, 0.79]])), h * torch.sigmoid(o))
    # otherwise: drop where o >= 0.7 max(o): node 0 (max 4) drops 4; node 1 (max 3) drops 3
    out = graph_dropout(h, torch.tensor([[0.8, 0.95]]))
    keep = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])[None, :, None, None]
    torch.testing.assert_close(out, h * keep)
    # delta_d = 0.4: node 0 also drops o = 2 (>= 1.6)
    out = graph_dropout(h, torch.tensor([[0.9, 0.9]]), delta_d=0.4)
    torch.testing.assert_close(out[0, 0, 0, 0], torch.tensor([0.0, 0.0, 0.0]))  # o - 1 = [0, 1, 3]
    torch.testing.assert_close(out[0, 0, 1, 0], torch.tensor([2.0, 0.0, 0.0]))  # o + 1 = [2, 3, 5]
    # close to the threshold 0.7 * 4 = 2.8: 2.7 is kept, 2.9 dropped
    near = torch.tensor([2.7, 2.9, 4.0]).reshape(1, 1, 1, 1, 3)
    torch.testing.assert_close(
        graph_dropout(near, torch.ones(1, 1)), near * torch.tensor([1.0, 0, 0])
    )
    # mixed: node 0 importance, node 1 dropped; "scaled" multiplies the indicator by o
    mixed = graph_dropout(h, torch.tensor([[0.0, 0.9]]), mode="scaled")
    torch.testing.assert_close(mixed[0, 0], h[0, 0] * torch.sigmoid(o[0, 0]))
    torch.testing.assert_close(mixed[0, 1], h[0, 1] * torch.tensor([[-1.0, 0.0, 0.0]]))


def test_graph_dropout_module_train_and_eval():
    layer = GraphDropout(delta_r=0.5, delta_d=0.7, eval_rule="identity")
    h = torch.randn(3, 4, 2, 5, 5)
    assert torch.equal(layer.eval()(h), h)
    assert torch.equal(layer(h), layer(h))  # evaluation: deterministic identity
    layer.set_eval_rule("expected")  # the default: the expectation over r, deterministic
    torch.testing.assert_close(layer(h), expected_graph_dropout(h, delta_r=0.5, delta_d=0.7))
    assert torch.equal(layer(h), layer(h))
    layer.train()
    first = layer(h, torch.Generator().manual_seed(0))
    torch.testing.assert_close(layer(h, torch.Generator().manual_seed(0)), first)
    r = torch.rand(3, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(first, graph_dropout(h, r, delta_r=0.5, delta_d=0.7))
    with pytest.raises(ValueError, match=r"expected r of shape \(3, 4\)"):
        graph_dropout(h, torch.rand(4))
    with pytest.raises(ValueError, match="mode"):
        GraphDropout(mode="soft")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="form"):
        GraphDropout(form="half")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eval rule"):
        GraphDropout(eval_rule="off")  # type: ignore[arg-type]


def test_authors_form_averages_with_the_input():
    h = _peaked()
    for r in (torch.tensor([[0.1, 0.9]]), torch.tensor([[0.95, 0.3]])):
        for mode in ("binary", "scaled"):
            paper = graph_dropout(h, r, mode=mode)
            torch.testing.assert_close(graph_dropout(h, r, mode=mode, form="authors"),
                                       (paper + h) / 2)  # fmt: skip


@pytest.mark.parametrize("form", ["paper", "authors"])
@pytest.mark.parametrize("mode", ["binary", "scaled"])
def test_expected_dropout_is_the_mean_over_r(form, mode):
    """Evaluation gives the training output's expectation for the same features: exactly the
    delta_r-weighted average of the two branches, and the mean of many random draws."""
    h = torch.randn(2, 3, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    options = {"delta_r": 0.8, "delta_d": 0.7, "mode": mode, "form": form}
    importance = graph_dropout(h, torch.zeros(2, 3), **options)
    dropped = graph_dropout(h, torch.full((2, 3), 0.99), **options)
    expected = expected_graph_dropout(h, **options)
    torch.testing.assert_close(expected, 0.8 * importance + 0.2 * dropped)
    layer = GraphDropout(delta_r=0.8, delta_d=0.7, mode=mode, form=form)
    g = torch.Generator().manual_seed(1)
    draws = torch.stack([layer(h, g) for _ in range(4000)]).mean(0)
    assert (draws - expected).abs().max() < 0.05 * h.abs().max()
    # the identity (the layer left out) is far from the training outputs' mean
    assert (h - draws).abs().max() > 0.2 * h.abs().max()
    torch.testing.assert_close(layer.eval()(h), expected)


def test_readout_logits_are_the_mean_of_class_maps():
    readout = Readout(channels=4, num_labels=3)
    h = torch.randn(2, 3, 4, 5, 6)
    logits = readout(h)
    assert logits.shape == (2, 3, 3)
    maps = torch.einsum("lc,bkchw->bklhw", readout.classifier.weight.flatten(1), h)
    torch.testing.assert_close(logits, maps.mean(dim=(3, 4)))
    torch.testing.assert_close(readout.cams(h), maps.relu())
    with pytest.raises(ValueError, match=r"expected weight \(L, 4\)"):
        readout_logits(h, torch.randn(3, 5))
