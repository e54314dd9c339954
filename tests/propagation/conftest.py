"""A tiny split with CAM files and one-epoch IRNet and AffinityNet runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from affinity_fakes import make_tiny_run
from wsss.affinity import resolve_config, train
from wsss.data.voc import VOCSegmentation


@pytest.fixture(scope="package")
def rw_data(tmp_path_factory) -> dict[str, Path]:
    """``{"root", "cams", "irn", "psa", ...}``: the split, CAM files and two affinity runs."""
    base = tmp_path_factory.mktemp("propagation")
    run = make_tiny_run(base)
    data = VOCSegmentation(run["root"])
    for method in ("irn", "psa"):
        config = resolve_config(method=method, cam_checkpoint=run["cam"], seeds=run["seeds"],
                                dataset="voc", root=run["root"], epochs=1, batch_size=3, crop=24,
                                long_side=(24, 36))  # fmt: skip
        train(config, base / method, dataset=data, progress=False)
        run[method] = base / method
    return run
