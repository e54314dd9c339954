"""Seeds for a whole split: one VOC-palette label PNG per image, sharded and resumable.

:func:`make_seeds` reads ``<cam_dir>/<id>.npz`` (written by ``wsss cam``) and the image, and writes
``<out>/<id>.png`` atomically for this process's exact, unpadded shard of the ids (``RANK`` /
``WORLD_SIZE`` under torchrun). Ids whose PNG exists are skipped, so a rerun resumes. The resolved
options are saved as ``<out>/seeds.json``; rerunning into that folder with other options is an
error rather than a silent mix of two configurations.

Output size: IRNet seeds are made at the image size. WSGCN seeds are made at the stride-4 CAM size
``ceil(H/4) x ceil(W/4)`` (the partial labels ``P`` the GCN stage consumes, WSGCN sec. 3.1);
``full_size=True`` upsamples them to the image size (nearest, centre-aligned, see
:func:`~wsss.seeds.resize.upsample_labels`), which ``wsss eval`` needs: it compares predictions
with the ground truth at the GT's size and rejects any other size.

Saliency (Group-WSSS seeds only): with ``saliency=DIR`` each image's ``DIR/<id>.png`` (greyscale,
the image's size) is read and passed to the seed scheme as its background ``1 - S``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wsss.data.base import SegmentationDataset
from wsss.engine import dist_info, pending, shard
from wsss.engine.progress import track
from wsss.engine.training import resolve_device
from wsss.errors import WsssError
from wsss.io.cams import CamFile, read_cams
from wsss.io.palette import write_label_png
from wsss.io.settings import check_saved_settings
from wsss.seeds.registry import Seeder, seeder_options
from wsss.seeds.resize import upsample_labels

__all__ = ["CONFIG_FILE", "image_seeds", "make_seeds", "read_cam_for_image"]

#: The resolved options of the seeds in a folder.
CONFIG_FILE = "seeds.json"


def read_cam_for_image(
    path: Path, *, size: tuple[int, int], num_classes: int, full_resolution: bool
) -> CamFile:
    """Read and check the CAM file of one image.

    Args:
        path: ``<cam_dir>/<id>.npz``.
        size: The image's ``(H, W)``.
        num_classes: Class ids must lie in ``[1, num_classes)``.
        full_resolution: The full-resolution maps (``high_res``) are required.

    Raises:
        WsssError: naming the file: missing or corrupt, NaN values, class id out of range, made
            for another image size, or without ``high_res`` when required.
    """
    if not path.is_file():
        raise WsssError("missing CAM file", path, hint="run `wsss cam` on this split first")
    cam = read_cams(path, num_classes=num_classes)
    if cam.size != tuple(size):
        raise WsssError(
            f"CAM file is for a {cam.size[0]}x{cam.size[1]} (HxW) image, the image is "
            f"{size[0]}x{size[1]}",
            path,
        )
    if full_resolution and cam.high_res is None:
        raise WsssError(
            "CAM file has no full-resolution maps ('high_res'), which IRNet seeds need",
            path,
            hint="rerun `wsss cam` with --high-res, or use --method wsgcn",
        )
    return cam


def image_seeds(
    seeder: Seeder,
    image: np.ndarray,
    cam: CamFile,
    *,
    full_size: bool = False,
    device: str | torch.device = "cpu",
    saliency: np.ndarray | None = None,
) -> np.ndarray:
    """The seed of one image, upsampled to the image size if ``full_size``.

    ``saliency`` (``(H, W)`` in [0, 1]) is passed on to schemes that use it (Group-WSSS's).

    Shapes:
        image: ``(H, W, 3)`` uint8. Output: ``(H, W)`` uint8 for full-resolution schemes or with
        ``full_size``, else ``(ceil(H/4), ceil(W/4))``.
    """
    if saliency is None:
        label = seeder(image, cam, device=device)
    else:
        label = seeder(image, cam, device=device, saliency=saliency)  # type: ignore[call-arg]
    size = (image.shape[0], image.shape[1])
    if full_size and label.shape != size:
        label = upsample_labels(label, size)
    return label


def make_seeds(
    dataset: SegmentationDataset,
    cam_dir: str | Path,
    out: str | Path,
    seeder: Seeder,
    *,
    full_size: bool = False,
    device: str = "cpu",
    progress: bool = True,
    saliency: str | Path | None = None,
) -> dict[str, int]:
    """Write ``<out>/<id>.png`` for this process's shard of ``dataset.ids``, skipping done ones.

    Args:
        dataset: The split (images; a dataset with a background class).
        cam_dir: Folder of ``<id>.npz`` CAM files.
        out: Output folder of VOC-palette label PNGs (255 = unlabelled).
        seeder: The seed scheme (:func:`~wsss.seeds.registry.create_seeder`).
        full_size: Upsample stride-4 seeds (WSGCN) to the image size; IRNet's already are.
        device: ``cpu``, ``cuda`` or ``cuda:<i>``: where the CRFs run.
        progress: Show a progress bar (rank 0).
        saliency: Folder of ``<id>.png`` saliency maps (background ``1 - S``), for schemes that
            use one (Group-WSSS's); None: none.

    Returns:
        ``{"shard": images of this process, "written": files written now}``.

    Raises:
        WsssError: a dataset without background class, a missing CAM or saliency folder, any
            problem of a CAM file (see :func:`read_cam_for_image`) or saliency map, a saliency
            folder for a scheme without saliency, or other options than the folder's seeds.
    """
    if not dataset.classes.has_background:
        raise WsssError(f"seeds need a dataset with a background class; {type(dataset).__name__} "
                        "has none")  # fmt: skip
    cam_dir, out = Path(cam_dir), Path(out)
    if not cam_dir.is_dir():
        raise WsssError("CAM folder does not exist", cam_dir, hint="run `wsss cam` first")
    if saliency is not None:
        if not getattr(seeder, "uses_saliency", False):
            raise WsssError(f"{seeder.name} seeds take no saliency maps (only group seeds do)")
        if not Path(saliency).is_dir():
            raise WsssError("saliency folder does not exist", saliency)
    dev = resolve_device(device)
    whole = full_size or seeder.full_resolution
    options = {**seeder_options(seeder), "size": "image" if whole else "cam"}
    if saliency is not None:
        options["saliency"] = str(Path(saliency).resolve())
    check_saved_settings(out / CONFIG_FILE, options, what="seeds", noun="options")
    info = dist_info()
    mine = shard(dataset.ids, info.rank, info.world)
    todo = pending(mine, lambda i: out / f"{i}.png")
    num_classes = dataset.classes.num_classes
    bar = track(todo, description=f"{seeder.name} seeds", total=len(todo), enabled=progress)
    for image_id in bar:
        image = dataset.load_image(image_id)
        cam = read_cam_for_image(
            cam_dir / f"{image_id}.npz",
            size=(image.shape[0], image.shape[1]),
            num_classes=num_classes,
            full_resolution=seeder.full_resolution,
        )
        sal = None
        if saliency is not None:
            from wsss.group.saliency import read_saliency

            sal = read_saliency(Path(saliency) / f"{image_id}.png", image.shape[:2])
        label = image_seeds(seeder, image, cam, full_size=full_size, device=dev, saliency=sal)
        write_label_png(out / f"{image_id}.png", label)
    return {"shard": len(mine), "written": len(todo)}
