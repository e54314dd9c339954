"""``wsss ablate seg``: every row of ES-CRF tables 1-2 on a tiny dataset, the table's layout,
resuming per row, and input errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cli_runner import run_wsss
from wsss.ablation.seg import SEG_ROWS, ablate_seg, select_seg_rows
from wsss.errors import WsssError
from wsss.io.images import read_label_png
from wsss.io.palette import write_label_png

TINY = {"epochs": 1, "batch_size": 4, "crop": 16, "long_side": (16, 24), "n_segments": 10,
        "train_limit": 4, "val_limit": 2, "progress": False}  # fmt: skip
TINY_ARGS = ["--epochs", "1", "--batch-size", "4", "--crop", "16", "--long-side", "16", "24",
             "--n-segments", "10",
             "--train-limit", "4", "--val-limit", "2"]  # fmt: skip


@pytest.fixture
def pseudo(tiny_voc: Path, tmp_path: Path) -> Path:
    """Pseudo labels of the training images: the GT with its right half unlabelled."""
    folder = tmp_path / "pseudo"
    for png in sorted((tiny_voc / "SegmentationClass").glob("*.png")):
        label = read_label_png(png)
        label[:, 12:] = 255
        write_label_png(folder / png.name, label)
    return folder


def test_every_row_on_gt_and_pseudo_labels(tiny_voc: Path, pseudo: Path, tmp_path: Path):
    out = tmp_path / "ab"
    lines: list[str] = []
    result = ablate_seg(tiny_voc, out, labels=pseudo, report=lines.append, **TINY)
    assert list(result["sources"]) == ["gt", "pseudo"]
    assert len(lines) == 2 * len(SEG_ROWS)
    for block in result["sources"].values():
        assert list(block["rows"]) == [row.name for row in SEG_ROWS]
        for row in block["rows"].values():
            assert math.isfinite(row["miou"]) and math.isfinite(row["boundary_f"])
            assert 0 <= row["miou"] <= 100 and 0 <= row["boundary_f"] <= 100
            assert row["scores"]["num_images"] == 2
    gt = result["sources"]["gt"]["rows"]
    assert gt["+ Vanilla-CRF"]["network"] == gt["DeepLabV3+"]["network"] == "deeplabv3plus"
    assert {r["network"] for r in gt.values()} == {"deeplabv3plus", "jointcrf", "nonlocal",
                                                   "escrf_p", "escrf_s", "escrf_ps"}  # fmt: skip
    assert json.loads((out / "seg.json").read_text()) == result
    # Joint-CRF starts from the trained DeepLabV3+ of its own source
    joint = json.loads((out / "pseudo" / "train" / "jointcrf" / "config.json").read_text())
    assert joint["config"]["init"] == str((out / "pseudo" / "train" / "deeplabv3plus" /
                                           "final.pt").resolve())  # fmt: skip
    # ... and fine-tunes it at a tenth of the recipe's rate with the gradient norm clipped at 5
    base = json.loads((out / "pseudo" / "train" / "deeplabv3plus" / "config.json").read_text())
    assert joint["config"]["lr"] == pytest.approx(0.1 * base["config"]["lr"])
    assert joint["config"]["max_grad_norm"] == 5.0 and "max_grad_norm" not in base["config"]
    assert json.loads((out / "pseudo" / "train" / "escrf_ps" / "config.json").read_text())[
        "config"]["labels"] == str(pseudo.resolve())  # fmt: skip
    md = (out / "seg.md").read_text().splitlines()
    assert md[0].startswith("ES-CRF tables 1-2 layout:") and "4 images of train" in md[0]
    header = "| method | table | psi_p | psi_s | F-score | mIoU | train s | pred+eval s |"
    assert md.count(header) == 2
    table = [line for line in md if line.startswith("| ")]
    assert len(table) == 2 * (1 + len(SEG_ROWS))
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table[1:8]]
    assert [c[0] for c in cells] == [row.name for row in SEG_ROWS]
    assert [c[2:4] for c in cells][-3:] == [["x", ""], ["", "x"], ["x", "x"]]
    assert "(" not in cells[0][5] and cells[1][5].endswith(")")  # deltas to the baseline
    assert cells[1][6] == "(shared)"


def test_every_row_is_paired_with_its_baseline(tiny_voc: Path, tmp_path: Path, monkeypatch):
    """At the first training step every row's network holds the baseline's shared weights
    (backbone, ASPP, decoder, classifier: Joint-CRF the *trained* baseline's, as it fine-tunes it),
    sees the same first batch and the same global RNG state (so the same dropout masks)."""
    import torch

    from wsss.seg.deeplab import SegmentationModel
    from wsss.seg.train import load_trained

    # keyed by the network itself (not its id, which a freed network hands on): insertion order
    first: dict[SegmentationModel, dict] = {}
    real = SegmentationModel.forward

    def recording(self, images, superpixels=None):
        if self.training and self not in first:
            first[self] = {"state": {k: v.detach().clone() for k, v in
                                         self.state_dict().items()},
                               "rng": torch.get_rng_state(), "images": images.detach().clone(),
                               "type": type(self).__name__}  # fmt: skip
        return real(self, images, superpixels)

    monkeypatch.setattr(SegmentationModel, "forward", recording)
    out = tmp_path / "ab"
    ablate_seg(tiny_voc, out, **{**TINY, "epochs": 2})
    trained = [r for r in SEG_ROWS if not r.crf]
    runs = list(first.values())
    assert len(runs) == len(trained)  # one network per row (Vanilla-CRF reuses the baseline's)
    base = runs[0]["state"]
    final, _ = load_trained(out / "gt" / "train" / "deeplabv3plus")
    assert any(not torch.equal(v, final.state_dict()[k]) for k, v in base.items())
    for row, run in zip(trained[1:], runs[1:], strict=True):
        expected = final.state_dict() if row.init_from else base
        extra = sorted(set(run["state"]) - set(base))
        assert all(k.startswith(("refine.", "crf.")) for k in extra), row.name
        for key in base:
            assert torch.equal(run["state"][key], expected[key]), f"{row.name}: {key}"
        assert torch.equal(run["rng"], runs[0]["rng"]), row.name
        assert torch.equal(run["images"], runs[0]["images"]), row.name


def test_rerun_skips_finished_rows(tiny_voc: Path, tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "ab"
    args = ["ablate", "seg", "--root", str(tiny_voc), "--out", str(out), *TINY_ARGS]
    rows = [SEG_ROWS[0], SEG_ROWS[1], SEG_ROWS[-1]]
    monkeypatch.setattr("wsss.ablation.seg.SEG_ROWS", tuple(rows))
    first = ablate_seg(tiny_voc, out, rows=tuple(rows), **TINY)
    before = {r.key: (out / "gt" / "rows" / f"{r.key}.json").read_bytes() for r in rows}
    (out / "gt" / "rows" / "escrf_ps.json").unlink()
    trained: list[str] = []
    import wsss.seg.train as seg_train

    real = seg_train.train

    def counting(config, run, **kw):
        trained.append(Path(run).name)
        return real(config, run, **kw)

    monkeypatch.setattr(seg_train, "train", counting)
    again = ablate_seg(tiny_voc, out, rows=tuple(rows), **TINY)
    assert trained == ["escrf_ps"]  # the finished rows were neither retrained nor rescored
    for key in ("deeplabv3plus", "vanilla_crf"):
        assert (out / "gt" / "rows" / f"{key}.json").read_bytes() == before[key]
    names = [r.name for r in rows]
    assert list(again["sources"]["gt"]["rows"]) == names
    assert again["sources"]["gt"]["rows"]["DeepLabV3+"] == first["sources"]["gt"]["rows"][
        "DeepLabV3+"]  # fmt: skip
    # the command line on the finished folder: nothing trains, the table is printed
    trained.clear()
    assert run_wsss([*args, "--device", "cpu"], monkeypatch, quiet=False) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert trained == [] and "DeepLabV3+" in printed and "seg.md" in printed
    assert run_wsss([*args, "--quiet"], monkeypatch, quiet=False) == 0
    assert capsys.readouterr().out == ""


def test_bad_inputs(tiny_voc: Path, pseudo: Path, tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "ab"
    base = ["ablate", "seg", "--out", str(out), *TINY_ARGS]
    assert run_wsss([*base, "--root", str(tmp_path / "nowhere")], monkeypatch) == 2
    assert "dataset root does not exist" in capsys.readouterr().err
    bad = [*base, "--root", str(tiny_voc), "--labels", str(tmp_path / "none")]
    assert run_wsss(bad, monkeypatch) == 2
    assert "pseudo-label folder does not exist" in capsys.readouterr().err
    (pseudo / "img02.png").unlink()
    assert run_wsss([*base, "--root", str(tiny_voc), "--labels", str(pseudo)], monkeypatch) == 2
    assert "1 of 4 training images have no pseudo label" in capsys.readouterr().err
    assert run_wsss([*base, "--root", str(tiny_voc), "--no-gt"], monkeypatch) == 2
    assert "nothing to train on" in capsys.readouterr().err
    # --pretrained reaches the recipe: the small CPU backbone has no ImageNet weights
    assert run_wsss([*base, "--root", str(tiny_voc), "--pretrained"], monkeypatch) == 2
    assert "has no pretrained weights" in capsys.readouterr().err
    assert not out.exists()
    joint_first = (SEG_ROWS[2], SEG_ROWS[0])  # Joint-CRF needs the DeepLabV3+ row before it
    with pytest.raises(WsssError, match="does not come before it"):
        ablate_seg(tiny_voc, tmp_path / "order", rows=joint_first, **TINY)
    assert not (tmp_path / "order").exists()
    ablate_seg(tiny_voc, out, rows=SEG_ROWS[:1], **TINY)
    with pytest.raises(WsssError, match="other settings"):
        ablate_seg(tiny_voc, out, rows=SEG_ROWS[:1], **{**TINY, "epochs": 2})


def test_rows_and_head_width_from_the_command_line(tiny_voc: Path, tmp_path: Path, monkeypatch):
    assert [r.key for r in select_seg_rows("escrf_ps, deeplabv3plus")] == ["deeplabv3plus",
                                                                          "escrf_ps"]  # fmt: skip
    assert select_seg_rows("all") == SEG_ROWS
    with pytest.raises(WsssError, match="unknown seg ablation row.*escrf_x.*valid: all, deeplab"):
        select_seg_rows("deeplabv3plus,escrf_x")
    out = tmp_path / "ab"
    args = ["ablate", "seg", "--root", str(tiny_voc), "--out", str(out), *TINY_ARGS,
            "--rows", "deeplabv3plus,escrf_ps", "--head-channels", "16"]  # fmt: skip
    assert run_wsss(args, monkeypatch) == 0
    assert sorted(p.stem for p in (out / "gt" / "rows").glob("*.json")) == ["deeplabv3plus",
                                                                           "escrf_ps"]  # fmt: skip
    assert json.loads((out / "settings.json").read_text())["recipe"]["head_channels"] == 16
