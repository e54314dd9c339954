"""ES-CRF on tiny tensors: hand-computed superpixel means, the pairwise term against a brute-force
loop, chunking, eq. 4's normalisation, gradients and float64 gradcheck."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from wsss.seg.escrf import (
    ESCRF,
    KERNELS,
    cosine_position_embedding,
    downsample_segments,
    es_crf,
    gaussian_input_scale,
    pair_weights,
    pairwise_message,
    pool_keys,
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


def _logit(a, b, kernel):
    """The kernel's logit of one pair: -|a - b|^2 / 2 or a . b."""
    return -0.5 * (a - b).square().sum() if kernel == "gaussian" else a @ b


def _brute_force(features, embed, gq, gk, kernel):
    """sum_{j != i} sigmoid(gq_i + gk_j) softmax_{j != i}(logit(e_i, e_j)) F_j by explicit loops."""
    B, C, N = features.shape
    msg = torch.zeros(B, N, C, dtype=features.dtype)
    tot = torch.zeros(B, N, dtype=features.dtype)
    for b in range(B):
        for i in range(N):
            others = [j for j in range(N) if j != i]
            logits = torch.stack([_logit(embed[b, :, i], embed[b, :, j], kernel) for j in others])
            k = logits.softmax(0)
            for kk, j in zip(k, others, strict=True):
                w = torch.sigmoid(gq[b, i] + gk[b, j]) * kk
                msg[b, i] += w * features[b, :, j]
                tot[b, i] += w
    return msg, tot


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("chunk", [1, 3, 7, 100])
def test_pairwise_message_matches_brute_force(chunk: int, kernel: str):
    g = torch.Generator().manual_seed(0)
    features, embed = torch.randn(2, 3, 7, generator=g), torch.randn(2, 4, 7, generator=g)
    gq, gk = torch.randn(2, 7, generator=g), torch.randn(2, 7, generator=g)
    msg, tot = pairwise_message(features, embed, gq, gk, chunk=chunk, kernel=kernel)
    ref_msg, ref_tot = _brute_force(features, embed, gq, gk, kernel)
    torch.testing.assert_close(msg, ref_msg)
    torch.testing.assert_close(tot, ref_tot)
    assert (tot > 0).all() and (tot < 1).all()  # mu in (0, 1), kernel sums to 1
    with pytest.raises(ValueError, match="disagree"):
        pairwise_message(features, embed, gq, gk[:, :3])
    with pytest.raises(ValueError, match="disagree"):
        pairwise_message(features, embed[:, :, :3], gq, gk)
    with pytest.raises(ValueError, match="unknown kernel"):
        pairwise_message(features, embed, gq, gk, kernel="cosine")


def test_gaussian_kernel_ignores_the_key_norm_and_the_dot_kernel_does_not():
    """-|f_i - f_j|^2 / 2 is a function of the difference: moving every embedding by the same
    vector changes nothing; under the dot product it moves the weight to the keys along it."""
    g = torch.Generator().manual_seed(4)
    q, e = torch.randn(1, 3, 5, generator=g), torch.randn(1, 3, 9, generator=g)
    gq, gk, own = torch.zeros(1, 5), torch.zeros(1, 9), torch.arange(5)
    shift = torch.tensor([3.0, -2.0, 1.0])[None, :, None]
    gauss = pair_weights(q, e, gq, gk, own, "gaussian")
    torch.testing.assert_close(pair_weights(q + shift, e + shift, gq, gk, own, "gaussian"), gauss)
    dot = pair_weights(q, e, gq, gk, own, "dot")
    assert (pair_weights(q + shift, e + shift, gq, gk, own, "dot") - dot).abs().max() > 0.1
    assert torch.all(gauss[0, torch.arange(5), own] == 0)  # the left-out key


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
    for chunk, kernel in ((2, "gaussian"), (5, "gaussian"), (2, "dot")):
        assert torch.autograd.gradcheck(
            lambda *a, c=chunk, k=kernel: pairwise_message(*a, chunk=c, kernel=k),
            (features, embed, gq, gk),
        )
    segments = torch.tensor([[[0, 0], [1, 0]]])
    f4 = leaf(1, 2, 2, 2)
    e4, q4, k4 = leaf(1, 3, 2, 2), leaf(1, 1, 2, 2), leaf(1, 1, 2, 2)
    assert torch.autograd.gradcheck(
        lambda f, e, q, k: es_crf(f, segments, embed=e, gate_q=q, gate_k=k, chunk=3),
        (f4, e4, q4, k4),
    )


@pytest.mark.parametrize("kernel", KERNELS)
def test_module_gradients_reach_every_parameter_and_features(kernel: str):
    torch.manual_seed(0)
    module = ESCRF(channels=6, num_frequencies=2, chunk=5, kernel=kernel)
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


@pytest.mark.parametrize("kernel", KERNELS)
def test_key_stride_matches_brute_force_over_cells(kernel: str):
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
            k = torch.stack([_logit(e[0, :, y, x], mean(e, c), kernel) for c in others])
            k = k.softmax(0)
            gates = [torch.sigmoid(gq[0, 0, y, x] + mean(gk, c)[0]) for c in others]
            w = [gate * kc for gate, kc in zip(gates, k, strict=True)]
            msg = sum(wc * mean(f, c) for wc, c in zip(w, others, strict=True))
            expected[0, :, y, x] = (f[0, :, y, x] + msg) / (1 + sum(w))
    for chunk in (1, 5, 100):
        out = es_crf(
            f, None, embed=e, gate_q=gq, gate_k=gk, key_stride=2, chunk=chunk, kernel=kernel
        )
        torch.testing.assert_close(out, expected)
    leaves = [t.clone().requires_grad_() for t in (f, e, gq, gk)]
    assert torch.autograd.gradcheck(
        lambda a, b, c, d: es_crf(
            a, None, embed=b, gate_q=c, gate_k=d, key_stride=2, chunk=5, kernel=kernel
        ),
        leaves,
    )
    # one cell only: every key is the query's own, no message
    one = es_crf(f[..., :2, :2], None, embed=e[..., :2, :2], gate_q=gq[..., :2, :2],
                 gate_k=gk[..., :2, :2], key_stride=2)  # fmt: skip
    torch.testing.assert_close(one, f[..., :2, :2])
    with pytest.raises(ValueError, match="key_stride"):
        es_crf(f, None, embed=e, gate_q=gq, gate_k=gk, key_stride=0)


def test_module_checks_inputs():
    module = ESCRF(channels=2, num_frequencies=1)
    with pytest.raises(ValueError, match="superpixels"):
        module(torch.randn(1, 2, 2, 2), torch.randn(1, 3, 8, 8), None)
    with pytest.raises(ValueError, match="expected"):
        module(torch.randn(2, 2, 2), torch.randn(1, 3, 8, 8), None)
    with pytest.raises(ValueError, match="at least one"):
        ESCRF(channels=2, pairwise=False, superpixel=False)
    with pytest.raises(ValueError, match="key_stride"):
        ESCRF(channels=2, key_stride=0)
    with pytest.raises(ValueError, match="embed_channels must be >= 11"):
        ESCRF(channels=2, num_frequencies=2, embed_channels=8)
    with pytest.raises(ValueError, match="unknown kernel"):
        ESCRF(channels=2, kernel="cosine")
    with pytest.raises(ValueError, match="leaves out"):
        pairwise_message(torch.randn(1, 2, 3), torch.randn(1, 2, 3), torch.randn(1, 4),
                         torch.randn(1, 3), query_embed=torch.randn(1, 2, 4))  # fmt: skip


def _key_grid_embedding(module: ESCRF, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The position channels at the queries and at the (pooled) keys of a stride-4 crop."""
    size = (crop // 4, crop // 4)
    pe = cosine_position_embedding(size, stride=(4.0, 4.0), num_frequencies=module.num_frequencies,
                                   wavelengths=module.wavelengths)  # fmt: skip
    (keys,) = pool_keys((pe[None],), module.key_stride)
    return pe.flatten(1), keys[0].flatten(1)


@pytest.mark.parametrize("backbone", ["small", "resnet50"])
def test_position_embedding_covers_the_feature_grid(backbone: str):
    """No sin / cos channel is constant over the queries or the keys of the registry's ES-CRF;
    the embedding used before issue 19 (8 px waves, 2x2 pooled keys) had six such channels."""
    from wsss.seg.registry import create_seg_model

    def refine(**options):
        return create_seg_model("escrf", backbone=backbone, num_classes=3, **options).refine

    for crop in (128, 512) if backbone != "small" else (128,):
        queries, keys = _key_grid_embedding(refine(), crop)
        assert queries.std(1).min() > 1e-2 and keys.std(1).min() > 1e-2
    if backbone == "small":
        queries, keys = _key_grid_embedding(refine(kernel="dot"), 128)
        assert int((keys.std(1) < 1e-6).sum()) == 6 and int((queries.std(1) < 1e-6).sum()) == 2


def test_initial_gaussian_kernel_is_local_and_colour_dependent():
    """At initialisation -|f_i - f_j|^2 / 2 is the closed form of gaussian_input_scale: colour
    difference over 2 * 0.1^2 plus sum_k a_k^2 (2 - cos(w_k dy) - cos(w_k dx)), whose curvature at
    0 is that of a Gaussian of 8 px."""
    module = ESCRF(channels=4, num_frequencies=3, wavelengths=(32.0, 512.0))
    images = torch.zeros(1, 3, 64, 64)
    images[..., 32:] = 1.0  # two colours: the right half differs by 1 / std in every channel
    f = module.kernel_embedding(images, (16, 16))[0].detach()  # (d, 16, 16)
    scale = gaussian_input_scale(3, (32.0, 512.0), bandwidth=8.0, colour_scale=0.1).double()
    amp, lam = scale[3:6], 32.0 * 16.0 ** (torch.arange(3, dtype=torch.float64) / 2)

    def logit(a, b):
        return float(-0.5 * (f[:, a[0], a[1]] - f[:, b[0], b[1]]).double().square().sum())

    def closed(dy, dx, colour):
        w = 2 * math.pi / lam
        pos = (amp**2 * (2 - torch.cos(w * dy) - torch.cos(w * dx))).sum()
        return float(-pos - colour / (2 * 0.1**2))

    unit = (images * module.std + module.mean).clamp(0, 1)  # the colours the module sees
    diff = float((unit[0, :, 0, 40] - unit[0, :, 0, 0]).double().square().sum())
    assert logit((3, 3), (5, 6)) == pytest.approx(closed(8.0, 12.0, 0.0), rel=1e-4)
    assert logit((3, 6), (3, 9)) == pytest.approx(closed(0.0, 12.0, diff), rel=1e-4)
    # curvature: a 2 px displacement costs 2^2 / (2 * 8^2) within 2 %
    assert -closed(2.0, 0.0, 0.0) == pytest.approx(4 / 128, rel=0.02)
    # and the penalty keeps growing across a 176 px image
    far = [-closed(float(d), 0.0, 0.0) for d in range(8, 177, 8)]
    assert all(b > a for a, b in itertools.pairwise(far))


def test_window_multiplies_the_kernel_by_a_fixed_spatial_gaussian():
    torch.manual_seed(0)
    plain = ESCRF(channels=4, num_frequencies=2)
    windowed = ESCRF(channels=4, num_frequencies=2, window=8.0)
    windowed.load_state_dict(plain.state_dict())
    images = torch.randn(1, 3, 32, 32)
    f = plain.kernel_embedding(images, (8, 8))[0].detach()
    g = windowed.kernel_embedding(images, (8, 8))[0].detach()
    assert g.shape[0] == f.shape[0] + 2 and torch.equal(g[:-2], f)

    def logit(e, a, b):
        return float(-0.5 * (e[:, a[0], a[1]] - e[:, b[0], b[1]]).square().sum())

    # cells (1, 2) and (4, 6) are 12 px and 16 px apart at stride 4: 400 px^2
    extra = logit(g, (1, 2), (4, 6)) - logit(f, (1, 2), (4, 6))
    assert extra == pytest.approx(-400 / (2 * 64), rel=1e-5)
    with pytest.raises(ValueError, match="window needs the gaussian"):
        ESCRF(channels=4, kernel="dot", window=8.0)
    with pytest.raises(ValueError, match="must be positive"):
        ESCRF(channels=4, window=0.0)
