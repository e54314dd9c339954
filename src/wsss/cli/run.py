"""``wsss run``: the whole pipeline from one configuration, in a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from wsss.cli.common import console, state
from wsss.engine.runner import Stage, run_stages
from wsss.errors import WsssError
from wsss.io.rundir import RunDir
from wsss.pipeline.config import apply_overrides, load_config


def parse_settings(settings: list[str]) -> dict[str, Any]:
    """``["cam.epochs=5", "seeds.methods=[irnet]"]`` -> ``{"cam.epochs": 5, ...}`` (YAML values).

    Raises:
        WsssError: an item without ``=`` or with an empty key.
    """
    import yaml

    parsed: dict[str, Any] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise WsssError(f"--set expects KEY=VALUE, got {item!r}")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def run(
    config: str = typer.Option("demo", help="Shipped configuration name or a YAML file."),
    out: Path = typer.Option(Path("runs/demo"), help="Run directory."),
    seed: int | None = typer.Option(None, help="Override the configuration's seed."),
    train: int | None = typer.Option(None, help="Override data.train (benchmark size)."),
    val: int | None = typer.Option(None, help="Override data.val."),
    size: int | None = typer.Option(None, help="Override data.size."),
    root: Path | None = typer.Option(None, help="Dataset root (instead of generating one)."),
    start: str | None = typer.Option(None, "--from", help="Rerun from this stage on."),
    only: str | None = typer.Option(None, help="Rerun this stage only."),
    settings: list[str] = typer.Option(
        [], "--set", help="KEY=VALUE override of any dotted key (YAML value), e.g. cam.epochs=5."
    ),
) -> None:
    """Run every stage; rerunning skips finished stages and finishes interrupted ones."""
    from wsss.pipeline.stages import STAGES, Context

    overrides = {"seed": seed, "data.train": train, "data.val": val, "data.size": size,
                 "data.root": None if root is None else str(root)}  # fmt: skip
    overrides.update(parse_settings(settings))
    resolved = apply_overrides(load_config(config), overrides)
    rundir = RunDir(out)
    previous = rundir.load_config()
    if previous is not None and previous != resolved and not (start or only):
        raise WsssError(
            "the run directory holds a run with another configuration",
            rundir.config_path,
            hint="choose another --out, or rerun stages with --from",
        )
    rundir.save_config(resolved)
    ctx = Context(config=resolved, rundir=rundir, progress=not state.quiet)

    def announce(stage: Stage, status: str) -> None:
        if not state.quiet:
            console.print(f"[bold]{stage.name}[/bold]: {status}")

    run_stages(STAGES, ctx, rundir, start=start, only=only, on_stage=announce)
    report = rundir.path / "report.md"
    if not state.quiet and report.is_file():
        from rich.markdown import Markdown

        text = report.read_text(encoding="utf-8")
        console.print(Markdown(text.split("## IoU per class")[0]))
        console.print(f"report: {report}")
