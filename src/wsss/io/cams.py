"""CAM files: one ``.npz`` per image, float16 maps for the image's classes only, no pickle.

Layout of ``<id>.npz`` (all plain arrays, read with ``allow_pickle=False``):

=============  ===========  =============  ============================================
key            dtype        shape          meaning
=============  ===========  =============  ============================================
``keys``       int64        ``(C,)``       class ids of the stored maps, in label space
                                           (VOC: 1..20; background 0 is never stored)
``cams``       float16      ``(C, h, w)``  maps at stride 4: ``h = ceil(H/4)``, ``w = ceil(W/4)``
``high_res``   float16      ``(C, H, W)``  maps at full image resolution (optional)
``size``       int64        ``(2,)``       the image's ``(H, W)``
=============  ===========  =============  ============================================

Values are non-negative, each map max-normalised to 1 where it is not all zero.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsss.errors import WsssError
from wsss.io.atomic import atomic_path


@dataclass(frozen=True)
class CamFile:
    """The content of one CAM file.

    Shapes:
        keys: ``(C,)``; cams: ``(C, ceil(H/4), ceil(W/4))``; high_res: ``(C, H, W)`` or None.
    """

    keys: np.ndarray
    cams: np.ndarray
    size: tuple[int, int]
    high_res: np.ndarray | None = None


def _check(cam: CamFile, path: Path, num_classes: int | None) -> None:
    h, w = cam.size
    c = len(cam.keys)
    expected = (c, math.ceil(h / 4), math.ceil(w / 4))
    if cam.cams.shape != expected:
        raise WsssError(f"'cams' has shape {cam.cams.shape}, expected {expected}", path)
    if cam.high_res is not None and cam.high_res.shape != (c, h, w):
        raise WsssError(f"'high_res' has shape {cam.high_res.shape}, expected {(c, h, w)}", path)
    if len(np.unique(cam.keys)) != c:
        raise WsssError(f"duplicate class ids in 'keys': {cam.keys.tolist()}", path)
    if c and (cam.keys.min() < 1 or (num_classes is not None and cam.keys.max() >= num_classes)):
        top = "" if num_classes is None else f"..{num_classes - 1}"
        raise WsssError(f"class id in 'keys' {cam.keys.tolist()} out of range 1{top}", path)
    for name, arr in (("cams", cam.cams), ("high_res", cam.high_res)):
        if arr is not None and not np.isfinite(arr).all():
            raise WsssError(f"NaN or infinite values in '{name}'", path)


def write_cams(path: str | Path, cam: CamFile) -> None:
    """Validate and write a CAM file atomically (float16 maps)."""
    path = Path(path)
    cam = CamFile(
        keys=np.asarray(cam.keys, dtype=np.int64),
        cams=np.asarray(cam.cams, dtype=np.float16),
        size=(int(cam.size[0]), int(cam.size[1])),
        high_res=None if cam.high_res is None else np.asarray(cam.high_res, dtype=np.float16),
    )
    _check(cam, path, None)
    arrays = {"keys": cam.keys, "cams": cam.cams, "size": np.asarray(cam.size, dtype=np.int64)}
    if cam.high_res is not None:
        arrays["high_res"] = cam.high_res
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def read_cams(path: str | Path, *, num_classes: int | None = None) -> CamFile:
    """Read and validate a CAM file.

    Args:
        path: The ``.npz`` file.
        num_classes: If given, class ids must lie in ``[1, num_classes)``.

    Raises:
        WsssError: missing or corrupt file, missing arrays, wrong shapes, NaN values,
            class ids out of range.
    """
    path = Path(path)
    if not path.is_file():
        raise WsssError("missing CAM file", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"keys", "cams", "size"} - set(data.files)
            if missing:
                raise WsssError(f"CAM file lacks array(s) {sorted(missing)}", path)
            size = tuple(int(v) for v in data["size"])
            cam = CamFile(
                keys=data["keys"].astype(np.int64),
                cams=data["cams"],
                size=(size[0], size[1]),
                high_res=data["high_res"] if "high_res" in data.files else None,
            )
    except WsssError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise WsssError(f"corrupt CAM file ({err})", path) from None
    _check(cam, path, num_classes)
    return cam
