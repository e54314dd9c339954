"""``propagate`` / ``wsss propagate --method rw``: outputs, resume, exact sharding, errors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from wsss.cli.main import app, main
from wsss.data.voc import VOCSegmentation
from wsss.errors import WsssError
from wsss.io.cams import read_cams
from wsss.io.images import read_label_png
from wsss.propagation import cams_on_grid, create_propagator, propagate

runner = CliRunner()


def _invoke(args: list[str]) -> None:
    result = runner.invoke(app, ["--quiet", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("method", ["irn", "psa"])
def test_outputs_resume_and_shards(rw_data, tmp_path, monkeypatch, method):
    data = VOCSegmentation(rw_data["root"])
    propagator = create_propagator("rw", affinity=rw_data[method])
    out = tmp_path / "all"
    done = propagate(data, rw_data["cams"], out, propagator, progress=False)
    assert done == {"shard": 6, "written": 6}
    saved = json.loads((out / "propagate.json").read_text())
    assert saved["method"] == "rw" and saved["beta"] == (10.0 if method == "irn" else 8.0)
    for image_id in data.ids:
        label = read_label_png(out / f"{image_id}.png")
        keys = read_cams(rw_data["cams"] / f"{image_id}.npz").keys
        assert label.shape == data.load_image(image_id).shape[:2]
        assert set(np.unique(label)) <= {0, *keys.tolist()}
    # resume: only the missing file is written, the others are untouched
    (out / f"{data.ids[2]}.png").unlink()
    before = {p.name: os.stat(p).st_mtime_ns for p in out.glob("*.png")}
    assert propagate(data, rw_data["cams"], out, propagator, progress=False)["written"] == 1
    assert all(os.stat(out / n).st_mtime_ns == t for n, t in before.items())
    # two shards write disjoint halves whose union equals the one-process output
    sharded = tmp_path / "sharded"
    written = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        names = set(p.name for p in sharded.glob("*.png"))
        assert propagate(data, rw_data["cams"], sharded, propagator, progress=False)["shard"] == 3
        written.append({p.name for p in sharded.glob("*.png")} - names)
    assert not written[0] & written[1] and len(written[0] | written[1]) == 6
    for name in written[0] | written[1]:
        assert np.array_equal(read_label_png(sharded / name), read_label_png(out / name))


def test_cams_on_grid_pools_for_stride_8(rw_data):
    cam = read_cams(rw_data["cams"] / "img01.npz")  # 32 x 36
    low, bg = cams_on_grid(cam, 4)
    assert low.shape[-2:] == (8, 9) and bg is None
    cams8, bg8 = cams_on_grid(cam, 8, alpha=16)
    assert cams8.shape[-2:] == (4, 5) and bg8 is not None and bg8.shape == (4, 5)
    assert float(bg8.min()) >= 0 and float(bg8.max()) <= 1


def test_cli_propagate_then_eval(rw_data, tmp_path):
    out = tmp_path / "rw"
    args = ["propagate", "--method", "rw", "--affinity", str(rw_data["irn"]), "--cams",
            str(rw_data["cams"]), "--out", str(out), "--root", str(rw_data["root"])]  # fmt: skip
    _invoke(args)
    _invoke(args)  # resumes: nothing left to do
    assert len(list(out.glob("*.png"))) == 6
    _invoke(["eval", "--pred", str(out), "--root", str(rw_data["root"]), "--split", "train"])
    result = json.loads((out / "eval-train.json").read_text())
    assert result["num_images"] == 6 and result["labelled_ratio"] == 100.0


def _run_cli(args, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["wsss", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return int(exc.value.code or 0), capsys.readouterr().err


def test_errors_name_the_file(rw_data, tmp_path, monkeypatch, capsys):
    cams = tmp_path / "cams"
    cams.mkdir()
    for p in Path(rw_data["cams"]).glob("*.npz"):
        (cams / p.name).write_bytes(p.read_bytes())
    (cams / "img03.npz").unlink()
    args = ["propagate", "--affinity", str(rw_data["irn"]), "--cams", str(cams), "--out",
            str(tmp_path / "o"), "--root", str(rw_data["root"])]  # fmt: skip
    code, err = _run_cli(args, monkeypatch, capsys)
    assert code == 2 and f"{cams / 'img03.npz'}: missing CAM file" in err
    code, err = _run_cli(args[:1] + args[3:], monkeypatch, capsys)
    assert code == 2 and "needs --affinity" in err
    code, err = _run_cli([*args, "--method", "magic"], monkeypatch, capsys)
    assert code == 2 and "unknown propagation method 'magic'" in err
    code, err = _run_cli(["propagate", "--affinity", str(rw_data["cams"]), "--cams", str(cams),
                          "--out", str(tmp_path / "p"), "--root", str(rw_data["root"])],
                         monkeypatch, capsys)  # fmt: skip
    assert code == 2 and "missing checkpoint" in err
    # other options into the same folder
    data = VOCSegmentation(rw_data["root"])
    propagate(data, rw_data["cams"], tmp_path / "q", create_propagator("rw", affinity=rw_data["irn"]),
              progress=False)  # fmt: skip
    with pytest.raises(WsssError, match="other options"):
        propagate(data, rw_data["cams"], tmp_path / "q",
                  create_propagator("rw", affinity=rw_data["irn"], beta=3.0), progress=False)  # fmt: skip


def test_cli_train_affinity(rw_data, tmp_path):
    out = tmp_path / "aff"
    _invoke(["train-affinity", "--method", "psa", "--checkpoint", str(rw_data["cam"]), "--seeds",
             str(rw_data["seeds"]), "--root", str(rw_data["root"]), "--out", str(out),
             "--epochs", "1", "--batch-size", "3", "--crop", "24", "--long-side", "24", "36",
             "--distance", "mean"])  # fmt: skip
    assert (out / "final.pt").is_file() and (out / "train.log").read_text().startswith("epoch 1/1")
    assert json.loads((out / "config.json").read_text())["config"]["distance"] == "mean"


def test_cli_gcn_options_reach_the_propagator(rw_data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "gcn"
    args = ["propagate", "--method", "gcn", "--cams", str(rw_data["cams"]), "--out", str(out),
            "--root", str(rw_data["root"]), "--steps", "5", "--no-crf", "--entropy", "0",
            "--laplacian-on-log", "--phi-variant", "code", "--seed", "3"]  # fmt: skip
    code, err = _run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    saved = json.loads((out / "propagate.json").read_text())
    assert (saved["graph"], saved["features"], saved["crf"], saved["steps"]) == (
        "phi",
        "rgbxy",
        False,
        5,
    )  # no affinity run: the Phi graph, colour and position features
    assert saved["losses"]["entropy"] == 0 and saved["losses"]["laplacian_on_log"]
    assert (saved["phi_variant"], saved["seed"]) == ("code", 3)
    assert len(list(out.glob("*.png"))) == 6
    code, err = _run_cli([*args[:-2], "--seed", "4"], monkeypatch, capsys)
    assert code == 2 and "'seed': (3, 4)" in err  # the saved-settings check names the change
    code, err = _run_cli([*args, "--graph", "dense"], monkeypatch, capsys)
    assert code == 2 and "need an affinity network" in err
