"""`wsss cam --model imagenet` on the real VOC photos, and its option errors."""

from __future__ import annotations

import pytest

from cli_runner import run_wsss
from wsss.io.cams import read_cams


def test_cam_model_imagenet(voc_samples, tmp_path, monkeypatch):
    args = ["cam", "--model", "imagenet", "--root", str(voc_samples), "--split", "samples",
            "--out", str(tmp_path), "--scales", "0.5", "--output-stride", "32", "--combine",
            "max", "--no-person-proxies", "--no-high-res"]  # fmt: skip
    assert run_wsss(args, monkeypatch) == 0
    cam = read_cams(tmp_path / "2007_000799.npz")  # horse and person
    assert cam.keys.tolist() == [13, 15] and cam.high_res is None
    assert cam.cams[0].max() > 0.99 and cam.cams[1].max() == 0  # no person synsets: zero CAM


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cam", "--model", "imagenet", "--checkpoint", "x.pt"], "--checkpoint cannot be used"),
        (["cam", "--model", "imagenet", "--group-size", "2"], "--group-size cannot be used"),
        (["cam", "--checkpoint", "x.pt", "--combine", "max"], "--combine cannot be used"),
        (["cam", "--model", "group", "--checkpoint", "x.pt", "--output-stride", "8"],
         "--output-stride cannot be used"),
        (["cam"], "--model single needs --checkpoint"),
        (["cam", "--model", "imagenet", "--combine", "mean"], "unknown combine 'mean'"),
        (["train-cam", "--model", "imagenet"], "needs no training"),
    ],
)  # fmt: skip
def test_option_errors(args, message, voc_samples, tmp_path, monkeypatch, capsys):
    out = tmp_path / "o"
    code = run_wsss([*args, "--root", str(voc_samples), "--split", "samples", "--out", str(out)],
                    monkeypatch)  # fmt: skip
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
