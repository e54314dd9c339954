"""The run report as a list of blocks (headings, text, tables, figures), and its Markdown form.

:func:`wsss.viz.report.write_report` builds the blocks once; :func:`to_markdown` and
:func:`wsss.viz.report_html.to_html` render the same blocks, so ``report.md`` and
``report.html`` always hold the same content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Heading:
    """A section title; level 1 is the report's title."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    """A paragraph; text between backticks is code."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of preformatted cells.

    Attributes:
        header: Column titles.
        rows: One tuple of cells per row, as long as ``header``.
        numeric: Per column, whether it holds numbers (right-aligned).
        key: Identifier of the table (the HTML ``id``).
        notes: Footnotes shown under the table.
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    key: str = ""
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.numeric) != len(self.header):
            raise ValueError(f"{len(self.header)} columns but {len(self.numeric)} numeric flags")
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"row {row} has {len(row)} cells, the header {len(self.header)}")


@dataclass(frozen=True)
class Figure:
    """A PNG of the run directory, shown with its caption."""

    path: Path
    caption: str


Block = Heading | Text | Table | Figure


def fmt(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals, ``-`` for a missing one."""
    return "-" if value is None else f"{value:.{digits}f}"


def make_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric_from: int = 1,
    key: str = "",
    notes: Sequence[str] = (),
) -> Table:
    """A :class:`Table` whose columns from ``numeric_from`` on hold numbers."""
    numeric = tuple(i >= numeric_from for i in range(len(header)))
    return Table(tuple(header), tuple(tuple(r) for r in rows), numeric, key, tuple(notes))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(table: Table) -> list[str]:
    lines = [
        "| " + " | ".join(_md_cell(h) for h in table.header) + " |",
        "|" + "".join("---:|" if n else "---|" for n in table.numeric),
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        lines += ["", *[f"- {note}" for note in table.notes]]
    return lines


def to_markdown(blocks: Sequence[Block], base: Path) -> str:
    """The blocks as Markdown; figure links are relative to ``base`` (the run directory)."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append("#" * block.level + " " + block.text)
        elif isinstance(block, Text):
            parts.append(block.text)
        elif isinstance(block, Table):
            parts.append("\n".join(_md_table(block)))
        else:
            parts.append(f"![{block.caption}]({block.path.relative_to(base).as_posix()})")
    return "\n\n".join(parts) + "\n"
