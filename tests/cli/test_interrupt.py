"""Killing `wsss cam` / `wsss seeds` part-way and rerunning completes only the missing images,
with files byte-identical to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from wsss.cam.train import FINAL_FILE, build_model, resolve_config
from wsss.engine.training import save_checkpoint
from wsss.synth.generate import generate_benchmark

N_IMAGES = 40


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("interrupt")
    root = base / "synth"
    generate_benchmark(root, n_train=N_IMAGES, n_val=2, size=64, seed=1, progress=False)
    config = resolve_config(dataset="synthetic", root=root, backbone="small")
    torch.manual_seed(0)
    model = build_model(config, 10, pretrained=False)
    save_checkpoint(base / "run" / FINAL_FILE,
                    {"model": model.state_dict(), "config": config.to_dict()})  # fmt: skip
    return root, base / "run"


def _command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "wsss", "--quiet", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _finished(folder: Path, pattern: str) -> list[Path]:
    """Outputs matching ``pattern``, without the hidden temporaries a kill may leave behind."""
    return sorted(p for p in folder.glob(pattern) if not p.name.startswith("."))


def _kill_after(args: list[str], out: Path, pattern: str, at_least: int) -> int:
    """Start the command, SIGKILL it once ``at_least`` outputs exist; the count at the kill."""
    proc = subprocess.Popen(_command(args), env=_env())
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and len(_finished(out, pattern)) >= at_least:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        proc.wait(timeout=60)
    return len(_finished(out, pattern))


def _files(folder: Path, pattern: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in _finished(folder, pattern)}


def _check_resume(args: list[str], out: Path, reference: Path, pattern: str) -> None:
    subprocess.run(_command([*args, "--out", str(reference)]), check=True, env=_env(), timeout=300)
    written = _kill_after([*args, "--out", str(out)], out, pattern, at_least=3)
    assert 3 <= written < N_IMAGES, f"the kill came too late ({written} files)"
    before = {p.name: p.stat().st_mtime_ns for p in _finished(out, pattern)}
    subprocess.run(_command([*args, "--out", str(out)]), check=True, env=_env(), timeout=300)
    after = {p.name: p.stat().st_mtime_ns for p in _finished(out, pattern)}
    assert all(after[name] == mtime for name, mtime in before.items())  # finished: not redone
    assert len(after) == N_IMAGES
    assert _files(out, pattern) == _files(reference, pattern)
    assert not [p for p in out.iterdir() if ".tmp" in p.name]  # no leftover temporaries


def test_cam_killed_and_rerun_is_byte_identical(setup, tmp_path: Path) -> None:
    root, run = setup
    args = ["cam", "--checkpoint", str(run), "--root", str(root), "--dataset", "synthetic",
            "--scales", "1.0,0.5,1.5,2.0"]  # fmt: skip
    _check_resume(args, tmp_path / "cams", tmp_path / "reference", "*.npz")


def test_seeds_killed_and_rerun_is_byte_identical(setup, tmp_path: Path) -> None:
    root, run = setup
    cams = tmp_path / "cams"
    make_cams = ["cam", "--checkpoint", str(run), "--root", str(root), "--dataset", "synthetic",
                 "--scales", "1.0", "--out", str(cams)]  # fmt: skip
    subprocess.run(_command(make_cams), check=True, env=_env(), timeout=300)
    args = ["seeds", "--method", "irnet", "--cams", str(cams), "--root", str(root),
            "--dataset", "synthetic"]  # fmt: skip
    _check_resume(args, tmp_path / "seeds", tmp_path / "reference", "*.png")
