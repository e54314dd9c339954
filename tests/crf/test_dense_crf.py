"""Dense CRF: unaries by hand, mean field on toy images, batching, gradients, pydensecrf agreement."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from shared_data import VOC_SAMPLES
from wsss.crf import (
    PRESETS,
    DenseCRF,
    crf_inference_label,
    crf_inference_probs,
    dense_crf,
    unary_from_labels,
    unary_from_probs,
)
from wsss.errors import WsssError
from wsss.io.images import read_image, read_label_png

VOC = VOC_SAMPLES


# ---------------------------------------------------------------- unaries


def test_unary_from_probs_by_hand() -> None:
    probs = torch.tensor([[[[0.5]], [[0.25]], [[0.0]], [[1.0]]]])  # (1, 4, 1, 1)
    unary = unary_from_probs(probs)
    expected = [math.log(2), math.log(4), -math.log(1e-5), 0.0]
    torch.testing.assert_close(unary.flatten(), torch.tensor(expected))
    assert torch.isinf(unary_from_probs(probs, clip=None)[0, 2]).all()


def test_unary_from_labels_irnet_semantics() -> None:
    # zero_unsure=False: value k is class k; 0.7 on it, 0.3 / 2 on the other two classes.
    labels = torch.tensor([[[0, 2]]])  # (1, 1, 2)
    unary = unary_from_labels(labels, 3, gt_prob=0.7, zero_unsure=False)
    hi, lo = -math.log(0.7), -math.log(0.15)
    expected = torch.tensor([[[hi, lo]], [[lo, lo]], [[lo, hi]]]).unsqueeze(0)
    torch.testing.assert_close(unary, expected)


def test_unary_from_labels_zero_unsure() -> None:
    # zero_unsure=True: 0 = unsure (uniform), value k is class k - 1.
    labels = torch.tensor([[[0, 1, 3]]])
    unary = unary_from_labels(labels, 3, gt_prob=0.6, zero_unsure=True)
    hi, lo, uni = -math.log(0.6), -math.log(0.2), math.log(3)
    expected = torch.tensor([[[uni, hi, lo]], [[uni, lo, lo]], [[uni, lo, hi]]]).unsqueeze(0)
    torch.testing.assert_close(unary, expected)


def test_unary_from_labels_rejects_bad_input() -> None:
    with pytest.raises(WsssError, match="gt_prob"):
        unary_from_labels(torch.zeros(1, 2, 2, dtype=torch.long), 3, gt_prob=1.0)
    with pytest.raises(WsssError, match=r"labels must lie in \[0, 2\]"):
        unary_from_labels(torch.full((1, 2, 2), 3), 3, gt_prob=0.7, zero_unsure=False)
    with pytest.raises(WsssError, match=r"\(B, H, W\)"):
        unary_from_labels(torch.zeros(2, 2, dtype=torch.long), 3, gt_prob=0.7)


def test_unaries_match_pydensecrf() -> None:
    utils = pytest.importorskip("pydensecrf.utils")
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (1, 6, 7), generator=gen)
    for zero_unsure in (False, True):
        ours = unary_from_labels(labels, 5, gt_prob=0.7, zero_unsure=zero_unsure)
        ref = utils.unary_from_labels(labels[0].numpy(), 5, 0.7, zero_unsure=zero_unsure)
        np.testing.assert_array_equal(ours[0].reshape(5, -1).numpy(), ref)
    probs = torch.softmax(torch.randn(1, 4, 6, 7, generator=gen) * 5, dim=1)
    ref = utils.unary_from_softmax(probs[0].numpy())  # numpy's float32 log may differ by 1 ulp
    np.testing.assert_allclose(unary_from_probs(probs)[0].reshape(4, -1).numpy(), ref, rtol=1e-6)


# ---------------------------------------------------------------- mean field


def _two_halves(
    h: int = 24, w: int = 32, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Red left half, blue right half; unaries (gt_prob 0.6) from labels flipped 30 % of the time.

    Returns:
        image ``(1, 3, h, w)`` uint8, unary ``(1, 2, h, w)``, true labels ``(h, w)``.
    """
    image = torch.zeros(1, 3, h, w, dtype=torch.uint8)
    image[0, 0, :, : w // 2] = 200
    image[0, 2, :, w // 2 :] = 200
    truth = torch.zeros(h, w, dtype=torch.long)
    truth[:, w // 2 :] = 1
    gen = torch.Generator().manual_seed(seed)
    flip = torch.rand(h, w, generator=gen) < 0.3
    noisy = torch.where(flip, 1 - truth, truth)
    return image, unary_from_labels(noisy[None], 2, gt_prob=0.6, zero_unsure=False), truth


def test_toy_image_gives_clean_halves() -> None:
    image, unary, truth = _two_halves()
    assert (unary.argmin(1)[0] != truth).float().mean() > 0.2  # the input really is noisy
    probs = dense_crf(image, unary, bilateral_sxy=20, bilateral_srgb=13)
    assert torch.equal(probs.argmax(1)[0], truth)
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 24, 32))


def test_zero_iterations_is_softmax_of_unary() -> None:
    image, unary, _ = _two_halves()
    torch.testing.assert_close(dense_crf(image, unary, n_iter=0), torch.softmax(-unary, dim=1))


def test_batch_equals_per_image() -> None:
    a_img, a_un, _ = _two_halves(seed=1)
    b_img, b_un, _ = _two_halves(seed=2)
    b_img = b_img.flip(-1).float()  # a different image, float input
    batch = dense_crf(torch.cat([a_img.float(), b_img]), torch.cat([a_un, b_un]))
    torch.testing.assert_close(batch[:1], dense_crf(a_img, a_un))
    torch.testing.assert_close(batch[1:], dense_crf(b_img, b_un))


def test_label_maps_of_one_image_share_its_lattice() -> None:
    # crf_inference_label with one image and P label maps: P CRFs on one lattice, each equal to
    # its own call; several images with one map each keep the per-image meaning.
    image, _, _ = _two_halves(seed=3)
    gen = torch.Generator().manual_seed(1)
    first = torch.randint(0, 3, image.shape[2:], generator=gen)
    maps = torch.stack([first, (first + 1) % 3])  # the second map's labels permuted
    shared = crf_inference_label(image, maps, 3)
    assert isinstance(shared, torch.Tensor) and shared.shape == maps.shape
    for p in range(2):
        torch.testing.assert_close(shared[p], crf_inference_label(image, maps[p : p + 1], 3)[0],
                                   rtol=0, atol=0)  # fmt: skip
    assert not torch.equal(shared[0], shared[1])
    two_images = crf_inference_label(torch.cat([image, image.flip(-1)]), maps, 3)
    torch.testing.assert_close(two_images[1], crf_inference_label(image.flip(-1), maps[1:], 3)[0])


def test_module_matches_function_and_learns_compat() -> None:
    image, unary, _ = _two_halves()
    crf = DenseCRF(n_iter=3, **PRESETS["irn"])
    torch.testing.assert_close(
        crf(image, unary), dense_crf(image, unary, n_iter=3, **PRESETS["irn"])
    )
    assert "bilateral_sxy=50" in repr(crf)
    trainable = DenseCRF(n_iter=2, trainable_compat=True)
    assert [name for name, _ in trainable.named_parameters()] == ["compat"]
    trainable(image, unary)[:, 0].sum().backward()
    assert trainable.compat.grad is not None and torch.all(trainable.compat.grad != 0)


def test_crf_as_rnn_parameters_start_as_potts_and_learn() -> None:
    """Per-label kernel weights and the label-compatibility matrix (CRF-as-RNN): at Potts they give
    the two-weight CRF's marginals; every entry gets a gradient; the matrix changes the result."""
    image, unary, _ = _two_halves()
    unary = torch.cat([unary, unary[:, :1].roll(3, -1)], 1)  # three labels
    potts = DenseCRF(n_iter=3, trainable_compat=True, **PRESETS["psa"])
    learn = DenseCRF(n_iter=3, trainable_compat=True, num_labels=3, **PRESETS["psa"])
    assert learn.compat.shape == (2, 3) and learn.label_compat.shape == (3, 3)
    torch.testing.assert_close(learn(image, unary), potts(image, unary))
    learn(image, unary)[:, 0].sum().backward()
    assert learn.compat.grad is not None and torch.all(learn.compat.grad != 0)
    assert learn.label_compat.grad is not None and torch.all(learn.label_compat.grad != 0)
    with torch.no_grad():
        learn.label_compat[0, 1] = -3.0  # label 1 next to a pixel rewards label 0
    assert (learn(image, unary) - potts(image, unary)).abs().max() > 1e-3
    learn.reset_parameters()
    torch.testing.assert_close(learn(image, unary), potts(image, unary))
    with pytest.raises(WsssError, match="label_compat must be"):
        dense_crf(image, unary, label_compat=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="num_labels"):
        DenseCRF(num_labels=3)


def test_log_marginals_are_exact_where_the_marginals_underflow() -> None:
    """``log=True`` is the log of the marginals, finite and with a gradient on a pixel whose
    marginal underflows, where ``log(clamp(q, eps))`` is flat (Joint-CRF's training loss)."""
    image, unary, _ = _two_halves()
    for n_iter in (0, 3):
        torch.testing.assert_close(dense_crf(image, unary, n_iter=n_iter, log=True).exp(),
                                   dense_crf(image, unary, n_iter=n_iter))  # fmt: skip
    confident = unary.clone()
    confident[0, 0, 0, 0], confident[0, 1, 0, 0] = 60.0, 0.0  # label 0 very unlikely at (0, 0)
    confident.requires_grad_(True)
    crf = DenseCRF(n_iter=3, trainable_compat=True, num_labels=2, **PRESETS["psa"])
    log_q = crf(image, confident, log=True)
    assert torch.isfinite(log_q).all() and log_q[0, 0, 0, 0] < math.log(1e-8)
    log_q[0, 0, 0, 0].backward()
    assert confident.grad[0, 0, 0, 0] != 0 and crf.compat.grad.abs().sum() > 0
    confident.grad = None
    crf(image, confident).clamp_min(1e-8).log()[0, 0, 0, 0].backward()
    assert confident.grad.abs().sum() == 0  # the clamped form: no gradient at all


def test_gradcheck_through_mean_field() -> None:
    image, _, _ = _two_halves(h=3, w=4)
    unary = torch.rand(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    compat = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)

    def run(u: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return dense_crf(image, u, n_iter=3, gaussian_compat=c, bilateral_sxy=4, bilateral_srgb=50)

    assert torch.autograd.gradcheck(run, (unary, compat))


def test_device_is_respected_and_checked() -> None:
    image, unary, _ = _two_halves(h=6, w=8)
    assert dense_crf(image, unary, n_iter=1).device == unary.device
    with pytest.raises(WsssError, match="is on meta"):
        dense_crf(image.to("meta"), unary)
    if torch.cuda.is_available():
        out = dense_crf(image.cuda(), unary.cuda(), n_iter=2)
        assert out.is_cuda
        torch.testing.assert_close(out.cpu(), dense_crf(image, unary, n_iter=2), atol=1e-5, rtol=0)


def test_bad_inputs_raise() -> None:
    image, unary, _ = _two_halves(h=6, w=8)
    with pytest.raises(WsssError, match=r"\(B, 3, H, W\)"):
        dense_crf(image[:, :2], unary)
    with pytest.raises(WsssError, match=r"to match the image"):
        dense_crf(image, unary[..., :4])
    with pytest.raises(WsssError, match="float32 or float64"):
        dense_crf(image, unary.half())
    with pytest.raises(WsssError, match="n_iter"):
        dense_crf(image, unary, n_iter=-1)


def test_numpy_wrappers() -> None:
    image, unary, _ = _two_halves()
    img = image[0].permute(1, 2, 0).numpy()
    noisy = unary.argmin(1)[0].numpy()
    labels = crf_inference_label(img, noisy, 2)
    assert isinstance(labels, np.ndarray) and labels.shape == (24, 32)
    expected = dense_crf(
        image,
        unary_from_labels(torch.from_numpy(noisy)[None], 2, gt_prob=0.7, zero_unsure=False),
        **PRESETS["irn"],
    )
    np.testing.assert_array_equal(labels, expected.argmax(1)[0].numpy())
    batch = crf_inference_label(
        image.expand(2, -1, -1, -1), torch.from_numpy(noisy).expand(2, -1, -1), 2
    )
    assert batch.shape == (2, 24, 32)
    np.testing.assert_array_equal(batch[1].numpy(), labels)
    probs = np.full((2, 24, 32), 0.5, dtype=np.float32)
    out = crf_inference_probs(img, probs, scale_factor=2.0)
    assert out.shape == (2, 24, 32) and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.5, atol=1e-6)  # uniform stays uniform


# ---------------------------------------------------------------- pydensecrf agreement


def _voc_ids() -> list[str]:
    split = VOC / "ImageSets" / "Segmentation" / "samples.txt"
    if not split.is_file():
        pytest.skip(f"real VOC samples not found at {VOC}")
    return split.read_text().split()


def _cam_like_probs(gt: np.ndarray, seed: int, n_labels: int = 21) -> np.ndarray:
    """CAM-like probabilities: blurred GT masks plus coarse noise, softmaxed over present labels."""
    rng = np.random.default_rng(seed)
    h, w = gt.shape
    logits = np.full((n_labels, h, w), -np.inf, dtype=np.float32)
    for c in np.unique(gt[gt < n_labels]):
        blob = ndimage.gaussian_filter((gt == c).astype(np.float32), 12)
        noise = ndimage.zoom(rng.normal(size=(h // 16 + 1, w // 16 + 1)), 16, order=1)[:h, :w]
        logits[c] = 6 * blob + 0.8 * noise
    e = np.exp(logits - logits.max(0))
    return (e / e.sum(0)).astype(np.float32)


def _reference(img: np.ndarray, unary: np.ndarray, n_labels: int, params: dict) -> np.ndarray:
    dcrf = pytest.importorskip("pydensecrf.densecrf")
    h, w = img.shape[:2]
    crf = dcrf.DenseCRF2D(w, h, n_labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary.reshape(n_labels, -1), dtype=np.float32))
    crf.addPairwiseGaussian(sxy=params["gaussian_sxy"], compat=params["gaussian_compat"])
    crf.addPairwiseBilateral(
        sxy=params["bilateral_sxy"],
        srgb=params["bilateral_srgb"],
        rgbim=np.array(img, dtype=np.uint8, order="C"),
        compat=params["bilateral_compat"],
    )
    return np.array(crf.inference(10)).reshape(n_labels, h, w)


def _voc_sample(name: str, shrink: int) -> tuple[np.ndarray, np.ndarray]:
    img = read_image(VOC / "JPEGImages" / f"{name}.jpg")
    gt = read_label_png(VOC / "SegmentationClass" / f"{name}.png")
    if shrink > 1:
        size = (img.shape[1] // shrink, img.shape[0] // shrink)
        img = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
        gt = np.asarray(Image.fromarray(gt).resize(size, Image.NEAREST))
    return img, gt


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run on one torch thread: on a shared 2-core machine, OpenMP spin-waiting with 2 threads
    makes every small op wait for a time slice (up to 10x slower); results are identical."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("shrink", [2, pytest.param(1, marks=pytest.mark.slow)])
@pytest.mark.parametrize("preset", ["irn", "psa"])
@pytest.mark.usefixtures("one_thread")
def test_agrees_with_pydensecrf_on_voc(preset: str, shrink: int) -> None:
    # Measured: 100.000 % of pixels on all six images for both presets (max |dp| ~1e-6).
    pytest.importorskip("pydensecrf.densecrf")
    for i, name in enumerate(_voc_ids()):
        img, gt = _voc_sample(name, shrink)
        probs = _cam_like_probs(gt, seed=i)
        if preset == "irn":  # IRNet: hard labels, gt_prob 0.7
            labels = probs.argmax(0)
            ours = crf_inference_label(img, labels, 21)
            unary = unary_from_labels(
                torch.from_numpy(labels)[None], 21, gt_prob=0.7, zero_unsure=False
            )
        else:  # AffinityNet: probabilities
            ours = crf_inference_probs(img, probs).argmax(0)
            unary = unary_from_probs(torch.from_numpy(probs)[None])
        ref = _reference(img, unary[0].numpy(), 21, PRESETS[preset]).argmax(0)
        assert (ref != probs.argmax(0)).mean() > 0.01  # the CRF really changes the labels
        assert (ours == ref).mean() >= 0.99, name
