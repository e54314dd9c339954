"""Multi-scale CAM inference: hand-computed sums, normalisation, symmetry, files and resume."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fakes import make_voc
from wsss.cam.infer import (
    image_cam_file,
    infer_cams,
    load_trained,
    multiscale_cams,
    normalize_cams,
)
from wsss.cam.train import FINAL_FILE, build_model, resolve_config
from wsss.data.voc import VOCSegmentation
from wsss.engine.training import save_checkpoint
from wsss.errors import WsssError
from wsss.io.cams import read_cams


class PixelCams(nn.Module):
    """A stand-in model at stride 1: CAM ``l`` = ReLU(channel ``l`` of the input)."""

    num_labels = 3

    def cams(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x[:, : self.num_labels])


def test_single_scale_sum_by_hand():
    torch.manual_seed(0)
    image = torch.randn(3, 10, 13)
    low, high = multiscale_cams(PixelCams(), image, scales=[1.0])
    # Flipped CAM flipped back = the CAM itself: the sum is twice the ReLU of the image.
    expected_high = 2 * image.clamp(min=0)
    torch.testing.assert_close(high, expected_high)
    expected_low = F.interpolate(expected_high[None], size=(3, 4), mode="bilinear",
                                 align_corners=False)[0]  # fmt: skip
    assert low.shape == (3, math.ceil(10 / 4), math.ceil(13 / 4))
    torch.testing.assert_close(low, expected_low)


def test_two_scales_by_hand():
    torch.manual_seed(0)
    image = torch.randn(3, 8, 8)
    low, high = multiscale_cams(PixelCams(), image, scales=[1.0, 0.5])
    half = F.interpolate(image[None], size=(4, 4), mode="bilinear", align_corners=False,
                         antialias=True)[0]  # fmt: skip
    half_cam = 2 * half.clamp(min=0)
    expected = 2 * image.clamp(min=0) + F.interpolate(half_cam[None], size=(8, 8),
                                                      mode="bilinear", align_corners=False)[0]  # fmt: skip
    torch.testing.assert_close(high, expected)
    assert low.shape == (3, 2, 2)


def test_normalisation_max_one_and_zero_maps_stay_zero():
    maps = torch.zeros(3, 4, 5)
    maps[0, 1, 2] = 4.0
    maps[0, 0, 0] = 1.0
    maps[2] = torch.arange(20.0).reshape(4, 5)
    out = normalize_cams(maps, [0, 1, 2])
    assert out[0, 1, 2] == pytest.approx(4 / (4 + 1e-5))
    assert out[0, 0, 0] == pytest.approx(1 / (4 + 1e-5))
    assert torch.equal(out[1], torch.zeros(4, 5))
    torch.testing.assert_close(out[2], maps[2] / (19 + 1e-5))
    assert normalize_cams(maps, [2]).shape == (1, 4, 5)


def test_cam_file_keeps_only_gt_classes_max_normalised():
    torch.manual_seed(0)
    image = torch.randn(3, 9, 11)
    image[1] = -1.0  # label 1 has an all-zero CAM
    sample = {"image": image, "labels": torch.tensor([1.0, 1.0, 0.0])}
    cam = image_cam_file(PixelCams(), sample, offset=1)
    assert cam.keys.tolist() == [1, 2]  # label indices 0, 1 in label space
    assert cam.size == (9, 11)
    assert cam.cams.shape == (2, 3, 3) and cam.high_res.shape == (2, 9, 11)
    for maps in (cam.cams, cam.high_res):
        assert maps.min() >= 0
        assert maps[0].max() == pytest.approx(1.0, abs=1e-4)
        assert np.all(maps[1] == 0)
    empty = image_cam_file(PixelCams(), {"image": image, "labels": torch.zeros(3)}, offset=1)
    assert empty.keys.shape == (0,) and empty.cams.shape == (0, 3, 3)


def _random_cam_net(num_labels: int = 3) -> nn.Module:
    config = resolve_config(dataset="voc", root=None, backbone="small")
    torch.manual_seed(0)
    return build_model(config, num_labels, pretrained=False).eval()


def test_symmetric_input_gives_symmetric_cams():
    net = _random_cam_net()
    torch.manual_seed(1)
    half = torch.randn(3, 20, 12)
    image = torch.cat([half, half.flip(-1)], dim=-1)  # 20 x 24, mirror-symmetric
    low, high = multiscale_cams(net, image, scales=[1.0, 0.5, 1.5])
    assert high.abs().sum() > 0
    torch.testing.assert_close(low, low.flip(-1), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(high, high.flip(-1), rtol=1e-4, atol=1e-5)
    asym, _ = multiscale_cams(net, torch.randn(3, 20, 24), scales=[1.0])
    assert not torch.allclose(asym, asym.flip(-1), rtol=1e-4, atol=1e-5)


def test_repeated_scale_gives_the_same_normalised_maps():
    net = _random_cam_net()
    torch.manual_seed(2)
    image = torch.randn(3, 16, 20)
    one, one_high = multiscale_cams(net, image, scales=[1.0])
    two, two_high = multiscale_cams(net, image, scales=[1.0, 1.0])
    torch.testing.assert_close(two, 2 * one)
    keep = [0, 1, 2]  # equal up to the 1e-5 added to the maxima (far below float16 precision)
    torch.testing.assert_close(normalize_cams(one, keep), normalize_cams(two, keep), rtol=1e-4,
                               atol=1e-5)  # fmt: skip
    torch.testing.assert_close(normalize_cams(one_high, keep), normalize_cams(two_high, keep),
                               rtol=1e-4, atol=1e-5)  # fmt: skip


# -- files -----------------------------------------------------------------------------------------
def _tiny_run(tmp_path: Path) -> tuple[Path, Path]:
    """A VOC-layout folder of 7 small images and a randomly initialised 'trained' run."""
    masks = {}
    for i in range(7):
        mask = np.zeros((18 + i, 22), np.uint8)
        mask[2:9, 3 + i : 12 + i] = 1 + i % 3
        mask[10:14, 1:6] = 15
        masks[f"im{i}"] = mask
    root = make_voc(tmp_path / "voc", masks)
    config = resolve_config(dataset="voc", root=root, backbone="small")
    torch.manual_seed(0)
    model = build_model(config, 20, pretrained=False)
    run = tmp_path / "run"
    save_checkpoint(run / FINAL_FILE, {"model": model.state_dict(), "config": config.to_dict(),
                                       "num_labels": 20})  # fmt: skip
    return root, run


def test_files_written_and_resume_is_byte_identical(tmp_path: Path, monkeypatch):
    root, run = _tiny_run(tmp_path)
    data = VOCSegmentation(root)
    model, _ = load_trained(run)
    full = tmp_path / "full"
    assert infer_cams(model, data, full, progress=False) == {"shard": 7, "written": 7}
    for image_id in data.ids:
        cam = read_cams(full / f"{image_id}.npz", num_classes=21)
        gt = np.unique(data.load_mask(image_id))
        assert cam.keys.tolist() == [c for c in gt.tolist() if c not in (0, 255)]
        assert np.allclose(cam.cams.max(axis=(1, 2)), 1.0, atol=1e-3)
        assert cam.high_res is not None and cam.high_res.shape[1:] == cam.size

    # Interrupt a second run after three files, then rerun it.
    import wsss.cam.infer as infer_module

    real_write, calls = infer_module.write_cams, []

    def failing_write(path, cam):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(path)
        real_write(path, cam)

    part = tmp_path / "part"
    monkeypatch.setattr(infer_module, "write_cams", failing_write)
    with pytest.raises(KeyboardInterrupt):
        infer_cams(model, data, part, progress=False)
    monkeypatch.setattr(infer_module, "write_cams", real_write)
    assert len(list(part.glob("*.npz"))) == 3
    assert infer_cams(model, data, part, progress=False) == {"shard": 7, "written": 4}
    # Delete some finished files and rerun once more.
    for image_id in data.ids[1:3]:
        (part / f"{image_id}.npz").unlink()
    assert infer_cams(model, data, part, progress=False)["written"] == 2
    assert sorted(p.name for p in part.iterdir()) == sorted(p.name for p in full.iterdir())
    for path in full.iterdir():
        assert (part / path.name).read_bytes() == path.read_bytes(), path.name


def test_wrong_label_count_and_bad_checkpoint(tmp_path: Path):
    root, _run = _tiny_run(tmp_path)
    with pytest.raises(WsssError, match="predicts 3 labels"):
        infer_cams(_random_cam_net(3), VOCSegmentation(root), tmp_path / "x", progress=False)
    save_checkpoint(tmp_path / "junk.pt", {"weights": torch.zeros(1)})
    with pytest.raises(WsssError, match="not a trained CAM model"):
        load_trained(tmp_path / "junk.pt")


def test_cli_cam_and_no_high_res(tmp_path: Path, monkeypatch):
    from wsss.cli.main import main

    root, run = _tiny_run(tmp_path)
    out = tmp_path / "cams"
    args = ["wsss", "--quiet", "cam", "--checkpoint", str(run), "--root", str(root),
            "--out", str(out), "--scales", "1.0,0.5", "--no-high-res"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None)
    files = sorted(out.glob("*.npz"))
    assert len(files) == 7
    assert read_cams(files[0]).high_res is None
    shutil.rmtree(out)
    monkeypatch.setattr(sys, "argv", [*args[:-3], "--scales", "1.0,-2"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
