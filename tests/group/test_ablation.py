"""`wsss ablate group` on a tiny split: every row scored, resume per row, settings checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wsss.ablation.group as ablation
from cli_runner import run_wsss
from wsss.ablation.group import GROUP_ROWS, ablate_group
from wsss.engine.training import load_checkpoint
from wsss.errors import WsssError

TINY = {"dataset": "voc", "backbone": "small", "cam_epochs": 1, "group_epochs": 1, "crop": 16,
        "batch_size": 4,
        "scales": (1.0,)}  # fmt: skip


def test_ablate_group_rows_resume_and_settings(tiny_voc: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "ablation"
    lines: list[str] = []
    result = ablate_group(tiny_voc, out, progress=False, report=lines.append, **TINY)
    names = [row.name for row in GROUP_ROWS]
    assert list(result["rows"]) == names and len(lines) == len(names)
    rows = result["rows"]
    for row in rows.values():
        assert 0.0 <= row["miou"] <= 100.0 and 0.0 <= row["best_threshold"] < 1.0
    nets = sorted(p.name for p in (out / "train").iterdir())
    assert nets == ["k3_t3", "k4_t2", "k4_t3", "k4_t3_nodrop", "k5_t3", "single"]
    assert load_checkpoint(out / "train" / "k5_t3" / "final.pt")["config"]["group_size"] == 5
    assert not load_checkpoint(out / "train" / "k4_t3_nodrop" / "final.pt")["config"][
        "graph_dropout"
    ]
    # the full model's three outputs come from one network but are different CAMs
    assert {rows[n]["network"] for n in ("T = 3, K = 4 (self-ensembling)", "intermediate output",
                                         "graph output")} == {"k4_t3"}  # fmt: skip
    inter, graph = ({f.name: f.read_bytes() for f in (out / "cams" / k).glob("*.npz")}
                    for k in ("intermediate", "graph"))  # fmt: skip
    assert len(inter) == len(graph) == 9 and inter != graph
    # the same network's graph output with each image alone: its own inference pass, other CAMs
    alone = {f.name: f.read_bytes() for f in (out / "cams" / "graph_alone").glob("*.npz")}
    assert rows["graph output, alone"]["network"] == "k4_t3"
    assert alone.keys() == graph.keys() and alone != graph
    table = (out / "group.md").read_text()
    assert "| Node number | K = 5 | ensemble |" in table and "(shared)" in table
    assert json.loads((out / "group.json").read_text()) == result

    def no_rerun(*args, **kwargs):
        raise AssertionError("a finished row was recomputed")

    monkeypatch.setattr(ablation, "_run_row", no_rerun)
    cli = ["ablate", "group", "--root", str(tiny_voc), "--out", str(out), "--dataset", "voc",
           "--cam-epochs", "1", "--group-epochs", "1", "--crop", "16", "--scales", "1.0",
           "--batch-size", "4"]  # fmt: skip
    assert run_wsss(cli, monkeypatch) == 0
    assert json.loads((out / "group.json").read_text()) == result
    with pytest.raises(WsssError, match="other settings"):
        ablate_group(tiny_voc, out, progress=False, **{**TINY, "group_epochs": 2})
