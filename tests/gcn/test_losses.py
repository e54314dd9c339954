"""WSGCN losses (eqs. 3-6) against values computed by hand on tiny graphs."""

from __future__ import annotations

import math

import pytest
import torch

from wsss.gcn.losses import (
    LossWeights,
    background_loss,
    entropy_loss,
    foreground_loss,
    laplacian_loss,
    laplacian_operator,
    wsgcn_loss,
)

# One image, 4 nodes, K = 3 outputs (bg, class a, class b).
Q = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.25, 0.25]],
                 dtype=torch.float64)  # fmt: skip
SEEDS = torch.tensor([[0, 1, 2, 255]])


def test_foreground_background_entropy_by_hand():
    log_q = Q.log()[None]
    fg = -(math.log(0.8) + math.log(0.6)) / 2  # nodes 1 (class a) and 2 (class b)
    assert foreground_loss(log_q, SEEDS).item() == pytest.approx(fg)
    assert background_loss(log_q, SEEDS).item() == pytest.approx(-math.log(0.7))
    ent = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))  # node 3 only
    assert entropy_loss(log_q, SEEDS).item() == pytest.approx(ent)


def test_empty_groups_and_padding_give_zero():
    log_q = Q.log()[None].expand(2, -1, -1)
    seeds = torch.tensor([[255, 255, -1, -1], [0, 0, 0, -1]])
    assert foreground_loss(log_q, seeds).tolist() == [0.0, 0.0]
    assert background_loss(log_q, seeds)[0].item() == 0.0
    assert entropy_loss(log_q, seeds)[1].item() == 0.0
    # the padding slot (-1) of image 1 is not an unlabelled node
    two = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    two += -(0.1 * math.log(0.1) * 2 + 0.8 * math.log(0.8))
    assert entropy_loss(log_q, seeds)[0].item() == pytest.approx(two / 2)


def test_laplacian_by_hand():
    # pairs (0,1) with Phi 0.5 and (1,2) with Phi 2; |V| = 4
    src, dst = torch.tensor([0, 1]), torch.tensor([1, 2])
    weight = torch.tensor([0.5, 2.0], dtype=torch.float64)
    d01 = ((Q[0] - Q[1]) ** 2).sum().item()
    d12 = ((Q[1] - Q[2]) ** 2).sum().item()
    expected = (0.5 * d01 + 2.0 * d12) / 4  # 1/(2|V|) sum over both orders = 1/|V| over pairs
    op = laplacian_operator(src, dst, weight, 4)
    value = laplacian_loss(Q[None], op, torch.tensor([4]))
    assert value.item() == pytest.approx(expected)


def test_laplacian_batched_per_image_and_class_mask():
    src, dst = torch.tensor([0, 4]), torch.tensor([1, 5])  # image 0: (0,1); image 1: (0,1)
    weight = torch.tensor([1.0, 1.0], dtype=torch.float64)
    values = torch.zeros(2, 4, 3, dtype=torch.float64)
    values[0, 0, 0], values[1, 0, 2] = 1.0, 3.0
    op = laplacian_operator(src, dst, weight, 8)
    out = laplacian_loss(values, op, torch.tensor([4, 2]))
    assert out.tolist() == pytest.approx([1 / 4, 9 / 2])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    masked = laplacian_loss(values, op, torch.tensor([4, 2]), class_mask=mask)
    assert masked.tolist() == pytest.approx([1 / 4, 0.0])


def test_total_weights_and_switches():
    log_q = Q.log()[None]
    op = laplacian_operator(
        torch.tensor([0]), torch.tensor([1]), torch.ones(1, dtype=torch.float64), 4
    )
    terms = wsgcn_loss(log_q, SEEDS, laplacian=op)
    expected = terms["fg"] + terms["bg"] + 10 * terms["ent"] + 0.01 * terms["lp"]
    assert terms["total"].item() == pytest.approx(expected.item())
    assert terms["lp"].item() > 0
    off = wsgcn_loss(log_q, SEEDS, weights=LossWeights(bg=False, entropy=0, laplacian=0))
    assert off["total"].item() == pytest.approx(terms["fg"].item())
    with pytest.raises(ValueError, match="Laplacian"):
        wsgcn_loss(log_q, SEEDS)


def test_laplacian_gradient_float64():
    src, dst = torch.tensor([0, 1, 0]), torch.tensor([1, 2, 3])
    weight = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    op = laplacian_operator(src, dst, weight, 4)
    values = torch.rand(1, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: laplacian_loss(v, op, torch.tensor([4])), (values,))


def test_entropy_mean_over_entries_divides_by_the_outputs():
    """The authors' code: a mean over |V_ig| x K entries (K from the class mask)."""
    log_q = Q.log()[None].expand(2, -1, -1)
    seeds = SEEDS.expand(2, -1)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    plain = wsgcn_loss(log_q, seeds, weights=LossWeights(laplacian=0.0, entropy_mean="nodes"))[
        "ent"
    ]
    entries = wsgcn_loss(log_q, seeds, weights=LossWeights(laplacian=0.0, entropy_mean="entries"),
                         class_mask=mask)["ent"]  # fmt: skip
    assert torch.allclose(entries, plain / torch.tensor([3.0, 2.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="entropy_mean"):
        LossWeights(entropy_mean="pixels")
