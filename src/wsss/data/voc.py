"""PASCAL VOC 2012 and the SBD-augmented ``train_aug`` split."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wsss.data.base import Sample, SegmentationDataset, resolve_root
from wsss.data.classes import VOC_CLASSES, ClassSet
from wsss.data.ids import read_id_list
from wsss.errors import WsssError

#: Optional image-level label file at the dataset root: ``{"<id>": [class ids], ...}`` (JSON).
LABEL_FILE = "image_labels.json"


def find_voc_root(root: Path) -> Path:
    """Accept either ``.../VOC2012`` or a folder holding ``VOC2012`` (``VOCdevkit``)."""
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir():
            return candidate
    raise WsssError("not a VOC root: no JPEGImages folder here or in VOC2012/", root)


class VOCSegmentation(SegmentationDataset):
    """PASCAL VOC 2012 in its devkit layout.

    Args:
        root: ``VOC2012`` folder (or its parent); falls back to ``$WSSS_VOC_ROOT``.
        split: A file ``ImageSets/Segmentation/<split>.txt``; ``train_aug`` is also looked up in
            ``ImageSets/SegmentationAug/`` and reads masks from ``SegmentationClassAug``.
        mask_dir: Folder of masks relative to the root (default: ``SegmentationClass`` or
            ``SegmentationClassAug`` for ``train_aug``); ids without a mask file there get labels
            from ``image_labels.json``, and ``mask`` None.
        transform: Applied to each :class:`~wsss.data.base.Sample`.
    """

    classes: ClassSet = VOC_CLASSES
    env_var = "WSSS_VOC_ROOT"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        *,
        mask_dir: str | None = None,
        transform: Callable[[Sample], Any] | None = None,
    ) -> None:
        base = find_voc_root(resolve_root(root, self.env_var))
        ids = read_id_list(self.split_file(base, split))
        super().__init__(root=base, ids=ids, split=split, transform=transform)
        if mask_dir is None:
            mask_dir = "SegmentationClassAug" if split == "train_aug" else "SegmentationClass"
        self.mask_dir = mask_dir
        self._label_file: dict[str, list[int]] | None = None

    @staticmethod
    def split_file(base: Path, split: str) -> Path:
        """The list file of ``split`` (the first of the usual places that exists)."""
        candidates = [base / "ImageSets" / "Segmentation" / f"{split}.txt"]
        if split == "train_aug":
            candidates.append(base / "ImageSets" / "SegmentationAug" / "train_aug.txt")
        for path in candidates:
            if path.is_file():
                return path
        if "/" in split or "\\" in split or ".." in split:
            raise WsssError(f"bad split name {split!r}", base)
        return candidates[0]

    def image_path(self, image_id: str) -> Path:
        return self._inside(f"JPEGImages/{image_id}.jpg")

    def mask_path(self, image_id: str) -> Path | None:
        path = self._inside(f"{self.mask_dir}/{image_id}.png")
        if path.is_file() or not self._labels_available():
            return path  # a missing mask is reported by the reader, naming the file
        return None

    def _labels_available(self) -> bool:
        return (self.root / LABEL_FILE).is_file()

    def image_labels(self, image_id: str, mask: np.ndarray | None) -> np.ndarray:
        if mask is not None:
            return super().image_labels(image_id, mask)
        path = self.root / LABEL_FILE
        if self._label_file is None:
            try:
                self._label_file = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise WsssError(f"unreadable label file ({err})", path) from None
        assert self._label_file is not None
        if image_id not in self._label_file:
            raise WsssError(f"no labels for image {image_id!r}", path)
        vec = np.zeros(self.classes.num_labels, dtype=np.float32)
        for cls in self._label_file[image_id]:
            if not self.classes.offset <= int(cls) < self.classes.num_classes:
                raise WsssError(f"class id {cls} of image {image_id!r} out of range", path)
            vec[int(cls) - self.classes.offset] = 1.0
        return vec
