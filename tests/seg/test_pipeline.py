"""The pipeline's segmentation stages on a tiny dataset: training on a run's pseudo labels, val label
maps where ``Context.predictions()`` looks, resuming, and the label-folder choice."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wsss.data.voc import VOCSegmentation
from wsss.errors import WsssError
from wsss.io.images import read_label_png
from wsss.io.palette import write_label_png
from wsss.pipeline.segmentation import (
    seg_labels,
    seg_prediction_folders,
    stage_predict_seg,
    stage_train_seg,
)

TINY = {"epochs": 1, "batch_size": 4, "crop": 16, "n_segments": 10}


@dataclass
class FakeContext:
    """What the stages read of ``wsss.pipeline.stages.Context``."""

    root: Path
    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    progress: bool = False

    @property
    def data_root(self) -> Path:
        return self.root

    def dataset(self, split: str) -> VOCSegmentation:
        return VOCSegmentation(self.root, split=split)


def make_context(tiny_voc: Path, tmp_path: Path, **seg: Any) -> FakeContext:
    config = {"seed": 0, "device": "cpu", "data": {"dataset": "voc"},
              "gcn": {"variants": [{"name": "wsgcn_i", "label": "WSGCN-I"}]},
              "seg": {**TINY, **seg}}  # fmt: skip
    ctx = FakeContext(root=tiny_voc, path=tmp_path / "run", config=config)
    gcn = ctx.path / "gcn" / "wsgcn_i_crf"  # the default labels: "WSGCN-I + dCRF"
    for image_id in ctx.dataset("train").ids:  # the GT with its lower half unlabelled
        label = read_label_png(tiny_voc / "SegmentationClass" / f"{image_id}.png")
        label[12:] = 255
        write_label_png(gcn / f"{image_id}.png", label)
    return ctx


def test_train_and_predict_every_variant_then_resume(tiny_voc: Path, tmp_path: Path):
    ctx = make_context(tiny_voc, tmp_path)
    trained = stage_train_seg(ctx)
    assert trained["labels"] == str(ctx.path / "gcn" / "wsgcn_i_crf")
    assert set(trained["runs"]) == {"deeplabv3p", "escrf"}
    for name in ("deeplabv3p", "escrf"):
        saved = json.loads((ctx.path / f"seg_{name}" / "train" / "config.json").read_text())
        assert saved["config"]["labels"] == trained["labels"] and saved["config"]["epochs"] == 1
        assert saved["config"]["backbone"] == "small" and saved["config"]["optimizer"] == "adamw"
    predicted = stage_predict_seg(ctx)
    val = ctx.dataset("val")
    for name in ("deeplabv3p", "escrf"):
        assert predicted[name]["written"] == len(val) == 3
        for image_id in val.ids:
            label = read_label_png(ctx.path / f"seg_{name}" / "val" / f"{image_id}.png")
            assert label.shape == (24, 24) and label.max() < 21
    assert (ctx.path / "superpixels" / "val" / f"{val.ids[0]}.npz").is_file()  # ES-CRF's SLIC
    assert seg_prediction_folders(ctx) == {
        "DeepLabV3+": ctx.path / "seg_deeplabv3p" / "val",
        "ES-CRF": ctx.path / "seg_escrf" / "val",
    }
    # rerun: nothing retrained, nothing relabelled; a missing map is written again
    final = ctx.path / "seg_escrf" / "train" / "final.pt"
    stamp = final.stat().st_mtime_ns
    again = stage_train_seg(ctx)
    assert final.stat().st_mtime_ns == stamp
    assert again["runs"]["escrf"]["last_epoch"] == trained["runs"]["escrf"]["last_epoch"]
    (ctx.path / "seg_deeplabv3p" / "val" / f"{val.ids[1]}.png").unlink()
    redone = stage_predict_seg(ctx)
    assert redone["deeplabv3p"]["written"] == 1 and redone["escrf"]["written"] == 0


def test_label_folder_choice(tiny_voc: Path, tmp_path: Path):
    ctx = make_context(tiny_voc, tmp_path, labels="IRNet RW")
    with pytest.raises(WsssError, match="no pseudo labels named 'IRNet RW'.*WSGCN-I \\+ dCRF"):
        seg_labels(ctx)
    ctx.config["seg"]["labels"] = "WSGCN-I"
    with pytest.raises(WsssError, match="WSGCN-I"):  # made without the CRF? not in this run
        seg_labels(ctx)
    write_label_png(ctx.path / "gcn" / "wsgcn_i" / "x.png", np.zeros((2, 2), np.uint8))
    assert seg_labels(ctx) == ctx.path / "gcn" / "wsgcn_i"
    ctx.config["seg"] = {**TINY, "labels": "ground truth",
                         "variants": [{"name": "v2", "head": "deeplabv2", "label": "DeepLab-v2"}]}  # fmt: skip
    assert seg_labels(ctx) is None
    out = stage_train_seg(ctx)
    assert out["labels"] == "ground truth" and list(out["runs"]) == ["v2"]
    saved = json.loads((ctx.path / "seg_v2" / "train" / "config.json").read_text())["config"]
    assert saved["labels"] is None and saved["model"] == "deeplabv2"


def test_a_variant_can_train_on_the_ground_truth(tiny_voc: Path, tmp_path: Path):
    """The report's supervised ceiling: one network on the ground truth beside one on pseudo
    labels, in one stage."""
    ctx = make_context(tiny_voc, tmp_path, labels="WSGCN-I")
    write_label_png(ctx.path / "gcn" / "wsgcn_i" / "x.png", np.zeros((2, 2), np.uint8))
    variants = [{"name": "v2", "head": "deeplabv2"},
                {"name": "gt", "head": "deeplabv2", "labels": "ground truth"}]  # fmt: skip
    assert seg_labels(ctx, variants[0]) == ctx.path / "gcn" / "wsgcn_i"
    assert seg_labels(ctx, variants[1]) is None


def test_bad_variants(tiny_voc: Path, tmp_path: Path):
    ctx = make_context(tiny_voc, tmp_path, variants=[{"name": "a", "head": "escrf"},
                                                     {"name": "a", "head": "deeplabv3plus"}])  # fmt: skip
    with pytest.raises(WsssError, match="distinct names"):
        stage_train_seg(ctx)
    ctx.config["seg"]["variants"] = [{"name": "a"}]
    with pytest.raises(WsssError, match="needs a head"):
        stage_train_seg(ctx)
