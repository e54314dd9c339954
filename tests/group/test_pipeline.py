"""The Group-WSSS pipeline stages on a fake run: files, metrics, resume and settings errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from wsss.cam.infer import infer_cams, load_trained
from wsss.data.voc import VOCSegmentation
from wsss.engine.training import load_checkpoint
from wsss.errors import WsssError
from wsss.io.rundir import RunDir
from wsss.pipeline.group import group_cam_dir, group_settings, stage_group_cam, stage_train_group
from wsss.pipeline.stages import Context


def _ctx(run: Path, root: Path, **group) -> Context:
    config = {"seed": 0, "device": "cpu", "data": {"dataset": "voc", "root": str(root)},
              "pseudo": {"split": "train"},
              "group": {"epochs": 1, "group_size": 3, "rounds": 1, "scales": [1.0], **group}}  # fmt: skip
    return Context(config=config, rundir=RunDir(run), progress=False)


def test_stages_train_write_and_score(tiny_voc: Path, single_run: Path, tmp_path: Path):
    ctx = _ctx(tmp_path / "run", tiny_voc, output="graph", messages="mean")
    with pytest.raises(WsssError, match="run the train_cam stage first"):
        stage_train_group(ctx)
    shutil.copytree(single_run, ctx.path / "cam_train")
    single, _ = load_trained(ctx.path / "cam_train", "cpu")
    infer_cams(single, VOCSegmentation(tiny_voc), ctx.path / "cams" / "train", scales=[1.0],
               progress=False)  # fmt: skip
    trained = stage_train_group(ctx)
    assert Path(trained["checkpoint"]) == ctx.path / "group_train" / "final.pt"
    assert trained["last_epoch"].startswith("epoch 1/1")
    assert load_checkpoint(trained["checkpoint"])["config"]["messages"] == "mean"
    done = stage_group_cam(ctx)
    assert done["written"] == 27 and set(done["miou"]) == {"intermediate", "graph", "ensemble"}
    assert group_cam_dir(ctx) == ctx.path / "cams_group" / "train"
    for folder in (group_cam_dir(ctx), *(ctx.path / "cams_group" / o / "train"
                                         for o in ("intermediate", "ensemble"))):  # fmt: skip
        assert len(list(folder.glob("*.npz"))) == 9, folder
    metrics = json.loads((ctx.path / "metrics" / "group_cam.json").read_text())
    assert metrics["output"] == "graph" and set(metrics) >= {"outputs", "single", "split"}
    for scores in (*metrics["outputs"].values(), metrics["single"]):
        assert 0 <= scores["miou"] <= 100 and 0 <= scores["best_threshold"] < 1
    assert metrics["outputs"]["graph"]["folder"] == str(group_cam_dir(ctx))
    assert stage_group_cam(ctx)["written"] == 0  # resumed: every file exists


def test_settings_defaults_and_errors(tmp_path: Path):
    ctx = _ctx(tmp_path, tmp_path)
    ctx.config.pop("group")
    settings = group_settings(ctx)
    assert (settings["backbone"], settings["group_size"], settings["rounds"]) == ("small", 4, 3)
    assert settings["output"] == "ensemble" and settings["init"] == "cam"
    assert (settings["messages"], settings["drop_form"], settings["drop_eval"]) == (
        "sum", "paper", "expected")  # fmt: skip
    for bad, message in [({"foo": 1}, "unknown group setting"), ({"output": "mean"}, "group.output"),
                         ({"init": "imagenet"}, "group.init"), ({"messages": "max"}, "group.messages"),
                         ({"drop_form": "half"}, "group.drop_form"),
                         ({"drop_eval": "off"}, "group.drop_eval")]:  # fmt: skip
        ctx.config["group"] = bad
        with pytest.raises(WsssError, match=message):
            group_settings(ctx)
