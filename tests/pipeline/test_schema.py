"""Strict run configurations: every key known and typed, checked before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import run_wsss
from wsss.errors import WsssError
from wsss.pipeline.config import apply_overrides, load_config
from wsss.pipeline.schema import check_config, section_keys, trainer_options, trainer_settings


def _refused(args: list[str], tmp_path: Path, monkeypatch, capsys) -> str:
    out = tmp_path / "run"
    assert run_wsss(["run", "--out", str(out), *args], monkeypatch) == 2
    assert not out.exists()  # nothing written
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_a_typo_is_named_with_the_nearest_key(tmp_path, monkeypatch, capsys) -> None:
    line = _refused(["--config", "demo", "--set", "cam.epochz=3"], tmp_path, monkeypatch, capsys)
    assert "unknown setting 'cam.epochz'" in line and "did you mean cam.epochs?" in line
    assert "valid keys here: backbone, batch_size," in line


@pytest.mark.parametrize(
    "setting, message",
    [
        ("cams.epochs=3", "unknown setting 'cams' (did you mean cams?"),
        ("cam.epochs=abc", "setting 'cam.epochs' must be int, null, got 'abc'"),
        ("cam.pretrained=3", "setting 'cam.pretrained' must be bool, null, got 3"),
        ("gcn.variants=[{name: x, grpah: phi}]", "unknown setting 'gcn.variants[0].grpah'"),
        ("affinity.irn={radius: 5, epoch: 2}", "unknown setting 'affinity.irn.epoch'"),
        ("seg.variants=[{name: a, head: escrf, pairwise: maybe}]",
         "setting 'seg.variants[0].pairwise' must be bool"),
    ],
)  # fmt: skip
def test_unknown_keys_and_wrong_types_are_refused(setting, message, tmp_path, monkeypatch, capsys):
    line = _refused(["--config", "demo", "--set", setting], tmp_path, monkeypatch, capsys)
    assert message.split(" (did")[0] in line, line


@pytest.mark.parametrize("name", ["demo", "voc", "photos"])
def test_every_shipped_configuration_passes(name: str) -> None:
    check_config(load_config(name))


@pytest.mark.parametrize("name", ["demo", "voc"])
def test_group_cams_use_the_cam_scales_so_that_the_rows_compare(name: str) -> None:
    # Group and single-image CAMs at different scales differ by ~20 mIoU on the benchmark
    # (issue 20), which the report would read as a method effect.
    config = load_config(name)
    assert config["group"]["scales"] == config["cam"]["scales"]


def test_a_stage_chain_names_known_distinct_stages() -> None:
    from wsss.pipeline.stages import STAGES, pipeline_stages

    assert pipeline_stages({}) == STAGES
    chain = pipeline_stages(load_config("photos"))
    assert [s.name for s in chain] == load_config("photos")["stages"]
    for bad, message in (([], "non-empty"), (["cam", "cam"], "distinct"),
                         (["cam", "sedes"], "unknown stage")):  # fmt: skip
        with pytest.raises(WsssError, match=message):
            pipeline_stages({"stages": bad})


def test_weights_are_needed_only_by_training_stages_of_the_chain(tmp_path) -> None:
    from types import SimpleNamespace

    from wsss.pipeline.preflight import weights_needed

    config = load_config("voc")
    every = {stage for stage, _, _ in weights_needed(SimpleNamespace(config=config, path=tmp_path))}
    assert {"train_cam", "train_group"} <= every
    config["stages"] = ["cam", "seeds", "report"]
    assert weights_needed(SimpleNamespace(config=config, path=tmp_path)) == []


def test_shipped_configurations_and_float_ints_pass() -> None:
    config = apply_overrides(load_config("demo"), {"cam.lr": 1, "cam.long_side": [96, 160]})
    check_config(config)
    with pytest.raises(WsssError, match="must be int"):
        check_config(apply_overrides(config, {"data.train": 1.5}))


def test_trainer_options_follow_the_resolvers() -> None:
    from wsss.cam.train import resolve_config

    assert "epochs" in trainer_options("cam") and "long_side" in trainer_options("cam")
    assert not {"dataset", "root", "split", "seed"} & set(trainer_options("cam"))
    assert {"pairwise", "superpixel", "head_lr_mult"} <= set(section_keys("seg"))
    assert {"rounds", "delta_r", "lam"} <= set(section_keys("group"))
    options = trainer_settings({"epochs": 2, "lr": None, "long_side": [8, 9], "scales": [1]}, "cam")
    assert options == {"epochs": 2, "long_side": (8, 9)}
    resolve_config(dataset="voc", root=None, backbone="small", **options)


def test_cam_pretrained_false_takes_effect(tmp_path) -> None:
    """The setting reaches the trainer (it was dropped before) and no weights are needed."""
    from types import SimpleNamespace

    from wsss.cam.train import resolve_config
    from wsss.pipeline.preflight import weights_needed

    config = apply_overrides(load_config("voc"), {"cam.pretrained": False})
    cam = resolve_config(dataset="voc", root=None, **trainer_settings(config["cam"], "cam"))
    assert cam.pretrained is False
    ctx = SimpleNamespace(config=config, path=tmp_path)
    stages = [stage for stage, _, _ in weights_needed(ctx)]
    assert "train_cam" not in stages and "train_group" in stages
    assert "train_seg (deeplabv2)" in stages
