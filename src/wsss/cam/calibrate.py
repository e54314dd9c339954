"""CAM calibration: a power that gives another classifier's CAMs the scale the papers' thresholds
were chosen for.

The seed and propagation thresholds of the papers (SPEC sections 2-3: IRNet's ``conf_fg`` 0.30,
``conf_bg`` 0.05 and random-walk background 0.25; WSGCN's and AffinityNet's ``(1 - max CAM)^alpha``)
were set by their authors for ResNet-50 CAMs on VOC, whose best background threshold is IRNet's
CAM evaluation score 0.15 (SPEC section 0). A classifier whose max-normalised CAMs are spread
wider (the demo's EfficientNet-Lite0 on the shipped benchmark is best at 0.70) meets those
thresholds in another place of its value range: its IRNet seeds label half the background as
foreground.

The calibration keeps every threshold as printed and maps the CAM values instead, by the
monotone power

    c' = c ** gamma,   gamma = ln(0.15) / ln(t),

where ``t`` is the CAM's own best background threshold: ``t`` goes to 0.15, 0 and 1 stay
where they are, each map stays max-normalised to 1 and the argmax over classes does not change,
so the CAM's best mIoU is unchanged (only the threshold that gives it moves to 0.15). ``t`` is
measured on the ground truth of the training images (the way IRNet's authors chose 0.15 on VOC
train) or given by the user.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text
from wsss.io.cams import CamFile, read_cams, write_cams

__all__ = [
    "RECORD",
    "REFERENCE_THRESHOLD",
    "calibrate_cams",
    "calibration_exponent",
    "power_cams",
    "prepare_calibrated_folder",
]

#: The CAM background score the papers' thresholds belong to (IRNet's CAM evaluation, SPEC 0).
REFERENCE_THRESHOLD = 0.15

#: Written beside the calibrated CAM files: the exponent, the threshold it maps, the source.
RECORD = "calibration.json"


def calibration_exponent(threshold: float, reference: float = REFERENCE_THRESHOLD) -> float:
    """``gamma = ln(reference) / ln(threshold)``: the power that maps ``threshold`` to ``reference``.

    Raises:
        WsssError: ``threshold`` or ``reference`` is not strictly between 0 and 1.
    """
    for name, value in (("threshold", threshold), ("reference", reference)):
        if not 0.0 < float(value) < 1.0:
            raise WsssError(f"CAM calibration: the {name} must lie strictly between 0 and 1, "
                            f"got {value}")  # fmt: skip
    return math.log(reference) / math.log(threshold)


def threshold_from_sweep(scores: dict[str, Any], split: str) -> tuple[float, str]:
    """The threshold to calibrate by from a CAM sweep (:func:`wsss.metrics.evaluate.evaluate_cams`)
    and its source. A best threshold of 0 (CAMs best as all foreground) or at the top end is
    clamped to the sweep's open range, and the source says so.

    Returns:
        ``(threshold, source)``.
    """
    best = float(scores["best_threshold"])
    source = f"ground truth of {split}"
    swept = sorted(float(p["threshold"]) for p in scores["curve"] if 0 < p["threshold"] < 1)
    if not swept:
        raise WsssError("CAM calibration: the sweep holds no threshold strictly between 0 and 1")
    clamped = min(max(best, swept[0]), swept[-1])
    if clamped != best:
        source += f", best {best:.2f} clamped to {clamped:.2f}"
    return clamped, source


def power_cams(cam: CamFile, gamma: float) -> CamFile:
    """The CAM file with every map raised to ``gamma`` (computed in float32).

    Shapes:
        as ``cam``: cams ``(C, ceil(H/4), ceil(W/4))``, high_res ``(C, H, W)`` or None.
    """
    if not gamma > 0:
        raise WsssError(f"CAM calibration: the exponent must be positive, got {gamma}")

    def power(maps: np.ndarray) -> np.ndarray:
        return np.power(np.clip(maps.astype(np.float32), 0.0, None), np.float32(gamma))

    high = None if cam.high_res is None else power(cam.high_res)
    return CamFile(keys=cam.keys, cams=power(cam.cams), size=cam.size, high_res=high)


def prepare_calibrated_folder(dst: Path, *, threshold: float, source: str) -> dict[str, Any]:
    """Create ``dst`` and write ``dst/calibration.json`` (gamma, the mapped threshold, its source).

    A folder calibrated with another exponent is emptied first: its files are derived from the
    raw CAMs and would mix two scales. In a multi-process run only one process calls this.

    Returns:
        ``{"gamma", "threshold", "reference", "source"}``.

    Raises:
        WsssError: the threshold is not strictly between 0 and 1.
    """
    gamma = calibration_exponent(threshold)
    record = {"gamma": gamma, "threshold": float(threshold), "reference": REFERENCE_THRESHOLD,
              "source": source}  # fmt: skip
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    path = dst / RECORD
    if path.is_file():
        previous = json.loads(path.read_text())
        if not math.isclose(float(previous.get("gamma", -1.0)), gamma, rel_tol=1e-9):
            for stale in dst.glob("*.npz"):
                stale.unlink()
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return record


def calibrate_cams(
    src: Path, dst: Path, ids: Sequence[str], gamma: float, *, progress: bool = False
) -> int:
    """Write ``dst/<id>.npz`` = ``src/<id>.npz`` ** ``gamma`` for the ``ids`` not written yet.

    Returns:
        The number of files written.

    Raises:
        WsssError: a missing or corrupt CAM file (named).
    """
    from wsss.engine import pending
    from wsss.engine.progress import track

    todo = pending(list(ids), lambda i: Path(dst) / f"{i}.npz")
    for image_id in track(todo, description="CAM calibration", enabled=progress):
        cam = read_cams(Path(src) / f"{image_id}.npz")
        write_cams(Path(dst) / f"{image_id}.npz", power_cams(cam, gamma))
    return len(todo)
