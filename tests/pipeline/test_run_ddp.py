"""`wsss run` under torchrun with 2 gloo processes: every stage runs, rank 0 keeps the manifest, and
the per-image stages write the same bytes as one process given the same inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fakes import spawn_wsss


@pytest.mark.distributed
def test_run_under_torchrun_matches_one_process(tmp_path: Path, tiny_args: list[str]):
    # group training splits each batch of groups over the processes: 2 groups a batch
    args = ["run", "--config", "demo", *tiny_args, "--set", "group.groups_per_batch=2"]
    two = tmp_path / "two"
    spawn_wsss([*args, "--out", str(two)], nproc=2, timeout=600)
    manifest = json.loads((two / "manifest.json").read_text())
    assert len(manifest["stages"]) == 17
    assert all(stage["status"] == "done" for stage in manifest["stages"].values())
    metrics = json.loads((two / "metrics.json").read_text())
    assert set(metrics["val"]) >= {"DeepLabV3+", "ES-CRF"}
    assert len(list((two / "gcn" / "wsgcn_i_crf").glob("*.png"))) == 12

    # the per-image stages again in one process, from the two-process run's inputs
    one = tmp_path / "one"
    shutil.copytree(two, one)
    for folder in ("seeds", "gcn", "cams_group"):
        shutil.rmtree(one / folder)
    for stage in ("seeds", "group_cam", "gcn"):
        spawn_wsss([*args, "--out", str(one), "--only", stage], nproc=1, timeout=300)
    for folder in ("seeds", "gcn", "cams_group"):
        files = sorted(p.relative_to(two) for p in (two / folder).rglob("*") if p.is_file())
        assert files, folder
        for rel in files:
            assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
