"""CAM files made from ground-truth masks the way real CAMs fail, to test refiners on real photos.

A refiner (``wsss refine``) has to be judged on CAMs with the faults of real ones, on real
photographs; when no trained CAM network is at hand, :func:`cams_from_mask` makes such CAMs from a
VOC-style mask. The procedure is deterministic for ``(seed, image id)`` and was fixed before any
refiner was measured on it (its constants below are not tuned to a refiner's result). For each
class of the mask and each of its objects (connected components, 8-connected):

1. **Some objects are missed**: every object but the largest of its class gets no activation
   with probability :data:`MISS` (0.3); the image keeps its class label.
2. **Peaked on a part**: a Gaussian of height 1 and width ``PART_WIDTH sqrt(area)`` (0.25) centred
   on a point drawn inside the object with probability proportional to the squared distance to its
   border (interior parts, like a face or a wheel), plus a weak body term, ``BODY`` (0.3) times
   ``min(1, d / (BODY_RAMP sqrt(area)))`` with ``d`` the distance to the border (0.15): the rim
   is weaker than the inside.
3. **Leaking into the context**: a Gaussian blob of height ``U(LEAK_HEIGHT)`` (0.3-0.6) and width
   ``LEAK_WIDTH sqrt(area)`` (0.2) centred on a background point within ``LEAK_REACH sqrt(area)``
   (0.4) of the object (water under a boat, a rider's horse's field).
4. **Blurred**: the class's map is smoothed by a Gaussian of ``BLUR`` (0.03) times ``sqrt(H W)``.
5. **Computed at stride 16**: area-averaged to ``ceil(H/16) x ceil(W/16)``, noise of std
   ``NOISE`` (0.02) added, clipped at 0, then upsampled bilinearly (``align_corners=False``) to the
   CAM file's stride-4 grid.
6. **Calibrated**: each map divided by its maximum (the CAM file format), then
   ``calibration`` = ``irnet`` keeps it (an IRNet-like ReLU CAM: the background near 0, the best
   background threshold low) and ``flat`` maps it to ``FLAT_FLOOR + (1 - FLAT_FLOOR) m^FLAT_POWER``
   (0.25, 0.5): the same ranking of pixels with a raised background, as CAMs of a softer or
   differently normalised classifier have. A refiner whose defaults suit one calibration is
   tested on the other.

Distances are measured at full resolution; the maps are built on a grid of at most
:data:`WORK_SIZE` (256) pixels on the long side (the blur and the stride-16 pooling make finer
work pointless), so a file takes a few milliseconds.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from wsss.io.cams import CamFile, write_cams
from wsss.io.palette import IGNORE_INDEX

__all__ = ["CALIBRATIONS", "cams_from_mask", "write_gt_cams"]

#: ``irnet``: max-normalised ReLU maps; ``flat``: the same with a raised background.
CALIBRATIONS: tuple[str, ...] = ("irnet", "flat")

MISS = 0.3
PART_WIDTH = 0.25
BODY = 0.3
BODY_RAMP = 0.15
LEAK_HEIGHT = (0.3, 0.6)
LEAK_WIDTH = 0.2
LEAK_REACH = 0.4
BLUR = 0.03
NOISE = 0.02
FLAT_FLOOR = 0.25
FLAT_POWER = 0.5
WORK_SIZE = 256


def _image_rng(image_id: str, seed: int) -> np.random.Generator:
    """The generator of one image: a function of ``(seed, image id)`` only."""
    return np.random.default_rng([seed, zlib.crc32(image_id.encode("utf-8"))])


def _gaussian(shape: tuple[int, int], centre: tuple[float, float], width: float) -> np.ndarray:
    ys = np.arange(shape[0], dtype=np.float64)[:, None] - centre[0]
    xs = np.arange(shape[1], dtype=np.float64)[None, :] - centre[1]
    return np.exp(-(ys * ys + xs * xs) / (2 * width * width))


def _object_response(obj: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Part peak + body + context leak of one object mask on the work grid (``scale`` = work
    pixels per image pixel)."""
    area = obj.sum() / (scale * scale)  # in image pixels
    side = math.sqrt(area) * scale  # in work pixels
    inside = ndimage.distance_transform_edt(obj)
    weights = (inside**2).ravel()
    centre = np.unravel_index(rng.choice(weights.size, p=weights / weights.sum()), obj.shape)
    out = _gaussian(obj.shape, centre, PART_WIDTH * side)
    out += BODY * np.minimum(1.0, inside / max(BODY_RAMP * side, 1e-6))
    outside = ndimage.distance_transform_edt(~obj)
    ring = np.flatnonzero(((outside > 0) & (outside <= LEAK_REACH * side)).ravel())
    if ring.size:
        spot = np.unravel_index(rng.choice(ring), obj.shape)
        out += rng.uniform(*LEAK_HEIGHT) * _gaussian(obj.shape, spot, LEAK_WIDTH * side)
    return out


def cams_from_mask(
    mask: np.ndarray, *, image_id: str, seed: int = 0, calibration: str = "irnet"
) -> CamFile:
    """CAMs of the classes of ``mask`` with the faults of real CAMs (module docstring).

    Args:
        mask: Class ids, 0 background, 255 void (ignored).
        image_id: The image's id (with ``seed``, fixes the random draws).
        seed: Seed of the procedure.
        calibration: ``irnet`` or ``flat`` (:data:`CALIBRATIONS`).

    Returns:
        A CAM file of the mask's classes: stride-4 maps only.

    Shapes:
        mask: ``(H, W)``; the maps ``(C, ceil(H/4), ceil(W/4))``.
    """
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
    mask = np.asarray(mask)
    h, w = mask.shape
    rng = _image_rng(image_id, seed)
    scale = min(1.0, WORK_SIZE / max(h, w))
    work = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = _nearest(mask, work)
    keys = [int(k) for k in np.unique(mask) if k not in (0, IGNORE_INDEX)]
    maps = []
    for key in keys:
        objects, count = ndimage.label(small == key, structure=np.ones((3, 3)))
        sizes = np.bincount(objects.ravel(), minlength=count + 1)[1:]
        response = np.zeros(work)
        for index in range(1, count + 1):
            missed = rng.random() < MISS
            if missed and index != int(np.argmax(sizes)) + 1:
                continue
            response += _object_response(objects == index, scale, rng)
        response = ndimage.gaussian_filter(response, BLUR * math.sqrt(work[0] * work[1]))
        maps.append(response)
    return _finish(maps, keys, (h, w), rng, calibration)


def _nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    rows = np.minimum(((np.arange(size[0]) + 0.5) * mask.shape[0] / size[0]).astype(int),
                      mask.shape[0] - 1)  # fmt: skip
    cols = np.minimum(((np.arange(size[1]) + 0.5) * mask.shape[1] / size[1]).astype(int),
                      mask.shape[1] - 1)  # fmt: skip
    return mask[rows[:, None], cols[None, :]]


def _finish(
    maps: list[np.ndarray], keys: list[int], size: tuple[int, int], rng: np.random.Generator,
    calibration: str,
) -> CamFile:  # fmt: skip
    """Stride 16, noise, stride 4, max-normalised, calibrated."""
    h, w = size
    grid = (math.ceil(h / 4), math.ceil(w / 4))
    if not maps:
        return CamFile(keys=np.zeros(0, np.int64), cams=np.zeros((0, *grid), np.float32), size=size)
    work = torch.from_numpy(np.stack(maps)).float()[None]
    coarse = F.interpolate(work, size=(math.ceil(h / 16), math.ceil(w / 16)), mode="area")
    noise = torch.from_numpy(rng.normal(0.0, NOISE, coarse.shape)).float()
    coarse = (coarse / coarse.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12) + noise).clamp_min(0)
    cams = F.interpolate(coarse, size=grid, mode="bilinear", align_corners=False)[0]
    cams = cams / cams.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    if calibration == "flat":
        cams = FLAT_FLOOR + (1 - FLAT_FLOOR) * cams.pow(FLAT_POWER)
    return CamFile(keys=np.asarray(keys, np.int64), cams=cams.numpy(), size=size)


def write_gt_cams(
    masks: dict[str, np.ndarray], out: str | Path, *, seed: int = 0, calibration: str = "irnet"
) -> list[Path]:
    """Write ``<out>/<id>.npz`` for each ``{id: mask}`` (atomic); returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for image_id, mask in masks.items():
        path = out / f"{image_id}.npz"
        write_cams(path, cams_from_mask(mask, image_id=image_id, seed=seed,
                                        calibration=calibration))  # fmt: skip
        paths.append(path)
    return paths
