"""IRNet seeds: confident foreground and background from two CAM thresholds and a dense CRF.

SPEC section 2 (Ahn, Cho & Kwak, CVPR 2019, "inter-pixel relation mining from CAMs"; the
``cam_to_ir_label`` step of their code). At full resolution, with the image's CAMs ``M_1..M_K``:

    fg = CRF(argmax_k [conf_fg, M_1, ..., M_K])        (foreground-confident map)
    bg = CRF(argmax_k [conf_bg, M_1, ..., M_K])        (background-confident map)

where CRF is the hard-label dense CRF of :data:`wsss.crf.PRESETS` ``irn`` (gt_prob 0.7, Gaussian
sxy 3 compat 3, bilateral sxy 50 srgb 5 compat 10, 10 iterations). The seed is fg's class where fg
is foreground, 0 where both maps say background, and 255 (unlabelled) where only the lower
threshold finds an object. Ties in the argmax go to the background plane.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from wsss.crf import crf_inference_label
from wsss.errors import WsssError
from wsss.io.cams import CamFile
from wsss.io.palette import IGNORE_INDEX
from wsss.seeds.checks import check_seed_inputs, keys_lookup

__all__ = ["IrnetSeeds", "confident_labels", "irnet_seeds", "merge_confident"]


def confident_labels(image: Tensor, cams: Tensor, threshold: float | Sequence[float]) -> Tensor:
    """``CRF(argmax([threshold, cams]))``: 0 = background, ``k`` = the ``k``-th CAM.

    Args:
        image: RGB image, uint8 (or float in 0-255), on the CAMs' device.
        cams: The image's CAMs.
        threshold: Constant score of the background plane, or several: one map each, their
            CRFs sharing the image's lattice (each equal to its own call).

    Returns:
        int64 index map in ``[0, K]`` on the CAMs' device (several thresholds: stacked).

    Shapes:
        image: ``(1, 3, H, W)``; cams: ``(K, H, W)`` with ``K >= 1``; output ``(H, W)``, or
        ``(T, H, W)`` for ``T`` thresholds.
    """
    several = not isinstance(threshold, int | float)
    values = [float(t) for t in threshold] if several else [float(threshold)]  # type: ignore[union-attr]
    labels = torch.stack([
        torch.cat([cams.new_full((1, *cams.shape[1:]), t), cams]).argmax(0)  # ties: background
        for t in values
    ])  # fmt: skip
    refined = crf_inference_label(image, labels, cams.shape[0] + 1)
    assert isinstance(refined, Tensor)
    return refined if several else refined[0]


def merge_confident(fg: Tensor, bg: Tensor) -> Tensor:
    """IRNet's rule: ``fg`` where it is foreground, 0 where both are background, else 255.

    Shapes:
        fg, bg: ``(H, W)`` integer index maps (0 = background). Output ``(H, W)`` int64.
    """
    out = torch.where(fg == 0, IGNORE_INDEX, fg.to(torch.int64))
    return out.masked_fill((fg == 0) & (bg == 0), 0)


def irnet_seeds(
    image: np.ndarray,
    cams: np.ndarray,
    keys: np.ndarray,
    *,
    conf_fg: float = 0.30,
    conf_bg: float = 0.05,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """IRNet's partial pseudo label of one image (SPEC section 2; module docstring).

    Args:
        image: The RGB image.
        cams: Full-resolution CAMs of the image's classes (``high_res`` of a CAM file).
        keys: Class id of each CAM (>= 1).
        conf_fg: Background score of the foreground-confident map (IRNet 0.30).
        conf_bg: Background score of the background-confident map (IRNet 0.05).
        device: Where the CRFs run.

    Returns:
        uint8 label map: class ids, 0 = background, 255 = unlabelled.

    Shapes:
        image: ``(H, W, 3)`` uint8; cams: ``(K, H, W)``; keys: ``(K,)``; output ``(H, W)``.

    Example:
        >>> image = np.zeros((8, 8, 3), np.uint8)
        >>> image[2:6, 2:6] = 255  # a white square on black
        >>> cams = np.zeros((1, 8, 8), np.float32)
        >>> cams[0, 2:6, 2:6] = 1.0
        >>> seed = irnet_seeds(image, cams, np.array([3]))
        >>> int(seed[3, 3]), int(seed[0, 0])
        (3, 0)
    """
    keys = np.asarray(keys, dtype=np.int64)
    check_seed_inputs(image, np.asarray(cams), keys)
    if len(keys) == 0:
        return np.zeros(image.shape[:2], dtype=np.uint8)
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(device)
    maps = torch.as_tensor(np.asarray(cams, dtype=np.float32), device=device)
    fg, bg = confident_labels(img, maps, (conf_fg, conf_bg))  # one lattice for both CRFs
    return keys_lookup(merge_confident(fg, bg).cpu().numpy(), keys)


@dataclass(frozen=True, kw_only=True)
class IrnetSeeds:
    """IRNet's seed scheme at full resolution (needs the CAM files' ``high_res`` maps).

    Args:
        conf_fg: Background score of the foreground-confident map (IRNet 0.30).
        conf_bg: Background score of the background-confident map (IRNet 0.05), <= ``conf_fg``.

    Raises:
        WsssError: thresholds outside ``0 <= conf_bg <= conf_fg <= 1``.
    """

    name: ClassVar[str] = "irnet"
    #: Seeds are made from the full-resolution maps, at the image size.
    full_resolution: ClassVar[bool] = True

    conf_fg: float = 0.30
    conf_bg: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf_bg <= self.conf_fg <= 1.0:
            raise WsssError(
                f"IRNet thresholds need 0 <= conf_bg <= conf_fg <= 1, got conf_bg={self.conf_bg}, "
                f"conf_fg={self.conf_fg}"
            )

    def __call__(
        self, image: np.ndarray, cam: CamFile, *, device: str | torch.device = "cpu"
    ) -> np.ndarray:
        """The ``(H, W)`` uint8 seed of ``image`` (``(H, W, 3)``) from ``cam.high_res``."""
        if cam.high_res is None:
            raise ValueError("IRNet seeds need full-resolution CAMs (CamFile.high_res)")
        return irnet_seeds(image, cam.high_res, cam.keys, conf_fg=self.conf_fg,
                           conf_bg=self.conf_bg, device=device)  # fmt: skip
