"""Pipeline stages of Group-WSSS (SPEC section 5): train the group classifier, write and score its
CAMs on the pseudo-label split.

Settings come from ``config["group"]`` (every key optional; an absent section takes
:data:`GROUP_DEFAULTS`, a small-backbone setting that fits the demo's CPU budget):

==============  ==============================================================================
``backbone``    backbone of the group classifier (``small``)
``epochs``      training epochs (None: the backbone's preset, small 3)
``group_size``  images per group ``K`` (4)
``rounds``      message-passing rounds ``T`` (3)
``output``      the output written to ``cams_group/<split>``: ``ensemble``, ``graph`` or
                ``intermediate`` (``ensemble``, the paper's self-ensembling)
``scales``      inference scales (``[1.0, 0.5]``: the GNN's cost grows with the square of the
                feature-map area, so larger scales cost much more than with the single model)
``init``        ``cam``: start the backbone and readouts from the run's single-image classifier
                (``cam_train/final.pt``, the demo's stand-in for ImageNet weights); ``null``:
                the backbone's own initialisation
==============  ==============================================================================

Files: ``<run>/group_train/`` (the ``train-cam --model group`` run directory),
``<run>/cams_group/<split>/`` (the chosen output's CAM files, as ``wsss cam`` writes them),
``<run>/cams_group/<other output>/<split>/`` (the two other outputs, for scoring) and
``<run>/metrics/group_cam.json`` (the background-threshold sweep of every output on the
evaluation split). The training split is ``data.train_split`` (default ``train``), the scored
one ``pseudo.eval_split`` (default the pseudo-label split), as the single-image stages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wsss.engine import barrier, is_main_process
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text
from wsss.pipeline.layout import cam_dir, eval_split, group_train_dir, pseudo_split, train_split

__all__ = ["GROUP_DEFAULTS", "group_cam_dir", "group_settings", "stage_group_cam",
           "stage_train_group"]  # fmt: skip

#: The settings of an absent ``group`` section (see the module notes).
GROUP_DEFAULTS: dict[str, Any] = {
    "backbone": "small", "epochs": None, "group_size": 4, "rounds": 3, "output": "ensemble",
    "scales": [1.0, 0.5], "init": "cam",
}  # fmt: skip


def group_settings(ctx: Any) -> dict[str, Any]:
    """``config["group"]`` over :data:`GROUP_DEFAULTS`.

    Raises:
        WsssError: an unknown key, output or init.
    """
    from wsss.group.infer import OUTPUTS

    given = ctx.config.get("group") or {}
    unknown = sorted(set(given) - set(GROUP_DEFAULTS))
    if unknown:
        raise WsssError(f"unknown group setting(s) {unknown}; valid: {', '.join(GROUP_DEFAULTS)}")
    settings = {**GROUP_DEFAULTS, **given}
    if settings["output"] not in OUTPUTS:
        raise WsssError(f"group.output must be one of {', '.join(OUTPUTS)}, "
                        f"not {settings['output']!r}")  # fmt: skip
    if settings["init"] not in ("cam", None):
        raise WsssError(f"group.init must be cam or null, not {settings['init']!r}")
    return settings


def group_cam_dir(ctx: Any, output: str | None = None) -> Path:
    """Folder of one output's CAM files of the pseudo-label split; the configured output (or
    None) is ``cams_group/<split>``, the others ``cams_group/<output>/<split>``."""
    base = Path(ctx.path) / "cams_group"
    if output is None or output == group_settings(ctx)["output"]:
        return base / pseudo_split(ctx)
    return base / output / pseudo_split(ctx)


def stage_train_group(ctx: Any) -> dict[str, Any]:
    """Train the group classifier on the training split (``config["group"]``)."""
    from wsss.group.train import resolve_group_config, train_group

    cfg = group_settings(ctx)
    init = None
    if cfg["init"] == "cam":
        init = Path(ctx.path) / "cam_train" / "final.pt"
        if not init.is_file():
            raise WsssError("missing; run the train_cam stage first (or set group.init: null)",
                            init)  # fmt: skip
    config = resolve_group_config(
        dataset=ctx.config["data"]["dataset"], root=ctx.data_root, split=train_split(ctx),
        backbone=cfg["backbone"], epochs=cfg["epochs"], group_size=int(cfg["group_size"]),
        steps=int(cfg["rounds"]), seed=int(ctx.config["seed"]), init=init,
    )  # fmt: skip
    out = group_train_dir(ctx)
    final = train_group(config, out, dataset=ctx.dataset(train_split(ctx)), device=ctx.config["device"],
                        progress=ctx.progress)  # fmt: skip
    log = (out / "train.log").read_text(encoding="utf-8").splitlines()
    return {"checkpoint": str(final), "last_epoch": log[-1] if log else None}


def _summary(scores: dict[str, Any], folder: Path) -> dict[str, Any]:
    return {"folder": str(folder), "best_threshold": scores["best_threshold"],
            "miou": scores["best"]["miou"], "miou_at": scores["miou_at"],
            "curve": scores["curve"]}  # fmt: skip


def stage_group_cam(ctx: Any) -> dict[str, Any]:
    """Group CAMs of the pseudo-label split, every output scored on the evaluation split by the
    background-threshold sweep into ``metrics/group_cam.json`` (with the single-image CAMs when
    the run has them)."""
    from wsss.engine.training import resolve_device
    from wsss.group.infer import OUTPUTS, infer_group_cams, load_group_trained
    from wsss.metrics.evaluate import evaluate_cams

    cfg = group_settings(ctx)
    device = ctx.config["device"]
    model, config = load_group_trained(group_train_dir(ctx) / "final.pt", resolve_device(device))
    dataset = ctx.dataset(pseudo_split(ctx))
    folders = {output: group_cam_dir(ctx, output) for output in OUTPUTS}
    done = infer_group_cams(
        model, dataset, folders, group_size=config.group_size, seed=config.seed,
        scales=tuple(float(s) for s in cfg["scales"]), high_res=True, device=device,
        progress=ctx.progress,
    )  # fmt: skip
    barrier()
    scored = ctx.dataset(eval_split(ctx))
    results: dict[str, Any] = {"split": scored.split, "output": cfg["output"],
                               "scales": list(cfg["scales"]), "outputs": {}}  # fmt: skip
    for output, folder in folders.items():
        scores = evaluate_cams(scored, folder, progress=ctx.progress)
        results["outputs"][output] = _summary(scores, folder)
    single = cam_dir(ctx)
    if all((single / f"{i}.npz").is_file() for i in scored.ids):
        results["single"] = _summary(evaluate_cams(scored, single, progress=ctx.progress), single)
    target = Path(ctx.path) / "metrics" / "group_cam.json"
    if is_main_process():
        atomic_write_text(target, json.dumps(results, indent=2) + "\n")
    barrier()
    mious = {o: round(r["miou"], 2) for o, r in results["outputs"].items()}
    return {"cams": str(group_cam_dir(ctx)), "metrics": str(target), "miou": mious, **done}
