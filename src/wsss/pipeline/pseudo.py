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
from wsss.io.atomic import atomic_write_text
from wsss.pipeline.layout import (
    cam_dir,
    eval_split,
    pseudo_label_folders,
    pseudo_split,
    seed_dir,
    train_split,
)

__all__ = ["cam_dir", "eval_split", "pseudo_split", "seed_dir", "stage_cam", "stage_pseudo_evaluate",
           "stage_seeds", "stage_train_cam", "train_split"]  # fmt: skip


def stage_train_cam(ctx: Any) -> dict[str, Any]:
    """Train the CAM classifier on the training split (``config["cam"]``, SPEC section 1)."""
    from wsss.cam.train import resolve_config, train

    cfg = ctx.config["cam"]
    config = resolve_config(
        dataset=ctx.config["data"]["dataset"],
        root=ctx.data_root,
        split=train_split(ctx),
        backbone=cfg["backbone"],
        epochs=cfg.get("epochs"),
        batch_size=cfg.get("batch_size"),
        lr=cfg.get("lr"),
        crop=cfg.get("crop"),
        seed=int(ctx.config["seed"]),
    )
    final = train(
        config,
        ctx.path / "cam_train",
        dataset=ctx.dataset(train_split(ctx)),
        device=ctx.config["device"],
        progress=ctx.progress,
    )
    log = (ctx.path / "cam_train" / "train.log").read_text().splitlines()
    return {"checkpoint": str(final), "last_epoch": log[-1] if log else None}


def stage_cam(ctx: Any) -> dict[str, Any]:
    """Multi-scale, flipped CAMs of the pseudo-label split (SPEC section 1, inference)."""
    from wsss.cam.infer import infer_cams, load_trained
    from wsss.engine.training import resolve_device

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
        make_seeds(dataset, cam_dir(ctx), out, seeder, device=ctx.config["device"],
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
