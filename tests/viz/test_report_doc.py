"""The report's building blocks: tables, Markdown and HTML rendering, the paper numbers."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from wsss.viz.grid import save_png
from wsss.viz.reference import PAPER_VOC, paper_reference
from wsss.viz.report_doc import Figure, Heading, Table, Text, make_table, to_markdown
from wsss.viz.report_html import data_uri, to_html
from wsss.viz.report_tables import main_table, stage_rows


def test_table_checks_its_shape() -> None:
    with pytest.raises(ValueError, match="2 cells"):
        make_table(["a", "b", "c"], [["1", "2"]])
    with pytest.raises(ValueError, match="numeric"):
        Table(("a",), (), (True, False))


def test_markdown_and_html_of_the_same_blocks(tmp_path: Path) -> None:
    save_png(tmp_path / "fig" / "x.png", np.zeros((4, 6, 3), np.uint8))
    blocks = [
        Heading("Report <1>", 1),
        Text("root `a|b` & more"),
        Heading("Scores"),
        make_table(["method", "mIoU"], [["x | y", "1.50"]], key="scores", notes=["n1"]),
        Figure(tmp_path / "fig" / "x.png", "a figure"),
    ]
    md = to_markdown(blocks, tmp_path)
    assert md.splitlines() == [
        "# Report <1>", "", "root `a|b` & more", "", "## Scores", "",
        "| method | mIoU |", "|---|---:|", "| x \\| y | 1.50 |", "", "- n1", "",
        "![a figure](fig/x.png)",
    ]  # fmt: skip
    page = to_html(blocks, title="t & t")
    assert "<title>t &amp; t</title>" in page and '<h1 id="report-1">Report &lt;1&gt;</h1>' in page
    assert "<p>root <code>a|b</code> &amp; more</p>" in page
    assert '<nav><a href="#scores">Scores</a></nav>' in page
    assert '<table id="scores">' in page and '<td class="num">1.50</td>' in page
    assert "<td>x | y</td>" in page and "<li>n1</li>" in page
    uri = data_uri(tmp_path / "fig" / "x.png")
    assert f'<img src="{uri}" alt="a figure">' in page
    assert base64.b64decode(uri.split(",", 1)[1]) == (tmp_path / "fig" / "x.png").read_bytes()
    assert "://" not in page and "<script" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_data_uri_refuses_unknown_types(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown image type"):
        data_uri(tmp_path / "a.txt")


def test_paper_numbers() -> None:
    assert paper_reference("CAM") is PAPER_VOC["CAM"] and PAPER_VOC["CAM"].miou == 48.3
    assert paper_reference("WSGCN-I + dCRF").miou == 68.0  # type: ignore[union-attr]
    assert paper_reference("DeepLab-v2", "segmentation") is PAPER_VOC["segmentation"]
    assert paper_reference("IRNet seeds", "seeds") is None
    assert all(0 < ref.miou < 100 and ref.split in ("train", "val") for ref in PAPER_VOC.values())


def test_stage_rows_in_pipeline_order() -> None:
    pseudo = {
        "split": "train",
        "cam": {"best_threshold": 0.25, "best": {"miou": 10.0}},
        "seeds": {"irnet": {"miou_pred255_background": 11.0}},
        "labels": {"WSGCN-I + dCRF": {"miou": 14.0}, "IRNet RW": {"miou": 12.0},
                   "WSGCN-I": {"miou": 13.0}},
    }  # fmt: skip
    val = {"colour-only (supervised, oracle labels)": {"miou": 9.0}, "DeepLab": {"miou": 15.0},
           "DeepLabV3+ (supervised, ground truth)": {"miou": 60.0}}  # fmt: skip
    group = {"graph": {"best_threshold": 0.3, "miou": 10.5}}
    rows = stage_rows(pseudo, group, val)
    assert [(r.stage, r.method, r.miou) for r in rows] == [
        ("CAM", "CAM", 10.0), ("CAM", "Group-WSSS CAM (graph)", 10.5),
        ("seeds", "IRNet seeds", 11.0), ("random walk", "IRNet RW", 12.0),
        ("GCN", "WSGCN-I", 13.0), ("GCN + dCRF", "WSGCN-I + dCRF", 14.0),
        ("segmentation", "DeepLab", 15.0),
        ("baseline", "colour-only (supervised, oracle labels)", 9.0),
        ("baseline", "DeepLabV3+ (supervised, ground truth)", 60.0),
    ]  # fmt: skip
    table = main_table(rows)
    assert table.rows[1][3:] == ("10.50", "+0.5", "67.8 (val)")
    assert table.rows[0][4] == "-" and table.rows[6][4] == "+5.0"  # vs CAM, val against train
    assert table.rows[2][5] == "-" and table.rows[6][5] == "66.7"
    assert table.notes[0].endswith("CAM 0.25, Group-WSSS CAM (graph) 0.30")


def test_single_image_cam_from_the_group_stage() -> None:
    group = {"split": "train", "outputs": {"graph": {"miou": 5.0, "best_threshold": 0.2}},
             "single": {"miou": 4.0, "best_threshold": 0.1}}  # fmt: skip
    rows = stage_rows({}, group, {})
    assert [(r.method, r.miou, r.threshold) for r in rows] == [
        ("CAM", 4.0, 0.1), ("Group-WSSS CAM (graph)", 5.0, 0.2)
    ]  # fmt: skip


def test_stage_rows_of_an_empty_run() -> None:
    assert stage_rows({}, {}, {}) == []
    assert main_table([]).rows == ()
