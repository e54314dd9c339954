"""The resolved training recipe of every trained stage of a run, from its configuration.

The stages train with exactly these (``train_cam``, ``train_affinity``, ``train_group``,
``train_seg``), and :func:`stage_recipes` lists them all without training anything, so that a
configuration can be compared with the papers' settings (``tests/pipeline/test_voc_recipe.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsss.errors import WsssError
from wsss.pipeline.layout import (
    affinity_methods,
    pseudo_split,
    seed_dir,
    seg_settings,
    seg_variants,
    train_split,
)
from wsss.pipeline.schema import section_keys, trainer_settings

__all__ = [
    "GROUP_DEFAULTS",
    "affinity_recipe",
    "cam_recipe",
    "group_recipe",
    "group_settings",
    "seg_recipe",
    "stage_recipes",
]


#: The settings of an absent ``group`` section (see the module notes).
GROUP_DEFAULTS: dict[str, Any] = {
    "backbone": "small", "epochs": None, "group_size": 4, "rounds": 3, "output": "ensemble",
    "scales": [1.0, 0.5], "init": "cam", "messages": "sum", "drop_form": "paper",
    "drop_eval": "expected",
}  # fmt: skip


def group_settings(ctx: Any) -> dict[str, Any]:
    """``config["group"]`` over :data:`GROUP_DEFAULTS`.

    Raises:
        WsssError: an unknown key, output, init, message rule or graph dropout rule.
    """
    from wsss.group.dropout import DROP_EVAL_RULES, DROP_FORMS
    from wsss.group.infer import OUTPUTS
    from wsss.group.messages import MESSAGE_NORMS

    given = ctx.config.get("group") or {}
    valid = {*GROUP_DEFAULTS, *section_keys("group")}
    unknown = sorted(set(given) - valid)
    if unknown:
        raise WsssError(f"unknown group setting(s) {unknown}; valid: {', '.join(sorted(valid))}")
    settings = {**GROUP_DEFAULTS, **given}
    if settings["output"] not in OUTPUTS:
        raise WsssError(f"group.output must be one of {', '.join(OUTPUTS)}, "
                        f"not {settings['output']!r}")  # fmt: skip
    if settings["init"] not in ("cam", None):
        raise WsssError(f"group.init must be cam or null, not {settings['init']!r}")
    for key, valid in (("messages", MESSAGE_NORMS), ("drop_form", DROP_FORMS),
                       ("drop_eval", DROP_EVAL_RULES)):  # fmt: skip
        if settings[key] not in valid:
            raise WsssError(f"group.{key} must be one of {', '.join(valid)}, "
                            f"not {settings[key]!r}")  # fmt: skip
    return settings


def _data(ctx: Any, split: str) -> dict[str, Any]:
    return {"dataset": ctx.config["data"]["dataset"], "root": ctx.data_root, "split": split,
            "seed": int(ctx.config["seed"])}  # fmt: skip


def cam_recipe(ctx: Any) -> Any:
    """The CAM classifier's :class:`~wsss.cam.train.TrainConfig` (``config["cam"]``)."""
    from wsss.cam.train import resolve_config

    return resolve_config(
        **_data(ctx, train_split(ctx)), **trainer_settings(ctx.config["cam"], "cam")
    )


def affinity_recipe(ctx: Any, method: str, cam_config: Any | None = None) -> Any:
    """One affinity network's :class:`~wsss.affinity.train.AffinityConfig`: ``affinity.<method>``
    over the section's per-method ``epochs`` and shared ``batch_size``; the presets follow the CAM
    recipe (``cam_config``, else the trained CAM run's)."""
    from wsss.affinity.train import resolve_config

    cfg = ctx.config["affinity"]
    shared = {"epochs": (cfg.get("epochs") or {}).get(method), "batch_size": cfg.get("batch_size")}
    options = {**trainer_settings(shared, "affinity"),
               **trainer_settings(cfg.get(method) or {}, "affinity")}  # fmt: skip
    return resolve_config(
        method=method, cam_checkpoint=ctx.path / "cam_train" / "final.pt", cam_config=cam_config,
        seeds=seed_dir(ctx, cfg.get("seeds", "irnet"), full_size=True),
        **_data(ctx, pseudo_split(ctx)), **options,
    )  # fmt: skip


def group_recipe(ctx: Any, init: Path | None, *, check_init: bool = True) -> Any:
    """The group classifier's :class:`~wsss.group.config.GroupTrainConfig` (``config["group"]``
    over :data:`~wsss.pipeline.group.GROUP_DEFAULTS`)."""
    from wsss.group.config import resolve_group_config

    cfg = group_settings(ctx)
    return resolve_group_config(
        **_data(ctx, train_split(ctx)), group_size=int(cfg["group_size"]),
        steps=int(cfg["rounds"]), init=init, check_init=check_init,
        **trainer_settings(cfg, "group"),
    )  # fmt: skip


def seg_recipe(ctx: Any, variant: dict[str, Any], labels: Path | None) -> Any:
    """One segmentation network's :class:`~wsss.seg.config.SegConfig`: the variant's keys over
    the ``seg`` section (backbone ``small`` unless given)."""
    from wsss.seg.config import resolve_config

    s = {"backbone": "small", **seg_settings(ctx), **variant}
    return resolve_config(**_data(ctx, pseudo_split(ctx)), labels=labels, model=str(s["head"]),
                          **trainer_settings(s, "seg"))  # fmt: skip


def stage_recipes(ctx: Any) -> dict[str, dict[str, Any]]:
    """Every training stage's resolved recipe (``to_dict()``), by run folder: ``cam_train``,
    ``affinity/<method>``, ``group_train`` (when configured), ``seg_<name>/train``. Paths to files
    that later stages make (CAM run, seeds, pseudo labels) are as the run would give them."""
    cam = cam_recipe(ctx)
    recipes = {"cam_train": cam.to_dict()}
    for method in affinity_methods(ctx):
        recipes[f"affinity/{method}"] = affinity_recipe(ctx, method, cam).to_dict()
    if ctx.config.get("group") is not None:
        init = ctx.path / "cam_train" / "final.pt" if group_settings(ctx)["init"] == "cam" else None
        recipes["group_train"] = group_recipe(ctx, init, check_init=False).to_dict()
    if ctx.config.get("seg") is not None:
        for variant in seg_variants(ctx):
            recipes[f"seg_{variant['name']}/train"] = seg_recipe(ctx, variant, None).to_dict()
    return recipes
