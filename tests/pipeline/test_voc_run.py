"""``wsss run --config voc`` end to end on the six real VOC photographs, on the CPU.

The papers' configuration with the fewest steps that still execute every stage: the ResNet-50
and ResNet-101 backbones start from randomly initialised local weight files (the offline path a
GPU node takes; BatchNorm statistics calibrated so that the frozen-BN recipes see features of
ImageNet-like scale instead of overflowing), one epoch each on small crops at a small learning
rate, one scale; inference, seeds, random walks, GCNs and scoring on the full-size, non-square
photos.
Then every training stage's saved recipe equals the one the configuration resolves to.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from cli_runner import run_wsss
from wsss.io.rundir import RunDir
from wsss.pipeline.layout import Context
from wsss.pipeline.recipes import stage_recipes

#: About 7.5 CPU minutes on 2 cores: outside the default suite; `.ci/run` runs it after `make test`.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SMALL = {"epochs": 1, "batch_size": 3, "crop": 96, "long_side": [96, 128]}
SETTINGS = {
    "device": "cpu",
    "cam.epochs": 1, "cam.batch_size": 3, "cam.crop": 96, "cam.long_side": [96, 128],
    "cam.scales": [1.0], "cam.lr": 1e-3,
    "affinity.irn": {"radius": 10.0, **SMALL}, "affinity.psa": {"radius": 5.0, **SMALL},
    "group.epochs": 1, "group.crop": 96, "group.long_side": [96, 96], "group.scales": [1.0],
    "group.lr": 1e-4,
    "gcn.batch_size": 6, "ablation.gcn_images": 2,
    "seg.scales": [1.0], "seg.flip": False,
    "seg.variants": [
        {"name": "deeplabv2", "head": "deeplabv2", "backbone": "resnet101", "pretrained": True,
         "lr": 1e-4, **SMALL},
        {"name": "escrf", "head": "escrf", "backbone": "resnet101", "pretrained": True,
         "lr": 1e-4, "n_segments": 50, **SMALL},
    ],
}  # fmt: skip


def voc_root(samples: Path, folder: Path) -> Path:
    """The VOC samples as a VOC root with the papers' splits: ``train_aug`` (SBD masks in
    ``SegmentationClassAug``) and ``train`` hold all six photos, ``val`` three of them."""
    root = folder / "VOC2012"
    shutil.copytree(samples, root)
    shutil.copytree(root / "SegmentationClass", root / "SegmentationClassAug")
    ids = (root / "ImageSets" / "Segmentation" / "samples.txt").read_text().split()
    lists = root / "ImageSets" / "Segmentation"
    for split, chosen in (("train_aug", ids), ("train", ids), ("val", ids[:3])):
        (lists / f"{split}.txt").write_text("".join(f"{i}\n" for i in chosen))
    return root


def random_resnet_weights(folder: Path) -> Path:
    """torchvision's ResNet-50 and -101 file names holding randomly initialised state dicts whose
    BatchNorm running statistics are those of random 64 px inputs (cumulative averages)."""
    from torchvision.models import resnet50, resnet101

    from wsss.models.weights import IMAGENET_URLS

    folder.mkdir(parents=True, exist_ok=True)
    for name, build in (("resnet50", resnet50), ("resnet101", resnet101)):
        torch.manual_seed(0)
        net = build(weights=None)
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None
        with torch.no_grad():
            net.train()(torch.randn(4, 3, 64, 64))
        torch.save(net.state_dict(), folder / IMAGENET_URLS[name].rsplit("/", 1)[1])
    return folder


@pytest.fixture(scope="module")
def voc_run(tmp_path_factory) -> Path:
    from shared_data import VOC_SAMPLES

    if not (VOC_SAMPLES / "JPEGImages").is_dir():
        pytest.skip(f"real VOC samples not found at {VOC_SAMPLES}")
    base = tmp_path_factory.mktemp("voc")
    root, out = voc_root(VOC_SAMPLES, base), base / "run"
    weights = random_resnet_weights(base / "weights")
    sets = [f"--set={k}={json.dumps(v)}" for k, v in SETTINGS.items()]
    args = ["run", "--config", "voc", "--root", str(root), "--out", str(out),
            "--weights", str(weights), *sets]  # fmt: skip
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert run_wsss(args, monkeypatch) == 0
    return out


def test_every_stage_of_the_voc_configuration_runs_on_real_photos(voc_run: Path) -> None:
    manifest = json.loads((voc_run / "manifest.json").read_text())
    assert {name: s["status"] for name, s in manifest["stages"].items()} == {
        name: "done" for name in manifest["stages"]
    }
    ids = 6
    assert len(list((voc_run / "cams" / "train_aug").glob("*.npz"))) == ids
    assert len(list((voc_run / "cams_group" / "train_aug").glob("*.npz"))) == ids
    for folder in ("seeds/irnet_full", "seeds/wsgcn_full", "rw/irn", "rw/psa", "gcn/wsgcn_i_crf"):
        assert len(list((voc_run / folder).glob("*.png"))) == ids, folder
    for name in ("deeplabv2", "escrf"):
        assert len(list((voc_run / f"seg_{name}" / "val").glob("*.png"))) == 3, name
    assert (voc_run / "report.html").is_file() and (voc_run / "ablation" / "gcn.json").is_file()
    metrics = json.loads((voc_run / "metrics.json").read_text())
    assert metrics["pseudo"]["cam"]["num_images"] == ids  # scored on VOC train


def test_each_stage_trained_the_recipe_the_configuration_gives(voc_run: Path) -> None:
    config = yaml.safe_load((voc_run / "config.yaml").read_text())
    recipes = stage_recipes(Context(config=config, rundir=RunDir(voc_run), progress=False))
    assert set(recipes) == {"cam_train", "affinity/irn", "affinity/psa", "group_train",
                            "seg_deeplabv2/train", "seg_escrf/train"}  # fmt: skip
    for folder, recipe in recipes.items():
        saved = json.loads((voc_run / folder / "config.json").read_text())["config"]
        if folder.startswith("seg_"):  # trained on the run's pseudo labels
            assert saved.pop("labels").endswith("gcn/wsgcn_i_crf")
            recipe.pop("labels")
        assert saved == recipe, folder
    runtime = json.loads((voc_run / "cam_train" / "config.json").read_text())["runtime"]
    assert runtime["device"] == "cpu"
