"""Shared CLI state and helpers: global flags, console, progress, dataset options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wsss.data.base import SegmentationDataset
from wsss.data.registry import create_dataset
from wsss.data.synthetic import META_FILE


@dataclass
class _State:
    debug: bool = False
    quiet: bool = False


state = _State()
console = Console(stderr=False)


def open_dataset(name: str, root: Path | None, split: str) -> SegmentationDataset:
    """A dataset by registry name; ``auto`` picks ``synthetic`` when the root holds meta.json,
    else ``voc``."""
    if name == "auto":
        name = "synthetic" if root is not None and (root / META_FILE).is_file() else "voc"
    return create_dataset(name, root=root, split=split)


def scores_table(
    title: str,
    per_class: dict[str, float | None],
    summary: dict[str, str],
    extra: dict[str, dict[str, float | None]] | None = None,
) -> Table:
    """A rich table of per-class IoU (and the ``extra`` columns, e.g. precision and recall, by
    class name) followed by summary rows."""
    extra = extra or {}
    table = Table(title=title, show_edge=False)
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for column in extra:
        table.add_column(column, justify="right")

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for name, value in per_class.items():
        table.add_row(name, cell(value), *(cell(col.get(name)) for col in extra.values()))
    table.add_section()
    for key, value in summary.items():
        table.add_row(f"[bold]{key}[/bold]", f"[bold]{value}[/bold]", *([""] * len(extra)))
    return table
