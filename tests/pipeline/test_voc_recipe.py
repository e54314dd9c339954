"""The shipped ``voc`` configuration trains every stage with the papers' recipe (SPEC.md), so no
stage can fall back to the CPU demo's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsss.io.rundir import RunDir
from wsss.pipeline.config import apply_overrides, load_config
from wsss.pipeline.layout import Context
from wsss.pipeline.recipes import stage_recipes

#: SPEC.md's settings by run folder (section in the comment).
SPEC: dict[str, dict[str, object]] = {
    "cam_train": {  # 1: IRNet's classifier
        "backbone": "resnet50", "pretrained": True, "output_stride": 16, "epochs": 5,
        "batch_size": 16, "lr": 0.1, "classifier_lr_mult": 10.0, "weight_decay": 1e-4,
        "momentum": 0.9, "poly_power": 0.9, "crop": 512, "long_side": [320, 640],
        "freeze_bn": True, "freeze_stem": True, "flip": True, "split": "train_aug",
    },
    "affinity/irn": {  # 3: IRNet's inter-pixel relation network
        "radius": 10.0, "epochs": 3, "batch_size": 32, "lr": 0.1, "crop": 512,
        "long_side": [320, 640], "split": "train_aug",
    },
    "affinity/psa": {  # 3: AffinityNet
        "radius": 5.0, "epochs": 8, "batch_size": 8, "lr": 0.1, "weight_decay": 5e-4,
        "crop": 448, "split": "train_aug",
    },
    "group_train": {  # 5: Group-WSSS on ResNet-101
        "backbone": "resnet101", "pretrained": True, "group_size": 4, "steps": 3, "reduction": 4,
        "graph_dropout": True, "delta_r": 0.8, "delta_d": 0.7, "lam": 0.4, "epochs": 15,
        "lr": 1e-3, "gnn_lr_mult": 10.0, "weight_decay": 5e-4, "momentum": 0.9, "lr_step": 5,
        "lr_gamma": 0.1, "crop": 224, "split": "train_aug",
    },
    "seg_deeplabv2/train": {  # 7: DeepLab-v2 on an ImageNet ResNet-101, the reference recipe
        "model": "deeplabv2", "backbone": "resnet101", "pretrained": True, "optimizer": "sgd",
        "crop": 321, "batch_size": 10, "lr": 2.5e-4, "head_lr_mult": 10.0,
        "weight_decay": 5e-4, "momentum": 0.9, "poly_power": 0.9, "freeze_bn": True,
        "epochs": 20, "split": "train_aug",
    },
    "seg_escrf/train": {  # 6: ES-CRF (psi_p + psi_s) in DeepLabV3+ on ResNet-101
        "model": "escrf", "backbone": "resnet101", "pretrained": True, "pairwise": True,
        "superpixel": True, "n_segments": 200, "optimizer": "sgd", "crop": 512,
        "batch_size": 16, "lr": 0.01, "head_lr_mult": 10.0, "split": "train_aug",
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def recipes(tmp_path_factory) -> dict[str, dict[str, object]]:
    config = apply_overrides(load_config("voc"), {"data.root": "/data/VOC2012"})
    run = RunDir(tmp_path_factory.mktemp("voc-run"))
    return stage_recipes(Context(config=config, rundir=run, progress=False))


@pytest.mark.parametrize("folder", sorted(SPEC))
def test_voc_stage_recipe_is_the_papers(recipes, folder: str) -> None:
    got = recipes[folder]
    wrong = {k: (got.get(k), v) for k, v in SPEC[folder].items() if got.get(k) != v}
    assert not wrong, f"{folder}: (configured, SPEC) {wrong}"


def test_every_trained_stage_is_compared(recipes) -> None:
    assert set(recipes) == set(SPEC)


def test_the_demo_recipe_differs(tmp_path: Path) -> None:
    """The comparison can fail: the demo's CPU recipe is not the papers'."""
    ctx = Context(config=load_config("demo"), rundir=RunDir(tmp_path), progress=False)
    demo = stage_recipes(ctx)
    assert (
        demo["cam_train"]["backbone"] == "efficientnet_lite0" and demo["cam_train"]["crop"] != 512
    )
