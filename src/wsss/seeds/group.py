"""Group-WSSS pseudo labels: the CAMs' argmax against a background plane, conflicts unlabelled.

SPEC section 2 (Li et al., AAAI 2021, "Pseudo Ground-Truth Generation"; the ``gen_labels.py``
step of their code). At full resolution, with the image's CAMs ``M_1..M_K`` and a background
plane ``B``::

    B     = 1 - S                        with a saliency map S in [0, 1] (the paper)
    B     = bg_score                     without saliency (a constant CAM background threshold)
    label = argmax_k [B, M_1, ..., M_K]  (ties go to the background)
    label = 255   where more than one of the planes [B, M_1..M_K] exceeds ``conflict`` (0.9)

The conflict count includes the background plane, as the authors' code does (with saliency a
pixel where ``1 - S`` and a CAM both exceed 0.9 is unlabelled; with a constant background
below 0.9 only the classes can conflict). This is the ``spec`` variant. ``variant="code"`` adds
the two further rules of the authors' code: each CAM is min-max normalised first; a background
pixel is unlabelled where the saliency is at least 32 / 255 or any CAM exceeds 0.8 (uncertain
background); and an image whose labelled foreground covers less than 1 % of it is unlabelled
entirely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from wsss.errors import WsssError
from wsss.io.cams import CamFile
from wsss.io.palette import IGNORE_INDEX
from wsss.seeds.checks import check_seed_inputs, keys_lookup

__all__ = ["GROUP_VARIANTS", "GroupSeeds", "group_seeds"]

#: ``spec``: SPEC section 2's rule; ``code``: with the authors' code's extra rules.
GROUP_VARIANTS: tuple[str, ...] = ("spec", "code")
#: The authors' code: saliency at or above 32 / 255, or a CAM above 0.8, is not sure background.
_CODE_SALIENT = 32 / 255
_CODE_CAM = 0.8
_CODE_MIN_FOREGROUND = 0.01


def group_seeds(
    cams: np.ndarray, keys: np.ndarray, *, saliency: np.ndarray | None = None,
    bg_score: float = 0.25, conflict: float = 0.9, variant: str = "spec",
) -> np.ndarray:  # fmt: skip
    """The Group-WSSS pseudo label of one image (module notes).

    Args:
        cams: Full-resolution CAMs of the image's classes (max-normalised, ``high_res``).
        keys: Class id of each CAM (>= 1).
        saliency: Saliency map in [0, 1]; the background plane is ``1 - saliency``. None: the
            constant ``bg_score``.
        bg_score: Background plane without saliency.
        conflict: A pixel where more than one plane exceeds it is unlabelled (0.9).
        variant: ``spec`` or ``code`` (module notes).

    Returns:
        uint8 label map: class ids, 0 = background, 255 = unlabelled.

    Shapes:
        cams: ``(K, H, W)``; keys: ``(K,)``; saliency: ``(H, W)``; output ``(H, W)``.

    Example:
        >>> cams = np.array([[[0.95, 0.95, 0.1]], [[0.95, 0.2, 0.1]]], np.float32)
        >>> group_seeds(cams, np.array([3, 7])).tolist()  # both > 0.9, class 3, background
        [[255, 3, 0]]
    """
    cams = np.asarray(cams, dtype=np.float32)
    keys = np.asarray(keys, dtype=np.int64)
    if variant not in GROUP_VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(GROUP_VARIANTS)}, got {variant!r}")
    size = cams.shape[1:] if cams.ndim == 3 else None
    if saliency is not None and (saliency.ndim != 2 or saliency.shape != size):
        raise ValueError(f"expected a saliency map of shape {size}, got {saliency.shape}")
    if variant == "code" and len(keys):
        low = cams.reshape(len(keys), -1).min(1)[:, None, None]
        high = cams.reshape(len(keys), -1).max(1)[:, None, None]
        cams = (cams - low) / (high - low + 1e-8)
    if saliency is None:
        background = np.full(cams.shape[1:], bg_score, np.float32)
    else:
        background = 1 - np.asarray(saliency, dtype=np.float32)
    planes = np.concatenate([background[None], cams])
    index = planes.argmax(0)  # the first maximum: ties go to the background plane
    index[(planes > conflict).sum(0) > 1] = IGNORE_INDEX
    if variant == "code":
        unsure = (cams > _CODE_CAM).any(0)
        if saliency is not None:
            unsure |= saliency >= _CODE_SALIENT
        index[(index == 0) & unsure] = IGNORE_INDEX
        labelled = ((index > 0) & (index != IGNORE_INDEX)).mean()
        if labelled < _CODE_MIN_FOREGROUND:
            index[:] = IGNORE_INDEX
    return keys_lookup(index, keys)


@dataclass(frozen=True, kw_only=True)
class GroupSeeds:
    """Group-WSSS's pseudo-label rule at full resolution (needs the CAM files' ``high_res``).

    Saliency maps, when used, come from ``wsss seeds --saliency DIR`` (``<id>.png``); the CAM
    files must then be plain CAMs (``wsss cam --model group`` without ``--saliency``, which
    would fold the saliency into them a second time).

    Args:
        bg_score: Constant background plane without saliency (0.25).
        conflict: Several planes above it: unlabelled (0.9).
        variant: ``spec`` (SPEC section 2) or ``code`` (with the authors' code's extra rules).

    Raises:
        WsssError: values out of range or an unknown variant.
    """

    name: ClassVar[str] = "group"
    #: Seeds are made from the full-resolution maps, at the image size.
    full_resolution: ClassVar[bool] = True
    #: The background may come from a saliency map (``make_seeds(..., saliency=...)``).
    uses_saliency: ClassVar[bool] = True

    bg_score: float = 0.25
    conflict: float = 0.9
    variant: str = "spec"

    def __post_init__(self) -> None:
        if not 0.0 <= self.bg_score <= 1.0 or not 0.0 < self.conflict <= 1.0:
            raise WsssError(f"group seeds need 0 <= bg_score <= 1 and 0 < conflict <= 1, got "
                            f"bg_score={self.bg_score}, conflict={self.conflict}")  # fmt: skip
        if self.variant not in GROUP_VARIANTS:
            raise WsssError(f"unknown group seeds variant {self.variant!r}; valid: "
                            f"{', '.join(GROUP_VARIANTS)}")  # fmt: skip

    def __call__(
        self, image: np.ndarray, cam: CamFile, *, device: str | torch.device = "cpu",
        saliency: np.ndarray | None = None,
    ) -> np.ndarray:  # fmt: skip
        """The ``(H, W)`` uint8 seed of ``image`` (``(H, W, 3)``) from ``cam.high_res`` (and the
        ``(H, W)`` saliency map in [0, 1], if given). ``device`` is unused (no CRF)."""
        if cam.high_res is None:
            raise ValueError("group seeds need full-resolution CAMs (CamFile.high_res)")
        maps = np.asarray(cam.high_res, dtype=np.float32)
        check_seed_inputs(image, maps, np.asarray(cam.keys, dtype=np.int64))
        return group_seeds(maps, cam.keys, saliency=saliency, bg_score=self.bg_score,
                           conflict=self.conflict, variant=self.variant)  # fmt: skip
