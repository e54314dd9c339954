"""Training helpers by hand (poly lr, SGD wiring, batch split) and train-cam runs: determinism,
resume equality, run-directory files."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes import make_voc
from wsss.cam.train import (
    PRESETS,
    SeededTrainSamples,
    make_transform,
    resolve_config,
    train,
)
from wsss.data.voc import VOCSegmentation
from wsss.engine.training import (
    global_batches,
    load_checkpoint,
    local_batch,
    local_loss_weight,
    make_sgd,
    poly_factor,
    sample_seed,
    save_checkpoint,
    set_poly_lr,
)
from wsss.errors import WsssError


def make_tiny_voc(root: Path, n: int = 9, size: int = 24) -> Path:
    """``n`` random images with one or two labelled rectangles of classes 1..3."""
    rng = np.random.default_rng(0)
    masks = {}
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        for _ in range(1 + i % 2):
            y, x = rng.integers(0, size // 2, 2)
            mask[y : y + size // 3, x : x + size // 3] = rng.integers(1, 4)
        masks[f"img{i:02d}"] = mask
    return make_voc(root, masks)


def tiny_config(root: Path, **overrides):
    values = {"dataset": "voc", "root": root, "backbone": "small", "epochs": 2,
              "batch_size": 3, "lr": 0.05, "crop": 16, "long_side": (16, 28)}  # fmt: skip
    values.update(overrides)
    return resolve_config(**values)


# -- schedule and optimizer ------------------------------------------------------------------------
def test_poly_factor_by_hand():
    assert poly_factor(0, 10) == 1.0
    assert poly_factor(5, 10) == pytest.approx(0.5**0.9)
    assert poly_factor(9, 10) == pytest.approx(0.1**0.9)
    assert poly_factor(10, 10) == 0.0
    assert poly_factor(12, 10) == 0.0
    assert poly_factor(3, 4, power=2.0) == pytest.approx(1 / 16)


def test_set_poly_lr_scales_every_group():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = make_sgd([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 1.0}])
    lr = set_poly_lr(opt, 3, 8)
    factor = (1 - 3 / 8) ** 0.9
    assert lr == pytest.approx(0.1 * factor)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.1 * factor),
                                                   pytest.approx(1.0 * factor)]  # fmt: skip
    assert [g["base_lr"] for g in opt.param_groups] == [0.1, 1.0]


def test_sgd_momentum_and_weight_decay_by_hand():
    """Two steps of SGD(momentum 0.9, weight decay wd) computed by hand; IRNet's PolyOptimizer
    put wd into the momentum slot, which would give other numbers."""
    lr, wd, mu = 0.5, 0.1, 0.9
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    frozen = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
    opt = make_sgd([{"params": [p, frozen], "lr": lr}], momentum=mu, weight_decay=wd)
    assert opt.param_groups[0]["momentum"] == mu and opt.param_groups[0]["weight_decay"] == wd
    assert len(opt.param_groups[0]["params"]) == 1  # frozen parameters are left out
    g = torch.tensor([0.3, 0.7])
    p0 = p.detach().clone()
    for _ in range(2):
        opt.zero_grad()
        (p * g).sum().backward()
        opt.step()
    buf1 = g + wd * p0
    p1 = p0 - lr * buf1
    buf2 = mu * buf1 + g + wd * p1
    p2 = p1 - lr * buf2
    torch.testing.assert_close(p.detach(), p2)


# -- data order ------------------------------------------------------------------------------------
def test_global_batches_drop_last_and_repeat_per_epoch():
    batches = global_batches(10, 3, seed=0, epoch=0)
    assert [len(b) for b in batches] == [3, 3, 3]
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == 9 and set(flat) <= set(range(10))
    assert batches == global_batches(10, 3, seed=0, epoch=0)
    assert batches != global_batches(10, 3, seed=0, epoch=1)
    assert batches != global_batches(10, 3, seed=1, epoch=0)


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_local_batches_split_the_global_batch_contiguously(world: int):
    batch = [7, 3, 9, 1, 4]
    parts = [local_batch(batch, r, world) for r in range(world)]
    assert [i for part in parts for i in part] == batch
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    # Weighted local means averaged over ranks = the global mean (what DDP's average gives).
    losses = {7: 1.0, 3: 2.0, 9: 4.0, 1: 8.0, 4: 16.0}
    shares = [np.mean([losses[i] for i in part]) * local_loss_weight(len(part), 5, world)
              for part in parts if part]  # fmt: skip
    assert sum(shares) / world == pytest.approx(np.mean(list(losses.values())))


def test_augmentation_seeded_by_sample_not_by_call_order(tmp_path: Path):
    root = make_tiny_voc(tmp_path / "voc")
    config = tiny_config(root)
    samples = SeededTrainSamples(VOCSegmentation(root), make_transform(config), seed=0)
    a = samples[(0, 4)]["image"]
    samples[(0, 2)]
    torch.manual_seed(123)  # the global generator does not matter
    assert torch.equal(samples[(0, 4)]["image"], a)
    assert not torch.equal(samples[(1, 4)]["image"], a)
    assert sample_seed(0, 0, 4) != sample_seed(0, 1, 4)
    assert "mask" not in samples[(0, 4)]  # the classifier never sees masks


# -- presets and checkpoints -----------------------------------------------------------------------
def test_presets():
    irnet = resolve_config(dataset="voc", root=None)
    assert (irnet.backbone, irnet.output_stride, irnet.pretrained) == ("resnet50", 16, True)
    assert (irnet.lr, irnet.classifier_lr_mult, irnet.weight_decay) == (0.1, 10.0, 1e-4)
    assert (irnet.batch_size, irnet.epochs, irnet.crop, irnet.long_side) == (16, 5, 512, (320, 640))
    assert irnet.freeze_bn and irnet.freeze_stem and irnet.momentum == 0.9
    small = resolve_config(dataset="synthetic", root=None, backbone="small")
    assert not small.pretrained and not small.freeze_bn and not small.freeze_stem
    assert small.lr == PRESETS["small"]["lr"] and small.output_stride == 8
    with pytest.raises(WsssError, match="no pretrained"):
        resolve_config(dataset="voc", root=None, backbone="small", pretrained=True)
    with pytest.raises(WsssError, match="valid names"):
        resolve_config(dataset="voc", root=None, model="group")


def test_checkpoint_round_trip_and_bad_file(tmp_path: Path):
    state = {"model": {"w": torch.arange(3.0)}, "epoch": 2, "rng": torch.get_rng_state()}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded["epoch"] == 2 and torch.equal(loaded["model"]["w"], torch.arange(3.0))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WsssError, match="unreadable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(WsssError, match="missing checkpoint"):
        load_checkpoint(tmp_path / "none.pt")


# -- training runs ---------------------------------------------------------------------------------
def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "final.pt")["model"]


class _Interrupt(Exception):
    pass


def _stop_after_first_epoch(line: str) -> None:
    if line.startswith("epoch 1/"):
        raise _Interrupt


def test_deterministic_and_resume_gives_the_same_weights(tmp_path: Path):
    root = make_tiny_voc(tmp_path / "voc")
    config = tiny_config(root)
    data = VOCSegmentation(root)
    train(config, tmp_path / "a", dataset=data, progress=False)
    train(config, tmp_path / "b", dataset=data, progress=False)
    with pytest.raises(_Interrupt):
        train(config, tmp_path / "c", dataset=data, progress=False, report=_stop_after_first_epoch)
    assert load_checkpoint(tmp_path / "c" / "checkpoint.pt")["epoch"] == 1
    assert not (tmp_path / "c" / "final.pt").exists()
    train(config, tmp_path / "c", dataset=data, progress=False)  # resumes at epoch 2
    a, b, c = (_final_weights(tmp_path / r) for r in "abc")
    assert a.keys() == b.keys() == c.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
        assert torch.equal(a[key], c[key]), key
    assert not torch.equal(a["classifier.weight"], _init_classifier(config, data))
    log = (tmp_path / "c" / "train.log").read_text().splitlines()
    assert [line.split()[1] for line in log] == ["1/2", "2/2"]
    for line in log:
        fields = line.split()
        assert fields[2] == "loss" and math.isfinite(float(fields[3])) and fields[6] == "seconds"
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["config"] == config.to_dict() and saved["runtime"]["world_size"] == 1
    final = load_checkpoint(tmp_path / "a" / "final.pt")
    assert set(final) == {"model", "config", "classes", "num_labels"}
    assert final["num_labels"] == 20


def _init_classifier(config, data) -> torch.Tensor:
    from wsss.cam.train import build_model

    torch.manual_seed(config.seed)
    return build_model(config, data.classes.num_labels, pretrained=False).classifier.weight


def test_other_configuration_in_run_dir_is_refused(tmp_path: Path):
    root = make_tiny_voc(tmp_path / "voc")
    data = VOCSegmentation(root)
    train(tiny_config(root, epochs=1), tmp_path / "run", dataset=data, progress=False)
    with pytest.raises(WsssError, match="another configuration"):
        train(tiny_config(root, epochs=1, lr=0.1), tmp_path / "run", dataset=data, progress=False)
    with pytest.raises(WsssError, match="fewer than one batch"):
        train(tiny_config(root, batch_size=20), tmp_path / "x", dataset=data, progress=False)


def run_cli(args: list[str], monkeypatch) -> int:
    from wsss.cli.main import main

    monkeypatch.setattr(sys, "argv", ["wsss", *args])
    try:
        main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def test_cli_train_cam(tmp_path: Path, monkeypatch, capsys):
    root = make_tiny_voc(tmp_path / "voc")
    args = ["--quiet", "train-cam", "--root", str(root), "--out", str(tmp_path / "run"),
            "--backbone", "small", "--epochs", "1", "--batch-size", "3", "--crop", "16",
            "--long-side", "16", "28", "--lr", "0.05"]  # fmt: skip
    assert run_cli(args, monkeypatch) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert saved["dataset"] == "voc" and saved["long_side"] == [16, 28] and saved["epochs"] == 1
    assert (tmp_path / "run" / "final.pt").is_file()
    assert run_cli([*args[:-1], "0.1"], monkeypatch) == 2
    assert "another configuration" in capsys.readouterr().err
