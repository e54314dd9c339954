"""A finished tiny run of the demo pipeline, shared by the pipeline tests (running it takes ~10 s
of CPU, so it runs once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cli_runner import run_wsss

#: The demo configuration at a tiny size: 12 train and 6 val images of 64 px, few epochs, on the
#: small backbone trained from scratch (the demo's EfficientNet-Lite0 costs ~10x more per step;
#: the stages' logic is the same). Six CAM epochs (not one) give CAMs above a constant
#: background, hence distinct numbers to check.
TINY_ARGS = ["--train", "12", "--val", "6", "--size", "64",
             "--set", "cam.backbone=small", "--set", "group.backbone=small",
             "--set", "seg.backbone=small", "--set", "seg.pretrained=false",
             "--set", "cam.epochs=6", "--set", "cam.batch_size=4", "--set", "cam.scales=[1.0, 0.5]", "--set", "group.scales=[1.0, 0.5]",
             "--set", "report.samples=3", "--set", "affinity.epochs={irn: 1, psa: 1}",
             "--set", "affinity.batch_size=4", "--set", "gcn.batch_size=5",
             "--set", "ablation.gcn_images=4", "--set", "seg.epochs=2", "--set", "seg.batch_size=4"]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_args() -> list[str]:
    """``wsss run`` options of the tiny demo run (after ``--config demo --out DIR``)."""
    return list(TINY_ARGS)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory, tiny_args: list[str]) -> Path:
    """The run directory of ``wsss run --config demo`` at the tiny size, every stage done.

    It runs on one torch thread, like the tests (the suite's ``_one_torch_thread`` fixture does
    not reach session fixtures): float sums, hence the numbers, depend on the thread count.
    """
    out = tmp_path_factory.mktemp("run") / "demo"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            assert run_wsss(["run", "--config", "demo", "--out", str(out), *tiny_args], mp) == 0
    finally:
        torch.set_num_threads(threads)
    return out
