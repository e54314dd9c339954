"""The shipped ``voc`` configuration: it loads and resolves without the data, names only keys
the stages read, names existing parts, and asks for the dataset root before writing anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import run_wsss
from wsss.affinity.train import METHODS
from wsss.cli.run import check_data_root
from wsss.data.registry import DATASETS
from wsss.errors import WsssError
from wsss.models.backbones import BACKBONES, HAS_PRETRAINED
from wsss.pipeline.config import apply_overrides, load_config, shipped_configs
from wsss.pipeline.schema import check_config
from wsss.seeds import SEED_METHODS


def fake_weights(folder: Path) -> Path:
    """A folder holding (empty) files named as torchvision's ImageNet weights: enough for the
    run's check that they are at hand, never loaded by these tests."""
    from wsss.models.weights import IMAGENET_URLS

    folder.mkdir(parents=True, exist_ok=True)
    for url in IMAGENET_URLS.values():
        (folder / url.rsplit("/", 1)[1]).touch()
    return folder


def test_voc_is_shipped_and_resolves_without_the_data() -> None:
    assert "voc" in shipped_configs()
    resolved = apply_overrides(load_config("voc"), {"data.root": "/data/VOC2012", "seed": None})
    check_data_root(resolved, "voc")
    assert resolved["data"] == {
        "dataset": "voc",
        "root": "/data/VOC2012",
        "train_split": "train_aug",
    }


@pytest.mark.parametrize("name", shipped_configs())
def test_every_shipped_configuration_passes_the_schema(name: str) -> None:
    check_config(load_config(name))


def test_voc_names_existing_parts_and_the_papers_splits() -> None:
    config = load_config("voc")
    assert config["data"]["dataset"] in DATASETS
    assert config["cam"]["backbone"] == "resnet50" and HAS_PRETRAINED["resnet50"]
    assert config["cam"]["backbone"] in BACKBONES
    assert set(config["seeds"]["methods"]) <= set(SEED_METHODS)
    assert set(config["affinity"]["methods"]) <= set(METHODS)
    assert config["affinity"]["seeds"] in config["seeds"]["methods"]
    for variant in config["gcn"]["variants"]:
        assert variant["affinity"] in config["affinity"]["methods"]
    assert config["data"]["train_split"] == "train_aug"
    assert config["pseudo"]["split"] == "train_aug" and config["pseudo"]["eval_split"] == "train"
    assert config["cam"]["scales"] == [1.0, 0.5, 1.5, 2.0]
    assert config["group"]["backbone"] in BACKBONES and HAS_PRETRAINED["resnet101"]


def test_voc_group_settings_are_valid(tmp_path: Path) -> None:
    from wsss.io.rundir import RunDir
    from wsss.pipeline.group import group_settings
    from wsss.pipeline.stages import Context

    ctx = Context(config=load_config("voc"), rundir=RunDir(tmp_path / "run"), progress=False)
    assert group_settings(ctx) == load_config("voc")["group"]


def test_a_real_dataset_needs_its_root() -> None:
    with pytest.raises(WsssError, match="--root PATH"):
        check_data_root(load_config("voc"), "voc")
    check_data_root(load_config("demo"), "demo")  # synthetic: generated into the run


def test_run_without_root_fails_before_writing(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "voc"
    assert run_wsss(["run", "--config", "voc", "--out", str(out)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "no data.root is set" in err and "--root PATH" in err
    assert not out.exists()


def test_run_with_a_wrong_root_names_it(tmp_path: Path, monkeypatch, capsys) -> None:
    weights = fake_weights(tmp_path / "weights")
    args = ["run", "--config", "voc", "--out", str(tmp_path / "voc"), "--root", str(tmp_path),
            *[f"--set={s}.weights={weights}" for s in ("cam", "group", "seg")]]  # fmt: skip
    assert run_wsss(args, monkeypatch) == 2
    assert "not a VOC root" in capsys.readouterr().err


def test_splits_default_and_follow_the_configuration(tmp_path: Path) -> None:
    from wsss.io.rundir import RunDir
    from wsss.pipeline.pseudo import eval_split, pseudo_split, train_split
    from wsss.pipeline.stages import Context

    demo = Context(config=load_config("demo"), rundir=RunDir(tmp_path / "d"), progress=False)
    assert (train_split(demo), pseudo_split(demo), eval_split(demo)) == ("train",) * 3
    voc = Context(config=load_config("voc"), rundir=RunDir(tmp_path / "v"), progress=False)
    assert (train_split(voc), pseudo_split(voc), eval_split(voc)) == (
        "train_aug",
        "train_aug",
        "train",
    )
