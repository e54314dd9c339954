"""Writing the synthetic benchmark in the PASCAL VOC 2012 layout, resumably and reproducibly.

Layout under ``out``::

    JPEGImages/<id>.jpg                 RGB, JPEG quality 90
    SegmentationClass/<id>.png          palette PNG: 0 background, 1..K classes, 255 void band
    SegmentationObject/<id>.png         palette PNG: instance ids in drawing order, 255 void band
    ImageSets/Segmentation/train.txt    ids, one per line
    ImageSets/Segmentation/val.txt
    meta.json                           written last: a folder with meta.json is complete

Version 3 adds, per image (version 2 folders stay byte-identical to what version 2 wrote)::

    SegmentationPart/<id>.png           palette PNG: 0 background, 1 body, 2 part, 255 void band
    SynthAnnotations/<id>.json          scene, clutter count, and per object its class, texture
                                        and pixel counts

Image ``k`` of split ``s`` (train 0, val 1) is drawn from its own generator seeded with
``SeedSequence([seed, s, k])``, so its bytes do not depend on order, resume or sharding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from wsss.data.ids import read_id_list
from wsss.errors import WsssError
from wsss.io.atomic import atomic_path, atomic_write_text
from wsss.io.images import read_image, read_label_png
from wsss.io.palette import colorize, write_label_png
from wsss.synth.design import GENERATOR_VERSION, GENERATOR_VERSIONS, SCENES, SYNTH_CLASSES
from wsss.synth.design3 import OWN_TEXTURE_PROB
from wsss.synth.render import RenderedImage, render_image
from wsss.synth.render3 import render_image3

SPLITS = ("train", "val")
JPEG_QUALITY = 90
META_FILE = "meta.json"
#: Written first and removed last: the parameters of an unfinished run, checked on resume.
PARTIAL_FILE = ".synth-partial.json"
_CONTENT_KEYS = ("generator_version", "seed", "size")
#: Generator settings of version 3 that change the content, and their value in folders written
#: before they were recorded.
_V3_KEYS = ("own_texture_prob",)
_V3_DEFAULTS: dict[str, Any] = {"own_texture_prob": 0.8}
#: Version 3's extra per-image files: part/body masks and annotations (folder, suffix).
PART_DIR, ANNOTATION_DIR = "SegmentationPart", "SynthAnnotations"
#: Values of the ``SegmentationPart`` masks.
PART_MAP_BACKGROUND, PART_MAP_BODY, PART_MAP_PART = 0, 1, 2


def image_id(split: str, index: int) -> str:
    """The id of image ``index`` of ``split``, e.g. ``train_00042``."""
    return f"{split}_{index:05d}"


def image_rng(seed: int, split_index: int, index: int) -> np.random.Generator:
    """The generator of one image: ``SeedSequence([seed, split_index, index])``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, split_index, index])))


def check_version(version: str) -> str:
    """``version`` as a string, if it is one this code can generate.

    Raises:
        WsssError: an unknown version.
    """
    version = str(version)
    if version not in GENERATOR_VERSIONS:
        raise WsssError(f"unknown generator version {version!r}; "
                        f"valid: {', '.join(GENERATOR_VERSIONS)}")  # fmt: skip
    return version


def render_sample(
    seed: int, split: str, index: int, size: int, version: str = GENERATOR_VERSION,
    own_texture_prob: float | None = None,
) -> RenderedImage:  # fmt: skip
    """Render image ``index`` of ``split`` exactly as :func:`generate_benchmark` writes it
    (``own_texture_prob``: version 3's, None for its default)."""
    rng = image_rng(seed, SPLITS.index(split), index)
    if check_version(version) == "2":
        return render_image(rng, size)
    return render_image3(rng, size, own_texture_prob=texture_prob(own_texture_prob))


def texture_prob(own_texture_prob: float | None) -> float:
    """Version 3's probability that a body wears its class's texture (None: the default).

    Raises:
        WsssError: a value outside [0, 1].
    """
    if own_texture_prob is None:
        return OWN_TEXTURE_PROB
    if not 0.0 <= own_texture_prob <= 1.0:
        raise WsssError(f"own texture probability must be in [0, 1], got {own_texture_prob}")
    return float(own_texture_prob)


def sample_paths(out: Path, sample_id: str, version: str = "2") -> tuple[Path, ...]:
    """The files of one id: image, class mask, instance mask, and for version 3 the part/body
    mask and the annotation file."""
    paths = (
        out / "JPEGImages" / f"{sample_id}.jpg",
        out / "SegmentationClass" / f"{sample_id}.png",
        out / "SegmentationObject" / f"{sample_id}.png",
    )
    if version == "2":
        return paths
    return (*paths, out / PART_DIR / f"{sample_id}.png", out / ANNOTATION_DIR / f"{sample_id}.json")


def part_map(rendered: RenderedImage) -> np.ndarray:
    """The ``SegmentationPart`` mask: 0 background, 1 body, 2 part, 255 where the label is void.

    Shapes:
        Returns ``(S, S)`` uint8.
    """
    out = np.where(rendered.label > 0, PART_MAP_BODY, PART_MAP_BACKGROUND).astype(np.uint8)
    out[rendered.parts] = PART_MAP_PART
    out[rendered.label == 255] = 255
    return out


def annotation(rendered: RenderedImage) -> dict[str, Any]:
    """The ``SynthAnnotations`` record of one image (JSON-ready)."""
    objects = [
        {
            "instance_id": o.instance_id,
            "class_id": o.class_id,
            "class": SYNTH_CLASSES.names[o.class_id],
            "texture": texture,
            "area": o.area,
            "part_area": o.part_area,
            "visible": o.visible,
            "part_visible": o.part_visible,
        }
        for o, texture in zip(rendered.objects, rendered.textures, strict=True)
    ]
    return {"scene": rendered.scene, "clutter": rendered.clutter, "objects": objects}


def _write_sample(out: Path, sample_id: str, rendered: RenderedImage, version: str) -> None:
    """Write the files of one sample that do not exist yet, each atomically."""
    jpg, cls_png, obj_png, *extra = sample_paths(out, sample_id, version)
    if not jpg.exists():
        with atomic_path(jpg) as tmp:
            Image.fromarray(rendered.image).save(tmp, format="JPEG", quality=JPEG_QUALITY)
    if not cls_png.exists():
        write_label_png(cls_png, rendered.label)
    if not obj_png.exists():
        write_label_png(obj_png, rendered.instances)
    if extra and not extra[0].exists():
        write_label_png(extra[0], part_map(rendered))
    if extra and not extra[1].exists():
        atomic_write_text(extra[1], _dump(annotation(rendered)))


def build_meta(
    *, n_train: int, n_val: int, size: int, seed: int, version: str = GENERATOR_VERSION,
    own_texture_prob: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The content of ``meta.json`` (no timestamps: reruns are byte-identical)."""
    meta: dict[str, Any] = {
        "name": "wsss-synthetic-voc",
        "generator_version": check_version(version),
        "seed": seed,
        "size": size,
        "counts": {"train": n_train, "val": n_val},
        "classes": list(SYNTH_CLASSES.names),
        "scenes": list(SCENES),
        "jpeg_quality": JPEG_QUALITY,
        "ignore_index": 255,
    }
    if version != "2":
        meta["extra_folders"] = [PART_DIR, ANNOTATION_DIR]
        meta["own_texture_prob"] = texture_prob(own_texture_prob)
    return meta


def _check_compatible(out: Path, meta: dict[str, Any]) -> None:
    """Refuse to resume into a folder written with another seed, size or generator version."""
    for name in (META_FILE, PARTIAL_FILE):
        path = out / name
        if not path.is_file():
            continue
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise WsssError(f"unreadable generator record ({err})", path) from None
        keys = (*_CONTENT_KEYS, *(k for k in _V3_KEYS if k in meta))
        diff = [k for k in keys if old.get(k, _V3_DEFAULTS.get(k)) != meta[k]]
        if diff:
            found = ", ".join(f"{k}={old.get(k)!r} (asked {meta[k]!r})" for k in diff)
            raise WsssError(
                f"folder holds a synthetic benchmark made with {found}",
                path,
                hint="choose another output folder or delete this one",
            )


def _check_args(n_train: int, n_val: int, size: int, seed: int) -> None:
    if n_train < 1 or n_val < 1:
        raise WsssError(f"need at least one image per split, got n_train={n_train}, n_val={n_val}")
    if size < 32:
        raise WsssError(f"image size must be at least 32 pixels, got {size}")
    if seed < 0:
        raise WsssError(f"seed must be a non-negative integer, got {seed}")


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def generate_benchmark(
    out: Path,
    *,
    n_train: int,
    n_val: int,
    size: int = 128,
    seed: int = 0,
    progress: bool = True,
    version: str = GENERATOR_VERSION,
    own_texture_prob: float | None = None,
) -> dict[str, Any]:
    """Write the synthetic benchmark under ``out`` in the PASCAL VOC 2012 layout.

    Rerunning on a folder made with the same seed, size and generator version skips the files
    that exist (resume) and gives byte-identical results; the counts may change (the list files
    and ``meta.json`` are rewritten, last).

    Args:
        out: Output folder (created if needed).
        n_train: Number of ``train`` images (ids ``train_00000``, ...).
        n_val: Number of ``val`` images.
        size: Side of the square images in pixels.
        seed: Base seed; image ``k`` of split ``s`` uses ``SeedSequence([seed, s, k])``.
        progress: Show a ``rich`` progress bar.
        version: Generator version (:data:`~wsss.synth.design.GENERATOR_VERSIONS`); older ones
            stay available so that earlier runs can be reproduced byte for byte.
        own_texture_prob: Version 3: probability that a body wears its own class's texture
            (None: :data:`~wsss.synth.design3.OWN_TEXTURE_PROB`); recorded in ``meta.json``.

    Returns:
        The metadata written to ``meta.json``.

    Raises:
        WsssError: bad arguments, or ``out`` holds a benchmark with another seed/size/version.
    """
    _check_args(n_train, n_val, size, seed)
    version = check_version(version)
    out = Path(out)
    meta = build_meta(n_train=n_train, n_val=n_val, size=size, seed=seed, version=version,
                      own_texture_prob=own_texture_prob)  # fmt: skip
    _check_compatible(out, meta)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / META_FILE).exists():
        record = {k: meta[k] for k in (*_CONTENT_KEYS, *_V3_KEYS) if k in meta}
        atomic_write_text(out / PARTIAL_FILE, _dump(record))
    counts = {"train": n_train, "val": n_val}
    jobs = [(split, k) for split in SPLITS for k in range(counts[split])]
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), disable=not progress) as bar:
        task = bar.add_task("synthetic VOC", total=len(jobs))
        for split, k in jobs:
            sample_id = image_id(split, k)
            if not all(p.exists() for p in sample_paths(out, sample_id, version)):
                rendered = render_sample(seed, split, k, size, version, own_texture_prob)
                _write_sample(out, sample_id, rendered, version)
            bar.advance(task)
    lists = out / "ImageSets" / "Segmentation"
    for split in SPLITS:
        text = "".join(f"{image_id(split, k)}\n" for k in range(counts[split]))
        atomic_write_text(lists / f"{split}.txt", text)
    atomic_write_text(out / META_FILE, _dump(meta))
    (out / PARTIAL_FILE).unlink(missing_ok=True)
    return meta


def make_grid_figure(root: Path, out_png: Path, n: int = 12, *, columns: int = 4) -> None:
    """Save a picture of the first ``n`` train images of a benchmark, each beside its mask.

    Each cell shows the image, its mask in the VOC palette (void band cream) and the names of
    the classes present.

    Args:
        root: A folder written by :func:`generate_benchmark`.
        out_png: The PNG to write (atomically).
        n: Number of images.
        columns: Image/mask pairs per row.
    """
    root = Path(root)
    ids = read_id_list(root / "ImageSets" / "Segmentation" / "train.txt")[:n]
    pairs = []
    for sample_id in ids:
        jpg, cls_png, *_ = sample_paths(root, sample_id)
        image = read_image(jpg)
        mask = read_label_png(cls_png, size=image.shape[:2])
        names = [SYNTH_CLASSES.names[c] for c in np.unique(mask) if 0 < c < 255]
        pairs.append((np.concatenate([image, colorize(mask)], axis=1), ", ".join(names)))
    height, width = pairs[0][0].shape[:2]
    pad, caption = 6, 14
    rows = -(-len(pairs) // columns)
    cell_w, cell_h = width + pad, height + caption + pad
    canvas = Image.new("RGB", (columns * cell_w + pad, rows * cell_h + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for k, (pair, text) in enumerate(pairs):
        x, y = pad + (k % columns) * cell_w, pad + (k // columns) * cell_h
        canvas.paste(Image.fromarray(pair), (x, y))
        draw.text((x, y + height + 1), text, fill=(0, 0, 0))
    with atomic_path(out_png) as tmp:
        canvas.save(tmp, format="PNG")
