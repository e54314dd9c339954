"""Same seed, same report numbers: the tiny demo run made a second time, in another directory,
gives the same metrics.json (everything but the seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_wsss


def test_same_seed_same_numbers(
    finished_run: Path, tiny_args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    again = tmp_path / "again"
    assert run_wsss(["run", "--config", "demo", "--out", str(again), *tiny_args], monkeypatch) == 0
    first = json.loads((finished_run / "metrics.json").read_text())
    second = json.loads((again / "metrics.json").read_text())
    assert set(first) == set(second)
    for key in sorted(set(first) - {"seconds", "cpu_seconds"}):
        assert first[key] == second[key], key
    assert first["seconds"].keys() == second["seconds"].keys()
    # the numbers are not those of an untrained network: the check has something to compare
    assert len({round(s["miou"], 6) for s in first["pseudo"]["labels"].values()}) > 1
