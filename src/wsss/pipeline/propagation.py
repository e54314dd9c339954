"""Pipeline stages that propagate seeds into complete pseudo labels (SPEC sections 3-4): the
affinity networks (IRNet boundary net, AffinityNet) and their random walks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsss.engine import barrier
from wsss.pipeline.pseudo import cam_dir, pseudo_split, seed_dir


def affinity_run(ctx: Any, method: str) -> Path:
    """Run directory of one affinity network."""
    return ctx.path / "affinity" / method


def rw_dir(ctx: Any, method: str) -> Path:
    """Folder of one random walk's label PNGs (image size)."""
    return ctx.path / "rw" / method


def _methods(ctx: Any) -> list[str]:
    return list(ctx.config.get("affinity", {}).get("methods", []))


def stage_train_affinity(ctx: Any) -> dict[str, Any]:
    """Train each configured affinity network on the IRNet seeds of the training images, on top
    of the trained CAM backbone (``config["affinity"]``)."""
    from wsss.affinity.train import resolve_config, train

    cfg = ctx.config["affinity"]
    runs = {}
    for method in _methods(ctx):
        config = resolve_config(
            method=method,
            cam_checkpoint=ctx.path / "cam_train" / "final.pt",
            seeds=seed_dir(ctx, cfg.get("seeds", "irnet"), full_size=True),
            dataset=ctx.config["data"]["dataset"],
            root=ctx.data_root,
            split="train",
            epochs=(cfg.get("epochs") or {}).get(method),
            batch_size=cfg.get("batch_size"),
            seed=int(ctx.config["seed"]),
        )
        final = train(config, affinity_run(ctx, method), dataset=ctx.dataset("train"),
                      device=ctx.config["device"], progress=ctx.progress)  # fmt: skip
        runs[method] = str(final)
    return runs


def stage_random_walk(ctx: Any) -> dict[str, Any]:
    """Random-walk propagation of the CAMs with each trained affinity network."""
    from wsss.propagation.infer import create_propagator, propagate

    dataset = ctx.dataset(pseudo_split(ctx))
    written = {}
    for method in _methods(ctx):
        propagator = create_propagator(
            "rw", affinity=affinity_run(ctx, method), device=ctx.config["device"]
        )
        out = rw_dir(ctx, method)
        propagate(dataset, cam_dir(ctx), out, propagator, progress=ctx.progress)
        written[method] = str(out)
    barrier()
    return written


def pseudo_label_folders(ctx: Any) -> dict[str, Path]:
    """Complete pseudo-label folders made so far, by display name (for scoring and the report)."""
    names = {"irn": "IRNet RW", "psa": "AffinityNet RW"}
    return {
        names.get(m, f"{m} RW"): rw_dir(ctx, m) for m in _methods(ctx) if rw_dir(ctx, m).is_dir()
    }
