"""Pipeline stages that train segmentation networks on the pseudo labels and label val (SPEC 6).

``config["seg"]`` (every key optional)::

    seg:
      labels: WSGCN-I + dCRF   # a name of pseudo_label_folders(ctx), or "ground truth"
      backbone: small          # and epochs, batch_size, lr, crop, n_segments: None = the preset
      scales: [1.0]            # inference scales; flip: false
      variants:
        - {name: deeplabv3p, head: deeplabv3plus}
        - {name: escrf, head: escrf}            # pairwise / superpixel: ES-CRF's terms (true)

Each variant trains in ``<run>/seg_<name>/train`` (``wsss train-seg``'s run directory: resumes
from its checkpoint) on the pseudo labels of the pseudo-label split, and writes its val label maps
to ``<run>/seg_<name>/val/<id>.png`` (finished images are skipped), the folder layout
``Context.predictions()`` scores. SLIC maps of val are cached in ``<run>/superpixels/val``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsss.engine import barrier
from wsss.errors import WsssError
from wsss.pipeline.layout import (
    DEFAULT_SEG_VARIANTS,
    pseudo_label_folders,
    pseudo_split,
    seg_dir,
    seg_prediction_folders,
    seg_variants,
)
from wsss.pipeline.layout import seg_settings as _settings
from wsss.pipeline.recipes import seg_recipe

__all__ = [
    "DEFAULT_LABELS",
    "DEFAULT_VARIANTS",
    "GROUND_TRUTH",
    "seg_dir",
    "seg_labels",
    "seg_prediction_folders",
    "seg_variants",
    "stage_predict_seg",
    "stage_train_seg",
]

#: The pseudo labels trained on when ``seg.labels`` is not given (WSGCN's final labels).
DEFAULT_LABELS = "WSGCN-I + dCRF"
#: ``seg.labels`` value that trains on the split's ground truth instead (an oracle reference).
GROUND_TRUTH = "ground truth"
#: Networks trained when ``seg.variants`` is not given (see :mod:`wsss.pipeline.layout`).
DEFAULT_VARIANTS = DEFAULT_SEG_VARIANTS


def seg_labels(ctx: Any, variant: dict[str, Any] | None = None) -> Path | None:
    """The pseudo-label folder a network trains on (the variant's ``labels``, else
    ``seg.labels``), or None for the ground truth (the report's supervised ceiling).

    Raises:
        WsssError: no pseudo-label folder of that name exists (yet) in the run.
    """
    name = str((variant or {}).get("labels") or _settings(ctx).get("labels") or DEFAULT_LABELS)
    if name == GROUND_TRUTH:
        return None
    folders = pseudo_label_folders(ctx)
    if name not in folders:
        made = ", ".join(sorted(folders)) or "none yet"
        raise WsssError(f"no pseudo labels named {name!r} in the run (made: {made})", ctx.path,
                        hint=f"set seg.labels to one of them, or to {GROUND_TRUTH!r}")  # fmt: skip
    return folders[name]


def stage_train_seg(ctx: Any) -> dict[str, Any]:
    """Train every configured network on the pseudo labels of the pseudo-label split (or on its
    ground truth, a variant with ``labels: ground truth``)."""
    from wsss.seg.train import train, train_seconds

    dataset = ctx.dataset(pseudo_split(ctx))
    runs = {}
    for variant in seg_variants(ctx):
        labels = seg_labels(ctx, variant)
        if "head" not in variant:
            raise WsssError(f"seg variant {variant['name']!r} needs a head (e.g. deeplabv3plus)")
        run = seg_dir(ctx, variant) / "train"
        weights = {**_settings(ctx), **variant}.get("weights")
        final = train(seg_recipe(ctx, variant, labels), run, dataset=dataset,
                      device=ctx.config["device"], progress=ctx.progress,
                      weights=weights)  # fmt: skip
        log = (run / "train.log").read_text(encoding="utf-8").splitlines()
        runs[variant["name"]] = {"checkpoint": str(final), "seconds": train_seconds(run),
                                 "labels": GROUND_TRUTH if labels is None else str(labels),
                                 "last_epoch": log[-1] if log else None}  # fmt: skip
    first = next(iter(runs.values()), {})
    return {"labels": first.get("labels"), "runs": runs}  # labels: the first network's


def stage_predict_seg(ctx: Any) -> dict[str, Any]:
    """Label the val split with every trained network (``seg.scales``, ``seg.flip``)."""
    from wsss.engine.training import resolve_device
    from wsss.seg.predict import predict_split
    from wsss.seg.train import load_trained

    settings = _settings(ctx)
    scales = tuple(float(s) for s in settings.get("scales") or (1.0,))
    device = ctx.config["device"]
    val = ctx.dataset("val")
    written = {}
    for variant in seg_variants(ctx):
        folder = seg_dir(ctx, variant)
        model, config = load_trained(folder / "train", resolve_device(device))
        done = predict_split(
            model, val, folder / "val", scales=scales, flip=bool(settings.get("flip", False)),
            n_segments=config.n_segments, superpixel_cache=ctx.path / "superpixels" / "val",
            checkpoint=f"{folder.name}/train/final.pt", device=device, progress=ctx.progress,
        )  # fmt: skip
        written[variant["name"]] = {"predictions": str(folder / "val"), **done}
    barrier()
    return written
