"""``wsss ablate``: the papers' ablation tables on a finished run."""

from __future__ import annotations

from pathlib import Path

import typer

from wsss.cli.common import console, state

app = typer.Typer(help="Ablation tables in the papers' layouts.", no_args_is_help=True)


@app.command("gcn")
def gcn(
    run: Path = typer.Option(Path("runs/demo"), help="A `wsss run` directory (cam, affinity)."),
    limit: int = typer.Option(100, min=1, help="Score the first N images of the split."),
    batch_size: int = typer.Option(32, min=1, help="Images whose GCNs train together."),
    device: str | None = typer.Option(None, help="cpu, cuda or cuda:<i> (default: the run's)."),
) -> None:
    """WSGCN table 2: l_fg + l_bg, + entropy, + Laplacian, + both, + dCRF; CAM and RW rows."""
    from rich.markdown import Markdown

    from wsss.ablation import ablate_gcn, gcn_table
    from wsss.engine import init_distributed, is_main_process

    init_distributed(device or "cpu")
    verbose = not state.quiet and is_main_process()
    result = ablate_gcn(run, limit=limit, batch_size=batch_size, device=device, progress=verbose)
    if verbose:
        console.print(Markdown("\n".join(gcn_table(result))))
        console.print(f"wrote {Path(run) / 'ablation' / 'gcn.json'}")
