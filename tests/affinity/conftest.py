"""A tiny split with a CAM run and seeds (see ``affinity_fakes``); one thread per test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from affinity_fakes import make_tiny_run


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is as fast, and immune to oversubscription on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def tiny_run(tmp_path_factory) -> dict[str, Path]:
    """``{"root", "cam", "seeds", "cams"}`` of :func:`affinity_fakes.make_tiny_run`."""
    return make_tiny_run(tmp_path_factory.mktemp("affinity"))
