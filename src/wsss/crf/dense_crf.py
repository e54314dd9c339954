"""Fully-connected CRF with Gaussian edge potentials (Krähenbühl & Koltun, NIPS 2011).

Mean-field inference with a Potts compatibility and two kernels, as ``pydensecrf``'s
``DenseCRF2D`` with ``addPairwiseGaussian`` + ``addPairwiseBilateral``:

    Q_0 = softmax(-U),   Q_{t+1} = softmax(-U + w_g K_g Q_t + w_b K_b Q_t)

where ``K_g`` (smoothness, features ``(x, y) / gaussian_sxy``) and ``K_b`` (appearance, features
``(x / bilateral_sxy, y / bilateral_sxy, rgb / bilateral_srgb)``) are permutohedral-lattice Gaussian
filters with symmetric normalisation (paper eq. 4 and 6; the Potts penalty ``w [l_i != l_j]`` is
written as a reward ``w Q_i(l)`` that differs from it by a per-pixel constant). Both lattices are
built once per call and reused in every iteration. The output is differentiable in the unary (and
in tensor-valued compatibility weights).

CRF-as-RNN's learnable form (Zheng et al., ICCV 2015) is available too: kernel weights per label
(``w_g``, ``w_b`` of shape ``(L,)``) and a label-compatibility matrix ``mu`` (``label_compat``):

    Q_{t+1} = softmax(-U - (w_g * K_g Q_t + w_b * K_b Q_t) mu^T)

With ``mu = 1 - I`` (Potts) and scalar weights it is the update above (up to a per-pixel constant).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from wsss.crf.lattice import GaussianKernel
from wsss.crf.unary import unary_from_labels, unary_from_probs
from wsss.errors import WsssError

__all__ = [
    "PRESETS",
    "DenseCRF",
    "crf_inference_label",
    "crf_inference_probs",
    "dense_crf",
]

#: Kernel parameters of the published systems (SPEC sections 2 and 4), for ``dense_crf(**p)``.
PRESETS: dict[str, dict[str, float]] = {
    # IRNet seeds (crf_inference_label): hard labels, gt_prob 0.7.
    "irn": {"gaussian_sxy": 3, "gaussian_compat": 3, "bilateral_sxy": 50, "bilateral_srgb": 5,
            "bilateral_compat": 10},
    # AffinityNet / PSA (crf_inference): probabilities.
    "psa": {"gaussian_sxy": 3, "gaussian_compat": 3, "bilateral_sxy": 80, "bilateral_srgb": 13,
            "bilateral_compat": 10},
    # WSGCN seeds at stride 4.
    "wsgcn_seed": {"gaussian_sxy": 4, "gaussian_compat": 3, "bilateral_sxy": 20,
                   "bilateral_srgb": 3, "bilateral_compat": 10},
    # WSGCN final refinement of the upsampled GCN output.
    "wsgcn": {"gaussian_sxy": 3, "gaussian_compat": 3, "bilateral_sxy": 50, "bilateral_srgb": 5,
              "bilateral_compat": 3},
}  # fmt: skip


def _check_inputs(image: Tensor, unary: Tensor, n_iter: int) -> None:
    if image.ndim != 4 or image.shape[1] != 3:
        raise WsssError(
            f"dense_crf expects an RGB image of shape (B, 3, H, W), got {tuple(image.shape)}"
        )
    if unary.ndim != 4 or unary.shape[0] != image.shape[0] or unary.shape[2:] != image.shape[2:]:
        raise WsssError(
            f"dense_crf expects a unary of shape (B, L, H, W) = ({image.shape[0]}, L, "
            f"{image.shape[2]}, {image.shape[3]}) to match the image, got {tuple(unary.shape)}"
        )
    if unary.shape[1] < 1 or unary.shape[2] * unary.shape[3] < 1:
        raise WsssError(f"dense_crf got an empty unary of shape {tuple(unary.shape)}")
    if unary.dtype not in (torch.float32, torch.float64):
        raise WsssError(f"dense_crf expects a float32 or float64 unary, got {unary.dtype}")
    if image.device != unary.device:
        raise WsssError(f"image is on {image.device} but unary is on {unary.device}")
    if n_iter < 0:
        raise WsssError(f"n_iter must be >= 0, got {n_iter}")


def _kernels(
    image: Tensor,
    *,
    gaussian_sxy: float,
    bilateral_sxy: float,
    bilateral_srgb: float,
    weights: tuple[float, float] = (1.0, 1.0),
) -> tuple[GaussianKernel, GaussianKernel]:
    """Smoothness kernel over ``(H W)`` pixels and appearance kernel over ``(H W B)`` pixels.

    Point ``n * B + b`` of the appearance kernel is pixel ``n`` of image ``b``, so one ``(N, B, L)``
    tensor is viewed as ``(N, B L)`` by the first kernel and ``(N B, L)`` by the second.
    """
    b, _, h, w = image.shape
    dev = image.device
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=dev),
        torch.arange(w, dtype=torch.float32, device=dev),
        indexing="ij",
    )
    xy = torch.stack([xs, ys], dim=-1).reshape(h * w, 1, 2)  # pydensecrf order: x, then y
    rgb = image.detach().to(torch.float32).permute(2, 3, 0, 1).reshape(h * w, b, 3)
    pos = (xy / float(bilateral_sxy)).expand(-1, b, -1)
    bilateral = torch.cat([pos, rgb / float(bilateral_srgb)], dim=-1).reshape(h * w * b, 5)
    batch = torch.arange(b, device=dev).repeat(h * w)
    smooth = GaussianKernel(xy[:, 0] / float(gaussian_sxy), weight=weights[0])
    return smooth, GaussianKernel(bilateral, batch, weight=weights[1])


def _softmax(msg: Tensor, unary: Tensor, *, fast: bool) -> Tensor:
    """``softmax(msg - unary)`` over the last axis, where every pixel's unary has minimum 0.

    Then each pixel's largest logit lies in ``[min(msg), max(msg)]``; with ``fast`` (the caller
    guarantees ``|msg| < 60`` and no autograd) a plain in-place ``exp`` can neither overflow nor
    underflow a whole pixel. Otherwise ``log_softmax`` is used. Both are much faster than
    ``torch.softmax`` on a short last axis.
    """
    if not fast:
        return torch.log_softmax(msg - unary, dim=-1).exp()
    e = msg.sub_(unary).exp_()
    return e.div_(e.sum(-1, keepdim=True))


def _mean_field(
    unary: Tensor,
    kernels: tuple[GaussianKernel, GaussianKernel],
    compat: tuple[Tensor | None, Tensor | None],
    n_iter: int,
    label_compat: Tensor | None = None,
    log: bool = False,
    problems: int = 1,
) -> Tensor:
    """Mean-field updates on ``(N, B, L)`` unaries; returns ``(N, B, L)`` marginals (``log``:
    their logarithm, the last update's ``log_softmax``, exact where a marginal underflows).

    ``problems`` > 1 splits the ``L`` channels into that many independent CRFs of ``L / problems``
    labels each on the same image: the kernels filter every channel alike, the normalisation
    runs within each problem (several label maps of one image share one lattice).

    Float compatibilities are folded into the kernels; tensor ones (``compat``: scalars or one
    weight per label) multiply here. ``label_compat`` (``(L, L)``, a penalty ``mu(l, l')``) turns
    the weighted message ``m`` into ``-m mu^T`` (CRF-as-RNN's compatibility transform).
    """
    n, b, labels = unary.shape
    if labels % problems or (problems > 1 and label_compat is not None):
        raise ValueError(
            f"{labels} channels do not split into {problems} problems"
            + (" (label_compat needs one problem)" if label_compat is not None else "")
        )
    split = (n, b, problems, labels // problems)  # softmax within each problem's labels
    smooth, appearance = kernels
    unary = unary.view(split)
    unary = unary - unary.amin(-1, keepdim=True)  # softmax-invariant shift, see _softmax
    scale = [1.0 if c is None else float(c.detach().abs().max()) for c in compat]
    bound = smooth.peak * scale[0] + appearance.peak * scale[1]
    grad = torch.is_grad_enabled() and (
        unary.requires_grad or any(c is not None and c.requires_grad for c in compat)
    )
    fast = bound < 60.0 and not grad and label_compat is None
    if n_iter == 0 and log:
        return torch.log_softmax(-unary, dim=-1).view(n, b, labels)
    q = _softmax(torch.zeros_like(unary), unary, fast=fast).view(n, b, labels)
    for step in range(n_iter):
        msg = smooth.apply(q.view(n, b * labels)).view(n, b, labels)
        msg_b = appearance.apply(q.view(n * b, labels)).view(n, b, labels)
        if compat[0] is not None:
            msg = msg * compat[0]
        if compat[1] is not None:
            msg_b = msg_b * compat[1]
        msg = msg.add_(msg_b) if fast else msg + msg_b
        if label_compat is not None:
            msg = -(msg @ label_compat.T)
        if log and step == n_iter - 1:
            return torch.log_softmax(msg.view(split) - unary, dim=-1).view(n, b, labels)
        q = _softmax(msg.view(split), unary, fast=fast).view(n, b, labels)
    return q


def dense_crf(
    image: Tensor,
    unary: Tensor,
    *,
    n_iter: int = 10,
    gaussian_sxy: float = 3.0,
    gaussian_compat: float | Tensor = 3.0,
    bilateral_sxy: float = 80.0,
    bilateral_srgb: float = 13.0,
    bilateral_compat: float | Tensor = 10.0,
    label_compat: Tensor | None = None,
    log: bool = False,
) -> Tensor:
    """Dense-CRF marginals by mean-field inference (Krähenbühl & Koltun 2011, algorithm 1).

    Agrees with ``pydensecrf`` (``DenseCRF2D``, ``addPairwiseGaussian(sxy=gaussian_sxy,
    compat=gaussian_compat)``, ``addPairwiseBilateral(sxy=bilateral_sxy, srgb=bilateral_srgb,
    compat=bilateral_compat)``, ``inference(n_iter)``) up to float rounding. Defaults are
    AffinityNet's; see :data:`PRESETS` for the others. Runs on the inputs' device.

    Args:
        image: RGB image(s), uint8 or float in ``[0, 255]``.
        unary: Unary energy (negative log probability), float32 or float64; gradients flow back
            into it.
        n_iter: Mean-field iterations (0 returns ``softmax(-unary)``).
        gaussian_sxy: Spatial std (pixels) of the smoothness kernel.
        gaussian_compat: Potts weight of the smoothness kernel (a tensor may require grad).
        bilateral_sxy: Spatial std (pixels) of the appearance kernel.
        bilateral_srgb: Colour std (0-255 units) of the appearance kernel.
        bilateral_compat: Potts weight of the appearance kernel (a tensor may require grad).
        label_compat: None (Potts), or CRF-as-RNN's label-compatibility matrix ``mu`` (a penalty;
            ``1 - I`` is Potts); then the two weights above may also be ``(L,)`` tensors, one
            weight per label.
        log: Return the log-marginals instead: the last mean-field update's ``log_softmax``,
            finite and with gradient where a marginal underflows (a cross-entropy on
            ``log(marginals)`` clamped at some epsilon gets none from such pixels).

    Returns:
        Marginal probabilities (``log``: their logarithm), same dtype as ``unary``.

    Shapes:
        image: ``(B, 3, H, W)``; unary: ``(B, L, H, W)``; output: ``(B, L, H, W)``.

    Example:
        >>> image = torch.zeros(1, 3, 4, 6, dtype=torch.uint8)
        >>> probs = dense_crf(image, torch.rand(1, 2, 4, 6), n_iter=5)
        >>> probs.shape
        torch.Size([1, 2, 4, 6])
    """
    b, labels, h, w = unary.shape
    q = _marginals(
        image,
        unary,
        n_iter=n_iter,
        gaussian_sxy=gaussian_sxy,
        gaussian_compat=gaussian_compat,
        bilateral_sxy=bilateral_sxy,
        bilateral_srgb=bilateral_srgb,
        bilateral_compat=bilateral_compat,
        label_compat=label_compat,
        log=log,
    )
    return q.view(h, w, b, labels).permute(2, 3, 0, 1).contiguous()


def _marginals(
    image: Tensor,
    unary: Tensor,
    *,
    n_iter: int,
    gaussian_sxy: float,
    gaussian_compat: float | Tensor,
    bilateral_sxy: float,
    bilateral_srgb: float,
    bilateral_compat: float | Tensor,
    label_compat: Tensor | None = None,
    log: bool = False,
    problems: int = 1,
) -> Tensor:
    """:func:`dense_crf` in the internal pixel-major layout ``(H W, B, L)`` (``problems``: see
    :func:`_mean_field`)."""
    _check_inputs(image, unary, n_iter)
    b, labels, h, w = unary.shape
    if label_compat is not None and tuple(label_compat.shape) != (labels, labels):
        raise WsssError(f"label_compat must be ({labels}, {labels}) for {labels} labels, got "
                        f"{tuple(label_compat.shape)}")  # fmt: skip
    compat = (gaussian_compat, bilateral_compat)
    folded = tuple(1.0 if isinstance(c, Tensor) else float(c) for c in compat)
    kernels = _kernels(
        image,
        gaussian_sxy=gaussian_sxy,
        bilateral_sxy=bilateral_sxy,
        bilateral_srgb=bilateral_srgb,
        weights=folded,  # type: ignore[arg-type]
    )
    tensors = tuple(c.to(unary) if isinstance(c, Tensor) else None for c in compat)
    u = unary.permute(2, 3, 0, 1).reshape(h * w, b, labels).contiguous()
    mu = None if label_compat is None else label_compat.to(unary)
    return _mean_field(u, kernels, tensors, n_iter, mu, log, problems)  # type: ignore[arg-type]


class DenseCRF(nn.Module):
    """Module form of :func:`dense_crf` (same keyword-only parameters).

    Args:
        n_iter: Mean-field iterations.
        gaussian_sxy: Spatial std of the smoothness kernel.
        gaussian_compat: Potts weight of the smoothness kernel.
        bilateral_sxy: Spatial std of the appearance kernel.
        bilateral_srgb: Colour std of the appearance kernel.
        bilateral_compat: Potts weight of the appearance kernel.
        trainable_compat: Make the two Potts weights learnable parameters (as in a CRF trained end
            to end, e.g. ES-CRF's "Joint-CRF" baseline).
        num_labels: With ``trainable_compat``, learn CRF-as-RNN's parameters for ``L`` labels
            instead: the two kernel weights per label (``compat``, ``(2, L)``, starting at the two
            weights above) and the label-compatibility matrix (``label_compat``, ``(L, L)``,
            starting at Potts ``1 - I``). None: two Potts weights.

    Shapes:
        image: ``(B, 3, H, W)``; unary: ``(B, L, H, W)``; output: ``(B, L, H, W)``.
    """

    def __init__(
        self,
        *,
        n_iter: int = 10,
        gaussian_sxy: float = 3.0,
        gaussian_compat: float = 3.0,
        bilateral_sxy: float = 80.0,
        bilateral_srgb: float = 13.0,
        bilateral_compat: float = 10.0,
        trainable_compat: bool = False,
        num_labels: int | None = None,
    ) -> None:
        super().__init__()
        if num_labels is not None and (not trainable_compat or num_labels < 1):
            raise ValueError("num_labels needs trainable_compat and at least one label")
        self.n_iter = n_iter
        self.gaussian_sxy = gaussian_sxy
        self.bilateral_sxy = bilateral_sxy
        self.bilateral_srgb = bilateral_srgb
        self.trainable_compat = trainable_compat
        self.num_labels = num_labels
        self._init_compat = (float(gaussian_compat), float(bilateral_compat))
        compat = torch.tensor(self._init_compat)
        self.label_compat: nn.Parameter | None = None
        if num_labels is not None:
            compat = compat[:, None].repeat(1, num_labels)
            self.label_compat = nn.Parameter(1 - torch.eye(num_labels))
        if trainable_compat:
            self.compat = nn.Parameter(compat)
        else:
            self.register_buffer("compat", compat)

    def reset_parameters(self) -> None:
        """Restore the weights given at construction (and Potts label compatibility)."""
        with torch.no_grad():
            init = torch.tensor(self._init_compat)
            self.compat.copy_(
                init[:, None].expand_as(self.compat) if self.compat.ndim == 2 else init
            )
            if self.label_compat is not None:
                self.label_compat.copy_(1 - torch.eye(self.label_compat.shape[0]))

    def forward(self, image: Tensor, unary: Tensor, *, log: bool = False) -> Tensor:
        """Run mean-field inference; see :func:`dense_crf` (``log``: the log-marginals)."""
        if self.trainable_compat:
            compat: tuple[float | Tensor, float | Tensor] = (self.compat[0], self.compat[1])
        else:
            compat = (float(self.compat[0]), float(self.compat[1]))
        return dense_crf(
            image,
            unary,
            n_iter=self.n_iter,
            gaussian_sxy=self.gaussian_sxy,
            gaussian_compat=compat[0],
            bilateral_sxy=self.bilateral_sxy,
            bilateral_srgb=self.bilateral_srgb,
            bilateral_compat=compat[1],
            label_compat=self.label_compat,
            log=log,
        )

    def extra_repr(self) -> str:
        g, b = self._init_compat
        return (
            f"n_iter={self.n_iter}, gaussian_sxy={self.gaussian_sxy}, gaussian_compat={g}, "
            f"bilateral_sxy={self.bilateral_sxy}, bilateral_srgb={self.bilateral_srgb}, "
            f"bilateral_compat={b}, trainable_compat={self.trainable_compat}, "
            f"num_labels={self.num_labels}"
        )


def _image_batch(image: np.ndarray | Tensor, device: torch.device) -> Tensor:
    """``(H, W, 3)`` numpy image -> ``(1, 3, H, W)`` tensor on ``device``; tensors pass through."""
    if isinstance(image, Tensor):
        return image
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise WsssError(f"expected an (H, W, 3) RGB image, got shape {array.shape}")
    return torch.from_numpy(np.array(array)).permute(2, 0, 1).unsqueeze(0).to(device)


def crf_inference_label(
    image: np.ndarray | Tensor,
    labels: np.ndarray | Tensor,
    n_labels: int,
    *,
    t: int = 10,
    gt_prob: float = 0.7,
) -> np.ndarray | Tensor:
    """IRNet's seed CRF: refine a hard label map (``zero_unsure=False``, :data:`PRESETS` ``irn``).

    Args:
        image: ``(H, W, 3)`` uint8 numpy image, or a ``(B, 3, H, W)`` tensor.
        labels: ``(H, W)`` integer map in ``[0, n_labels)`` (numpy), or ``(B, H, W)`` tensor.
            With a single image (``B = 1``) the tensor may hold ``P`` label maps of that image,
            ``(P, H, W)``: ``P`` independent CRFs that share one lattice (IRNet's two
            confident maps), each equal to its own call.
        n_labels: Number of labels.
        t: Mean-field iterations.
        gt_prob: Confidence in the given labels.

    Returns:
        The argmax label map, int64, numpy ``(H, W)`` or tensor ``(B, H, W)`` (``(P, H, W)``)
        like the input.
    """
    as_numpy = not isinstance(labels, Tensor)
    lab = torch.from_numpy(np.array(labels)[None]) if as_numpy else labels
    img = _image_batch(image, lab.device)
    unary = unary_from_labels(lab, n_labels, gt_prob=gt_prob, zero_unsure=False)
    problems = lab.shape[0] if img.shape[0] == 1 and lab.ndim == 3 else 1
    if problems > 1:  # (P, L, H, W) -> one image with P problems of L labels
        unary = unary.reshape(1, -1, *unary.shape[2:])
    with torch.no_grad():
        q = _marginals(img, unary, n_iter=t, problems=problems, **PRESETS["irn"])  # (H W, B, PL)
    q = q.view(q.shape[0], -1, n_labels)  # (H W, B or P, L)
    out = q.argmax(-1).view(*lab.shape[1:], -1).permute(2, 0, 1)
    return out[0].cpu().numpy() if as_numpy else out


def crf_inference_probs(
    image: np.ndarray | Tensor,
    probs: np.ndarray | Tensor,
    *,
    t: int = 10,
    scale_factor: float = 1.0,
) -> np.ndarray | Tensor:
    """AffinityNet's CRF on class probabilities (:data:`PRESETS` ``psa``, clip ``1e-5``).

    Args:
        image: ``(H, W, 3)`` uint8 numpy image, or a ``(B, 3, H, W)`` tensor.
        probs: ``(L, H, W)`` probabilities (numpy), or a ``(B, L, H, W)`` tensor.
        t: Mean-field iterations.
        scale_factor: Divides both spatial stds (AffinityNet's option for downscaled images).

    Returns:
        Refined probabilities, float32 numpy ``(L, H, W)`` or tensor ``(B, L, H, W)``.
    """
    as_numpy = not isinstance(probs, Tensor)
    p = torch.from_numpy(np.array(probs, dtype=np.float32)[None]) if as_numpy else probs
    img = _image_batch(image, p.device)
    params = dict(PRESETS["psa"])
    params["gaussian_sxy"] /= scale_factor
    params["bilateral_sxy"] /= scale_factor
    unary = unary_from_probs(p)
    with torch.no_grad():
        out = dense_crf(img, unary, n_iter=t, **params)
    return out[0].cpu().numpy() if as_numpy else out
