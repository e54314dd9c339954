"""`wsss train-cam --model group` and `wsss cam --model group` on a tiny split, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_wsss
from wsss.engine.training import load_checkpoint
from wsss.io.cams import read_cams

TINY = ["--backbone", "small", "--epochs", "1", "--crop", "16", "--long-side", "16", "20"]


def test_drop_eval_reaches_the_model(tiny_voc: Path, group_run: Path, tmp_path: Path,
                                     monkeypatch):  # fmt: skip
    """The graph dropout left out at inference (``--drop-eval identity``): other graph CAMs."""
    base = ["cam", "--checkpoint", str(group_run), "--root", str(tiny_voc), "--scales", "1.0",
            "--model", "group", "--output", "graph"]  # fmt: skip
    files = {}
    for rule in ("expected", "identity"):
        assert run_wsss([*base, "--out", str(tmp_path / rule), "--drop-eval", rule],
                        monkeypatch) == 0  # fmt: skip
        files[rule] = {p.name: p.read_bytes() for p in (tmp_path / rule).glob("*.npz")}
    assert run_wsss([*base, "--out", str(tmp_path / "default")], monkeypatch) == 0
    default = {p.name: p.read_bytes() for p in (tmp_path / "default").glob("*.npz")}
    assert len(default) == 9 and default == files["expected"] != files["identity"]


def test_train_and_cam_round_trip(tiny_voc: Path, single_run: Path, tmp_path: Path, monkeypatch,
                                  capsys):  # fmt: skip
    run = tmp_path / "run"
    train = ["train-cam", "--root", str(tiny_voc), "--out", str(run), "--model", "group", *TINY,
             "--group-size", "3", "--rounds", "2", "--init", str(single_run / "final.pt"),
             "--messages", "joint", "--drop-form", "authors"]  # fmt: skip
    assert run_wsss(train, monkeypatch) == 0
    state = load_checkpoint(run / "final.pt")
    assert state["model_kind"] == "group"
    assert (state["config"]["group_size"], state["config"]["steps"]) == (3, 2)
    assert (state["config"]["messages"], state["config"]["drop_form"]) == ("joint", "authors")
    assert json.loads((run / "config.json").read_text())["config"]["init"].endswith("final.pt")
    assert run_wsss(train, monkeypatch) == 0  # finished: the rerun resumes and does nothing
    cams = tmp_path / "cams"
    base = ["cam", "--checkpoint", str(run), "--root", str(tiny_voc), "--scales", "1.0"]
    assert run_wsss([*base, "--out", str(cams), "--model", "group", "--output", "graph"],
                    monkeypatch) == 0  # fmt: skip
    files = sorted(p.stem for p in cams.glob("*.npz"))
    assert files == [f"img{i:02d}" for i in range(9)]
    assert read_cams(cams / "img00.npz").keys.tolist() == [1, 4]
    capsys.readouterr()
    # a group checkpoint given to the single-image path, and the other way round
    assert run_wsss([*base, "--out", str(tmp_path / "x")], monkeypatch) == 2
    assert "holds a group model" in capsys.readouterr().err
    single = ["cam", "--checkpoint", str(single_run), "--root", str(tiny_voc), "--scales", "1.0",
              "--out", str(tmp_path / "y"), "--model", "group"]  # fmt: skip
    assert run_wsss(single, monkeypatch) == 2
    assert "holds a single-image CAM model" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train-cam", "--model", "single", "--group-size", "3"], "--group-size cannot be used"),
        (["train-cam", "--model", "group", "--batch-size", "4"], "--batch-size cannot be used"),
        (["train-cam", "--model", "pairs"], "unknown model 'pairs'"),
        (["train-cam", "--messages", "mean"], "--messages cannot be used"),
        (["train-cam", "--model", "group", "--messages", "max"], "messages must be one of"),
        (["train-cam", "--model", "group", "--drop-form", "half"], "graph dropout form must be"),
        (["cam", "--checkpoint", "x.pt", "--drop-eval", "identity"], "--drop-eval cannot be used"),
        (["cam", "--checkpoint", "x.pt", "--output", "graph"], "--output cannot be used"),
        (
            ["cam", "--checkpoint", "x.pt", "--model", "group", "--output", "mean"],
            "unknown --output",
        ),
    ],
)
def test_option_errors(args, message, tiny_voc, tmp_path, monkeypatch, capsys):
    code = run_wsss([*args, "--root", str(tiny_voc), "--out", str(tmp_path / "o")], monkeypatch)
    assert code == 2
    assert message in capsys.readouterr().err
