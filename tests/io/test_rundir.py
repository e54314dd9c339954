import os
from pathlib import Path

import torch

from wsss.io.rundir import RunDir


def test_config_and_stage_records(tmp_path: Path):
    run = RunDir(tmp_path / "run")
    assert run.load_config() is None
    run.save_config({"seed": 3, "data": {"train": 5}})
    assert run.load_config() == {"seed": 3, "data": {"train": 5}}
    assert not run.stage_done("data")
    run.record_stage("data", seconds=1.23456, outputs={"n": 5})
    assert run.stage_done("data")
    manifest = run.manifest()
    policy = os.environ.get("OMP_WAIT_POLICY") or "default"
    assert manifest["stages"]["data"] == {"status": "done", "seconds": 1.235, "n": 5,
                                          "threads": torch.get_num_threads(),
                                          "omp_wait_policy": policy}  # fmt: skip
    assert manifest["environment"]["torch"] and manifest["environment"]["cpus"] >= 1
    run.clear_stage("data")
    assert not run.stage_done("data")
