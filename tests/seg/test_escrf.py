"""ES-CRF on tiny tensors: hand-computed superpixel means, the pairwise term against a brute-force
loop, chunking, eq. 4's normalisation, gradients and float64 gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from wsss.seg.escrf import (
    ESCRF,
    cosine_position_embedding,
    downsample_segments,
    es_crf,
    pairwise_message,
    pooled_keys,
    superpixel_mean,
)


def test_superpixel_mean_by_hand():
    features = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])[None]  # (1, 1, 2, 3)
    features = torch.cat([features, 10 * features], 1)  # (1, 2, 2, 3)
    segments = torch.tensor([[[0, 0, 3], [5, 3, 3]]])
    out = superpixel_mean(features, segments)
    # segment 0: {1, 2} -> 1.5; segment 3: {3, 5, 6} -> 14/3; segment 5: {4} -> 4
    expected = torch.tensor([[1.5, 1.5, 14 / 3], [4.0, 14 / 3, 14 / 3]])
    torch.testing.assert_close(out[0, 0], expected)
    torch.testing.assert_close(out[0, 1], 10 * expected)


def test_superpixel_mean_ids_are_per_image():
    features = torch.stack([torch.ones(1, 2, 2), 3 * torch.ones(1, 2, 2)])
    segments = torch.zeros(2, 2, 2, dtype=torch.long)
    out = superpixel_mean(features, segments)
    torch.testing.assert_close(out, features)  # same id 0 in both images is not shared
    with pytest.raises(ValueError, match="segments"):
        superpixel_mean(features, segments[:1])
    with pytest.raises(ValueError, match="non-negative"):
        superpixel_mean(features, -segments - 1)


def test_downsample_segments_takes_cell_centres():
    spx = torch.arange(16).reshape(1, 4, 4)
    assert downsample_segments(spx, (2, 2)).tolist() == [[[5, 7], [13, 15]]]
    assert downsample_segments(spx, (4, 4)).equal(spx)


def test_cosine_position_embedding():
    pe = cosine_position_embedding((2, 3), stride=(4.0, 4.0), num_frequencies=2,
                                   wavelengths=(8.0, 16.0))  # fmt: skip
    assert pe.shape == (8, 2, 3)
    y, x = 1.5 * 4, 2.5 * 4  # centre of cell (1, 2) in input pixels
    for k, lam in enumerate((8.0, 16.0)):
        assert pe[k, 1, 2] == pytest.approx(math.sin(2 * math.pi * y / lam), abs=1e-6)
        assert pe[2 + k, 1, 2] == pytest.approx(math.cos(2 * math.pi * y / lam), abs=1e-6)
        assert pe[4 + k, 1, 2] == pytest.approx(math.sin(2 * math.pi * x / lam), abs=1e-6)
        assert pe[6 + k, 0, 2] == pytest.approx(math.cos(2 * math.pi * x / lam), abs=1e-6)


def _brute_force(features, embed, gq, gk):
    """sum_{j != i} sigmoid(gq_i + gk_j) softmax_{j != i}(e_i . e_j) F_j by explicit loops."""
    B, C, N = features.shape
    msg = torch.zeros(B, N, C, dtype=features.dtype)
    tot = torch.zeros(B, N, dtype=features.dtype)
    for b in range(B):
        for i in range(N):
            others = [j for j in range(N) if j != i]
            logits = torch.stack([embed[b, :, i] @ embed[b, :, j] for j in others])
            k = logits.softmax(0)
            for kk, j in zip(k, others, strict=True):
                w = torch.sigmoid(gq[b, i] + gk[b, j]) * kk
                msg[b, i] += w * features[b, :, j]
                tot[b, i] += w
    return msg, tot


@pytest.mark.parametrize("chunk", [1, 3, 7, 100])
def test_pairwise_message_matches_brute_force(chunk: int):
    g = torch.Generator().manual_seed(0)
    features, embed = torch.randn(2, 3, 7, generator=g), torch.randn(2, 4, 7, generator=g)
    gq, gk = torch.randn(2, 7, generator=g), torch.randn(2, 7, generator=g)
    msg, tot = pairwise_message(features, embed, gq, gk, chunk=chunk)
    ref_msg, ref_tot = _brute_force(features, embed, gq, gk)
    torch.testing.assert_close(msg, ref_msg)
    torch.testing.assert_close(tot, ref_tot)
    assert (tot > 0).all() and (tot < 1).all()  # mu in (0, 1), kernel sums to 1
    with pytest.raises(ValueError, match="disagree"):
        pairwise_message(features, embed, gq, gk[:, :3])
    with pytest.raises(ValueError, match="disagree"):
        pairwise_message(features, embed[:, :, :3], gq, gk)


def test_es_crf_is_a_convex_combination():
    g = torch.Generator().manual_seed(1)
    const = torch.full((1, 4, 3, 3), 2.5)
    embed = torch.randn(1, 5, 3, 3, generator=g)
    gq, gk = torch.randn(1, 1, 3, 3, generator=g), torch.randn(1, 1, 3, 3, generator=g)
    segments = torch.randint(0, 3, (1, 3, 3), generator=g)
    torch.testing.assert_close(es_crf(const, segments, embed=embed, gate_q=gq, gate_k=gk), const)
    # superpixel term only: (F + F^S) / 2, by hand
    f = torch.randn(1, 2, 3, 3, generator=g)
    out = es_crf(f, segments)
    torch.testing.assert_close(out, (f + superpixel_mean(f, segments)) / 2)
    # pairwise only: (F + msg) / (1 + sum of weights)
    msg, tot = pairwise_message(f.reshape(1, 2, 9), embed.reshape(1, 5, 9), gq.reshape(1, 9),
                                gk.reshape(1, 9))  # fmt: skip
    expected = (f.reshape(1, 2, 9) + msg.transpose(1, 2)) / (1 + tot[:, None])
    torch.testing.assert_close(es_crf(f, None, embed=embed, gate_q=gq, gate_k=gk),
                               expected.reshape(1, 2, 3, 3))  # fmt: skip


def test_gradcheck_float64_with_chunked_recomputation():
    g = torch.Generator().manual_seed(2)

    def leaf(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    features, embed, gq, gk = leaf(1, 2, 5), leaf(1, 3, 5), leaf(1, 5), leaf(1, 5)
    for chunk in (2, 5):
        assert torch.autograd.gradcheck(
            lambda *a, c=chunk: pairwise_message(*a, chunk=c), (features, embed, gq, gk)
        )
    segments = torch.tensor([[[0, 0], [1, 0]]])
    f4 = leaf(1, 2, 2, 2)
    e4, q4, k4 = leaf(1, 3, 2, 2), leaf(1, 1, 2, 2), leaf(1, 1, 2, 2)
    assert torch.autograd.gradcheck(
        lambda f, e, q, k: es_crf(f, segments, embed=e, gate_q=q, gate_k=k, chunk=3),
        (f4, e4, q4, k4),
    )


def test_module_gradients_reach_every_parameter_and_features():
    torch.manual_seed(0)
    module = ESCRF(channels=6, embed_channels=4, num_frequencies=2, chunk=5)
    features = torch.randn(2, 6, 4, 4, requires_grad=True)
    images = torch.randn(2, 3, 16, 16)
    spx = torch.randint(0, 4, (2, 16, 16))
    out = module(features, images, spx)
    assert out.shape == features.shape
    (out * torch.randn_like(out)).sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # chunking changes nothing
    module.chunk = 1000
    torch.testing.assert_close(module(features, images, spx), out)


def test_pooled_keys_by_hand():
    # a 3x5 map in 2x2 cells: 2 x 3 cells, the last row and column are half cells
    assert pooled_keys((3, 5), 2).reshape(3, 5).tolist() == [[0, 0, 1, 1, 2], [0, 0, 1, 1, 2],
                                                            [3, 3, 4, 4, 5]]  # fmt: skip
    assert pooled_keys((2, 3), 1).tolist() == list(range(6))


def test_key_stride_matches_brute_force_over_cells():
    """Keys are the cell means of F, f and the key gate; a query leaves out its own cell."""
    g = torch.Generator().manual_seed(3)
    f = torch.randn(1, 2, 3, 4, generator=g, dtype=torch.float64)
    e = torch.randn(1, 3, 3, 4, generator=g, dtype=torch.float64)
    gq = torch.randn(1, 1, 3, 4, generator=g, dtype=torch.float64)
    gk = torch.randn(1, 1, 3, 4, generator=g, dtype=torch.float64)
    cells = {0: [(0, 0), (0, 1), (1, 0), (1, 1)], 1: [(0, 2), (0, 3), (1, 2), (1, 3)],
             2: [(2, 0), (2, 1)], 3: [(2, 2), (2, 3)]}  # fmt: skip

    def mean(t, c):
        return torch.stack([t[0, :, y, x] for y, x in cells[c]]).mean(0)

    expected = torch.zeros_like(f)
    for y in range(3):
        for x in range(4):
            own = (y // 2) * 2 + x // 2
            others = [c for c in cells if c != own]
            k = torch.stack([e[0, :, y, x] @ mean(e, c) for c in others]).softmax(0)
            gates = [torch.sigmoid(gq[0, 0, y, x] + mean(gk, c)[0]) for c in others]
            w = [gate * kc for gate, kc in zip(gates, k, strict=True)]
            msg = sum(wc * mean(f, c) for wc, c in zip(w, others, strict=True))
            expected[0, :, y, x] = (f[0, :, y, x] + msg) / (1 + sum(w))
    for chunk in (1, 5, 100):
        out = es_crf(f, None, embed=e, gate_q=gq, gate_k=gk, key_stride=2, chunk=chunk)
        torch.testing.assert_close(out, expected)
    leaves = [t.clone().requires_grad_() for t in (f, e, gq, gk)]
    assert torch.autograd.gradcheck(
        lambda a, b, c, d: es_crf(a, None, embed=b, gate_q=c, gate_k=d, key_stride=2, chunk=5),
        leaves,
    )
    # one cell only: every key is the query's own, no message
    one = es_crf(f[..., :2, :2], None, embed=e[..., :2, :2], gate_q=gq[..., :2, :2],
                 gate_k=gk[..., :2, :2], key_stride=2)  # fmt: skip
    torch.testing.assert_close(one, f[..., :2, :2])
    with pytest.raises(ValueError, match="key_stride"):
        es_crf(f, None, embed=e, gate_q=gq, gate_k=gk, key_stride=0)


def test_module_checks_inputs():
    module = ESCRF(channels=2, embed_channels=2)
    with pytest.raises(ValueError, match="superpixels"):
        module(torch.randn(1, 2, 2, 2), torch.randn(1, 3, 8, 8), None)
    with pytest.raises(ValueError, match="expected"):
        module(torch.randn(2, 2, 2), torch.randn(1, 3, 8, 8), None)
    with pytest.raises(ValueError, match="at least one"):
        ESCRF(channels=2, pairwise=False, superpixel=False)
    with pytest.raises(ValueError, match="key_stride"):
        ESCRF(channels=2, key_stride=0)
    with pytest.raises(ValueError, match="leaves out"):
        pairwise_message(torch.randn(1, 2, 3), torch.randn(1, 2, 3), torch.randn(1, 4),
                         torch.randn(1, 3), query_embed=torch.randn(1, 2, 4))  # fmt: skip
