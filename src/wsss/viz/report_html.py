"""The report as one self-contained HTML page: inline CSS, figures as base64 ``data:`` URIs, no
script and no external request (a Content-Security-Policy forbids any), so the file can be
mailed, archived or opened offline and shows the same everywhere."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

from wsss.viz.report_doc import Block, Heading, Table, Text

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232a;
       margin: 0 auto; padding: 24px 32px 48px; max-width: 1200px; background: #fff; }
h1 { font-size: 24px; border-bottom: 2px solid #2c5aa0; padding-bottom: 6px; }
h2 { font-size: 18px; margin-top: 32px; color: #2c5aa0; }
nav { font-size: 13px; margin-bottom: 12px; }
nav a { margin-right: 14px; color: #2c5aa0; text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; }
th, td { padding: 3px 10px; border-bottom: 1px solid #d8dde3; text-align: left; }
thead th { border-bottom: 2px solid #1d232a; background: #f2f5f9; }
td.num, th.num { text-align: right; }
td.ref, th.ref { color: #6b4e16; background: #fbf6ea; }
tbody tr:hover { background: #f6f8fb; }
ul.notes { font-size: 12px; color: #4a525b; margin: 4px 0 12px; padding-left: 18px; }
figure { margin: 12px 0; }
figure img { max-width: 100%; border: 1px solid #d8dde3; image-rendering: pixelated; }
figcaption { font-size: 12px; color: #4a525b; }
code { background: #f2f5f9; padding: 0 3px; border-radius: 3px; }
"""

#: Only inline styles and ``data:`` images: the page makes no request of any kind.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}


def data_uri(path: Path) -> str:
    """The file as a ``data:<mime>;base64,...`` URI.

    Raises:
        ValueError: a suffix other than .png, .jpg, .jpeg, .svg.
    """
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"cannot embed {path}: unknown image type {path.suffix!r}")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _inline(text: str) -> str:
    """Escape ``text``; spans between backticks become ``<code>``."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def anchor(text: str) -> str:
    """A fragment identifier for a heading."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _cell(tag: str, text: str, classes: list[str]) -> str:
    attr = f' class="{" ".join(classes)}"' if classes else ""
    return f"<{tag}{attr}>{_inline(text)}</{tag}>"


def _table(table: Table) -> list[str]:
    classes = [
        [c for c, on in (("num", numeric), ("ref", head.startswith("paper"))) if on]
        for head, numeric in zip(table.header, table.numeric, strict=True)
    ]
    ident = f' id="{html.escape(table.key)}"' if table.key else ""
    lines = [f"<table{ident}>", "<thead><tr>"]
    lines += [_cell("th", h, c) for h, c in zip(table.header, classes, strict=True)]
    lines += ["</tr></thead>", "<tbody>"]
    for row in table.rows:
        cells = "".join(_cell("td", t, c) for t, c in zip(row, classes, strict=True))
        lines.append(f"<tr>{cells}</tr>")
    lines += ["</tbody>", "</table>"]
    if table.notes:
        lines += ['<ul class="notes">', *[f"<li>{_inline(n)}</li>" for n in table.notes], "</ul>"]
    return lines


def _block(block: Block) -> list[str]:
    if isinstance(block, Heading):
        level = min(max(block.level, 1), 6)
        return [f'<h{level} id="{anchor(block.text)}">{_inline(block.text)}</h{level}>']
    if isinstance(block, Text):
        return [f"<p>{_inline(block.text)}</p>"]
    if isinstance(block, Table):
        return _table(block)
    caption = html.escape(block.caption)
    return [f'<figure><img src="{data_uri(block.path)}" alt="{caption}">',
            f"<figcaption>{caption}</figcaption></figure>"]  # fmt: skip


def to_html(blocks: Sequence[Block], *, title: str) -> str:
    """The blocks as a standalone HTML5 page; level-2 headings are listed in a top menu."""
    sections = [b.text for b in blocks if isinstance(b, Heading) and b.level == 2]
    nav = " ".join(f'<a href="#{anchor(s)}">{_inline(s)}</a>' for s in sections)
    body = [line for block in blocks for line in _block(block)]
    if len(body) > 1 and sections:
        body.insert(1, f"<nav>{nav}</nav>")
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
    ]
    return "\n".join([*head, *body, "</body>", "</html>"]) + "\n"
