"""write_report on copies of the finished tiny run: with the stages still to come (group CAMs,
segmentation) and without the optional ones (pseudo labels, ablation)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from wsss.io.rundir import RunDir
from wsss.pipeline.stages import Context
from wsss.viz.report import write_report


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


def _write(run: Path) -> dict[str, Path]:
    rundir = RunDir(run)
    config = rundir.load_config()
    assert config is not None
    return write_report(Context(config=config, rundir=rundir, progress=False))


def _group_cam_file(run: Path, nested: bool) -> dict:
    """``metrics/group_cam.json`` as the group stage writes it (``nested``), or flat."""
    pseudo = json.loads((run / "metrics" / "pseudo.json").read_text())
    curve = [{"threshold": p["threshold"], "miou": 30.0} for p in pseudo["cam"]["curve"]]
    mious = {"intermediate": 30.0, "graph": 31.0, "ensemble": 32.5}
    outputs = {k: {"folder": str(run / "cams_group" / k), "best_threshold": 0.3, "miou": v,
                   "curve": curve} for k, v in mious.items()}  # fmt: skip
    if not nested:
        return outputs
    return {"split": "train", "output": "ensemble", "outputs": outputs,
            "single": {"folder": str(run), "best_threshold": 0.5, "miou": 1.0}}  # fmt: skip


@pytest.mark.parametrize("nested", [True, False])
def test_group_cams_and_segmentation_get_rows(run_copy: Path, nested: bool) -> None:
    group = _group_cam_file(run_copy, nested)
    (run_copy / "metrics" / "group_cam.json").write_text(json.dumps(group))
    val_file = run_copy / "metrics" / "val.json"
    val = json.loads(val_file.read_text())
    val["DeepLab-v2 (WSGCN-I + dCRF)"] = {**next(iter(val.values())), "miou": 42.0}
    val_file.write_text(json.dumps(val))
    paths = _write(run_copy)
    md = paths["report"].read_text()
    cam = json.loads((run_copy / "metrics" / "pseudo.json").read_text())["cam"]["best"]["miou"]
    assert f"| CAM | Group-WSSS CAM (graph) | train | 31.00 | {31 - cam:+.1f} | 67.8 (val) |" in md
    assert (
        f"| CAM | Group-WSSS CAM (ensemble) | train | 32.50 | {32.5 - cam:+.1f} | 68.2 (val) |"
        in md
    )
    assert (
        f"| segmentation | DeepLab-v2 (WSGCN-I + dCRF) | val | 42.00 | {42 - cam:+.1f} | 66.7 |"
        in md
    )
    assert md.index("| segmentation |") < md.index("| baseline |")
    assert "Group-WSSS CAM (graph) 0.30" in md
    assert md.count("| CAM | CAM |") == 1  # the pseudo-label CAM, not the group stage's copy
    summary = json.loads(paths["metrics"].read_text())
    assert "folder" not in json.dumps(summary["group_cam"])  # no paths: runs compare equal
    outputs = summary["group_cam"]["outputs"] if nested else summary["group_cam"]
    assert outputs["graph"]["miou"] == 31.0
    assert "Group-WSSS CAM (graph)" in paths["html"].read_text()


def test_missing_stages_leave_their_sections_out(run_copy: Path) -> None:
    for name in ("metrics/pseudo.json", "metrics/val.json", "ablation"):
        path = run_copy / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(run_copy / "cams")
    paths = _write(run_copy)
    md = paths["report"].read_text()
    assert "## mIoU stage by stage" in md and "## Seconds per stage" in md
    for section in ("## Pseudo labels", "## Ablation", "## Validation mIoU", "### val"):
        assert section not in md, section
    assert "figures/cams.png" not in md and "figures/samples.png" in md
    summary = json.loads(paths["metrics"].read_text())
    assert summary["pseudo"] == {} and summary["ablation"] == {} and summary["val"] == {}
    assert paths["html"].read_text().count("<img ") == 1
