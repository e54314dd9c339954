"""``wsss synth``: write the shipped benchmark in the VOC layout."""

from __future__ import annotations

from pathlib import Path

import typer

from wsss.cli.common import console, state
from wsss.synth.design import GENERATOR_VERSION


def synth(
    out: Path = typer.Argument(..., help="Folder to write the dataset into."),
    train: int = typer.Option(1000, min=1, help="Number of training images."),
    val: int = typer.Option(200, min=1, help="Number of validation images."),
    size: int = typer.Option(128, min=32, help="Image side in pixels."),
    seed: int = typer.Option(0, help="Seed: the same seed gives byte-identical files."),
    version: str = typer.Option(
        GENERATOR_VERSION, help="Generator version (2 reproduces earlier runs byte for byte)."
    ),
    own_texture_prob: float | None = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="Version 3: probability that a body wears its class's texture (default: the "
        "calibrated value, docs/synthetic.md).",
    ),
) -> None:
    """Generate the synthetic VOC-layout benchmark (resumes an interrupted run)."""
    from wsss.synth.generate import generate_benchmark

    meta = generate_benchmark(
        out,
        n_train=train,
        n_val=val,
        size=size,
        seed=seed,
        progress=not state.quiet,
        version=version,
        own_texture_prob=own_texture_prob,
    )
    if not state.quiet:
        classes = ", ".join(meta["classes"][1:])
        console.print(
            f"wrote {train} train + {val} val images of {size}x{size} to {out} "
            f"(generator version {meta['generator_version']})"
        )
        console.print(f"classes: {classes}")
