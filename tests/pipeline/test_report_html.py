"""report.html of the finished tiny run, rendered by headless Chromium: its DOM holds the numbers
of metrics.json, every image is embedded, and the screenshot is a real page of the asked size."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from wsss.viz.reference import PAPER_VOC

WIDTH, HEIGHT = 1280, 2000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chromium() -> str:
    """The Chromium executable; skip without one unless WSSS_REQUIRE_CHROMIUM is set."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    hint = "apt-get install -y chromium (the Makefile's test set-up does it)"
    if os.environ.get("WSSS_REQUIRE_CHROMIUM"):
        pytest.fail(f"WSSS_REQUIRE_CHROMIUM is set but chromium is not on PATH: {hint}")
    pytest.skip(f"chromium is not installed: {hint}")


def _headless(chromium: str, profile: Path, *args: str) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
             f"--user-data-dir={profile}"]  # fmt: skip
    done = subprocess.run([chromium, *flags, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Page(HTMLParser):
    """Tables (by id: rows of cell texts), image sources and link targets of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("id") or f"t{len(self.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src") or "")
        self.links += [v for k, v in attrs if k in ("href", "src") and v and tag != "img"]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def rendered(finished_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    chromium = _chromium()
    tmp = tmp_path_factory.mktemp("chromium")
    url = (finished_run / "report.html").resolve().as_uri()
    dom = _headless(chromium, tmp / "profile-dom", "--dump-dom", url)
    shot = tmp / "report.png"
    _headless(chromium, tmp / "profile-shot", f"--screenshot={shot}",
              f"--window-size={WIDTH},{HEIGHT}", url)  # fmt: skip
    page = _Page()
    page.feed(dom)
    summary = json.loads((finished_run / "metrics.json").read_text())
    return {"page": page, "dom": dom, "screenshot": shot, "metrics": summary}


def _row(table: list[list[str]], first: str, column: int = 0) -> list[str]:
    rows = [r for r in table if len(r) > column and r[column] == first]
    assert len(rows) == 1, (first, table)
    return rows[0]


def test_stage_table_holds_the_run_and_the_papers(rendered: dict[str, Any]) -> None:
    table, m = rendered["page"].tables["stages"], rendered["metrics"]
    assert table[0] == ["stage", "method", "split", "mIoU", "vs CAM", "paper (VOC)"]
    cam = _row(table, "CAM", 1)
    cam_miou = m["pseudo"]["cam"]["best"]["miou"]
    assert cam[3] == f"{cam_miou:.2f}" and cam[4] == "-"
    assert cam[5] == f"{PAPER_VOC['CAM'].miou:.1f}"
    for method, name in (("irnet", "IRNet seeds"), ("wsgcn", "WSGCN seeds")):
        seeds = m["pseudo"]["seeds"][method]
        assert _row(table, name, 1)[3] == f"{seeds['miou_pred255_background']:.2f}"
    for name, scores in m["pseudo"]["labels"].items():
        row = _row(table, name, 1)
        assert row[3] == f"{scores['miou']:.2f}"
        assert row[4] == f"{scores['miou'] - cam_miou:+.1f}"
        assert row[5] == f"{PAPER_VOC[name].miou:.1f}"
    for name, scores in m["val"].items():
        assert _row(table, name, 1)[2:4] == ["val", f"{scores['miou']:.2f}"]
    stages = [r[0] for r in table[1:]]
    assert stages == sorted(stages, key=["CAM", "seeds", "random walk", "GCN", "GCN + dCRF",
                                         "segmentation", "baseline"].index)  # fmt: skip


def test_other_tables_hold_the_metrics(rendered: dict[str, Any]) -> None:
    tables, m = rendered["page"].tables, rendered["metrics"]
    for name, scores in m["pseudo"]["labels"].items():
        assert _row(tables["pseudo"], name)[1] == f"{scores['miou_pred255_background']:.2f}"
    for name, scores in m["ablation"]["gcn"]["rows"].items():
        row = _row(tables["ablation"], name)
        assert row[1] == f"{scores['miou']:.2f}"
        assert row[3] == f"{PAPER_VOC[name].miou:.1f}"
    assert tables["class-val"][0] == ["class", *m["val"]]
    for column, val in enumerate(m["val"].values(), start=1):
        for cls, iou in val["iou"].items():
            assert _row(tables["class-val"], cls)[column] == ("-" if iou is None else f"{iou:.2f}")
    assert tables["class-pseudo"][0][1:] == ["CAM", "IRNet seeds", "WSGCN seeds",
                                             *m["pseudo"]["labels"]]  # fmt: skip
    for stage, seconds in m["seconds"].items():
        assert _row(tables["seconds"], stage)[1] == ("-" if seconds is None else f"{seconds:.2f}")


def test_markdown_and_html_hold_the_same_tables(finished_run: Path, rendered: dict) -> None:
    html_rows = {tuple(r) for table in rendered["page"].tables.values() for r in table}
    md_rows = [line for line in (finished_run / "report.md").read_text().splitlines()
               if line.startswith("| ")]  # fmt: skip
    assert len(md_rows) > 40
    for line in md_rows:
        cells = tuple(c.strip().replace("\\|", "|") for c in line.strip()[1:-1].split(" | "))
        assert cells in html_rows, line


def test_images_are_embedded_and_nothing_is_fetched(rendered: dict[str, Any]) -> None:
    page = rendered["page"]
    assert len(page.images) == 3  # CAM curve, train grid, val grid
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_SIGNATURE)
        with Image.open(io.BytesIO(data)) as im:
            assert im.width > 100 and im.height > 100
    assert page.links and all(link.startswith("#") for link in page.links), page.links
    assert "<script" not in rendered["dom"] and "http://" not in rendered["dom"]
    assert "https://" not in rendered["dom"]


def test_screenshot_is_the_rendered_page(rendered: dict[str, Any]) -> None:
    with Image.open(rendered["screenshot"]) as im:
        assert im.format == "PNG" and im.size == (WIDTH, HEIGHT)
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    not_white = (pixels < 245).any(axis=1).mean()
    assert 0.02 < not_white < 0.9, not_white
    assert len(np.unique(pixels, axis=0)) > 100  # text, tables and embedded figures
    # the heading rule and section titles in the report's blue: the stylesheet was applied
    assert ((pixels == (44, 90, 160)).all(axis=1)).sum() > 500


def test_without_chromium_skip_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("WSSS_REQUIRE_CHROMIUM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        _chromium()
    monkeypatch.setenv("WSSS_REQUIRE_CHROMIUM", "1")
    with pytest.raises(pytest.fail.Exception, match="WSSS_REQUIRE_CHROMIUM is set"):
        _chromium()
