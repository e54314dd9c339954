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


def _pseudo_split(ctx: Any) -> str:
    return str(ctx.config.get("pseudo", {}).get("split", "train"))


def cam_dir(ctx: Any) -> Path:
    """Folder of the CAM files of the pseudo-label split."""
    return ctx.path / "cams" / _pseudo_split(ctx)


def seed_dir(ctx: Any, method: str, *, full_size: bool) -> Path:
    """Folder of one seed method's label PNGs (full image size, or the scheme's own size)."""
    return ctx.path / "seeds" / (f"{method}_full" if full_size else method)


def stage_train_cam(ctx: Any) -> dict[str, Any]:
    """Train the CAM classifier on the training split (``config["cam"]``, SPEC section 1)."""
    from wsss.cam.train import resolve_config, train

    cfg = ctx.config["cam"]
    config = resolve_config(
        dataset=ctx.config["data"]["dataset"],
        root=ctx.data_root,
        split="train",
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
        dataset=ctx.dataset("train"),
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
        ctx.dataset(_pseudo_split(ctx)),
        cam_dir(ctx),
        scales=scales,
        high_res=True,
        device=device,
        progress=ctx.progress,
    )
    barrier()
    return {"cams": str(cam_dir(ctx)), **done}


def stage_seeds(ctx: Any) -> dict[str, Any]:
    """Seeds of every configured scheme (SPEC section 2), at image size for scoring and, where
    the scheme works at stride 4 (WSGCN), also at that size for the GCN stage."""
    from wsss.seeds import create_seeder, make_seeds

    dataset = ctx.dataset(_pseudo_split(ctx))
    written = {}
    for method in ctx.config["seeds"]["methods"]:
        seeder = create_seeder(method)
        sizes = [True] if seeder.full_resolution else [True, False]
        for full in sizes:
            out = seed_dir(ctx, method, full_size=full)
            make_seeds(dataset, cam_dir(ctx), out, seeder, full_size=full,
                       device=ctx.config["device"], progress=ctx.progress)  # fmt: skip
            written[out.name] = str(out)
    barrier()
    return written


def stage_pseudo_evaluate(ctx: Any) -> dict[str, Any]:
    """CAM background-threshold sweep and seed precision / recall / labelled ratio on the
    pseudo-label split, into ``metrics/pseudo.json``."""
    from wsss.metrics.evaluate import evaluate_cams, evaluate_predictions

    dataset = ctx.dataset(_pseudo_split(ctx))
    results: dict[str, Any] = {
        "split": _pseudo_split(ctx),
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
    target = ctx.path / "metrics" / "pseudo.json"
    atomic_write_text(target, json.dumps(results, indent=2) + "\n")
    return {"metrics": str(target)}
