"""ES-CRF's comparison baselines: the Non-local block, Joint-CRF, Vanilla-CRF at prediction."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from wsss.data.voc import VOCSegmentation
from wsss.io.images import read_label_png
from wsss.seg.comparisons import JointCRF, NonLocal, non_local_attention
from wsss.seg.predict import predict_split
from wsss.seg.registry import create_seg_model


def test_non_local_attention_matches_dense_softmax_and_gradcheck():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, generator=g, dtype=torch.float64) for _ in range(3))
    dense = torch.bmm(torch.bmm(q.transpose(1, 2), k).softmax(-1), v.transpose(1, 2))
    for chunk in (1, 3, 7):
        torch.testing.assert_close(non_local_attention(q, k, v, chunk=chunk), dense)
    leaves = tuple(t.clone().requires_grad_() for t in (q, k, v))
    assert torch.autograd.gradcheck(lambda *a: non_local_attention(*a, chunk=3), leaves)


def test_non_local_block_starts_as_identity_and_learns():
    block = NonLocal(channels=8, chunk=5)
    x = torch.randn(2, 8, 3, 4)
    torch.testing.assert_close(block(x), x)
    block(x).pow(2).sum().backward()
    assert block.norm.weight.grad is not None and block.norm.weight.grad.abs().sum() > 0


def test_joint_crf_outputs_log_marginals_and_learns_compat():
    torch.manual_seed(0)
    model = create_seg_model("jointcrf", backbone="small", num_classes=3)
    assert isinstance(model, JointCRF)
    out = model(torch.randn(2, 3, 24, 20))
    torch.testing.assert_close(out.exp().sum(1), torch.ones(2, 24, 20), atol=1e-4, rtol=0)
    out[:, 1].sum().backward()
    assert model.crf.compat.grad is not None and model.crf.compat.grad.abs().sum() > 0
    assert model.crf.label_compat is not None and model.crf.label_compat.shape == (3, 3)
    assert model.crf.label_compat.grad is not None and model.crf.label_compat.grad.abs().sum() > 0


def test_joint_crf_log_marginals_keep_a_gradient_where_they_underflow():
    """A confidently wrong pixel still trains: the output is the exact log-marginal (below
    log 1e-8 there), not a clamped log whose gradient is zero."""
    torch.manual_seed(0)
    model = create_seg_model("jointcrf", backbone="small", num_classes=3)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([40.0, 0.0, 0.0]))  # background everywhere
    out = model(torch.randn(1, 3, 24, 20))
    assert torch.isfinite(out).all() and out[:, 1].max() < math.log(1e-8)
    out[:, 1].sum().backward()
    assert model.classifier.bias.grad is not None and model.classifier.bias.grad[1] != 0


def test_vanilla_crf_at_prediction(tiny_voc: Path, tmp_path: Path):
    torch.manual_seed(0)
    model = create_seg_model("deeplabv3plus", backbone="small", num_classes=21).eval()
    data = VOCSegmentation(tiny_voc, split="val")
    done = predict_split(model, data, tmp_path / "p", crf=True, progress=False)
    assert done == {"shard": 3, "written": 3}
    assert read_label_png(tmp_path / "p" / "img00.png").shape == (24, 24)
