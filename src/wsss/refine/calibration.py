"""The CAMs' background floor: estimated from a folder's CAM values and removed before refining.

The refiners' background rules are the papers' values for IRNet-like CAMs, whose maps are ReLU
outputs divided by their maximum, so that the background sits near 0: ``crf`` puts a constant
background plane of 0.15 (IRNet's CAM evaluation), ``rw`` IRNet's 0.25 after the walk or
AffinityNet's ``(1 - max CAM)^16``, and WSGCN's seeds ``(1 - max CAM)^4`` and ``^32``. CAMs of
another method can sit on a raised floor (a softer activation, a bias, another normalisation):
with a floor of 0.25, 0.15 is below every pixel and ``(1 - max CAM)^32`` never reaches the 0.8 of
a background seed, so every pixel becomes foreground, silently.

A CAM method's calibration is a property of the method, not of one image, so the floor is
estimated once per folder: ``b`` = the :data:`FLOOR_QUANTILE` (5 %) quantile of the
maximum-over-classes CAM value of every stride-4 cell, pooled over the (first
:data:`FLOOR_FILES`, 200, sorted) CAM files. Background covers far more than 5 % of the pixels of
any usual dataset (about 70 % on VOC), so ``b`` is a background value. Every map is then
rescaled ``m -> clip((m - b) / (1 - b), 0, 1)``: ``b`` maps to 0 and 1 stays 1, and the papers'
thresholds apply to the result. For IRNet-like CAMs ``b`` is about 0 (0.003 for
:mod:`wsss.refine.gt_cams`' ``irnet`` calibration) and nothing changes. ``wsss refine
--cam-floor 0`` keeps the CAMs as given (the papers' setting).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wsss.io.cams import CamFile, read_cams

__all__ = ["FLOOR_FILES", "FLOOR_QUANTILE", "estimate_floor", "remove_floor"]

FLOOR_QUANTILE = 0.05
FLOOR_FILES = 200


def estimate_floor(
    cam_dir: str | Path,
    ids: Sequence[str],
    *,
    quantile: float = FLOOR_QUANTILE,
    max_files: int = FLOOR_FILES,
) -> float:
    """The folder's background floor ``b`` (module docstring), in ``[0, 1)``.

    Args:
        cam_dir: Folder of ``<id>.npz`` CAM files.
        ids: The folder's ids; the first ``max_files`` of them in sorted order are read (every
            process reads the same ones).
        quantile: Quantile of the pooled maximum CAM values.
        max_files: Files read at most.

    Raises:
        WsssError: an unreadable CAM file (named).
    """
    values = []
    for image_id in sorted(ids)[:max_files]:
        cam = read_cams(Path(cam_dir) / f"{image_id}.npz")
        if len(cam.keys):
            values.append(np.asarray(cam.cams, dtype=np.float32).max(0).ravel())
    if not values:
        return 0.0
    floor = float(np.quantile(np.concatenate(values), quantile))
    return min(max(floor, 0.0), 0.99)


def remove_floor(cam: CamFile, floor: float) -> CamFile:
    """``cam`` with every map rescaled ``clip((m - floor) / (1 - floor), 0, 1)`` (stride-4 and
    full-resolution maps); unchanged for ``floor = 0``."""
    if floor <= 0:
        return cam

    def rescale(maps: np.ndarray | None) -> np.ndarray | None:
        if maps is None:
            return None
        return np.clip((np.asarray(maps, dtype=np.float32) - floor) / (1 - floor), 0.0, 1.0)

    return dataclasses.replace(cam, cams=rescale(cam.cams), high_res=rescale(cam.high_res))
