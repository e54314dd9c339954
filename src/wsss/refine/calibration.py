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

Removing the floor is not enough for the dense CRF's constant background plane: CAMs whose
foreground values are compressed or stretched (a square root, a softer activation) need another
plane than 0.15 even with their floor at 0. On the six VOC photos with CAMs made from the ground
truth (:mod:`wsss.refine.gt_cams`), the ``flat`` calibration's best plane is about 0.30 and 0.15
loses 5.8 points, while 0.15 is the best of the ``irnet`` calibration. ``wsss refine --method crf
--bg-threshold auto`` (the default) therefore takes the plane from the folder's CAM values:
:func:`estimate_bg_threshold`, the :data:`BG_QUANTILE` (median) of the same pooled
maximum-over-classes values after the floor's removal. A plane at the median lets the CRF start
from a label map with about half of the cells background, and the pairwise terms move the
boundary to the image's edges; the rule assumes that a folder's images are neither almost all
background nor almost all object, which holds for VOC (about 70 % background) and is what the
background-share warning of :func:`wsss.refine.infer.background_warnings` checks. It holds
on both calibrations of :mod:`wsss.refine.gt_cams` but not on real ImageNet Lite0 CAMs, whose
best plane lies below their median (10.8 points lost there; 0.15 loses 7.5). Measured figures and
the alternatives that failed (Otsu's threshold, the mean, other quantiles): ``docs/crf.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wsss.io.cams import CamFile, read_cams

__all__ = ["BG_QUANTILE", "FLOOR_FILES", "FLOOR_QUANTILE", "estimate_bg_threshold",
           "estimate_floor", "max_cam_values", "remove_floor"]  # fmt: skip

FLOOR_QUANTILE = 0.05
FLOOR_FILES = 200
BG_QUANTILE = 0.5


def max_cam_values(cam_dir: str | Path, ids: Sequence[str], max_files: int = FLOOR_FILES
                   ) -> np.ndarray:  # fmt: skip
    """The maximum-over-classes CAM value of every stride-4 cell of the first ``max_files``
    (sorted) CAM files, pooled (an empty array when no file has a class).

    Raises:
        WsssError: an unreadable CAM file (named).
    """
    values = []
    for image_id in sorted(ids)[:max_files]:
        cam = read_cams(Path(cam_dir) / f"{image_id}.npz")
        if len(cam.keys):
            values.append(np.asarray(cam.cams, dtype=np.float32).max(0).ravel())
    return np.concatenate(values) if values else np.zeros(0, np.float32)


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
    values = max_cam_values(cam_dir, ids, max_files)
    if not values.size:
        return 0.0
    return min(max(float(np.quantile(values, quantile)), 0.0), 0.99)


def estimate_bg_threshold(
    cam_dir: str | Path,
    ids: Sequence[str],
    floor: float,
    *,
    quantile: float = BG_QUANTILE,
    max_files: int = FLOOR_FILES,
) -> float:
    """The dense CRF's background plane for a folder (module docstring), in ``[0.01, 0.99]``:
    the ``quantile`` (0.5: the median) of the pooled maximum CAM values of the first
    ``max_files`` sorted ``ids`` (as :func:`estimate_floor`) after :func:`remove_floor` with
    ``floor`` (:func:`estimate_floor`'s or a given one); 0.15 when no file has a class.

    Raises:
        WsssError: an unreadable CAM file (named).
    """
    values = max_cam_values(cam_dir, ids, max_files)
    if not values.size:
        return 0.15
    values = _rescale(values, floor) if floor > 0 else values
    return min(max(float(np.quantile(values, quantile)), 0.01), 0.99)


def remove_floor(cam: CamFile, floor: float) -> CamFile:
    """``cam`` with every map rescaled ``clip((m - floor) / (1 - floor), 0, 1)`` (stride-4 and
    full-resolution maps); unchanged for ``floor = 0``."""
    if floor <= 0:
        return cam

    def rescale(maps: np.ndarray | None) -> np.ndarray | None:
        return None if maps is None else _rescale(np.asarray(maps, dtype=np.float32), floor)

    return dataclasses.replace(cam, cams=rescale(cam.cams), high_res=rescale(cam.high_res))


def _rescale(values: np.ndarray, floor: float) -> np.ndarray:
    return np.clip((values - floor) / (1 - floor), 0.0, 1.0)
