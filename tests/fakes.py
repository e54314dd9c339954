"""Small fake datasets for tests, and running the CLI in one process or under torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from wsss.io.palette import write_label_png


def make_voc(root: Path, masks: dict[str, np.ndarray], split: str = "train") -> Path:
    """Write a tiny VOC-layout dataset: random images matching the given masks."""
    rng = np.random.default_rng(0)
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    for image_id, mask in masks.items():
        image = rng.integers(0, 255, size=(*mask.shape, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "JPEGImages" / f"{image_id}.jpg")
        write_label_png(root / "SegmentationClass" / f"{image_id}.png", mask)
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / f"{split}.txt").write_text("".join(f"{i}\n" for i in masks))
    return root


def spawn_wsss(args: list[str], *, nproc: int = 1, timeout: float = 120) -> None:
    """``python -m wsss --quiet ARGS`` in a subprocess, or under ``torchrun --standalone`` with
    ``nproc`` gloo processes (one thread each)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        command = [sys.executable, "-m", "wsss", "--quiet", *args]
    else:
        torchrun = str(Path(sys.executable).with_name("torchrun"))
        command = [torchrun, "--standalone", "--nproc_per_node", str(nproc), "-m", "wsss",
                   "--quiet", *args]  # fmt: skip
    subprocess.run(command, check=True, env=env, timeout=timeout)
