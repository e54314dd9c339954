"""Cityscapes with fine annotations (``gtFine``), evaluated on the 19 train ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wsss.data.base import Sample, SegmentationDataset, resolve_root
from wsss.data.classes import CITYSCAPES_CLASSES, ClassSet
from wsss.data.ids import check_id
from wsss.errors import WsssError
from wsss.io.palette import IGNORE_INDEX

SPLITS = ("train", "val", "test")
IMAGE_SUFFIX = "_leftImg8bit.png"
MASK_SUFFIX = "_gtFine_labelIds.png"

#: The official ``labelId -> trainId`` table (cityscapesScripts ``labels.py``); other ids -> 255.
LABEL_TO_TRAIN_ID: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
    26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip


def _lookup_table() -> np.ndarray:
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label_id, train_id in LABEL_TO_TRAIN_ID.items():
        lut[label_id] = train_id
    return lut


#: ``(256,)`` uint8 lookup table built from :data:`LABEL_TO_TRAIN_ID`.
CITYSCAPES_LUT: np.ndarray = _lookup_table()


def list_city_ids(folder: Path) -> list[str]:
    """Sorted ids ``<city>/<city>_<seq>_<frame>`` of the images ``folder/<city>/*_leftImg8bit.png``.

    Raises:
        WsssError: the folder is missing or holds no image.
    """
    if not folder.is_dir():
        raise WsssError("missing split folder", folder)
    ids = sorted(
        f"{city.name}/{p.name[: -len(IMAGE_SUFFIX)]}"
        for city in folder.iterdir()
        if city.is_dir()
        for p in city.iterdir()
        if p.name.endswith(IMAGE_SUFFIX)
    )
    if not ids:
        raise WsssError(f"empty split: no <city>/*{IMAGE_SUFFIX} files", folder)
    return [check_id(i, folder) for i in ids]


class CityscapesSegmentation(SegmentationDataset):
    """Cityscapes ``leftImg8bit`` images with ``gtFine`` masks mapped to the 19 train ids.

    Masks are always read from ``*_gtFine_labelIds.png`` and mapped with
    :data:`CITYSCAPES_LUT`; ``*_gtFine_labelTrainIds.png`` files (made by cityscapesScripts) are
    ignored even where present, so the result does not depend on whether they were generated.
    There is no background class: image-level labels have 19 entries.

    Args:
        root: Folder holding ``leftImg8bit`` and ``gtFine``; falls back to
            ``$WSSS_CITYSCAPES_ROOT``.
        split: ``train``, ``val`` or ``test`` (the public test masks are all "unlabelled").
        transform: Applied to each :class:`~wsss.data.base.Sample`.
    """

    classes: ClassSet = CITYSCAPES_CLASSES
    env_var = "WSSS_CITYSCAPES_ROOT"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        *,
        transform: Callable[[Sample], Any] | None = None,
    ) -> None:
        base = resolve_root(root, self.env_var)
        if split not in SPLITS:
            raise WsssError(f"unknown Cityscapes split {split!r}; valid: {', '.join(SPLITS)}", base)
        ids = list_city_ids(base / "leftImg8bit" / split)
        if not (base / "gtFine" / split).is_dir():
            raise WsssError("missing annotation folder", base / "gtFine" / split)
        super().__init__(root=base, ids=ids, split=split, transform=transform)

    def image_path(self, image_id: str) -> Path:
        return self._inside(f"leftImg8bit/{self.split}/{image_id}{IMAGE_SUFFIX}")

    def mask_path(self, image_id: str) -> Path | None:
        return self._inside(f"gtFine/{self.split}/{image_id}{MASK_SUFFIX}")

    def convert_mask(self, mask: np.ndarray) -> np.ndarray:
        """Label ids 0..33 -> train ids 0..18, everything else -> 255."""
        return CITYSCAPES_LUT[mask]
