"""Shared fixtures: the real VOC samples and small VOC-layout folders made on the fly."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from shared_data import VOC_SAMPLES


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tests run tiny models: one thread is as fast, and immune to oversubscription when other
    processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def voc_samples() -> Path:
    """The six real VOC 2012 images with ground truth (split ``samples``)."""
    if not (VOC_SAMPLES / "JPEGImages").is_dir():
        pytest.skip(f"real VOC samples not found at {VOC_SAMPLES}")
    return VOC_SAMPLES


@pytest.fixture
def voc_copy(voc_samples: Path, tmp_path: Path) -> Path:
    """A writable copy of the VOC samples (to damage in error tests)."""
    dst = tmp_path / "VOC2012"
    shutil.copytree(voc_samples, dst)
    return dst
