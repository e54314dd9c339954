"""``wsss train-seg`` -> ``wsss predict`` -> ``wsss eval`` through the command line, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_runner import run_wsss
from wsss.io.images import read_label_png
from wsss.seg.deeplab import SegmentationModel
from wsss.seg.predict import predict_image


def test_train_predict_eval_round_trip(tiny_voc: Path, tmp_path: Path, monkeypatch, capsys):
    run = tmp_path / "run"
    train = ["train-seg", "--root", str(tiny_voc), "--out", str(run), "--model", "escrf",
             "--backbone", "small", "--epochs", "1", "--batch-size", "4", "--crop", "16",
             "--long-side", "16", "24", "--n-segments", "10"]  # fmt: skip
    assert run_wsss(train, monkeypatch) == 0
    assert (run / "final.pt").is_file() and (run / "train.log").is_file()
    pred = tmp_path / "pred"
    predict = ["predict", "--checkpoint", str(run), "--root", str(tiny_voc), "--split", "val",
               "--out", str(pred), "--scales", "1.0,0.75", "--flip"]  # fmt: skip
    assert run_wsss(predict, monkeypatch) == 0
    pngs = sorted(p.name for p in pred.glob("*.png"))
    assert pngs == ["img00.png", "img01.png", "img02.png"]
    label = read_label_png(pred / "img00.png")
    assert label.shape == (24, 24) and label.max() < 21
    assert json.loads((pred / "predict.json").read_text())["scales"] == [1.0, 0.75]
    assert (pred / "superpixels" / "img00.npz").is_file()
    # resumable: a rerun writes nothing new, the files stay identical
    before = (pred / "img01.png").read_bytes()
    (pred / "img02.png").unlink()
    assert run_wsss(predict, monkeypatch, quiet=False) == 0
    assert "2 already there" in " ".join(capsys.readouterr().out.split())
    assert (pred / "img01.png").read_bytes() == before and (pred / "img02.png").is_file()
    # other options into the same folder are refused
    assert run_wsss([*predict[:-3], "--scales", "1.0"], monkeypatch) == 2
    assert "other options" in capsys.readouterr().err
    ev = ["eval", "--pred", str(pred), "--root", str(tiny_voc), "--split", "val"]
    assert run_wsss(ev, monkeypatch) == 0
    scores = json.loads((pred / "eval-val.json").read_text())
    assert 0 <= scores["miou"] <= 100 and scores["boundary"] is not None


def test_cli_errors(tiny_voc: Path, tmp_path: Path, monkeypatch, capsys):
    base = ["train-seg", "--root", str(tiny_voc), "--out", str(tmp_path / "r"), "--backbone",
            "small", "--epochs", "1", "--batch-size", "4", "--crop", "16"]  # fmt: skip
    assert run_wsss([*base, "--labels", str(tmp_path / "none")], monkeypatch) == 2
    assert "label folder does not exist" in capsys.readouterr().err
    assert run_wsss([*base, "--model", "unet"], monkeypatch) == 2
    assert "valid names" in capsys.readouterr().err
    missing = ["predict", "--checkpoint", str(tmp_path / "nope"), "--root", str(tiny_voc),
               "--out", str(tmp_path / "p")]  # fmt: skip
    assert run_wsss(missing, monkeypatch) == 2


class _Constant(SegmentationModel):
    """Scores = (x-coordinate > W/2) for class 1: flip averaging must make it symmetric."""

    def __init__(self) -> None:
        torch.nn.Module.__init__(self)
        self.num_classes = 2

    def forward(self, images, superpixels=None):
        w = images.shape[-1]
        right = (torch.arange(w) >= w // 2).float().expand(images.shape[0], 1, images.shape[-2], w)
        return torch.cat([torch.zeros_like(right), 10 * right], 1)


def test_predict_image_flip_and_scales_average_probabilities():
    image = torch.zeros(3, 4, 6)
    plain = predict_image(_Constant(), image)
    assert plain.argmax(0)[0].tolist() == [0, 0, 0, 1, 1, 1]
    flipped = predict_image(_Constant(), image, flip=True)
    torch.testing.assert_close(flipped, flipped.flip(-1))
    torch.testing.assert_close(flipped.sum(0), torch.ones(4, 6))
    multi = predict_image(_Constant(), image, scales=(1.0, 0.5))
    assert multi.shape == (2, 4, 6) and np.allclose(multi.sum(0).numpy(), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="scales"):
        predict_image(_Constant(), image, scales=())
