"""A folder's saved settings: written once, rechecked on rerun, differences named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wsss.errors import WsssError
from wsss.io.settings import check_saved_settings


def test_saved_once_then_checked_with_the_differences_named(tmp_path: Path):
    path = tmp_path / "options.json"
    settings = {"method": "rw", "beta": 10, "run": tmp_path / "aff"}  # a Path is saved as str
    check_saved_settings(path, settings, what="labels")
    assert json.loads(path.read_text())["run"] == str(tmp_path / "aff")
    check_saved_settings(path, dict(settings), what="labels")  # the same: accepted, unchanged
    with pytest.raises(
        WsssError, match=r"labels made with other options .*'beta': \(10, 8\)"
    ) as err:
        check_saved_settings(path, {**settings, "beta": 8}, what="labels", noun="options")
    assert "'method'" not in str(err.value) and str(path) in str(err.value)
    with pytest.raises(WsssError, match=r"'extra': \(None, 1\)"):
        check_saved_settings(path, {**settings, "extra": 1}, what="labels")
    path.write_text("{not json")
    with pytest.raises(WsssError, match="unreadable settings of labels"):
        check_saved_settings(path, settings, what="labels")
