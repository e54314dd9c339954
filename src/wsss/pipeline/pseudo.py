"""Pipeline stages that make and score pseudo labels for the training images.

SPEC section 0: pseudo-label quality is measured on the training split against its GT masks
(VOC ``train`` inside ``train_aug``); here the stages read ``config["pseudo"]["split"]``.
Each stage writes into the run directory and resumes where it stopped (finished images are
skipped by the per-image functions it calls).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wsss.engine import barrier
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text
from wsss.pipeline.layout import (
    cam_calibration,
    cam_dir,
    crf_dir,
    eval_split,
    pseudo_cam_dir,
    pseudo_label_folders,
    pseudo_split,
    seed_dir,
    train_split,
)
from wsss.pipeline.recipes import cam_recipe

__all__ = ["cam_dir", "eval_split", "pseudo_split", "seed_dir", "stage_cam", "stage_cam_calibration",
           "stage_crf", "stage_pseudo_evaluate", "stage_seeds", "stage_train_cam",
           "train_split"]  # fmt: skip


def stage_train_cam(ctx: Any) -> dict[str, Any]:
    """Train the CAM classifier on the training split (``config["cam"]``, SPEC section 1)."""
    from wsss.cam.train import train

    cfg = ctx.config["cam"]
    config = cam_recipe(ctx)
    final = train(config, ctx.path / "cam_train", dataset=ctx.dataset(train_split(ctx)),
                  device=ctx.config["device"], progress=ctx.progress,
                  weights=cfg.get("weights"))  # fmt: skip
    log = (ctx.path / "cam_train" / "train.log").read_text().splitlines()
    return {"checkpoint": str(final), "last_epoch": log[-1] if log else None}


def stage_cam(ctx: Any) -> dict[str, Any]:
    """Multi-scale, flipped CAMs of the pseudo-label split (SPEC section 1, inference): of the
    trained CAM classifier, or with ``cam.model: imagenet`` of Lite0's ImageNet head (no
    training; ``cam.combine``, ``cam.output_stride``, ``cam.person_proxies`` as in ``wsss cam``)."""
    from wsss.cam.infer import infer_cams, load_trained
    from wsss.engine.training import resolve_device

    if ctx.config["cam"].get("model", "trained") == "imagenet":
        return _imagenet_cams(ctx)
    device = ctx.config["device"]
    model, _ = load_trained(ctx.path / "cam_train" / "final.pt", resolve_device(device))
    scales = tuple(float(s) for s in ctx.config["cam"]["scales"])
    done = infer_cams(
        model,
        ctx.dataset(pseudo_split(ctx)),
        cam_dir(ctx),
        scales=scales,
        high_res=True,
        device=device,
        progress=ctx.progress,
    )
    barrier()
    return {"cams": str(cam_dir(ctx)), **done}


def _imagenet_cams(ctx: Any) -> dict[str, Any]:
    from wsss.cam.imagenet import DEFAULT_COMBINE, DEFAULT_OUTPUT_STRIDE, infer_imagenet_cams

    cfg = ctx.config["cam"]
    done = infer_imagenet_cams(
        ctx.dataset(pseudo_split(ctx)),
        cam_dir(ctx),
        combine=cfg.get("combine") or DEFAULT_COMBINE,
        output_stride=int(cfg.get("output_stride") or DEFAULT_OUTPUT_STRIDE),
        person_proxies=bool(cfg.get("person_proxies", True)),
        scales=tuple(float(s) for s in cfg["scales"]),
        device=ctx.config["device"],
        progress=ctx.progress,
    )
    barrier()
    return {"cams": str(cam_dir(ctx)), **done}


def stage_cam_calibration(ctx: Any) -> dict[str, Any]:
    """Calibrated copies of the CAMs (``pseudo.cam_calibration``, :mod:`wsss.cam.calibrate`) for
    the stages that apply the papers' thresholds to them; nothing when it is not set.

    ``"ground truth"`` takes the CAM's best background threshold on the evaluation split's masks
    (the sweep of ``wsss eval --cams``, the way IRNet's authors chose 0.15 on VOC train); a
    number is that threshold. The record (gamma, threshold, source) goes to the manifest and to
    ``cams_calibrated/<split>/calibration.json``.
    """
    from wsss.cam.calibrate import calibrate_cams, prepare_calibrated_folder, threshold_from_sweep
    from wsss.engine import dist_info, shard

    setting = cam_calibration(ctx)
    if setting is None:
        return {"calibration": None}
    if setting == "ground truth":
        from wsss.metrics.evaluate import evaluate_cams

        scores = evaluate_cams(ctx.dataset(eval_split(ctx)), cam_dir(ctx), progress=ctx.progress)
        threshold, source = threshold_from_sweep(scores, eval_split(ctx))
    elif isinstance(setting, (int, float)) and not isinstance(setting, bool):
        threshold, source = float(setting), "configuration"
    else:
        raise WsssError(f"pseudo.cam_calibration must be null, 'ground truth' or a threshold in "
                        f"(0, 1), got {setting!r}")  # fmt: skip
    info = dist_info()
    if info.rank == 0:
        prepare_calibrated_folder(pseudo_cam_dir(ctx), threshold=threshold, source=source)
    barrier()
    record = json.loads((pseudo_cam_dir(ctx) / "calibration.json").read_text())
    dataset = ctx.dataset(pseudo_split(ctx))
    written = calibrate_cams(cam_dir(ctx), pseudo_cam_dir(ctx), shard(dataset.ids, info.rank,
                             info.world), record["gamma"], progress=ctx.progress)  # fmt: skip
    barrier()
    return {"calibration": record, "cams": str(pseudo_cam_dir(ctx)), "written": written}


def stage_crf(ctx: Any) -> dict[str, Any]:
    """Dense CRF of the CAMs (``wsss refine --method crf``; ``config["crf"]``: ``bg_threshold``,
    ``preset``, ``n_iter``, None for the refiner's defaults), complete labels of the
    pseudo-label split in :func:`~wsss.pipeline.layout.crf_dir`."""
    from wsss.engine.training import resolve_device
    from wsss.propagation.infer import propagate
    from wsss.refine import create_refiner

    options = {k: v for k, v in (ctx.config.get("crf") or {}).items() if v is not None}
    refiner = create_refiner("crf", device=resolve_device(ctx.config["device"]), **options)
    done = propagate(ctx.dataset(pseudo_split(ctx)), pseudo_cam_dir(ctx), crf_dir(ctx), refiner,
                     progress=ctx.progress)  # fmt: skip
    barrier()
    return {"labels": str(crf_dir(ctx)), **done}


def stage_seeds(ctx: Any) -> dict[str, Any]:
    """Seeds of every configured scheme (SPEC section 2) at the image size for scoring; a scheme
    that works at stride 4 (WSGCN) keeps that size too, for the GCN stage, and its image-size
    copy is the nearest-neighbour upsampling of it (what ``wsss seeds --full-size`` writes)."""
    from wsss.seeds import create_seeder, make_seeds

    dataset = ctx.dataset(pseudo_split(ctx))
    written = {}
    for method in ctx.config["seeds"]["methods"]:
        seeder = create_seeder(method)
        out = seed_dir(ctx, method, full_size=seeder.full_resolution)
        make_seeds(dataset, pseudo_cam_dir(ctx), out, seeder, device=ctx.config["device"],
                   progress=ctx.progress)  # fmt: skip
        written[out.name] = str(out)
        if not seeder.full_resolution:
            full = seed_dir(ctx, method, full_size=True)
            _upsample_folder(dataset, out, full, progress=ctx.progress)
            written[full.name] = str(full)
    barrier()
    return written


def _upsample_folder(dataset: Any, src: Path, dst: Path, *, progress: bool) -> None:
    """``dst/<id>.png`` = ``src/<id>.png`` upsampled to the image size, for this rank's shard."""
    from wsss.engine import dist_info, pending, shard
    from wsss.engine.progress import track
    from wsss.io.images import read_label_png
    from wsss.io.palette import write_label_png
    from wsss.seeds import upsample_labels

    info = dist_info()
    todo = pending(shard(dataset.ids, info.rank, info.world), lambda i: dst / f"{i}.png")
    for image_id in track(todo, description=f"{dst.name} upsampling", enabled=progress):
        height, width = dataset.load_image(image_id).shape[:2]
        label = read_label_png(src / f"{image_id}.png")
        write_label_png(dst / f"{image_id}.png", upsample_labels(label, (height, width)))


def stage_pseudo_evaluate(ctx: Any) -> dict[str, Any]:
    """CAM background-threshold sweep and seed precision / recall / labelled ratio on the
    evaluation split (:func:`eval_split`), into ``metrics/pseudo.json``."""
    from wsss.metrics.evaluate import evaluate_cams, evaluate_predictions

    dataset = ctx.dataset(eval_split(ctx))
    results: dict[str, Any] = {
        "split": eval_split(ctx),
        "cam": evaluate_cams(dataset, cam_dir(ctx), progress=ctx.progress),
        "seeds": {},
    }
    for method in ctx.config["seeds"]["methods"]:
        results["seeds"][method] = evaluate_predictions(
            dataset,
            seed_dir(ctx, method, full_size=True),
            pred_ignore="ignore",
            boundary=False,
            progress=ctx.progress,
        )

    results["labels"] = {
        name: evaluate_predictions(dataset, folder, pred_ignore="background", progress=ctx.progress)
        for name, folder in pseudo_label_folders(ctx).items()
    }
    target = ctx.path / "metrics" / "pseudo.json"
    atomic_write_text(target, json.dumps(results, indent=2) + "\n")
    return {"metrics": str(target)}
