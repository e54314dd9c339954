"""Run the ``wsss`` command line in-process, as a user would, and return its exit status."""

from __future__ import annotations

import sys

import pytest

from wsss.cli.main import main


def run_wsss(args: list[str], monkeypatch: pytest.MonkeyPatch, *, quiet: bool = True) -> int:
    """``wsss [--quiet] ARGS``; the exit status (0 when ``main`` returns)."""
    monkeypatch.setattr(sys, "argv", ["wsss", *(["--quiet"] if quiet else []), *args])
    try:
        main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0
