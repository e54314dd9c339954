"""Label propagation for a whole split: one VOC-palette label PNG per image, sharded, resumable.

:func:`propagate` reads ``<cam_dir>/<id>.npz`` and the image, runs a propagator (see
:data:`PROPAGATORS`; ``rw`` is the IRNet / AffinityNet random walk) and writes ``<out>/<id>.png``
atomically at the image size for this process's exact, unpadded shard of the ids (``RANK`` /
``WORLD_SIZE``). Existing PNGs are skipped, so a rerun resumes. The propagator's options are
saved as ``<out>/propagate.json``; rerunning into that folder with other options is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from wsss.affinity.infer import image_affinity, load_affinity
from wsss.data.base import SegmentationDataset
from wsss.data.transforms import normalize_image
from wsss.engine import dist_info, pending, shard
from wsss.engine.progress import track
from wsss.engine.training import resolve_device
from wsss.errors import WsssError
from wsss.io.cams import CamFile
from wsss.io.palette import write_label_png
from wsss.io.settings import check_saved_settings
from wsss.propagation.random_walk import (
    RandomWalkSettings,
    psa_background,
    random_walk_labels,
    random_walk_settings,
)
from wsss.seeds.infer import read_cam_for_image

__all__ = [
    "CONFIG_FILE",
    "PROPAGATORS",
    "Propagator",
    "RandomWalkPropagator",
    "cams_on_grid",
    "create_propagator",
    "propagate",
]

#: The resolved options of the labels in a folder.
CONFIG_FILE = "propagate.json"


class Propagator(Protocol):
    """Turns one image and its CAM file into a full-size label map."""

    name: str
    #: The CAM file's full-resolution maps are needed.
    full_resolution: bool

    def options(self) -> dict[str, Any]:
        """JSON-ready options (saved beside the outputs)."""
        ...

    def __call__(self, image: np.ndarray, cam: CamFile) -> np.ndarray:
        """``(H, W)`` uint8 label map of an ``(H, W, 3)`` uint8 image."""
        ...


def cams_on_grid(
    cam: CamFile, stride: int, *, alpha: float | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The CAMs on the graph's grid, and AffinityNet's background score if ``alpha`` is given.

    Stride 4: the stored stride-4 maps (the background from them). Stride 8 (AffinityNet's
    ``infer_aff``): the full-resolution maps and ``(1 - max)^alpha`` zero-padded to a multiple of
    8 and average-pooled 8x8; without full-resolution maps, the stride-4 maps pooled 2x2.

    Shapes:
        Returns ``(C, ceil(H/stride), ceil(W/stride))`` and ``(ceil(H/stride), ...)`` or None.
    """
    low = torch.from_numpy(np.asarray(cam.cams, dtype=np.float32))
    if stride == 4:
        return low, None if alpha is None else psa_background(low, alpha)
    if stride != 8:
        raise ValueError(f"stride must be 4 or 8, got {stride}")
    high = cam.high_res is not None
    maps = torch.from_numpy(np.asarray(cam.high_res, dtype=np.float32)) if high else low
    pool = 8 if high else 2
    planes = maps if alpha is None else torch.cat([psa_background(maps, alpha)[None], maps])
    h, w = planes.shape[-2:]
    padded = F.pad(planes, (0, -w % pool, 0, -h % pool))
    pooled = F.avg_pool2d(padded[None], pool)[0]
    return (pooled, None) if alpha is None else (pooled[1:], pooled[0])


class RandomWalkPropagator:
    """The random walk of a trained affinity network (IRNet or AffinityNet, SPEC section 3).

    Args:
        model: The trained network (:func:`~wsss.affinity.train.load_affinity`), on ``device``.
        settings: Random-walk parameters (default: the preset of the network's method).
        run: The affinity run (recorded in the options).
        device: Where to compute.
    """

    name = "rw"
    full_resolution = False

    def __init__(self, model: torch.nn.Module, settings: RandomWalkSettings, *, run: str = "",
                 device: torch.device | str = "cpu") -> None:  # fmt: skip
        self.model, self.settings, self.run = model, settings, run
        self.device = torch.device(device)

    def options(self) -> dict[str, Any]:
        settings = dict(self.settings.__dict__)
        return {"method": self.name, "affinity": self.run, "scheme": settings.pop("method"),
                **settings}  # fmt: skip

    def __call__(self, image: np.ndarray, cam: CamFile) -> np.ndarray:
        tensor = normalize_image(image).to(self.device)
        graph = image_affinity(self.model, tensor, radius=self.settings.radius)
        alpha = self.settings.alpha if self.settings.method == "psa" else None
        cams, background = cams_on_grid(cam, graph.stride, alpha=alpha)
        if tuple(cams.shape[-2:]) != graph.size:
            raise ValueError(f"CAMs {tuple(cams.shape[-2:])} and affinity grid {graph.size} differ")
        return random_walk_labels(
            graph.weights, cams.to(self.device), cam.keys, size=(image.shape[0], image.shape[1]),
            settings=self.settings, boundary=graph.boundary, background=None if background is None
            else background.to(self.device),
        )  # fmt: skip


def _create_rw(*, affinity: str | Path, device: str = "cpu", **overrides: Any) -> Propagator:
    dev = resolve_device(device)
    model, config = load_affinity(affinity, dev)
    settings = random_walk_settings(config.method, **overrides)
    return RandomWalkPropagator(model, settings, run=str(affinity), device=dev)


#: Propagation method -> factory ``(**options) -> Propagator``.
def _create_gcn(**options: Any) -> Propagator:
    import inspect

    from wsss.gcn import create_gcn_propagator

    valid = set(inspect.signature(create_gcn_propagator).parameters)
    unknown = sorted(set(options) - valid)
    if unknown:
        raise WsssError(f"gcn has no option(s) {', '.join(unknown)}; "
                        f"its options: {', '.join(sorted(valid))}")  # fmt: skip
    return create_gcn_propagator(**options)


#: Method name -> factory of keyword options.
PROPAGATORS: dict[str, Callable[..., Propagator]] = {"rw": _create_rw, "gcn": _create_gcn}


def create_propagator(method: str, **options: Any) -> Propagator:
    """Build the propagator registered as ``method`` (see :data:`PROPAGATORS`).

    Raises:
        WsssError: unknown method.
    """
    if method not in PROPAGATORS:
        raise WsssError(f"unknown propagation method {method!r}; valid names: "
                        f"{', '.join(sorted(PROPAGATORS))}")  # fmt: skip
    return PROPAGATORS[method](**options)


def propagate(
    dataset: SegmentationDataset,
    cam_dir: str | Path,
    out: str | Path,
    propagator: Propagator,
    *,
    batch_size: int = 1,
    progress: bool = True,
) -> dict[str, int]:
    """Write ``<out>/<id>.png`` for this process's shard of ``dataset.ids``, skipping done ones.

    Args:
        dataset: The split (images; a dataset with a background class).
        cam_dir: Folder of ``<id>.npz`` CAM files.
        out: Output folder of VOC-palette label PNGs at the image size.
        propagator: From :func:`create_propagator`.
        batch_size: Images per call of a propagator with ``label_batch`` (the GCN trains them
            together, with results equal to one at a time); others take one image per call.
        progress: Show a progress bar (rank 0).

    Returns:
        ``{"shard": images of this process, "written": files written now}``.

    Raises:
        WsssError: no background class, a missing CAM folder, any problem of a CAM file (named),
            or other options than the folder's labels.
    """
    if not dataset.classes.has_background:
        raise WsssError(f"propagation needs a dataset with a background class; "
                        f"{type(dataset).__name__} has none")  # fmt: skip
    cam_dir, out = Path(cam_dir), Path(out)
    if not cam_dir.is_dir():
        raise WsssError("CAM folder does not exist", cam_dir, hint="run `wsss cam` first")
    check_saved_settings(out / CONFIG_FILE, propagator.options(), what="labels", noun="options")
    info = dist_info()
    mine = shard(dataset.ids, info.rank, info.world)
    todo = pending(mine, lambda i: out / f"{i}.png")
    batched = hasattr(propagator, "label_batch") and batch_size > 1
    bar = track(todo, description=f"{propagator.name} labels", total=len(todo), enabled=progress)
    group: list[tuple[str, np.ndarray, CamFile]] = []
    for k, image_id in enumerate(bar):
        image = dataset.load_image(image_id)
        path = cam_dir / f"{image_id}.npz"
        cam = read_cam_for_image(path, size=(image.shape[0], image.shape[1]),
                                 num_classes=dataset.classes.num_classes,
                                 full_resolution=propagator.full_resolution)  # fmt: skip
        group.append((image_id, image, cam))
        if len(group) < (batch_size if batched else 1) and k + 1 < len(todo):
            continue
        try:
            if batched:
                labels = propagator.label_batch([g[1] for g in group], [g[2] for g in group])
            else:
                labels = [propagator(group[0][1], group[0][2])]
        except ValueError as err:
            names = ", ".join(f"{g[0]}.npz" for g in group)
            raise WsssError(f"cannot propagate {names} ({err})", cam_dir) from None
        for (done_id, _, _), label in zip(group, labels, strict=True):
            write_label_png(out / f"{done_id}.png", label)
        group = []
    return {"shard": len(mine), "written": len(todo)}
