"""``wsss convert``: bring other datasets into the VOC layout."""

from __future__ import annotations

from pathlib import Path

import typer

from wsss.cli.common import console, state

app = typer.Typer(help="Convert datasets to the VOC layout.", no_args_is_help=True)


@app.command("coco")
def coco(
    instances: Path = typer.Option(
        ..., help="COCO instances JSON (e.g. instances_train2014.json)."
    ),
    images: Path = typer.Option(..., help="Folder of the COCO images of that split."),
    out: Path = typer.Option(..., help="Output root (VOC layout)."),
    split: str = typer.Option("train", help="Name of the list file to write."),
) -> None:
    """COCO instance annotations -> VOC-style class PNGs (pycocotools), resumable."""
    from wsss.data.coco import convert_coco

    count = convert_coco(instances, images, out, split, progress=not state.quiet)
    if not state.quiet:
        console.print(f"converted {count} images to {out} (split {split!r})")
