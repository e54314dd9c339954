"""Saliency maps as the background of group CAMs (Group-WSSS, "Pseudo Ground-Truth Generation").

The paper takes background seeds from an off-the-shelf saliency model: background score
``1 - S`` next to the CAMs, labels ``argmax([1 - S, CAM_1, ..., CAM_K])``. CAM files hold no
background map, so :func:`saliency_cams` folds ``S`` into the class maps as ``(CAM_k + S) / 2``:
the class order is unchanged and ``(CAM_k + S) / 2 > 0.5`` iff ``CAM_k > 1 - S``, so the
background threshold 0.5 gives exactly the paper's labelling (a threshold ``t`` adds ``2t - 1``
to the background score).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from wsss.errors import WsssError

__all__ = ["read_saliency", "saliency_cams"]


def read_saliency(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A saliency map as float32 in [0, 1] (grey levels / 255; colour images are converted).

    Raises:
        WsssError: missing or unreadable file, or not of the image's ``(H, W)``.
    """
    path = Path(path)
    if not path.is_file():
        raise WsssError("missing saliency map", path, hint="one <id>.png per image of the split")
    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise WsssError(f"unreadable saliency map ({err})", path) from None
    if grey.shape != tuple(size):
        raise WsssError(f"saliency map is {grey.shape} (HxW), the image {tuple(size)}", path)
    return grey


def saliency_cams(cams: Tensor, saliency: Tensor) -> Tensor:
    """``(CAM_k + S) / 2``: CAMs whose threshold 0.5 means background ``1 - S`` (module notes).

    Shapes:
        cams: ``(C, h, w)`` max-normalised; saliency: ``(H, W)`` in [0, 1], resized
        (bilinear, antialiased) to ``(h, w)``. Returns ``(C, h, w)``.
    """
    size = tuple(cams.shape[-2:])
    s = saliency[None, None].to(cams)
    if tuple(s.shape[-2:]) != size:
        s = F.interpolate(s, size=size, mode="bilinear", align_corners=False, antialias=True)
    return (cams + s[0].clamp(0, 1)) / 2
