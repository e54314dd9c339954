"""WSGCN table 2: the loss terms of eq. (2) switched on one by one, and the dense CRF, next to the
CAM and random-walk baselines, all scored on the same images of a finished run.

The run directory must hold the CAMs (``cam`` stage) and the IRNet affinity run
(``train_affinity``); random-walk rows appear for every ``rw/<method>`` folder of the run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from wsss.engine import barrier, dist_info, pending, shard
from wsss.engine.progress import track
from wsss.errors import WsssError
from wsss.gcn.losses import LossWeights
from wsss.io.atomic import atomic_write_text
from wsss.io.images import read_label_png
from wsss.io.palette import write_label_png
from wsss.io.rundir import RunDir
from wsss.pipeline.layout import (
    Context,
    affinity_run,
    cam_dir,
    eval_split,
    gcn_dir,
    pseudo_cam_dir,
    rw_dir,
)

#: The rows of WSGCN table 2: (name, loss weights of eq. (2), dense CRF after the GCN).
GCN_VARIANTS: tuple[tuple[str, LossWeights, bool], ...] = (
    ("GCN: l_fg + l_bg", LossWeights(entropy=0.0, laplacian=0.0), False),
    ("GCN: + l_ent", LossWeights(laplacian=0.0), False),
    ("GCN: + l_lp", LossWeights(entropy=0.0), False),
    ("GCN: + l_ent + l_lp (WSGCN-I)", LossWeights(), False),
    ("GCN: + l_ent + l_lp + dCRF", LossWeights(), True),
)


def _slug(name: str) -> str:
    keep = [c if c.isalnum() else "_" for c in name.lower()]
    return "_".join(part for part in "".join(keep).split("_") if part)


def _reusable_rows(ctx: Any) -> dict[str, Path]:
    """Rows the run's ``gcn`` stage has already made, by row name -> its label folder.

    The WSGCN-I rows (all losses, without and with the dense CRF) equal the ``gcn`` stage's
    output for a variant on the sparse graph of the IRNet run with no other options (same
    propagator, settings and per-image seeds; a GCN's result does not depend on its batch), so
    their labels are copied instead of trained again.
    """

    for variant in ctx.config.get("gcn", {}).get("variants", []):
        plain = set(variant) <= {"name", "label", "graph", "affinity"}
        if (
            plain
            and variant.get("graph", "sparse") == "sparse"
            and variant.get("affinity") == "irn"
        ):
            return {GCN_VARIANTS[3][0]: gcn_dir(ctx, variant, crf=False),
                    GCN_VARIANTS[4][0]: gcn_dir(ctx, variant, crf=True)}  # fmt: skip
    return {}


def ablate_gcn(
    run: str | Path,
    *,
    limit: int | None = 100,
    batch_size: int = 32,
    device: str | None = None,
    reuse: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Score the table-2 rows on the first ``limit`` images of the run's pseudo-label split.

    Labels go to ``<run>/ablation/gcn/<row>/`` (resumable, sharded by rank), the table to
    ``<run>/ablation/gcn.json`` and ``gcn.md``. Each image's graph and features are built once
    and its GCN trained once per distinct loss setting; with ``reuse``, the WSGCN-I rows are
    copied from the run's ``gcn`` stage where it has made them (:func:`_reusable_rows`).

    Returns:
        ``{"images", "rows": {name: scores}}`` with :func:`evaluate_predictions`-style scores
        (the CAM row: its best-threshold scores, plus ``threshold``).

    Raises:
        WsssError: not a run directory, or a stage it needs has not run.
    """
    from wsss.gcn.train import train_gcn
    from wsss.metrics.evaluate import evaluate_cams, evaluate_predictions
    from wsss.propagation.infer import create_propagator
    from wsss.seeds.infer import read_cam_for_image

    rundir = RunDir(run)
    config = rundir.load_config()
    if config is None:
        raise WsssError("not a run directory (no config.yaml)", rundir.path,
                        hint="run `wsss run` first")  # fmt: skip
    ctx = Context(config=config, rundir=rundir, progress=progress)
    for needed in (pseudo_cam_dir(ctx), affinity_run(ctx, "irn") / "final.pt"):
        if not needed.exists():
            raise WsssError("missing; run the cam and train_affinity stages first", needed)
    dataset = ctx.dataset(eval_split(ctx))
    if limit is not None:
        dataset.ids = dataset.ids[:limit]
    dev = device or str(config.get("device", "cpu"))
    propagator: Any = create_propagator("gcn", graph="sparse", affinity=affinity_run(ctx, "irn"),
                                        crf=True, seed=int(config["seed"]), device=dev)  # fmt: skip
    base = rundir.path / "ablation" / "gcn"
    outs = {name: base / _slug(name) for name, _, _ in GCN_VARIANTS}
    info = dist_info()
    mine = shard(dataset.ids, info.rank, info.world)
    missing: set[str] = set()
    for folder in outs.values():
        missing.update(pending(mine, lambda i, d=folder: d / f"{i}.png"))
    todo = [i for i in mine if i in missing]
    groups = [todo[k : k + batch_size] for k in range(0, len(todo), batch_size)]
    settings = {repr(w): dataclasses.replace(propagator.settings, losses=w)
                for _, w, _ in GCN_VARIANTS}  # fmt: skip
    reuse = _reusable_rows(ctx) if reuse else {}
    for group in track(groups, description="GCN ablation", enabled=progress):
        images = [dataset.load_image(i) for i in group]
        cams = [read_cam_for_image(pseudo_cam_dir(ctx) / f"{i}.npz", size=im.shape[:2],
                                   num_classes=dataset.classes.num_classes,
                                   full_resolution=False)
                for i, im in zip(group, images, strict=True)]  # fmt: skip
        present = [k for k, cam in enumerate(cams) if len(cam.keys)]
        problems = [propagator.problem(images[k], cams[k], image_id=group[k]) for k in present]
        copied = {name for name, src in reuse.items()
                  if all((src / f"{i}.png").is_file() for i in group)}  # fmt: skip
        needed = {repr(w) for name, w, _ in GCN_VARIANTS if name not in copied}
        probs = {key: dict(zip(present, train_gcn(problems, s), strict=True))
                 for key, s in settings.items() if key in needed}  # fmt: skip
        for name, weights, crf in GCN_VARIANTS:
            if name in copied:
                for image_id in group:
                    label = read_label_png(reuse[name] / f"{image_id}.png")
                    write_label_png(outs[name] / f"{image_id}.png", label)
                continue
            trained = probs[repr(weights)]
            for k, image_id in enumerate(group):
                label = (propagator.finish(images[k], cams[k], trained[k], crf=crf)
                         if k in trained else np.zeros(images[k].shape[:2], np.uint8))  # fmt: skip
                write_label_png(outs[name] / f"{image_id}.png", label)
    barrier()
    cam = evaluate_cams(dataset, cam_dir(ctx), progress=progress)
    rows: dict[str, Any] = {"CAM": {**cam["best"], "threshold": cam["best_threshold"]}}
    names = {"psa": "AffinityNet RW", "irn": "IRNet RW"}
    for method, name in names.items():
        if rw_dir(ctx, method).is_dir():
            rows[name] = evaluate_predictions(dataset, rw_dir(ctx, method), boundary=False,
                                              progress=progress)  # fmt: skip
    for name, folder in outs.items():
        rows[name] = evaluate_predictions(dataset, folder, boundary=False, progress=progress)
    result = {"run": str(rundir.path), "split": eval_split(ctx), "images": len(dataset.ids),
              "rows": rows}  # fmt: skip
    atomic_write_text(base.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    atomic_write_text(base.with_suffix(".md"), "\n".join(gcn_table(result)) + "\n")
    return result


def gcn_table(result: dict[str, Any]) -> list[str]:
    """Markdown lines of the table: method, mIoU, pixel accuracy."""
    lines = [
        f"WSGCN table 2 layout: {result['images']} images of {result['split']} "
        f"(mIoU, predicted 255 as background)",
        "",
        "| method | mIoU | pixel acc. |",
        "|---|---:|---:|",
    ]
    for name, scores in result["rows"].items():
        lines.append(f"| {name} | {scores['miou']:.2f} | {scores['pixel_accuracy']:.2f} |")
    return lines
