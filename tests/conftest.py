"""Shared fixtures: the real VOC samples and small VOC-layout folders made on the fly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared_data import VOC_SAMPLES


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
