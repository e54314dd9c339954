"""Checks of a run configuration before any stage runs: settings, and the ImageNet weights that the
training stages still to run will load (so an offline node fails at once, not hours in)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from wsss.models.backbones import HAS_PRETRAINED
from wsss.models.weights import IMAGENET_URLS, require_weights
from wsss.pipeline.layout import Context, group_train_dir, seg_dir, seg_settings, seg_variants
from wsss.pipeline.schema import check_config

__all__ = ["check_run", "weights_needed"]


def weights_needed(ctx: Context | SimpleNamespace) -> list[tuple[str, str, str | None]]:
    """``(stage, backbone, weights option)`` of every training stage of the run's chain
    (``stages``, default all) that has not finished and starts from torchvision ImageNet
    weights."""
    config, needed = ctx.config, []
    chain = config.get("stages")
    runs = (lambda name: True) if chain is None else (lambda name: name in chain)
    cam = config.get("cam") or {}
    if runs("train_cam") and not (ctx.path / "cam_train" / "final.pt").is_file() and cam:
        backbone = str(cam.get("backbone", "resnet50"))
        if cam.get("pretrained", HAS_PRETRAINED.get(backbone, False)):
            needed.append(("train_cam", backbone, cam.get("weights")))
    group = config.get("group")
    if (
        runs("train_group")
        and group
        and not (group_train_dir(ctx) / "final.pt").is_file()
        and group.get("init") is None
    ):
        backbone = str(group.get("backbone", "small"))
        if group.get("pretrained", HAS_PRETRAINED.get(backbone, False)):
            needed.append(("train_group", backbone, group.get("weights")))
    for variant in seg_variants(ctx) if runs("train_seg") and config.get("seg") else []:
        s = {"backbone": "small", **seg_settings(ctx), **variant}
        if s.get("pretrained") and not (seg_dir(ctx, variant) / "train" / "final.pt").is_file():
            needed.append((f"train_seg ({variant['name']})", str(s["backbone"]), s.get("weights")))
    return [n for n in needed if n[1] in IMAGENET_URLS]


def check_run(config: dict[str, Any], run: Path) -> None:
    """Every setting known and typed; every needed weights file found (or downloaded).

    Raises:
        WsssError: the first problem, in one line.
    """
    check_config(config)
    ctx = SimpleNamespace(config=config, path=Path(run))  # the layout only; creates nothing
    for _stage, backbone, weights in weights_needed(ctx):
        require_weights(backbone, weights)
