"""``wsss seeds`` then ``wsss eval`` on a small fake VOC split (typer's CliRunner), and errors."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wsss.cli.main import app, main
from wsss.errors import WsssError
from wsss.io.images import read_label_png

runner = CliRunner()


def _invoke(args: list[str]) -> None:
    result = runner.invoke(app, ["--quiet", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output


def _scores(root: Path, pred: Path) -> dict:
    _invoke(["eval", "--pred", str(pred), "--root", str(root), "--split", "train"])
    return json.loads((pred / "eval-train.json").read_text())


def test_irnet_seeds_then_eval(seed_data, tmp_path: Path):
    root, cam_dir = seed_data
    out = tmp_path / "irnet"
    _invoke(["seeds", "--cams", str(cam_dir), "--out", str(out), "--root", str(root)])
    assert sorted(p.name for p in out.glob("*.png")) == [f"im{i}.png" for i in range(4)]
    result = _scores(root, out)
    assert result["num_images"] == 4
    # The seeds never contradict the GT; the weak-CAM patch (255 on GT background) is right
    # under IRNet's policy (255 = background) and left out under WSGCN's.
    assert result["miou_pred255_ignored"] == pytest.approx(100.0)
    assert result["miou_pred255_background"] > 95.0
    assert 90.0 < result["labelled_ratio"] < 100.0


def test_wsgcn_full_size_seeds_then_eval(seed_data, tmp_path: Path):
    root, cam_dir = seed_data
    low, full = tmp_path / "low", tmp_path / "full"
    base = ["seeds", "--cams", str(cam_dir), "--root", str(root), "--method", "wsgcn"]
    _invoke([*base, "--out", str(low), "--top", "0.5"])
    _invoke([*base, "--out", str(full), "--top", "0.5", "--full-size", "--device", "cpu"])
    assert read_label_png(low / "im0.png").shape == (8, 10)
    assert read_label_png(full / "im0.png").shape == (30, 38)
    assert json.loads((full / "seeds.json").read_text())["top"] == 0.5
    result = _scores(root, full)
    assert result["labelled_ratio"] < 80.0  # partial: only the top half of each class is kept
    assert result["miou_pred255_ignored"] > 80.0
    with pytest.raises(WsssError, match=r"low/im0\.png: prediction size 10x8"):
        _scores(root, low)  # stride-4 seeds cannot be scored


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["wsss", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return int(exc.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--method", "wsgcn", "--conf-fg", "0.4"], "'wsgcn' has no option.*conf_fg"),
        (["--method", "psa"], "unknown seed method 'psa'"),
        (["--method", "wsgcn", "--variant", "paper"], r"variant in \('spec', 'code'\)"),
        (["--conf-fg", "0.01"], "conf_bg <= conf_fg"),
    ],
)
def test_bad_options_one_line_error(seed_data, tmp_path, monkeypatch, capsys, extra, pattern):
    root, cam_dir = seed_data
    args = ["seeds", "--cams", str(cam_dir), "--out", str(tmp_path / "s"), "--root", str(root)]
    code, err = run_cli([*args, *extra], monkeypatch, capsys)
    assert code == 2
    assert err.startswith("wsss: error:") and len(err.strip().splitlines()) == 1
    assert re.search(pattern, err), err
    assert not (tmp_path / "s").exists()


def test_missing_cam_file_exits_2_naming_it(seed_data, tmp_path, monkeypatch, capsys):
    root, cam_dir = seed_data
    (cam_dir / "im3.npz").unlink()
    args = ["seeds", "--cams", str(cam_dir), "--out", str(tmp_path / "s"), "--root", str(root)]
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == 2
    assert f"{cam_dir / 'im3.npz'}: missing CAM file" in err
