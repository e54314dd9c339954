"""`wsss ablate group` on a tiny split: every row scored, resume per row, settings checked."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import wsss.ablation.group as ablation
from cli_runner import run_wsss
from wsss.ablation.group import (
    GROUP_ROWS,
    GroupRow,
    ablate_group,
    ablate_group_seeds,
    row_config,
    select_rows,
)
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
    assert nets == ["k3_t3", "k4_t2", "k4_t3", "k4_t3_authors", "k4_t3_joint", "k4_t3_mean",
                    "k4_t3_nodrop", "k5_t3", "single"]  # fmt: skip
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
    assert rows["sum (eq. 8), graph output, alone"]["network"] == "k4_t3"
    assert alone.keys() == graph.keys() and alone != graph
    # the options reach the networks and the inference passes
    trained = {n: load_checkpoint(out / "train" / n / "final.pt")["config"]
               for n in ("k4_t3_mean", "k4_t3_joint", "k4_t3_authors")}  # fmt: skip
    assert trained["k4_t3_mean"]["messages"] == "mean"
    assert trained["k4_t3_joint"]["messages"] == "joint"
    assert trained["k4_t3_authors"]["drop_form"] == "authors"
    left_out = {f.name: f.read_bytes() for f in (out / "cams" / "drop_identity_graph").glob("*")}
    assert left_out.keys() == graph.keys() and left_out != graph
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
    # the long-side range reaches both recipes (so a folder made with another one is refused)
    assert run_wsss([*cli, "--long-side", "20", "24"], monkeypatch) == 2
    with pytest.raises(WsssError, match="other settings") as refused:
        ablate_group(tiny_voc, out, progress=False, **{**TINY, "long_side": (20, 24)})
    assert "'single'" in str(refused.value) and "'group'" in str(refused.value)


def test_rows_are_paired_at_step_0(tiny_voc: Path, single_run: Path):
    """Every group row starts from the full model's weights in every part they share, and
    leaves the same global stream (graph dropout draws) after building."""
    import torch

    from wsss.data.voc import VOCSegmentation
    from wsss.engine.training import seed_everything
    from wsss.group.train import build_group_model, init_from_cam, resolve_group_config

    base = resolve_group_config(dataset="voc", root=tiny_voc, backbone="small", epochs=1,
                                seed=5, init=single_run / "final.pt")  # fmt: skip
    labels = VOCSegmentation(tiny_voc).classes.num_labels

    def start(row: GroupRow, seed: int = 5) -> tuple[dict, torch.Tensor]:
        config = dataclasses.replace(row_config(row, base), seed=seed)
        seed_everything(seed, deterministic=False)  # as train_group does
        model = build_group_model(config, labels, pretrained=False)
        init_from_cam(model, single_run / "final.pt")
        return model.state_dict(), torch.get_rng_state()

    full, stream = start(GROUP_ROWS[1])
    group_rows = [r for r in GROUP_ROWS if r.model == "group"]
    assert {r.net for r in group_rows} >= {"k4_t3_mean", "k4_t3_joint", "k4_t3_authors"}
    for row in group_rows:
        state, after = start(row)
        assert state.keys() == full.keys(), row.key
        assert all(torch.equal(state[k], full[k]) for k in state), row.key
        assert torch.equal(after, stream), row.key
    # the backbone and readouts come from the single network, the GNN from the seed
    single = load_checkpoint(single_run / "final.pt")["model"]
    assert torch.equal(full["graph_readout.classifier.weight"], single["classifier.weight"])
    other, _ = start(GROUP_ROWS[1], seed=6)
    assert not torch.equal(other["gnn.coattention.p"], full["gnn.coattention.p"])


def test_select_rows():
    assert [r.key for r in select_rows("paper")][:2] == ["single", "full"]
    assert [r.key for r in select_rows("graph_alone,graph")] == ["single", "graph", "graph_alone"]
    messages = select_rows("messages")
    assert {r.messages for r in messages} == {"sum", "mean", "joint"}
    assert {r.infer_group_size for r in messages} == {None, 1}
    assert {r.key for r in select_rows("all")} == {r.key for r in GROUP_ROWS}
    assert len({r.key for r in GROUP_ROWS}) == len(GROUP_ROWS)
    with pytest.raises(WsssError, match="unknown ablation row"):
        select_rows("paper,nonsense")


def test_ablate_group_seeds_summary(tiny_voc: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "seeds"
    rows = select_rows("graph,graph_alone")
    summary = ablate_group_seeds(tiny_voc, out, seeds=[0, 1], rows=rows, progress=False, **TINY)
    assert summary["seeds"] == [0, 1]
    for seed in (0, 1):
        result = json.loads((out / f"seed{seed}" / "group.json").read_text())
        assert result["settings"]["group"]["seed"] == seed
        assert list(result["rows"]) == [r.name for r in rows]
    table = (out / "group_seeds.md").read_text()
    graph = [summary["runs"][s]["rows"]["graph output"]["miou"] for s in ("0", "1")]
    alone = [summary["runs"][s]["rows"]["sum (eq. 8), graph output, alone"]["miou"]
             for s in ("0", "1")]  # fmt: skip
    mean = (graph[0] + graph[1]) / 2
    assert f"| {mean:.2f} ± " in table
    diff = (alone[0] - graph[0] + alone[1] - graph[1]) / 2
    assert (
        f"| sum (eq. 8), graph output, alone | graph output | {alone[0] - graph[0]:+.2f}" in table
    )
    assert f"| {diff:.2f} ± " in table
    cli = ["ablate", "group", "--root", str(tiny_voc), "--out", str(out), "--dataset", "voc",
           "--cam-epochs", "1", "--group-epochs", "1", "--crop", "16", "--scales", "1.0",
           "--batch-size", "4", "--seeds", "0,1", "--rows", "graph,graph_alone"]  # fmt: skip
    monkeypatch.setattr(ablation, "_run_row", _no_rerun)
    assert run_wsss(cli, monkeypatch) == 0  # resumed: every row of both seeds is finished
    assert json.loads((out / "group_seeds.json").read_text()) == json.loads(json.dumps(summary))
    with pytest.raises(WsssError, match="distinct"):
        ablate_group_seeds(tiny_voc, out, seeds=[1, 1], rows=rows, **TINY)


def _no_rerun(*args, **kwargs):
    raise AssertionError("a finished row was recomputed")
