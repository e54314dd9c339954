"""Permutohedral-lattice filtering: exact cases by hand, brute force, transpose, batching."""

from __future__ import annotations

import pytest
import torch

from wsss.crf.lattice import GaussianKernel, build_lattice, lattice_filter
from wsss.errors import WsssError


def _exact(features: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Brute-force symmetric-normalised Gaussian filter D^-1/2 K D^-1/2 v, K = exp(-d^2/2)."""
    k = torch.exp(-(torch.cdist(features, features) ** 2) / 2)
    n = k.sum(1).rsqrt()[:, None]
    return n * (k @ (n * values))


def _grid(h: int, w: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    return torch.stack([xs, ys], dim=-1)  # (h, w, 2), x first


def _smooth_image(h: int, w: int) -> torch.Tensor:
    """A tiny RGB image (0-255) with smooth ramps and a colour edge down the middle."""
    xy = _grid(h, w)
    xs, ys = xy[..., 0], xy[..., 1]
    img = torch.stack([xs * 8 + 20, ys * 6 + 30, 128 + 60 * torch.sin(xs / 3)], dim=-1)
    img[:, w // 2 :] += torch.tensor([90.0, -20.0, -60.0], dtype=torch.float64)
    return img


# Relative L2 error of the lattice against the exact Gaussian measured on these inputs:
# 2-D 1.2 %, 5-D 3.6-4.5 % (pydensecrf's lattice is the same approximation).
@pytest.mark.parametrize(
    ("name", "bound"),
    [
        ("gaussian_sxy3", 0.02),
        ("gaussian_sxy1", 0.03),
        ("bilateral_5_13", 0.07),
        ("bilateral_80_13", 0.06),
    ],
)
def test_normalised_filter_close_to_brute_force(name: str, bound: float) -> None:
    h, w = 20, 24
    xy, img = _grid(h, w), _smooth_image(h, w)
    features = {
        "gaussian_sxy3": xy / 3,
        "gaussian_sxy1": xy,
        "bilateral_5_13": torch.cat([xy / 5, img / 13], dim=-1),
        "bilateral_80_13": torch.cat([xy / 80, img / 13], dim=-1),
    }[name].reshape(h * w, -1)
    values = torch.rand(h * w, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = GaussianKernel(features).apply(values)
    ref = _exact(features, values)
    assert float((out - ref).norm() / ref.norm()) < bound
    assert float(((out - ref).abs() / ref).median()) < bound


def test_identical_features_average_exactly() -> None:
    # All points share one feature: K = c * ones, so D^-1/2 K D^-1/2 v = mean(v) at every point.
    features = torch.full((7, 3), 0.37)
    values = torch.arange(14, dtype=torch.float64).view(7, 2)
    out = GaussianKernel(features).apply(values)
    torch.testing.assert_close(out, values.mean(0).expand(7, 2))


def test_far_apart_clusters_do_not_interact() -> None:
    near = torch.rand(10, 2, generator=torch.Generator().manual_seed(1))
    features = torch.cat([near, near + 1000.0])
    values = torch.cat([torch.ones(10, 1), torch.zeros(10, 1)]).double()
    out = build_lattice(features).apply(values)
    assert torch.all(out[:10] > 0)
    assert torch.all(out[10:] == 0)


def test_symmetric_normalisation_convention() -> None:
    # pydensecrf NORMALIZE_SYMMETRIC: norm = 1 / sqrt(K 1 + 1e-20) and
    # D^-1/2 K D^-1/2 maps D^1/2 1 onto itself.
    features = _grid(6, 9).reshape(-1, 2).float() / 2
    kernel = GaussianKernel(features)
    raw = build_lattice(features).apply(torch.ones(54, 1))[:, 0]
    torch.testing.assert_close(kernel.norm, (raw + 1e-20).rsqrt())
    sqrt_d = raw.sqrt()[:, None]
    torch.testing.assert_close(kernel.apply(sqrt_d), sqrt_d, rtol=1e-5, atol=1e-6)


def test_reverse_is_exact_transpose() -> None:
    gen = torch.Generator().manual_seed(2)
    features = torch.rand(40, 5, generator=gen) * 3
    lattice = build_lattice(features)
    x = torch.rand(40, 3, dtype=torch.float64, generator=gen)
    y = torch.rand(40, 3, dtype=torch.float64, generator=gen)
    lhs = (lattice.apply(x) * y).sum()
    rhs = (x * lattice.apply(y, reverse=True)).sum()
    torch.testing.assert_close(lhs, rhs)


def test_filter_gradcheck() -> None:
    features = torch.rand(12, 3, generator=torch.Generator().manual_seed(3)) * 2
    kernel = GaussianKernel(features)
    x = torch.rand(12, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(kernel.apply, (x,))


def test_batch_vector_equals_separate_lattices() -> None:
    gen = torch.Generator().manual_seed(4)
    a, b = torch.rand(30, 5, generator=gen) * 4, torch.rand(20, 5, generator=gen) * 4
    batch = torch.cat([torch.zeros(30), torch.ones(20)]).long()
    values = torch.rand(50, 3, dtype=torch.float64, generator=gen)
    joint = GaussianKernel(torch.cat([a, b]), batch).apply(values)
    tol = {"rtol": 1e-6, "atol": 1e-7}  # lattice weights are float32, summed in another order
    torch.testing.assert_close(joint[:30], GaussianKernel(a).apply(values[:30]), **tol)
    torch.testing.assert_close(joint[30:], GaussianKernel(b).apply(values[30:]), **tol)


def test_unpacked_key_fallback_matches_packed() -> None:
    gen = torch.Generator().manual_seed(5)
    features = torch.rand(60, 4, generator=gen) * 5
    batch = (torch.arange(60) >= 25).long()
    values = torch.rand(60, 2, dtype=torch.float64, generator=gen)
    packed = build_lattice(features, batch)
    rows = build_lattice(features, batch, max_code=1)
    assert packed.num_vertices == rows.num_vertices
    torch.testing.assert_close(rows.apply(values), packed.apply(values))


def test_output_stays_on_input_device_and_dtype() -> None:
    lattice = build_lattice(torch.rand(9, 2))
    for dtype in (torch.float32, torch.float64):
        out = lattice_filter(lattice, torch.rand(9, 4, dtype=dtype))
        assert out.dtype == dtype
        assert out.device == lattice.device


def test_bad_shapes_raise() -> None:
    with pytest.raises(WsssError, match=r"features of shape \(N, d\)"):
        build_lattice(torch.rand(5))
    with pytest.raises(WsssError, match="batch of shape"):
        build_lattice(torch.rand(5, 2), torch.zeros(4, dtype=torch.long))
    lattice = build_lattice(torch.rand(5, 2))
    with pytest.raises(WsssError, match=r"N=5"):
        lattice_filter(lattice, torch.rand(4, 3))
    with pytest.raises(WsssError, match="floating-point"):
        lattice_filter(lattice, torch.ones(5, 3, dtype=torch.long))
