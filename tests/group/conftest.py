"""Shared fixtures of the group tests: a tiny VOC-layout split and models trained on it once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fakes import make_voc


def tiny_masks(n: int = 9) -> dict[str, np.ndarray]:
    """``n`` masks of two sizes (20x20 and 16x24): one rectangle of class ``1 + i % 3``, and a
    second class in every fourth image."""
    masks = {}
    for i in range(n):
        size = (20, 20) if i % 2 == 0 else (16, 24)
        mask = np.zeros(size, np.uint8)
        mask[2:10, 3 + i % 4 : 12] = 1 + i % 3
        if i % 4 == 0:
            mask[12:15, 14:18] = 4
        masks[f"img{i:02d}"] = mask
    return masks


@pytest.fixture(scope="module")
def tiny_voc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_voc(tmp_path_factory.mktemp("voc") / "voc", tiny_masks())


def tiny_group_config(root: Path, **overrides):
    from wsss.group.train import resolve_group_config

    values = {"dataset": "voc", "root": root, "backbone": "small", "epochs": 1, "group_size": 3,
              "steps": 1, "crop": 16, "long_side": (16, 20), "lr": 0.01}  # fmt: skip
    values.update(overrides)
    return resolve_group_config(**values)


@pytest.fixture(scope="module")
def group_run(tiny_voc: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A group classifier trained one epoch (``final.pt`` inside)."""
    from wsss.data.voc import VOCSegmentation
    from wsss.group.train import train_group

    out = tmp_path_factory.mktemp("group_run")
    train_group(tiny_group_config(tiny_voc), out, dataset=VOCSegmentation(tiny_voc), progress=False)
    return out


@pytest.fixture(scope="module")
def single_run(tiny_voc: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A single-image CAM classifier trained one epoch."""
    from wsss.cam.train import resolve_config, train
    from wsss.data.voc import VOCSegmentation

    out = tmp_path_factory.mktemp("single_run")
    config = resolve_config(dataset="voc", root=tiny_voc, backbone="small", epochs=1,
                            batch_size=4, crop=16, long_side=(16, 20))  # fmt: skip
    train(config, out, dataset=VOCSegmentation(tiny_voc), progress=False)
    return out
