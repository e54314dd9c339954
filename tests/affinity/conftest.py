"""A tiny split with a CAM run and seeds (see ``affinity_fakes``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from affinity_fakes import make_tiny_run


@pytest.fixture(scope="package")
def tiny_run(tmp_path_factory) -> dict[str, Path]:
    """``{"root", "cam", "seeds", "cams"}`` of :func:`affinity_fakes.make_tiny_run`."""
    return make_tiny_run(tmp_path_factory.mktemp("affinity"))
