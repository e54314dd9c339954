"""MS-COCO: conversion of instance annotations to VOC-style label PNGs, and the dataset on them.

``convert_coco`` writes the VOC layout (``JPEGImages``, ``SegmentationClass``,
``ImageSets/Segmentation/<split>.txt``) once; :class:`COCOSegmentation` then reads it exactly
as :class:`~wsss.data.voc.VOCSegmentation` reads VOC, with :data:`COCO_CLASSES`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pycocotools.coco import COCO

from wsss.data.base import Sample, resolve_root
from wsss.data.classes import COCO_CLASSES, ClassSet
from wsss.data.ids import check_id, inside
from wsss.data.voc import VOCSegmentation
from wsss.errors import WsssError
from wsss.io.atomic import atomic_path, atomic_write_text
from wsss.io.palette import IGNORE_INDEX, write_label_png


def load_coco(instances_json: Path) -> COCO:
    """Read an ``instances_*.json`` file into an indexed ``pycocotools`` :class:`COCO` object.

    Raises:
        WsssError: the file is missing, not JSON, or lacks the ``images`` / ``annotations`` /
            ``categories`` lists.
    """
    path = Path(instances_json)
    if not path.is_file():
        raise WsssError("missing COCO annotation file", path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise WsssError(f"unreadable COCO annotation file ({err})", path) from None
    keys = ("images", "annotations", "categories")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in keys):
        raise WsssError("malformed COCO annotation file: need lists " + ", ".join(keys), path)
    coco = COCO()
    coco.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            coco.createIndex()
    except (KeyError, TypeError) as err:
        raise WsssError(f"malformed COCO annotation file (field {err})", path) from None
    return coco


def category_to_label(coco: COCO, source: Path) -> dict[int, int]:
    """Map COCO category ids to label ids ``1..80`` in the order of :data:`COCO_CLASSES`.

    Categories are matched by name; sorted by category id they must come in the order of
    ``COCO_CLASSES`` (as in the official files, where ids 1..90 with gaps map to 1..80).

    Raises:
        WsssError: an unknown category name, or names out of the official order.
    """
    index = {name: k for k, name in enumerate(COCO_CLASSES.names) if k >= COCO_CLASSES.offset}
    mapping: dict[int, int] = {}
    for cat in sorted(coco.cats.values(), key=lambda c: c["id"]):
        name = cat.get("name")
        if name not in index:
            raise WsssError(f"unknown COCO category {name!r} (id {cat['id']})", source)
        mapping[int(cat["id"])] = index[name]
    labels = list(mapping.values())
    if labels != sorted(labels) or len(set(labels)) != len(labels):
        raise WsssError("COCO category ids are not in the order of the official 80 classes", source)
    return mapping


def annotation_mask(coco: COCO, ann: Mapping[str, Any], source: Path) -> np.ndarray:
    """Boolean ``(H, W)`` mask of one annotation (polygons or RLE) via ``COCO.annToMask``.

    Degenerate polygon parts (fewer than 3 points) are dropped; an empty segmentation covers
    nothing.
    """
    info = coco.imgs[ann["image_id"]]
    segm = ann.get("segmentation")
    if isinstance(segm, list):
        segm = [part for part in segm if isinstance(part, list) and len(part) >= 6]
        if not segm:
            return np.zeros((info["height"], info["width"]), dtype=bool)
        ann = {**ann, "segmentation": segm}
    try:
        with warnings.catch_warnings():  # pycocotools' decode warns under NumPy 2
            warnings.simplefilter("ignore", DeprecationWarning)
            return coco.annToMask(ann).astype(bool)
    except Exception as err:  # pycocotools raises bare Exception / IndexError / TypeError
        raise WsssError(
            f"bad segmentation in annotation {ann.get('id')!r} ({err})", source
        ) from None


def coco_label_map(
    coco: COCO, image_id: int, cat_to_label: Mapping[int, int], source: Path
) -> np.ndarray:
    """The VOC-style label map of one COCO image.

    Pixels covered by no annotation are background (0); pixels covered by one class carry that
    class's label id; pixels covered by two different classes, or by any crowd region, are 255.

    Shapes:
        Returns ``(H, W)`` uint8 with ``H, W`` the image's ``height, width`` in the JSON.
    """
    info = coco.imgs[image_id]
    shape = (int(info["height"]), int(info["width"]))
    label = np.zeros(shape, dtype=np.uint8)
    ignore = np.zeros(shape, dtype=bool)
    for ann in coco.imgToAnns.get(image_id, []):
        mask = annotation_mask(coco, ann, source)
        if ann.get("iscrowd", 0):
            ignore |= mask
            continue
        if ann["category_id"] not in cat_to_label:
            raise WsssError(f"annotation {ann.get('id')!r} has an unknown category id", source)
        cls = cat_to_label[ann["category_id"]]
        ignore |= mask & (label != 0) & (label != cls)
        label[mask] = cls
    label[ignore] = IGNORE_INDEX
    return label


def _image_records(coco: COCO, image_dir: Path, source: Path) -> dict[str, dict[str, Any]]:
    """Image records keyed by id (the file stem), checked for duplicates and unsafe names."""
    records: dict[str, dict[str, Any]] = {}
    for info in coco.imgs.values():
        try:
            file_name = str(info["file_name"])
            size = {"height": int(info["height"]), "width": int(info["width"])}
        except (KeyError, TypeError, ValueError) as err:
            raise WsssError(f"malformed image record {info.get('id')!r} ({err})", source) from None
        stem = check_id(Path(file_name).stem, source)
        if stem in records:
            raise WsssError(f"two images with the id {stem!r}", source)
        records[stem] = {**info, **size, "path": inside(image_dir, file_name, source)}
    return records


def _check_image(path: Path, info: Mapping[str, Any]) -> None:
    """The image exists and its size matches the JSON (only the header is read)."""
    if not path.is_file():
        raise WsssError("missing COCO image", path)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as err:
        raise WsssError(f"corrupt or unreadable image ({err})", path) from None
    if (height, width) != (int(info["height"]), int(info["width"])):
        raise WsssError(
            f"image is {width}x{height} (WxH) but the annotation file says "
            f"{info['width']}x{info['height']}",
            path,
        )


def link_or_copy(src: Path, dst: Path) -> None:
    """Place ``src`` at ``dst`` atomically: a hard link if possible, else a byte copy.

    A symbolic link is not used: the datasets resolve paths and require them to stay inside
    the dataset root.
    """
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or links not supported
            shutil.copyfile(src, tmp)


def convert_coco(
    instances_json: Path,
    image_dir: Path,
    out_root: Path,
    split: str,
    *,
    progress: bool = True,
) -> int:
    """Convert COCO instance annotations of one split to the VOC layout under ``out_root``.

    Writes ``JPEGImages/<id>.jpg`` (hard link to the COCO image, or a copy across file systems),
    ``SegmentationClass/<id>.png`` (palette PNG, ids in the order of :data:`COCO_CLASSES`, see
    :func:`coco_label_map`) and ``ImageSets/Segmentation/<split>.txt`` (all ids, sorted).
    The id is the image file's stem (``000000000139``). Images without annotations are kept,
    all background. Every file is written atomically and existing masks are skipped, so an
    interrupted conversion resumes where it stopped.

    Args:
        instances_json: ``instances_<split>.json``.
        image_dir: Folder holding the split's images (``file_name`` is relative to it).
        out_root: Root of the converted dataset (the ``root`` of :class:`COCOSegmentation`).
        split: Name of the list file to write (``train``, ``val``, ...).
        progress: Show a progress bar.

    Returns:
        Number of masks written by this call (0 when everything already existed).

    Raises:
        WsssError: missing or malformed JSON, missing or mis-sized image, bad annotation.
    """
    instances_json, image_dir, out_root = Path(instances_json), Path(image_dir), Path(out_root)
    if not split or any(ch in split for ch in "/\\") or split.startswith("."):
        raise WsssError(f"bad split name {split!r}", instances_json)
    if not image_dir.is_dir():
        raise WsssError("COCO image folder does not exist", image_dir)
    coco = load_coco(instances_json)
    cat_to_label = category_to_label(coco, instances_json)
    records = _image_records(coco, image_dir, instances_json)
    if not records:
        raise WsssError("the COCO annotation file lists no images", instances_json)
    ids = sorted(records)
    written = 0
    for image_id in _progress(ids, progress):
        info = records[image_id]
        jpeg = out_root / "JPEGImages" / f"{image_id}.jpg"
        png = out_root / "SegmentationClass" / f"{image_id}.png"
        if jpeg.exists() and png.exists():
            continue
        _check_image(info["path"], info)
        if not jpeg.exists():
            link_or_copy(info["path"], jpeg)
        if not png.exists():
            write_label_png(png, coco_label_map(coco, info["id"], cat_to_label, instances_json))
            written += 1
    list_file = out_root / "ImageSets" / "Segmentation" / f"{split}.txt"
    atomic_write_text(list_file, "".join(f"{i}\n" for i in ids))
    return written


def _progress(items: list[str], enabled: bool) -> Any:
    if not enabled:
        return items
    from wsss.engine.progress import track

    return track(items, description="COCO masks")


class COCOSegmentation(VOCSegmentation):
    """MS-COCO converted to the VOC layout by :func:`convert_coco`.

    Args:
        root: Output folder of :func:`convert_coco`; falls back to ``$WSSS_COCO_ROOT``.
        split: A list file ``ImageSets/Segmentation/<split>.txt`` (the ``split`` given to
            :func:`convert_coco`).
        transform: Applied to each :class:`~wsss.data.base.Sample`.
    """

    classes: ClassSet = COCO_CLASSES
    env_var = "WSSS_COCO_ROOT"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        *,
        transform: Callable[[Sample], Any] | None = None,
    ) -> None:
        base = resolve_root(root, self.env_var)
        if not (base / "JPEGImages").is_dir():
            raise WsssError(
                "not a converted COCO root: no JPEGImages folder",
                base,
                hint="convert the annotations first with wsss.data.coco.convert_coco",
            )
        super().__init__(base, split, mask_dir="SegmentationClass", transform=transform)
