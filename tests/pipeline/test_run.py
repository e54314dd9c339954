"""`wsss run` end to end on a tiny benchmark: every stage, the report, resume and config checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_wsss
from wsss.cli.run import parse_settings
from wsss.errors import WsssError


def test_every_stage_runs_and_reports(finished_run: Path) -> None:
    manifest = json.loads((finished_run / "manifest.json").read_text())
    stages = manifest["stages"]
    for name in ("data", "colour_baseline", "train_cam", "cam", "seeds", "train_affinity",
                 "random_walk", "gcn", "ablation_gcn", "pseudo_evaluate",
                 "evaluate", "report"):  # fmt: skip
        assert stages[name]["status"] == "done", name
    assert len(list((finished_run / "cams" / "train").glob("*.npz"))) == 12
    for folder in ("irnet_full", "wsgcn", "wsgcn_full"):
        assert len(list((finished_run / "seeds" / folder).glob("*.png"))) == 12, folder
    for method in ("irn", "psa"):
        assert (finished_run / "affinity" / method / "final.pt").is_file()
        assert len(list((finished_run / "rw" / method).glob("*.png"))) == 12, method
    for folder in ("wsgcn_i", "wsgcn_i_crf"):
        assert len(list((finished_run / "gcn" / folder).glob("*.png"))) == 12, folder
    summary = json.loads((finished_run / "metrics.json").read_text())
    pseudo = summary["pseudo"]
    assert 0.0 <= pseudo["cam"]["best"]["miou"] <= 100.0
    assert set(pseudo["seeds"]) == {"irnet", "wsgcn"}
    for scores in pseudo["seeds"].values():
        assert 0.0 < scores["labelled_ratio"] <= 100.0
    report = (finished_run / "report.md").read_text()
    assert "## Pseudo labels on train" in report
    assert "| IRNet seeds |" in report and "CAM (best threshold" in report
    assert "| IRNet RW |" in report and "| AffinityNet RW |" in report
    assert "## Ablation (WSGCN table 2)" in report and "| GCN: + l_lp |" in report
    assert set(pseudo["labels"]) == {"IRNet RW", "AffinityNet RW", "WSGCN-I", "WSGCN-I + dCRF"}
    for scores in pseudo["labels"].values():
        assert scores["labelled_ratio"] == 100.0
    assert (finished_run / "report.html").stat().st_size > 1000
    for figure in ("samples.png", "cams.png", "cam_curve.png"):
        assert (finished_run / "figures" / figure).stat().st_size > 1000, figure


def test_rerun_skips_finished_stages(
    finished_run: Path, tiny_args: list[str], monkeypatch, capsys
) -> None:
    before = (finished_run / "cam_train" / "final.pt").stat().st_mtime_ns
    args = ["run", "--config", "demo", "--out", str(finished_run), *tiny_args]
    assert run_wsss(args, monkeypatch) == 0
    assert (finished_run / "cam_train" / "final.pt").stat().st_mtime_ns == before
    capsys.readouterr()
    assert run_wsss(args, monkeypatch, quiet=False) == 0
    assert "skipped (done)" in capsys.readouterr().out
    assert run_wsss([*args, "--quiet"], monkeypatch, quiet=False) == 0  # `wsss run --quiet`
    assert capsys.readouterr().out == ""


def test_other_configuration_is_refused(
    finished_run: Path, tiny_args: list[str], monkeypatch, capsys
) -> None:
    args = ["run", "--config", "demo", "--out", str(finished_run), *tiny_args, "--seed", "5"]
    assert run_wsss(args, monkeypatch) == 2
    assert "another configuration" in capsys.readouterr().err


def test_parse_settings() -> None:
    assert parse_settings(["cam.epochs=5", "seeds.methods=[irnet]", "name=x"]) == {
        "cam.epochs": 5,
        "seeds.methods": ["irnet"],
        "name": "x",
    }
    with pytest.raises(WsssError, match="KEY=VALUE"):
        parse_settings(["cam.epochs"])


def test_ablate_gcn_on_the_run(finished_run: Path, monkeypatch) -> None:
    args = ["ablate", "gcn", "--run", str(finished_run), "--limit", "5", "--batch-size", "3"]
    assert run_wsss(args, monkeypatch) == 0
    result = json.loads((finished_run / "ablation" / "gcn.json").read_text())
    assert result["images"] == 5
    rows = result["rows"]
    assert list(rows)[:3] == ["CAM", "AffinityNet RW", "IRNet RW"]
    assert len(rows) == 3 + 5
    for name, scores in rows.items():
        assert 0.0 <= scores["miou"] <= 100.0, name
    folders = sorted(p.name for p in (finished_run / "ablation" / "gcn").iterdir())
    assert len(folders) == 5
    for folder in folders:
        assert len(list((finished_run / "ablation" / "gcn" / folder).glob("*.png"))) == 5
    table = (finished_run / "ablation" / "gcn.md").read_text()
    assert "| GCN: + l_ent + l_lp + dCRF |" in table


def test_ablation_trains_the_same_wsgcn_i_labels_it_reuses(
    finished_run: Path, tmp_path: Path
) -> None:
    """The WSGCN-I rows are copied from the gcn stage (``reuse``); trained again, they are equal."""
    import shutil

    from wsss.ablation import ablate_gcn

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "ablation", ignore_errors=True)
    ablate_gcn(run, limit=5, batch_size=3, reuse=False, progress=False)
    for row, stage in (
        ("gcn_l_ent_l_lp_wsgcn_i", "wsgcn_i"),
        ("gcn_l_ent_l_lp_dcrf", "wsgcn_i_crf"),
    ):
        pngs = sorted((run / "ablation" / "gcn" / row).glob("*.png"))
        assert len(pngs) == 5
        for png in pngs:
            assert png.read_bytes() == (run / "gcn" / stage / png.name).read_bytes(), png
