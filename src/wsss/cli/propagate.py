"""``wsss propagate``: full-size label maps from CAMs by label propagation (``--method rw|gcn``).

Runs in one process or under ``torchrun --nproc_per_node N`` with the same arguments, and resumes
when rerun (existing PNGs are kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from wsss.cli.common import console, open_dataset, state
from wsss.cli.gcn_options import gcn_options, with_gcn_options
from wsss.errors import WsssError


def _rw_options(affinity: Path | None, beta: float | None, exp_times: int | None,
                bg_threshold: float | None, alpha: float | None) -> dict[str, Any]:  # fmt: skip
    if affinity is None:
        raise WsssError("--method rw needs --affinity (a train-affinity run)")
    return {"affinity": affinity, "beta": beta, "exp_times": exp_times,
            "bg_threshold": bg_threshold, "alpha": alpha}  # fmt: skip


@with_gcn_options
def propagate(
    cams: Path = typer.Option(..., help="Folder of <id>.npz CAM files (from wsss cam)."),
    out: Path = typer.Option(..., help="Folder of <id>.png labels (rerun to resume)."),
    method: str = typer.Option("rw", help="rw (IRNet / AffinityNet random walk) or gcn (WSGCN)."),
    affinity: Path | None = typer.Option(
        None,
        help="rw: the train-affinity run (or its final.pt); gcn: an IRNet run for the "
        "sparse T^256 graph and its features (without one: the low-level Phi graph).",
    ),
    root: Path | None = typer.Option(None, help="Dataset root (or the dataset's env variable)."),
    dataset: str = typer.Option("auto", help="voc, coco, synthetic, ... or auto."),
    split: str = typer.Option("train", help="Split to label."),
    beta: float | None = typer.Option(None, help="rw: affinity exponent (irn 10, psa 8)."),
    exp_times: int | None = typer.Option(None, help="rw: 2^k walk steps, k (8)."),
    bg_threshold: float | None = typer.Option(None, help="rw irn: background score (0.25)."),
    alpha: float | None = typer.Option(None, help="rw psa: background (1 - max CAM)^alpha (16)."),
    batch_size: int = typer.Option(
        16, min=1, help="gcn: images whose GCNs train together (same result as one at a time)."
    ),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:<i>."),
    gcn: dict[str, Any] | None = None,
) -> None:
    """Propagate CAMs over a pixel graph into full-size label maps (0 background, no 255)."""
    from wsss.engine import barrier, init_distributed, is_main_process
    from wsss.propagation import create_propagator
    from wsss.propagation import propagate as run_propagation

    builders = {
        "rw": lambda: _rw_options(affinity, beta, exp_times, bg_threshold, alpha),
        # WSGCN (wsss.gcn): sparse T^256 of an IRNet run, or the Phi graph without one.
        "gcn": lambda: gcn_options(affinity=affinity, **(gcn or {})),
    }  # fmt: skip
    if method not in builders:
        raise WsssError(
            f"unknown propagation method {method!r}; valid names: {', '.join(builders)}"
        )
    init_distributed(device)
    propagator = create_propagator(method, device=device, **builders[method]())
    data = open_dataset(dataset, root, split)
    verbose = not state.quiet and is_main_process()
    done = run_propagation(data, cams, out, propagator, batch_size=batch_size, progress=verbose)
    barrier()
    if verbose:
        skipped = done["shard"] - done["written"]
        console.print(
            f"{method} labels of {len(data)} images in {out} (rank 0: {skipped} already there)"
        )
