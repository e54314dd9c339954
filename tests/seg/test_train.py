"""train-seg: the loss's ignore handling, a loss that decreases, pseudo labels, superpixel samples,
determinism and resume, run-directory checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsss.data.voc import VOCSegmentation
from wsss.engine.training import load_checkpoint, make_sgd
from wsss.errors import WsssError
from wsss.io.palette import write_label_png
from wsss.seg.data import SeededSegSamples, read_pseudo_label, skip_ignore_id
from wsss.seg.train import (
    PRESETS,
    build_seg_model,
    load_trained,
    make_samples,
    make_transform,
    resolve_config,
    segmentation_loss,
    train,
)


def tiny_config(root: Path, **overrides):
    values = {"dataset": "voc", "root": root, "model": "deeplabv3plus", "backbone": "small",
              "epochs": 2, "batch_size": 4, "lr": 0.02, "crop": 16, "long_side": (16, 28)}  # fmt: skip
    values.update(overrides)
    return resolve_config(**values)


def test_loss_ignores_255_exactly():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 2, 2, requires_grad=True)
    target = torch.full((2, 2, 2), 255)
    target[0, 1, 0], target[1, 0, 1] = 2, 0
    total, count = segmentation_loss(logits, target)
    expected = -(logits.log_softmax(1)[0, 2, 1, 0] + logits.log_softmax(1)[1, 0, 0, 1])
    assert int(count) == 2
    torch.testing.assert_close(total, expected)
    total.backward()
    grad = logits.grad.abs().sum(1)
    assert (grad[target == 255] == 0).all() and (grad[target != 255] > 0).all()
    with pytest.raises(ValueError, match="disagree"):
        segmentation_loss(logits, target[:, :1])


def test_presets_and_validation(tiny_voc: Path):
    v2 = resolve_config(dataset="voc", root=tiny_voc, model="deeplabv2", backbone="resnet101")
    assert (v2.lr, v2.batch_size, v2.crop, v2.weight_decay, v2.freeze_bn) == (2.5e-4, 10, 321,
                                                                              5e-4, True)  # fmt: skip
    v3 = resolve_config(dataset="voc", root=tiny_voc, model="escrf", backbone="resnet50")
    assert v3.lr == PRESETS["deeplabv3plus"]["lr"] and v3.n_segments == 200
    assert not v3.pretrained  # ImageNet weights only when asked
    assert v3.head_lr_mult == 10.0 and v3.optimizer == "sgd"
    small = tiny_config(tiny_voc)  # from scratch: every layer is new, AdamW
    assert (small.head_lr_mult, small.optimizer) == (1.0, "adamw")
    with pytest.raises(WsssError, match="unknown optimizer"):
        tiny_config(tiny_voc, optimizer="lamb")
    with pytest.raises(WsssError, match="unknown model"):
        tiny_config(tiny_voc, model="pspnet")
    with pytest.raises(WsssError, match="pretrained"):
        tiny_config(tiny_voc, pretrained=True)
    with pytest.raises(WsssError, match="pairwise or"):
        tiny_config(tiny_voc, model="escrf", pairwise=False, superpixel=False)


@pytest.mark.parametrize("model", ["deeplabv2", "deeplabv3plus", "escrf"])
def test_two_sgd_steps_decrease_the_loss(tiny_voc: Path, model: str):
    torch.manual_seed(0)
    config = tiny_config(tiny_voc, model=model, batch_size=8, crop=24, long_side=(24, 24),
                         flip=False, n_segments=20)  # fmt: skip
    data = VOCSegmentation(tiny_voc)
    samples = make_samples(config, data, tiny_voc.parent / "run")
    batch = torch.utils.data.default_collate([samples[(0, i)] for i in range(8)])
    net = build_seg_model(config, data.classes.num_classes, pretrained=False)
    opt = make_sgd(net.param_groups(0.002, 10.0), momentum=0.9, weight_decay=1e-4)

    def loss() -> torch.Tensor:
        total, count = segmentation_loss(net(batch["image"], batch.get("superpixels")),
                                         batch["mask"])  # fmt: skip
        return total / count

    losses = []
    for _ in range(3):
        value = loss()
        losses.append(value.item())
        opt.zero_grad()
        value.backward()
        opt.step()
    assert losses[2] < losses[0], losses


def test_samples_transform_superpixels_with_the_image(tiny_voc: Path, tmp_path: Path):
    config = tiny_config(tiny_voc, model="escrf", crop=40, long_side=(20, 20), n_segments=10)
    data = VOCSegmentation(tiny_voc)
    samples = make_samples(config, data, tmp_path / "run")
    item = samples[(0, 3)]
    assert item["image"].shape == (3, 40, 40) and item["superpixels"].shape == (40, 40)
    pad = item["superpixels"] == 255  # the padding is one segment of its own ...
    assert pad.any() and (item["mask"][pad] == 255).all()  # ... and ignored by the loss
    assert (item["image"][:, pad] == 0).all()
    assert (tmp_path / "run" / "superpixels" / "img03.npz").is_file()  # cached, no pickle
    again = samples[(0, 3)]
    assert torch.equal(again["superpixels"], item["superpixels"])
    assert torch.equal(again["image"], item["image"])
    assert skip_ignore_id(np.array([254, 255, 256])).tolist() == [254, 256, 257]


def test_pseudo_labels_full_and_stride4(tiny_voc: Path, tmp_path: Path):
    labels = tmp_path / "labels"
    write_label_png(labels / "a.png", np.full((24, 24), 2, np.uint8))
    write_label_png(labels / "b.png", np.full((6, 6), 1, np.uint8))
    write_label_png(labels / "c.png", np.full((5, 5), 1, np.uint8))
    assert read_pseudo_label(labels / "a.png", (24, 24), 21).shape == (24, 24)
    assert (read_pseudo_label(labels / "b.png", (24, 24), 21) == 1).all()
    with pytest.raises(WsssError, match="stride 4"):
        read_pseudo_label(labels / "c.png", (24, 24), 21)
    with pytest.raises(WsssError, match="missing"):
        read_pseudo_label(labels / "d.png", (24, 24), 21)
    data = VOCSegmentation(tiny_voc)
    for image_id in data.ids:  # all-background pseudo labels except a 255 block
        label = np.zeros((24, 24), np.uint8)
        label[:12] = 255
        write_label_png(labels / f"{image_id}.png", label)
    samples = SeededSegSamples(data, make_transform(tiny_config(tiny_voc)), 0, labels=labels)
    mask = samples[(0, 0)]["mask"]
    assert set(mask.unique().tolist()) <= {0, 255}


class _Interrupt(Exception):
    pass


def _stop(line: str) -> None:
    if line.startswith("epoch 1/"):
        raise _Interrupt


def test_deterministic_resume_and_files(tiny_voc: Path, tmp_path: Path):
    config = tiny_config(tiny_voc, model="escrf", n_segments=10)
    data = VOCSegmentation(tiny_voc)
    train(config, tmp_path / "a", dataset=data, progress=False)
    with pytest.raises(_Interrupt):
        train(config, tmp_path / "b", dataset=data, progress=False, report=_stop)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1
    assert not (tmp_path / "b" / "final.pt").exists()
    train(config, tmp_path / "b", dataset=data, progress=False)  # resumes at epoch 2
    a = load_checkpoint(tmp_path / "a" / "final.pt")
    b = load_checkpoint(tmp_path / "b" / "final.pt")
    assert set(a) == {"model", "config", "classes", "num_classes"} and a["num_classes"] == 21
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    log = (tmp_path / "b" / "train.log").read_text().splitlines()
    assert [line.split()[1] for line in log] == ["1/2", "2/2"]
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["config"] == config.to_dict()
    model, loaded = load_trained(tmp_path / "a")
    assert loaded == config and not model.training and model.needs_superpixels
    with pytest.raises(WsssError, match="another configuration"):
        train(tiny_config(tiny_voc, lr=0.5), tmp_path / "a", dataset=data, progress=False)


def test_load_trained_rejects_other_files(tmp_path: Path):
    torch.save({"model": {}, "config": {"x": 1}}, tmp_path / "bad.pt")
    with pytest.raises(WsssError, match="not a trained segmentation network"):
        load_trained(tmp_path / "bad.pt")
    with pytest.raises(WsssError, match="missing"):
        load_trained(tmp_path / "nothing")


def test_loss_is_mean_over_labelled_pixels_of_global_batch():
    """Images with more labelled pixels weigh more (DeepLab's pixel mean, not a mean of means)."""
    logits = torch.zeros(2, 2, 1, 2)
    target = torch.tensor([[[0, 0]], [[1, 255]]])
    total, count = segmentation_loss(logits, target)
    assert float(total / count) == pytest.approx(
        F.cross_entropy(logits[:, :, 0, 0], target[:, 0, 0])
    )


@pytest.mark.parametrize("model", ["deeplabv2", "nonlocal", "jointcrf"])
def test_load_trained_every_head(tiny_voc: Path, tmp_path: Path, model: str):
    config = tiny_config(tiny_voc, model=model)
    net = build_seg_model(config, 21, pretrained=False)
    torch.save({"model": net.state_dict(), "config": config.to_dict(), "classes": [],
                "num_classes": 21}, tmp_path / "final.pt")  # fmt: skip
    loaded, loaded_config = load_trained(tmp_path)
    assert loaded_config == config and type(loaded) is type(net)
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_init_from_a_trained_run(tiny_voc: Path, tmp_path: Path):
    from wsss.seg.train import initialise_from

    base = tiny_config(tiny_voc, epochs=1)
    data = VOCSegmentation(tiny_voc)
    train(base, tmp_path / "base", dataset=data, progress=False)
    trained = load_checkpoint(tmp_path / "base" / "final.pt")["model"]
    # Joint-CRF = DeepLabV3+ + learnable Potts weights: every trained weight copies over
    joint = build_seg_model(tiny_config(tiny_voc, model="jointcrf"), 21, pretrained=False)
    before = joint.state_dict()["crf.compat"].clone()
    assert initialise_from(joint, tmp_path / "base") == len(trained)
    for key, value in trained.items():
        assert torch.equal(joint.state_dict()[key], value), key
    assert torch.equal(joint.state_dict()["crf.compat"], before)  # its own part keeps its init
    # a run with --init records it and starts from those weights (1 step: still close to them)
    config = tiny_config(tiny_voc, model="jointcrf", epochs=1, lr=1e-6, init=tmp_path / "base")
    assert config.init == str(tmp_path / "base" / "final.pt")
    train(config, tmp_path / "joint", dataset=data, progress=False)
    tuned = load_checkpoint(tmp_path / "joint" / "final.pt")["model"]
    key = next(k for k in trained if k.endswith("weight") and trained[k].ndim == 4)
    assert (tuned[key] - trained[key]).abs().max() < 1e-3
    assert "init" not in base.to_dict() and "init" in config.to_dict()  # old runs still resume
    # another head's extra weights, or another class count, are refused
    escrf = build_seg_model(tiny_config(tiny_voc, model="escrf"), 21, pretrained=False)
    torch.save({"model": escrf.state_dict()}, tmp_path / "escrf.pt")
    with pytest.raises(WsssError, match="not in this network"):
        initialise_from(build_seg_model(base, 21, pretrained=False), tmp_path / "escrf.pt")
    with pytest.raises(WsssError, match="shape"):
        initialise_from(build_seg_model(base, 5, pretrained=False), tmp_path / "base")


def test_max_grad_norm_option_round_trip_and_validation(tiny_voc: Path):
    assert "max_grad_norm" not in tiny_config(tiny_voc).to_dict()  # older runs still resume
    clipped = tiny_config(tiny_voc, max_grad_norm=5)
    assert clipped.max_grad_norm == 5.0 and clipped.to_dict()["max_grad_norm"] == 5.0
    assert type(clipped).from_dict(clipped.to_dict()) == clipped
    with pytest.raises(WsssError, match="max_grad_norm must be positive"):
        tiny_config(tiny_voc, max_grad_norm=0)


def _parameter_change(run: Path, start: dict[str, torch.Tensor], names: list[str]) -> float:
    final = load_checkpoint(run / "final.pt")["model"]
    return float(torch.stack([(final[n] - start[n]).norm() for n in names]).norm())


def test_max_grad_norm_bounds_every_sgd_step(tiny_voc: Path, tmp_path: Path):
    """Momentum SGD without weight decay moves the weights by at most lr * c / (1 - momentum) per
    step when every gradient is clipped to norm c; without clipping they move much further."""
    data = VOCSegmentation(tiny_voc)
    options = {"optimizer": "sgd", "weight_decay": 0.0, "head_lr_mult": 1.0, "lr": 0.02}
    config = tiny_config(tiny_voc, **options)
    torch.manual_seed(config.seed)
    start = build_seg_model(config, 21, pretrained=False).state_dict()
    names = [n for n, _ in build_seg_model(config, 21, pretrained=False).named_parameters()]
    steps = config.epochs * (len(data) // config.batch_size)
    c = 1e-3
    train(tiny_config(tiny_voc, **options, max_grad_norm=c), tmp_path / "clip", dataset=data,
          progress=False)  # fmt: skip
    train(config, tmp_path / "free", dataset=data, progress=False)
    moved = _parameter_change(tmp_path / "clip", start, names)
    assert 0 < moved <= steps * config.lr * c / (1 - config.momentum) * (1 + 1e-5)
    assert _parameter_change(tmp_path / "free", start, names) > 100 * moved
