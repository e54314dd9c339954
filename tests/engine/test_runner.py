from pathlib import Path

import pytest

from wsss.engine.runner import Stage, run_stages, select_stages
from wsss.errors import WsssError
from wsss.io.rundir import RunDir


def _stages(calls: list[str], fail: str | None = None) -> list[Stage]:
    def make(name: str):
        def fn(ctx):
            calls.append(name)
            if name == fail:
                raise WsssError("broken input", Path("x.png"))
            return {"n": len(calls)}

        return fn

    return [Stage(n, make(n)) for n in ("a", "b", "c")]


def test_rerun_skips_finished_and_resumes_after_failure(tmp_path: Path):
    run = RunDir(tmp_path)
    calls: list[str] = []
    with pytest.raises(WsssError, match="stage 'b' failed: broken input"):
        run_stages(_stages(calls, fail="b"), None, run)
    assert calls == ["a", "b"]
    assert run.stage_done("a") and not run.stage_done("b")
    calls.clear()
    run_stages(_stages(calls), None, run)
    assert calls == ["b", "c"]
    calls.clear()
    run_stages(_stages(calls), None, run)
    assert calls == []


def test_from_and_only(tmp_path: Path):
    run = RunDir(tmp_path)
    calls: list[str] = []
    run_stages(_stages(calls), None, run)
    calls.clear()
    run_stages(_stages(calls), None, run, start="b")
    assert calls == ["b", "c"]
    calls.clear()
    run_stages(_stages(calls), None, run, only="a")
    assert calls == ["a"]
    with pytest.raises(WsssError, match="unknown stage 'z'"):
        select_stages(_stages([]), only="z")


def test_main_only_stages_run_on_rank_zero_alone(tmp_path: Path, monkeypatch):
    calls: list[str] = []
    stages = _stages(calls)
    stages[1] = Stage("b", stages[1].run, main_only=True)
    run_stages(stages, None, RunDir(tmp_path / "rank0"))
    assert calls == ["a", "b", "c"]
    calls.clear()
    monkeypatch.setattr("wsss.engine.runner.is_main_process", lambda: False)
    other = RunDir(tmp_path / "rank1")
    run_stages(stages, None, other)
    assert calls == ["a", "c"]  # rank 1 skips "b" and, like every rank but 0, records nothing
    assert not other.stage_done("a")
