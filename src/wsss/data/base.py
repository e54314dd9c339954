"""The one dataset interface: image, mask, image-level label vector and id."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch.utils.data

from wsss.data.classes import ClassSet
from wsss.data.ids import inside
from wsss.errors import WsssError
from wsss.io.images import image_size, read_image, read_label_png
from wsss.io.palette import IGNORE_INDEX


@dataclass
class Sample:
    """One item of a dataset.

    Shapes:
        image: ``(H, W, 3)`` uint8 RGB (or a ``(3, H, W)`` tensor after transforms).
        mask: ``(H, W)`` uint8 class ids, 255 = ignore; None where the split has no masks.
        labels: ``(L,)`` float32 multi-hot image-level labels, ``L = classes.num_labels``.
    """

    image: Any
    mask: Any
    labels: np.ndarray
    id: str


def labels_from_mask(mask: np.ndarray, classes: ClassSet) -> np.ndarray:
    """Image-level multi-hot labels of the classes present in ``mask`` (background and 255 left out).

    Shapes:
        mask: ``(H, W)``. Returns ``(classes.num_labels,)`` float32.
    """
    present = np.unique(mask)
    present = present[(present != IGNORE_INDEX) & (present >= classes.offset)]
    present = present[present < classes.num_classes]
    vec = np.zeros(classes.num_labels, dtype=np.float32)
    vec[present.astype(np.int64) - classes.offset] = 1.0
    return vec


def resolve_root(root: str | Path | None, env_var: str) -> Path:
    """A dataset root from an argument, else from the environment variable ``env_var``.

    Raises:
        WsssError: neither is given, or the folder does not exist.
    """
    value = root if root is not None else os.environ.get(env_var)
    if value is None or str(value) == "":
        raise WsssError(f"no dataset root given: pass --root or set {env_var}")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise WsssError("dataset root does not exist or is not a folder", path)
    return path


class SegmentationDataset(torch.utils.data.Dataset):
    """Base class: a list of ids under a root, with image and mask paths given by subclasses.

    Subclasses set ``classes`` and implement ``image_path`` and ``mask_path``; they may override
    ``image_labels`` where a label file exists. ``transform`` maps a :class:`Sample` to anything.
    """

    classes: ClassSet

    def __init__(
        self,
        *,
        root: Path,
        ids: list[str],
        split: str,
        transform: Callable[[Sample], Any] | None = None,
    ) -> None:
        if not ids:
            raise WsssError(f"empty split {split!r}: no image ids", root)
        self.root = root
        self.ids = list(ids)
        self.split = split
        self.transform = transform

    # -- paths ---------------------------------------------------------------------------------
    def image_path(self, image_id: str) -> Path:
        raise NotImplementedError

    def mask_path(self, image_id: str) -> Path | None:
        raise NotImplementedError

    def _inside(self, relative: str) -> Path:
        return inside(self.root, relative, self.root)

    # -- loading -------------------------------------------------------------------------------
    def image_size(self, image_id: str) -> tuple[int, int]:
        """``(H, W)`` of the image, read from its header."""
        return image_size(self.image_path(image_id))

    def load_image(self, image_id: str) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB."""
        return read_image(self.image_path(image_id))

    def convert_mask(self, mask: np.ndarray) -> np.ndarray:
        """Map the ids stored on disk to label ids (identity here; ADE20K and Cityscapes remap)."""
        return mask

    def load_mask(self, image_id: str, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """``(H, W)`` uint8 label ids checked for size and range; None if the split has no masks."""
        path = self.mask_path(image_id)
        if path is None:
            return None
        raw = read_label_png(path, size=size)
        mask = self.convert_mask(raw)
        bad = (mask >= self.classes.num_classes) & (mask != IGNORE_INDEX)
        if bad.any():
            ids = sorted(int(v) for v in np.unique(raw[bad]))[:5]
            raise WsssError(
                f"class id(s) {ids} out of range for {self.classes.num_classes} classes", path
            )
        return mask

    def image_labels(self, image_id: str, mask: np.ndarray | None) -> np.ndarray:
        """``(num_labels,)`` float32 multi-hot labels; derived from the mask by default."""
        if mask is None:
            raise WsssError(
                f"no mask and no label file for image {image_id!r}", self.image_path(image_id)
            )
        return labels_from_mask(mask, self.classes)

    def load(self, image_id: str) -> Sample:
        """Load one sample by id, untransformed."""
        image = self.load_image(image_id)
        mask = self.load_mask(image_id, size=image.shape[:2])
        return Sample(image, mask, self.image_labels(image_id, mask), image_id)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Any:
        sample = self.load(self.ids[index])
        return self.transform(sample) if self.transform is not None else sample
