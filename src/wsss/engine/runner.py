"""The stage runner: run named stages in order in a run directory, skipping finished ones."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wsss.engine.distributed import barrier, is_main_process
from wsss.errors import WsssError
from wsss.io.rundir import RunDir


@dataclass(frozen=True)
class Stage:
    """A named step of the pipeline; ``run`` returns a JSON-ready summary of its outputs.

    ``main_only``: under ``torchrun`` only rank 0 runs it (a stage with no per-image sharding and
    no collective operation, whose files every process would otherwise write alike).
    """

    name: str
    run: Callable[[Any], dict[str, Any]]
    help: str = ""
    main_only: bool = False


def select_stages(
    stages: Sequence[Stage], *, start: str | None = None, only: str | None = None
) -> list[Stage]:
    """The stages to run: all, from ``start`` on, or ``only`` one. Unknown names are errors."""
    names = [s.name for s in stages]
    for wanted in (start, only):
        if wanted is not None and wanted not in names:
            raise WsssError(f"unknown stage {wanted!r}; stages: {', '.join(names)}")
    if only is not None:
        return [s for s in stages if s.name == only]
    if start is not None:
        return list(stages[names.index(start) :])
    return list(stages)


def run_stages(
    stages: Sequence[Stage],
    context: Any,
    rundir: RunDir,
    *,
    start: str | None = None,
    only: str | None = None,
    on_stage: Callable[[Stage, str], None] | None = None,
) -> dict[str, float]:
    """Run the selected stages; finished stages are skipped unless named by ``start``/``only``.

    A stage's error is re-raised naming the stage. Returns seconds per stage run now. Under
    ``torchrun`` every process runs every selected stage (per-image stages shard their ids,
    training stages use DDP) but the ``main_only`` ones, between barriers, and rank 0 alone writes
    the manifest.
    """
    selected = select_stages(stages, start=start, only=only)
    forced = {s.name for s in selected} if (start or only) else set()
    times: dict[str, float] = {}
    for stage in selected:
        if stage.name not in forced and rundir.stage_done(stage.name):
            if on_stage:
                on_stage(stage, "skipped (done)")
            continue
        if on_stage:
            on_stage(stage, "running")
        if is_main_process():  # only a stage about to run changes: every rank decides alike
            rundir.clear_stage(stage.name)
        start_time, start_cpu = time.perf_counter(), time.process_time()
        try:
            outputs = stage.run(context) if is_main_process() or not stage.main_only else {}
        except WsssError as err:
            raise WsssError(
                f"stage {stage.name!r} failed: {err.problem}", err.path, err.hint
            ) from err
        barrier()  # the stage's files of every process exist before the next stage reads them
        times[stage.name] = time.perf_counter() - start_time
        if is_main_process():
            rundir.record_stage(stage.name, seconds=times[stage.name], outputs=outputs,
                                cpu_seconds=time.process_time() - start_cpu)  # fmt: skip
        if on_stage:
            on_stage(stage, f"done in {times[stage.name]:.1f} s")
    return times
