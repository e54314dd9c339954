"""WSGCN partial pseudo labels at stride 4 (SPEC section 2).

Pan et al. (ICASSP 2021, sec. 3.1) train the per-image GCN on partial labels ``P`` of the CAMs'
size ``ceil(H/4) x ceil(W/4)``, split into foreground, background and unlabelled nodes (their
eqs. 3-5), made "following [3, 10]" (AffinityNet, RRM); the paper gives no further detail. The
default rule (``variant="spec"``) is the SPEC's summary, with CAMs ``M_1..M_K``:

1. background scores ``B_a = (1 - max_k M_k)^a`` (AffinityNet) for ``a = fg_alpha`` (4) and
   ``a = bg_alpha`` (32);
2. ``P_a = CRF([B_a, M_1..M_K] / sum)`` with :data:`wsss.crf.PRESETS` ``wsgcn_seed`` (Gaussian
   sxy 4 compat 3, bilateral sxy 20 srgb 3 compat 10, 10 iterations) on the downscaled image;
3. class ``k``: inside ``{argmax P_4 = k}``, of the pixels with ``M_k > min_score`` (0.1) keep the
   ``round(top * n)`` (30 %) with the largest ``M_k``; pixels tied with the last one kept are kept
   too (the rule depends only on values, never on pixel order);
4. background: ``P_32[0] > bg_threshold`` (0.8);
5. ``k`` where only class ``k`` claims a pixel, 0 where only the background does, 255 elsewhere
   (also where both do).

``variant="code"`` follows the authors' code (``compute_seg_label`` and the vote in
``make_dataset.py`` of ``Xavier-Pan/WSGCN``), which differs in five ways: the class regions of
step 3 are the argmax of the *unrefined* ``[B_32, M]`` (for classes present in ``argmax P_4``);
its cut is the ascending-sorted value at index ``int(n (1 - top))`` and only values strictly above
it are kept (29 of 100 distinct values for 30 %); background needs the unrefined ``B_32 > 0.8``
inside that argmax's background region *and* ``argmax P_32 = 0`` (and then wins over a class
instead of making the pixel 255); pixels where
``max([P_32[0], P_4[1:]]) < 0.8`` or whose label differs from ``argmax([P_32[0], P_4[1:]])`` become
255; and the CRF gets the scores unnormalised (the same up to the unary's 1e-5 clip, since
normalising only adds a per-pixel constant to the unary).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from wsss.crf import PRESETS, dense_crf, unary_from_probs
from wsss.errors import WsssError
from wsss.io.cams import CamFile
from wsss.io.palette import IGNORE_INDEX
from wsss.seeds.checks import check_seed_inputs, keys_lookup
from wsss.seeds.resize import downscale_image

__all__ = [
    "VARIANTS",
    "WsgcnSeeds",
    "background_score",
    "combine_confident",
    "refine_scores",
    "top_fraction_mask",
    "wsgcn_seeds",
]

Variant = Literal["spec", "code"]
#: ``spec``: the SPEC's rule (default); ``code``: the authors' code (see the module docstring).
VARIANTS: tuple[str, ...] = ("spec", "code")


def background_score(cams: Tensor, alpha: float) -> Tensor:
    """AffinityNet's background score ``(1 - max_k M_k)^alpha`` (1 everywhere when ``K = 0``).

    Shapes:
        cams: ``(K, h, w)``; output ``(h, w)``.
    """
    if cams.shape[0] == 0:
        return cams.new_ones(cams.shape[1:])
    return (1.0 - cams.amax(0)).clamp(min=0.0) ** alpha


def refine_scores(image: Tensor, scores: Tensor, *, normalize: bool = True) -> Tensor:
    """Dense CRF (``wsgcn_seed`` preset, 10 iterations) of ``[background, classes]`` scores.

    Args:
        image: RGB image at the scores' size, uint8 or float in 0-255, on their device.
        scores: Non-negative scores; the unary is ``-log(clip(scores, 1e-5))`` after dividing by
            their per-pixel sum when ``normalize``.
        normalize: Turn the scores into probabilities first.

    Returns:
        The CRF marginals.

    Shapes:
        image: ``(1, 3, h, w)``; scores: ``(L, h, w)``; output ``(L, h, w)``.
    """
    if normalize:
        scores = scores / scores.sum(0, keepdim=True).clamp(min=1e-12)
    unary = unary_from_probs(scores[None])
    with torch.no_grad():
        return dense_crf(image, unary, n_iter=10, **PRESETS["wsgcn_seed"])[0]


def top_fraction_mask(
    values: Tensor,
    region: Tensor,
    *,
    top: float = 0.3,
    min_score: float = 0.1,
    variant: Variant = "spec",
) -> Tensor:
    """The pixels of ``region`` among the top ``top`` fraction of its values > ``min_score``.

    With ``n`` candidate values, ``spec`` keeps every value >= the ``round(top n)``-th largest
    (ties at the cut all kept, none when ``round(top n) = 0``); ``code`` keeps the values strictly
    above the ascending-sorted value at index ``int(n (1 - top))``.

    Shapes:
        values: ``(h, w)`` float; region: ``(h, w)`` bool; output ``(h, w)`` bool.
    """
    candidates = region & (values > min_score)
    chosen = values[candidates]
    n = chosen.numel()
    if variant == "spec":
        keep = math.floor(top * n + 0.5)
        if keep == 0:
            return torch.zeros_like(region)
        cut = chosen.kthvalue(n - keep + 1).values  # the keep-th largest
        return candidates & (values >= cut)
    position = int(n * (1.0 - top))
    if position >= n:
        return torch.zeros_like(region)
    return candidates & (values > chosen.sort().values[position])


def combine_confident(fg: Tensor, bg: Tensor) -> Tensor:
    """``k`` where only class ``k`` is confident, 0 where only the background is, else 255.

    Shapes:
        fg: ``(h, w)`` int64, confident class index or 0 (none); bg: ``(h, w)`` bool.
        Output ``(h, w)`` int64.
    """
    out = torch.where(fg > 0, fg, IGNORE_INDEX)
    return torch.where(bg, torch.where(fg > 0, IGNORE_INDEX, 0), out)


def _spec_index_map(image: Tensor, cams: Tensor, opts: dict) -> Tensor:
    p_fg = refine_scores(image, torch.cat([background_score(cams, opts["fg_alpha"])[None], cams]))
    p_bg = refine_scores(image, torch.cat([background_score(cams, opts["bg_alpha"])[None], cams]))
    region = p_fg.argmax(0)
    claimed = torch.zeros_like(region)
    for k in range(1, cams.shape[0] + 1):
        mask = top_fraction_mask(cams[k - 1], region == k, top=opts["top"],
                                 min_score=opts["min_score"])  # fmt: skip
        claimed[mask] = k
    return combine_confident(claimed, p_bg[0] > opts["bg_threshold"])


def _code_index_map(image: Tensor, cams: Tensor, opts: dict) -> Tensor:
    b_fg = background_score(cams, opts["fg_alpha"])[None]
    b_bg = background_score(cams, opts["bg_alpha"])[None]
    p_fg = refine_scores(image, torch.cat([b_fg, cams]), normalize=False)
    p_bg = refine_scores(image, torch.cat([b_bg, cams]), normalize=False)
    l_fg = p_fg.argmax(0)
    label = torch.where(l_fg == 0, IGNORE_INDEX, l_fg).masked_fill(p_bg.argmax(0) == 0, 0)
    raw = torch.cat([b_bg, cams]).argmax(0)
    sure = torch.zeros_like(raw, dtype=torch.bool)
    for k in torch.unique(l_fg).tolist():
        if k == 0:
            sure |= (raw == 0) & (b_bg[0] > opts["bg_threshold"])
        else:
            sure |= top_fraction_mask(cams[k - 1], raw == k, top=opts["top"],
                                      min_score=opts["min_score"], variant="code")  # fmt: skip
    mixed = torch.cat([p_bg[:1], p_fg[1:]])
    keep = sure & (mixed.amax(0) >= opts["bg_threshold"]) & (mixed.argmax(0) == label)
    return torch.where(keep, label, IGNORE_INDEX)


def wsgcn_seeds(
    image: np.ndarray,
    cams: np.ndarray,
    keys: np.ndarray,
    *,
    fg_alpha: float = 4.0,
    bg_alpha: float = 32.0,
    top: float = 0.3,
    min_score: float = 0.1,
    bg_threshold: float = 0.8,
    variant: Variant = "spec",
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """WSGCN's partial pseudo label at the CAMs' (stride-4) size (module docstring).

    Args:
        image: The RGB image already downscaled to the CAMs' size (:func:`downscale_image`).
        cams: Stride-4 CAMs of the image's classes (``cams`` of a CAM file).
        keys: Class id of each CAM (>= 1).
        fg_alpha: Background exponent of the foreground-confident map (4).
        bg_alpha: Background exponent of the background-confident map (32).
        top: Fraction of each class's CAM values (> ``min_score``) kept as confident (0.3).
        min_score: CAM values at or below it are never confident (0.1).
        bg_threshold: Refined background probability above which background is confident (0.8).
        variant: ``spec`` (default) or ``code`` (the authors' code).
        device: Where the CRFs run.

    Returns:
        uint8 label map: class ids, 0 = background, 255 = unlabelled.

    Shapes:
        image: ``(h, w, 3)`` uint8; cams: ``(K, h, w)``; keys: ``(K,)``; output ``(h, w)``.
    """
    keys = np.asarray(keys, dtype=np.int64)
    check_seed_inputs(image, np.asarray(cams), keys)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if len(keys) == 0:
        return np.zeros(image.shape[:2], dtype=np.uint8)
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(device)
    maps = torch.as_tensor(np.asarray(cams, dtype=np.float32), device=device)
    opts = {"fg_alpha": fg_alpha, "bg_alpha": bg_alpha, "top": top, "min_score": min_score,
            "bg_threshold": bg_threshold}  # fmt: skip
    build = _spec_index_map if variant == "spec" else _code_index_map
    return keys_lookup(build(img, maps, opts).cpu().numpy(), keys)


@dataclass(frozen=True, kw_only=True)
class WsgcnSeeds:
    """WSGCN's seed scheme at stride 4 (the arguments of :func:`wsgcn_seeds`).

    Raises:
        WsssError: ``0 < fg_alpha <= bg_alpha``, ``0 < top <= 1``, ``0 <= min_score < 1``,
            ``0 <= bg_threshold < 1`` or a known ``variant`` does not hold.
    """

    name: ClassVar[str] = "wsgcn"
    #: Seeds are made from the stride-4 maps, at the CAMs' size.
    full_resolution: ClassVar[bool] = False

    fg_alpha: float = 4.0
    bg_alpha: float = 32.0
    top: float = 0.3
    min_score: float = 0.1
    bg_threshold: float = 0.8
    variant: Variant = "spec"

    def __post_init__(self) -> None:
        checks = {
            "0 < fg_alpha <= bg_alpha": 0 < self.fg_alpha <= self.bg_alpha,
            "0 < top <= 1": 0 < self.top <= 1,
            "0 <= min_score < 1": 0 <= self.min_score < 1,
            "0 <= bg_threshold < 1": 0 <= self.bg_threshold < 1,
            f"variant in {VARIANTS}": self.variant in VARIANTS,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise WsssError(f"WSGCN seed options need {', '.join(failed)}; got {self}")

    def __call__(
        self, image: np.ndarray, cam: CamFile, *, device: str | torch.device = "cpu"
    ) -> np.ndarray:
        """The ``(ceil(H/4), ceil(W/4))`` uint8 seed of an ``(H, W, 3)`` image from ``cam.cams``."""
        small = downscale_image(image, tuple(cam.cams.shape[1:]))  # type: ignore[arg-type]
        return wsgcn_seeds(small, cam.cams, cam.keys, device=device, **dataclasses.asdict(self))
