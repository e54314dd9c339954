"""``wsss refine`` on real VOC photos with CAMs made from their masks the way real CAMs fail."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from refine_data import IDS
from refine_data import miou as _miou
from wsss.cli.main import app, main
from wsss.io.cams import CamFile, write_cams
from wsss.io.images import read_label_png

runner = CliRunner()


def _invoke(args: list[str]) -> None:
    result = runner.invoke(app, ["--quiet", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output


def test_refine_gcn_beats_cam_argmax_and_resumes(refine_data, tmp_path: Path):
    out = tmp_path / "gcn"
    args = ["refine", "--images", str(refine_data["images"]), "--cams", str(refine_data["cams"]),
            "--out", str(out), "--method", "gcn", "--batch-size", "3"]  # fmt: skip
    _invoke(args)
    cam_miou = max(_miou(None, refine_data, t) for t in (0.1, 0.15, 0.2, 0.3))
    gcn_miou = _miou(out, refine_data)
    assert gcn_miou > cam_miou + 0.03, (gcn_miou, cam_miou)
    # resume: a finished file is kept, a deleted one is made again, identically
    first = out / f"{IDS[0]}.png"
    kept = (out / f"{IDS[1]}.png").stat().st_mtime_ns
    before = read_label_png(first)
    first.unlink()
    _invoke([*args[:-2], "--batch-size", "1"])  # batch size does not change the labels
    assert (out / f"{IDS[1]}.png").stat().st_mtime_ns == kept
    assert np.array_equal(read_label_png(first), before)


def test_refine_crf_runs(refine_data, tmp_path: Path):
    out = tmp_path / "crf"
    _invoke(["refine", "--images", str(refine_data["images"]), "--cams", str(refine_data["cams"]),
             "--out", str(out), "--method", "crf"])  # fmt: skip
    assert _miou(out, refine_data) > 0.5


def _run(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["wsss", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return int(exc.value.code or 0), capsys.readouterr().err


def test_errors_name_the_file(refine_data, tmp_path: Path, monkeypatch, capsys):
    cams = tmp_path / "cams"
    cams.mkdir()
    good = np.load(refine_data["cams"] / f"{IDS[0]}.npz")
    write_cams(cams / "nosuch.npz", CamFile(keys=good["keys"], cams=good["cams"],
                                            size=tuple(good["size"])))  # fmt: skip
    base = ["refine", "--images", str(refine_data["images"]), "--out", str(tmp_path / "o")]
    code, err = _run([*base, "--cams", str(cams)], monkeypatch, capsys)
    assert code == 2 and "nosuch.jpg: missing image" in err
    (cams / "nosuch.npz").unlink()
    (cams / f"{IDS[0]}.npz").write_bytes(b"not a zip")
    code, err = _run([*base, "--cams", str(cams)], monkeypatch, capsys)
    assert code == 2 and f"{IDS[0]}.npz: corrupt CAM file" in err
    code, err = _run([*base, "--cams", str(refine_data["cams"]), "--method", "rw"], monkeypatch,
                     capsys)  # fmt: skip
    assert code == 2 and "needs --affinity" in err
    code, err = _run([*base, "--cams", str(refine_data["cams"]), "--method", "nope"], monkeypatch,
                     capsys)  # fmt: skip
    assert code == 2 and "unknown refine method 'nope'" in err
