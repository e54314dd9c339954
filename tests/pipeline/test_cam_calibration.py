"""``pseudo.cam_calibration``: the seeds and propagation stages read CAMs raised to the power that
maps a threshold to the papers' 0.15; IRNet's seeds then equal the raw CAMs' seeds at the mapped
thresholds."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from cli_runner import run_wsss
from wsss.errors import WsssError
from wsss.io.cams import read_cams
from wsss.io.images import read_label_png
from wsss.pipeline.config import load_config
from wsss.pipeline.stages import pipeline_stages


def test_calibrated_seeds_equal_the_raw_cams_at_the_mapped_thresholds(
    finished_run: Path, tiny_args: list[str], tmp_path: Path, monkeypatch
) -> None:
    run = tmp_path / "demo"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "seeds")
    threshold = 0.4
    args = ["run", "--config", "demo", "--out", str(run), *tiny_args, "--from", "cam_calibration",
            "--set", f"pseudo.cam_calibration={threshold}",
            "--set", "stages=[cam, cam_calibration, seeds, report]"]  # fmt: skip
    assert run_wsss(args, monkeypatch) == 0
    record = json.loads((run / "cams_calibrated" / "train" / "calibration.json").read_text())
    gamma = math.log(0.15) / math.log(threshold)
    assert record["gamma"] == pytest.approx(gamma) and record["source"] == "configuration"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["cam_calibration"]["calibration"]["threshold"] == threshold
    assert len(list((run / "cams_calibrated" / "train").glob("*.npz"))) == 12
    assert f"raised to the power {gamma:.2f}" in (run / "report.md").read_text()

    # the same seeds from the raw CAMs with IRNet's thresholds mapped back (0.30, 0.05 -> t^(1/g))
    raw = tmp_path / "raw_seeds"
    assert run_wsss(["seeds", "--cams", str(run / "cams" / "train"), "--out", str(raw),
                     "--root", str(run / "data"), "--method", "irnet",
                     "--conf-fg", str(0.30 ** (1 / gamma)), "--conf-bg", str(0.05 ** (1 / gamma))],
                    monkeypatch) == 0  # fmt: skip
    same = total = changed = 0
    for path in sorted(raw.glob("*.png")):
        mine = read_label_png(run / "seeds" / "irnet_full" / path.name)
        same += int((mine == read_label_png(path)).sum())
        changed += int(
            (mine != read_label_png(finished_run / "seeds" / "irnet_full" / path.name)).sum()
        )
        total += mine.size
    assert total and same / total > 0.995  # float16 storage moves a few boundary pixels
    assert changed > 0  # and the calibration did change the seeds


@pytest.mark.parametrize("value", ["groundtruth", 1.5, 0])
def test_a_bad_calibration_setting_is_refused(value) -> None:
    config = load_config("demo")
    config["pseudo"]["cam_calibration"] = value
    with pytest.raises(WsssError, match="pseudo.cam_calibration must be null, 'ground truth'"):
        pipeline_stages(config)


def test_a_stage_list_without_the_calibration_stage_is_refused() -> None:
    config = load_config("photos")
    config["pseudo"]["cam_calibration"] = "ground truth"
    with pytest.raises(WsssError, match="does not list cam_calibration"):
        pipeline_stages(config)
    config["pseudo"]["cam_calibration"] = None
    assert [s.name for s in pipeline_stages(config)] == config["stages"]


def test_the_demo_calibrates_on_the_ground_truth_of_train(finished_run: Path) -> None:
    record = json.loads((finished_run / "manifest.json").read_text())["stages"]["cam_calibration"]
    calibration = record["calibration"]
    best = json.loads((finished_run / "metrics" / "pseudo.json").read_text())["cam"]
    assert calibration["source"].startswith("ground truth of train")
    if "clamped" not in calibration["source"]:
        assert calibration["threshold"] == best["best_threshold"]
    assert calibration["threshold"] ** calibration["gamma"] == pytest.approx(0.15)
    assert len(list((finished_run / "cams_calibrated" / "train").glob("*.npz"))) == 12


def test_without_the_setting_the_seeds_read_the_raw_cams(
    finished_run: Path, tiny_args: list[str], tmp_path: Path, monkeypatch
) -> None:
    run = tmp_path / "demo"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "seeds")
    args = ["run", "--config", "demo", "--out", str(run), *tiny_args, "--from", "cam_calibration",
            "--set", "pseudo.cam_calibration=none",
            "--set", "stages=[cam, cam_calibration, seeds]"]  # fmt: skip
    assert run_wsss(args, monkeypatch) == 0
    record = json.loads((run / "manifest.json").read_text())["stages"]["cam_calibration"]
    assert record["calibration"] is None
    raw = tmp_path / "raw_seeds"
    assert run_wsss(["seeds", "--cams", str(run / "cams" / "train"), "--out", str(raw),
                     "--root", str(run / "data"), "--method", "irnet"], monkeypatch) == 0  # fmt: skip
    for path in sorted(raw.glob("*.png")):
        assert (
            read_label_png(run / "seeds" / "irnet_full" / path.name) == read_label_png(path)
        ).all()


def test_the_command_calibrates_a_folder_as_the_pipeline_does(
    finished_run: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "calibrated"
    args = ["calibrate-cams", "--cams", str(finished_run / "cams" / "train"), "--out", str(out),
            "--root", str(finished_run / "data")]  # fmt: skip
    assert run_wsss(args, monkeypatch) == 0
    mine = json.loads((out / "calibration.json").read_text())
    pipeline = json.loads(
        (finished_run / "cams_calibrated" / "train" / "calibration.json").read_text()
    )
    assert mine == pipeline
    for path in sorted((finished_run / "cams_calibrated" / "train").glob("*.npz")):
        assert (read_cams(out / path.name).cams == read_cams(path).cams).all()
