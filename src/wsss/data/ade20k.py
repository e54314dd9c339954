"""ADE20K SceneParsing (the ``ADEChallengeData2016`` release, 150 classes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wsss.data.base import Sample, SegmentationDataset, resolve_root
from wsss.data.classes import ADE20K_CLASSES, ClassSet
from wsss.data.ids import check_id
from wsss.errors import WsssError
from wsss.io.palette import IGNORE_INDEX

#: Accepted split names; ``train`` / ``val`` are aliases of the release's folder names.
SPLITS = {
    "training": "training",
    "validation": "validation",
    "train": "training",
    "val": "validation",
}

#: On-disk id -> label id: 0 (other / unlabelled) -> 255, ``k`` -> ``k - 1``. Ids above 150 map to
#: 150..254, which the range check of :meth:`SegmentationDataset.load_mask` reports.
ADE20K_LUT: np.ndarray = np.array([IGNORE_INDEX, *range(255)], dtype=np.uint8)


def find_ade20k_root(root: Path) -> Path:
    """Accept either ``ADEChallengeData2016`` or a folder holding it."""
    for candidate in (root, root / "ADEChallengeData2016"):
        if (candidate / "images").is_dir():
            return candidate
    raise WsssError("not an ADE20K root: no images folder here or in ADEChallengeData2016/", root)


def list_ids(folder: Path, suffix: str) -> list[str]:
    """Sorted stems of the files ``folder/*<suffix>`` (the release has no list files).

    Raises:
        WsssError: the folder is missing or holds no such file.
    """
    if not folder.is_dir():
        raise WsssError("missing split folder", folder)
    ids = sorted(p.name[: -len(suffix)] for p in folder.iterdir() if p.name.endswith(suffix))
    if not ids:
        raise WsssError(f"empty split: no *{suffix} files", folder)
    return [check_id(i, folder) for i in ids]


class ADE20KSegmentation(SegmentationDataset):
    """ADE20K SceneParsing: ``images/<split>/*.jpg`` and ``annotations/<split>/*.png``.

    Masks store 0 for "other" and 1..150 for the classes; they are read as label ids 0..149 with
    "other" as 255 (ignored). There is no background class: image-level labels have 150 entries.

    Args:
        root: ``ADEChallengeData2016`` folder (or its parent); falls back to
            ``$WSSS_ADE20K_ROOT``.
        split: ``training`` or ``validation`` (``train`` / ``val`` also accepted). Ids are the
            sorted stems of the split's images.
        transform: Applied to each :class:`~wsss.data.base.Sample`.
    """

    classes: ClassSet = ADE20K_CLASSES
    env_var = "WSSS_ADE20K_ROOT"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "training",
        *,
        transform: Callable[[Sample], Any] | None = None,
    ) -> None:
        base = find_ade20k_root(resolve_root(root, self.env_var))
        if split not in SPLITS:
            raise WsssError(f"unknown ADE20K split {split!r}; valid: {', '.join(SPLITS)}", base)
        self.folder = SPLITS[split]
        ids = list_ids(base / "images" / self.folder, ".jpg")
        if not (base / "annotations" / self.folder).is_dir():
            raise WsssError("missing annotation folder", base / "annotations" / self.folder)
        super().__init__(root=base, ids=ids, split=split, transform=transform)

    def image_path(self, image_id: str) -> Path:
        return self._inside(f"images/{self.folder}/{image_id}.jpg")

    def mask_path(self, image_id: str) -> Path | None:
        return self._inside(f"annotations/{self.folder}/{image_id}.png")

    def convert_mask(self, mask: np.ndarray) -> np.ndarray:
        """On-disk ids 0..150 -> label ids: 0 -> 255, ``k`` -> ``k - 1``."""
        return ADE20K_LUT[mask]
