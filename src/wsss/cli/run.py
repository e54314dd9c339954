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
from wsss.pipeline.preflight import check_run


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


def check_data_root(config: dict[str, Any], name: str) -> None:
    """Fail before anything is written when a real dataset is configured without its root.

    Raises:
        WsssError: ``data.dataset`` is not ``synthetic`` (which is generated) and ``data.root``
            is unset.
    """
    data = config.get("data") or {}
    dataset = data.get("dataset", "synthetic")
    if dataset != "synthetic" and not data.get("root"):
        raise WsssError(
            f"configuration {name!r} reads the {dataset!r} dataset but no data.root is set",
            hint="give the dataset folder with --root PATH",
        )


def run(
    config: str = typer.Option("demo", help="Shipped configuration name or a YAML file."),
    out: Path = typer.Option(Path("runs/demo"), help="Run directory."),
    seed: int | None = typer.Option(None, help="Override the configuration's seed."),
    train: int | None = typer.Option(None, help="Override data.train (benchmark size)."),
    val: int | None = typer.Option(None, help="Override data.val."),
    size: int | None = typer.Option(None, help="Override data.size."),
    root: Path | None = typer.Option(
        None, help="Dataset root: required by real datasets (voc, ...); synthetic is generated."
    ),
    split: str | None = typer.Option(
        None, help="Override pseudo.split: the split whose CAMs and pseudo labels are made."
    ),
    start: str | None = typer.Option(None, "--from", help="Rerun from this stage on."),
    only: str | None = typer.Option(None, help="Rerun this stage only."),
    weights: Path | None = typer.Option(
        None,
        help="Folder (or file) of the ImageNet weights for every training stage: sets "
        "cam.weights, group.weights and seg.weights (default: torch's cache).",
    ),
    settings: list[str] = typer.Option(
        [], "--set", help="KEY=VALUE override of any dotted key (YAML value), e.g. cam.epochs=5."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Same as `wsss --quiet`."),
) -> None:
    """Run every stage; rerunning skips finished stages and finishes interrupted ones."""
    from wsss.engine import init_distributed, shutdown_distributed
    from wsss.pipeline.stages import Context, pipeline_stages

    overrides = {"seed": seed, "data.train": train, "data.val": val, "data.size": size,
                 "data.root": None if root is None else str(root), "pseudo.split": split,
                 **{f"{s}.weights": None if weights is None else str(weights)
                    for s in ("cam", "group", "seg")}}  # fmt: skip
    overrides.update(parse_settings(settings))
    resolved = apply_overrides(load_config(config), overrides)
    check_data_root(resolved, config)
    check_run(resolved, out)  # every setting known, the ImageNet weights at hand
    stages = pipeline_stages(resolved)
    rundir = RunDir(out)
    previous = rundir.load_config()
    if previous is not None and previous != resolved and not (start or only):
        raise WsssError(
            "the run directory holds a run with another configuration",
            rundir.config_path,
            hint="choose another --out, or rerun stages with --from",
        )
    info = init_distributed(resolved.get("device", "cpu"))  # under torchrun: join the group
    if info.rank == 0:
        rundir.save_config(resolved)
    verbose = not (state.quiet or quiet) and info.rank == 0
    ctx = Context(config=resolved, rundir=rundir, progress=verbose)

    def announce(stage: Stage, status: str) -> None:
        if verbose:
            console.print(f"[bold]{stage.name}[/bold]: {status}")

    try:
        run_stages(stages, ctx, rundir, start=start, only=only, on_stage=announce)
    finally:
        shutdown_distributed()
    report = rundir.path / "report.md"
    if verbose and report.is_file():
        from rich.markdown import Markdown

        # the title and the stage-by-stage table; the rest is in the files
        sections = report.read_text(encoding="utf-8").split("\n## ")
        console.print(Markdown("\n## ".join(sections[:2])))
        console.print(f"report: {report} and {report.with_suffix('.html')}")
