"""Label maps from a folder of images and a folder of CAM files (``wsss refine``).

For CAMs made by any method (the CAM file format of :mod:`wsss.io.cams`): ``<cams>/<id>.npz``
with ``<images>/<id>.jpg`` (or ``.jpeg`` / ``.png``) become ``<out>/<id>.png`` VOC-palette label
maps at the image size, written atomically for this process's exact shard of the sorted ids
(``RANK`` / ``WORLD_SIZE``); existing PNGs are skipped, so a rerun resumes. The refiner's options
are saved as ``<out>/refine.json``.

Before refining, the folder's background floor is removed from the CAMs
(:mod:`wsss.refine.calibration`, ``cam_floor="auto"``), so that the refiners' background
thresholds, the papers' values for IRNet-like CAMs, hold for CAMs of another calibration;
``cam_floor=0`` keeps the CAMs as given. The dense CRF's background plane is chosen per folder
too when ``bg_threshold="auto"`` (``wsss refine``'s default,
:func:`~wsss.refine.calibration.estimate_bg_threshold`); the value used is saved in
``refine.json`` and returned. :func:`refine_folder` returns the share of pixels each
image's label map gives to the background, and :func:`background_warnings` names the images
where it is extreme.

=========  ===========================================================================
``crf``    :class:`CamCrfRefiner`: dense CRF of ``[background plane, CAMs]``
``rw``     the IRNet / AffinityNet random walk (needs ``affinity``: a train-affinity run)
``gcn``    WSGCN's per-image GCN (:class:`~wsss.gcn.GcnPropagator`); with the default graph
           ``phi`` and ``rgbxy`` features it needs no trained network
=========  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from wsss.crf import PRESETS, dense_crf, unary_from_probs
from wsss.engine import dist_info, pending, shard
from wsss.engine.progress import track
from wsss.errors import WsssError
from wsss.io.cams import CamFile
from wsss.io.images import read_image, read_label_png
from wsss.io.palette import write_label_png
from wsss.io.settings import check_saved_settings
from wsss.seeds.infer import read_cam_for_image

__all__ = ["CONFIG_FILE", "REFINERS", "CamCrfRefiner", "background_warnings", "create_refiner",
           "find_image", "refine_folder"]  # fmt: skip

#: The resolved options of the labels in a folder.
CONFIG_FILE = "refine.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


class CamCrfRefiner:
    """Dense CRF of the CAMs with a constant background plane, then argmax.

    The full-resolution maps (or the stride-4 ones upsampled bilinearly) and the plane
    ``bg_threshold`` are divided by their sum and refined by :func:`~wsss.crf.dense_crf` with
    :data:`~wsss.crf.PRESETS` ``preset`` (AffinityNet's CRF of probabilities by default).

    Args:
        bg_threshold: The background score (IRNet's CAM evaluation: 0.15, the default here and
            in the pipeline, whose CAMs are IRNet-like), or ``"auto"`` (``wsss refine``'s
            default): set by :func:`refine_folder` from the folder's CAM values
            (:func:`~wsss.refine.calibration.estimate_bg_threshold`) before the first call.
        preset: A :data:`~wsss.crf.PRESETS` name.
        n_iter: Mean-field iterations.
        device: Where to compute.
    """

    name = "crf"
    full_resolution = False

    def __init__(self, *, bg_threshold: float | str = 0.15, preset: str = "psa",
                 n_iter: int = 10, device: torch.device | str = "cpu") -> None:  # fmt: skip
        if bg_threshold != "auto":
            bg_threshold = _parse_unit("--bg-threshold", bg_threshold, low=0.0, high=1.0)
        if preset not in PRESETS:
            raise WsssError(f"unknown CRF preset {preset!r}; valid names: {', '.join(PRESETS)}")
        self.bg_threshold, self.preset, self.n_iter = bg_threshold, preset, n_iter
        self.device = torch.device(device)

    def options(self) -> dict[str, Any]:
        return {"method": self.name, "bg_threshold": self.bg_threshold, "preset": self.preset,
                "n_iter": self.n_iter}  # fmt: skip

    def __call__(self, image: np.ndarray, cam: CamFile) -> np.ndarray:
        if self.bg_threshold == "auto":
            raise WsssError("bg_threshold 'auto' is resolved per folder by refine_folder; give a "
                            "number to refine single images")  # fmt: skip
        size = (image.shape[0], image.shape[1])
        if cam.high_res is not None:
            maps = torch.from_numpy(np.asarray(cam.high_res, dtype=np.float32))
        else:
            low = torch.from_numpy(np.asarray(cam.cams, dtype=np.float32))[None]
            maps = F.interpolate(low, size=size, mode="bilinear", align_corners=False)[0]
        probs = torch.cat([torch.full_like(maps[:1], self.bg_threshold), maps.clamp_min(0)])
        probs = (probs / probs.sum(0, keepdim=True).clamp_min(1e-12)).to(self.device)
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(self.device)
        with torch.no_grad():
            q = dense_crf(img, unary_from_probs(probs[None]), n_iter=self.n_iter,
                          **PRESETS[self.preset])[0]  # fmt: skip
        labels = np.concatenate([[0], np.asarray(cam.keys, dtype=np.int64)]).astype(np.uint8)
        return labels[q.argmax(0).cpu().numpy()]


def _create_crf(**options: Any) -> CamCrfRefiner:
    return CamCrfRefiner(**{k: v for k, v in options.items() if v is not None})


def _create_rw(**options: Any) -> Any:
    from wsss.propagation.infer import PROPAGATORS

    if options.get("affinity") is None:
        raise WsssError("--method rw needs --affinity (a train-affinity run)")
    return PROPAGATORS["rw"](**options)


def _create_gcn(**options: Any) -> Any:
    from wsss.gcn.propagate import create_gcn_propagator

    return create_gcn_propagator(**options)


#: Refiner name -> factory ``(**options) -> refiner`` (``__call__(image, cam) -> label``).
REFINERS: dict[str, Callable[..., Any]] = {"crf": _create_crf, "rw": _create_rw, "gcn": _create_gcn}


def create_refiner(method: str, **options: Any) -> Any:
    """Build the refiner registered as ``method`` (see :data:`REFINERS`).

    Raises:
        WsssError: unknown method or bad options.
    """
    if method not in REFINERS:
        raise WsssError(f"unknown refine method {method!r}; valid names: {', '.join(REFINERS)}")
    return REFINERS[method](**options)


def find_image(images: Path, image_id: str) -> Path:
    """``<images>/<id>.jpg`` (or ``.jpeg`` / ``.png``).

    Raises:
        WsssError: naming the expected file when none exists.
    """
    for suffix in IMAGE_SUFFIXES:
        path = images / f"{image_id}{suffix}"
        if path.is_file():
            return path
    raise WsssError("missing image for this CAM file", images / f"{image_id}.jpg")


def _batches(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def refine_folder(
    images: str | Path,
    cam_dir: str | Path,
    out: str | Path,
    refiner: Any,
    *,
    num_classes: int = 21,
    batch_size: int = 1,
    progress: bool = True,
    cam_floor: float | str = "auto",
) -> dict[str, Any]:
    """Write ``<out>/<id>.png`` for every CAM file of this process's shard, skipping done ones.

    Args:
        images: Folder of the images.
        cam_dir: Folder of ``<id>.npz`` CAM files (any method; see :mod:`wsss.io.cams`).
        out: Output folder of VOC-palette label PNGs at the image size.
        refiner: From :func:`create_refiner`.
        num_classes: Class ids must lie in ``[1, num_classes)`` (VOC: 21).
        batch_size: Images per call of a refiner with ``label_batch`` (the GCN trains them at
            once).
        progress: Show a progress bar (rank 0).
        cam_floor: ``auto`` (:func:`~wsss.refine.calibration.estimate_floor` of the folder) or
            the floor removed from every map (0: the CAMs as given).

    Returns:
        ``{"shard": images of this process, "written": files written now, "cam_floor": the
        floor removed, "bg_threshold": the crf's background plane (None for other refiners),
        "background_share": {id: share of background pixels}}`` (the shard's images).

    Raises:
        WsssError: a missing folder or image, any problem of a CAM file (named), or other
            options than the folder's labels.
    """
    images, cam_dir, out = Path(images), Path(cam_dir), Path(out)
    for folder, what in ((images, "image"), (cam_dir, "CAM")):
        if not folder.is_dir():
            raise WsssError(f"{what} folder does not exist", folder)
    ids = sorted(p.stem for p in cam_dir.glob("*.npz"))
    if not ids:
        raise WsssError("no CAM files (<id>.npz) in this folder", cam_dir)
    floor = _resolve_floor(cam_floor, cam_dir, ids)
    rule = _resolve_bg_threshold(refiner, cam_dir, ids, floor)
    options = {**refiner.options(), "cam_floor": floor,
               "cam_floor_rule": "auto" if cam_floor == "auto" else "given"}  # fmt: skip
    if rule is not None:
        options["bg_threshold_rule"] = rule
    check_saved_settings(out / CONFIG_FILE, options, what="labels", noun="options")
    info = dist_info()
    mine = shard(ids, info.rank, info.world)
    todo = pending(mine, lambda i: out / f"{i}.png")
    batched = hasattr(refiner, "label_batch")  # with the ids, which seed the GCNs
    groups = _batches(todo, batch_size if batched else 1)
    bar = track(groups, description=f"{refiner.name} labels", total=len(groups), enabled=progress)
    for group in bar:
        loaded = [_load(images, cam_dir, i, num_classes, floor) for i in group]
        try:
            if batched:
                labels = refiner.label_batch([x[0] for x in loaded], [x[1] for x in loaded],
                                             ids=group)  # fmt: skip
            else:
                labels = [refiner(*x) for x in loaded]
        except ValueError as err:
            raise WsssError(f"cannot refine ({err})", cam_dir / f"{group[0]}.npz") from None
        for image_id, label in zip(group, labels, strict=True):
            write_label_png(out / f"{image_id}.png", label)
    shares = {i: float((read_label_png(out / f"{i}.png") == 0).mean()) for i in mine}
    return {"shard": len(mine), "written": len(todo), "cam_floor": floor,
            "bg_threshold": getattr(refiner, "bg_threshold", None),
            "background_share": shares}  # fmt: skip


#: An image is flagged when its label map gives at least this share of its pixels to the
#: background (its classes lost) or at most ``1 -`` it (no background at all).
EXTREME_SHARE = 0.99


def background_warnings(shares: dict[str, float], limit: float = EXTREME_SHARE) -> list[str]:
    """Messages about images whose background share is extreme (see :data:`EXTREME_SHARE`):
    every image of a CAM folder has at least one class, so an all-background map lost them, and
    an image without background is rare; many of either point at the CAMs' calibration."""
    lost = sorted(i for i, v in shares.items() if v >= limit)
    full = sorted(i for i, v in shares.items() if v <= 1 - limit)
    out = []
    for ids, what in ((lost, f">= {limit:.0%} background (their classes lost)"),
                      (full, f"<= {1 - limit:.0%} background")):  # fmt: skip
        if ids:
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            out.append(f"{len(ids)} of {len(shares)} images are {what}: {shown}")
    return out


def _resolve_floor(cam_floor: float | str, cam_dir: Path, ids: list[str]) -> float:
    from wsss.refine.calibration import estimate_floor

    if cam_floor == "auto":
        return round(estimate_floor(cam_dir, ids), 6)
    return _parse_unit("--cam-floor", cam_floor, low=0.0, high=1.0)


def _resolve_bg_threshold(refiner: Any, cam_dir: Path, ids: list[str], floor: float) -> str | None:
    """Set an ``auto`` background plane of ``refiner`` from the folder; the rule's name (None:
    the refiner has no such plane)."""
    from wsss.refine.calibration import estimate_bg_threshold

    value = getattr(refiner, "bg_threshold", None)
    if value is None:
        return None
    if value == "auto":
        refiner.bg_threshold = round(estimate_bg_threshold(cam_dir, ids, floor), 6)
        return "auto"
    return "given"


def _parse_unit(flag: str, value: float | str, *, low: float, high: float) -> float:
    """``value`` as a number in ``[low, high)``, or a one-line error naming ``flag``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not low <= number < high:
        raise WsssError(f"{flag} must be 'auto' or a number in [{low:g}, {high:g}), got {value!r}")
    return number


def _load(
    images: Path, cam_dir: Path, image_id: str, num_classes: int, floor: float = 0.0
) -> tuple[np.ndarray, CamFile]:
    from wsss.refine.calibration import remove_floor

    image = read_image(find_image(images, image_id))
    cam = read_cam_for_image(cam_dir / f"{image_id}.npz", size=(image.shape[0], image.shape[1]),
                             num_classes=num_classes, full_resolution=False)  # fmt: skip
    return image, remove_floor(cam, floor)
