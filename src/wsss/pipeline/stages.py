"""The stages of the main job, each reading the previous stages' files from the run directory.

:data:`STAGES` is the chain a configuration runs unless it lists its own: ``stages: [cam, seeds,
...]`` names stages of :data:`STAGE_REGISTRY` (the ``photos`` configuration runs no training).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from wsss.baselines.colour import ColourClassifier
from wsss.engine import dist_info, pending, shard
from wsss.engine.progress import track
from wsss.engine.runner import Stage
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text
from wsss.io.palette import write_label_png
from wsss.pipeline.group import stage_group_cam, stage_train_group
from wsss.pipeline.layout import PREDICTION_FOLDERS, Context
from wsss.pipeline.propagation import (
    stage_ablation_gcn,
    stage_gcn,
    stage_random_walk,
    stage_train_affinity,
)
from wsss.pipeline.pseudo import (
    stage_cam,
    stage_cam_calibration,
    stage_crf,
    stage_pseudo_evaluate,
    stage_seeds,
    stage_train_cam,
)
from wsss.pipeline.segmentation import stage_predict_seg, stage_train_seg


def stage_data(ctx: Context) -> dict[str, Any]:
    """Generate the benchmark into the run directory, or check a given dataset root."""
    cfg = ctx.config["data"]
    if cfg.get("root"):
        train, val = ctx.dataset("train"), ctx.dataset("val")
        return {"root": str(ctx.data_root), "train": len(train), "val": len(val)}
    if cfg["dataset"] != "synthetic":
        raise WsssError(f"data.root is required for dataset {cfg['dataset']!r}")
    from wsss.synth.generate import generate_benchmark

    meta = generate_benchmark(
        ctx.data_root,
        n_train=int(cfg["train"]),
        n_val=int(cfg["val"]),
        size=int(cfg["size"]),
        seed=int(ctx.config["seed"]),
        progress=ctx.progress,
        own_texture_prob=cfg.get("own_texture_prob"),
    )
    return {"root": str(ctx.data_root), "train": cfg["train"], "val": cfg["val"],
            "classes": meta["classes"]}  # fmt: skip


def stage_colour_baseline(ctx: Context) -> dict[str, Any]:
    """Fit colour histograms on the train masks and label the val images (see baselines.colour)."""
    train, val = ctx.dataset("train"), ctx.dataset("val")
    model = ColourClassifier(num_classes=train.classes.num_classes).fit(train)
    out = ctx.path / PREDICTION_FOLDERS["colour-only (supervised, oracle labels)"] / "val"
    info = dist_info()
    todo = pending(shard(val.ids, info.rank, info.world), lambda i: out / f"{i}.png")
    for image_id in track(todo, description="colour baseline", enabled=ctx.progress):
        sample = val.load(image_id)
        present = np.flatnonzero(sample.labels) + val.classes.offset
        write_label_png(out / f"{image_id}.png", model.predict(sample.image, present))
    return {"predictions": str(out)}


def stage_evaluate(ctx: Context) -> dict[str, Any]:
    """Score every prediction folder of the run on the val split."""
    from wsss.metrics.evaluate import evaluate_predictions

    val = ctx.dataset("val")
    cfg = ctx.config["evaluation"]
    results = {}
    for name, folder in ctx.predictions().items():
        results[name] = evaluate_predictions(
            val,
            folder,
            pred_ignore=cfg["pred_ignore"],
            tolerance=int(cfg["boundary_tolerance"]),
            progress=ctx.progress,
        )
    target = ctx.path / "metrics" / "val.json"
    atomic_write_text(target, json.dumps(results, indent=2) + "\n")
    return {"metrics": str(target), "methods": list(results)}


def stage_report(ctx: Context) -> dict[str, Any]:
    """Write report.md, metrics.json and the sample grid."""
    from wsss.viz.report import write_report

    paths = write_report(ctx)
    return {k: str(v) for k, v in paths.items()}


STAGES: list[Stage] = [
    Stage(
        "data",
        stage_data,
        "generate the shipped benchmark (or check the dataset root)",
        main_only=True,
    ),
    Stage("colour_baseline", stage_colour_baseline, "colour-only reference classifier"),
    Stage("train_cam", stage_train_cam, "train the CAM classifier on image-level labels"),
    Stage("cam", stage_cam, "multi-scale CAMs of the training images"),
    Stage("train_group", stage_train_group, "Group-WSSS group classifier, from the CAM classifier"),
    Stage("group_cam", stage_group_cam, "Group-WSSS CAMs (intermediate, graph, ensemble), scored"),
    Stage("cam_calibration", stage_cam_calibration, "CAMs mapped to the papers' threshold scale"),
    Stage("seeds", stage_seeds, "IRNet and WSGCN seeds from the CAMs"),
    Stage("train_affinity", stage_train_affinity, "IRNet / AffinityNet affinity networks"),
    Stage("random_walk", stage_random_walk, "random-walk propagation of the CAMs"),
    Stage("gcn", stage_gcn, "WSGCN: per-image GCNs on the seeds"),
    Stage("ablation_gcn", stage_ablation_gcn, "WSGCN table 2 on a subset of train"),
    Stage("pseudo_evaluate", stage_pseudo_evaluate, "CAMs, seeds and pseudo labels on train"),
    Stage(
        "train_seg", stage_train_seg, "segmentation networks (DeepLabV3+, ES-CRF) on pseudo labels"
    ),
    Stage("predict_seg", stage_predict_seg, "val label maps of the segmentation networks"),
    Stage("evaluate", stage_evaluate, "mIoU and boundary F of every method on val"),
    Stage("report", stage_report, "report.md, metrics.json, figures", main_only=True),
]

#: Every stage by name: those of :data:`STAGES` and the ones only some chains run.
STAGE_REGISTRY: dict[str, Stage] = {
    **{stage.name: stage for stage in STAGES},
    "crf": Stage("crf", stage_crf, "dense CRF of the CAMs (complete labels)"),
}


def pipeline_stages(config: Mapping[str, Any]) -> list[Stage]:
    """The stage chain of a configuration: its ``stages`` list, in its order, else :data:`STAGES`.

    Raises:
        WsssError: ``stages`` is not a non-empty list of distinct names of :data:`STAGE_REGISTRY`.
    """
    names = config.get("stages")
    if names is None:
        _cam_calibrated(config)
        return list(STAGES)
    if not isinstance(names, list) or not names or len(set(map(str, names))) != len(names):
        raise WsssError(f"stages must be a non-empty list of distinct stage names, got {names!r}")
    unknown = [str(n) for n in names if n not in STAGE_REGISTRY]
    if unknown:
        raise WsssError(f"unknown stage(s) {', '.join(unknown)} in stages; valid names: "
                        f"{', '.join(STAGE_REGISTRY)}")  # fmt: skip
    if _cam_calibrated(config) and "cam" in names and "cam_calibration" not in names:
        raise WsssError("pseudo.cam_calibration is set but stages does not list cam_calibration "
                        "(after cam)")  # fmt: skip
    return [STAGE_REGISTRY[n] for n in names]


def _cam_calibrated(config: Mapping[str, Any]) -> bool:
    """Whether ``pseudo.cam_calibration`` is set (checked: null, "none", "ground truth" or a
    threshold strictly between 0 and 1)."""
    value = (config.get("pseudo") or {}).get("cam_calibration")
    if value in (None, "none"):
        return False
    if value == "ground truth":
        return True
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1:
        return True
    raise WsssError(f"pseudo.cam_calibration must be null, 'ground truth' or a threshold in (0, 1), "
                    f"got {value!r}")  # fmt: skip
