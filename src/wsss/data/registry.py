"""The datasets by name: a plain dict of lazy class loaders and a ``create_dataset`` factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from wsss.data.base import Sample, SegmentationDataset
from wsss.errors import WsssError


class DatasetConstructor(Protocol):
    """What every registered dataset class is: ``cls(root, split, transform=...)``."""

    def __call__(
        self,
        root: str | Path | None = ...,
        split: str = ...,
        *,
        transform: Callable[[Sample], Any] | None = ...,
    ) -> SegmentationDataset: ...


def _voc() -> DatasetConstructor:
    from wsss.data.voc import VOCSegmentation

    return VOCSegmentation


def _coco() -> DatasetConstructor:
    from wsss.data.coco import COCOSegmentation

    return COCOSegmentation


def _ade20k() -> DatasetConstructor:
    from wsss.data.ade20k import ADE20KSegmentation

    return ADE20KSegmentation


def _cityscapes() -> DatasetConstructor:
    from wsss.data.cityscapes import CityscapesSegmentation

    return CityscapesSegmentation


def _synthetic() -> DatasetConstructor:
    from wsss.data.synthetic import SyntheticSegmentation

    return SyntheticSegmentation


#: Dataset name -> function returning its class (imported on first use). Every class is built
#: as ``cls(root, split, transform=transform)``.
DATASETS: dict[str, Callable[[], DatasetConstructor]] = {
    "voc": _voc,
    "coco": _coco,
    "ade20k": _ade20k,
    "cityscapes": _cityscapes,
    "synthetic": _synthetic,
}

#: The split each dataset uses when none is given.
DEFAULT_SPLITS: dict[str, str] = {
    "voc": "train",
    "coco": "train",
    "ade20k": "training",
    "cityscapes": "train",
    "synthetic": "train",
}


def dataset_class(name: str) -> DatasetConstructor:
    """The dataset class registered as ``name``.

    Raises:
        WsssError: unknown name (the message lists the valid ones).
    """
    if name not in DATASETS:
        raise WsssError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]()


def create_dataset(
    name: str,
    root: str | Path | None = None,
    split: str | None = None,
    transform: Callable[[Sample], Any] | None = None,
) -> SegmentationDataset:
    """Build the dataset registered as ``name``.

    Args:
        name: A key of :data:`DATASETS`.
        root: Dataset root; None falls back to the dataset's environment variable
            (``WSSS_VOC_ROOT``, ``WSSS_COCO_ROOT``, ...).
        split: Split name; None means :data:`DEFAULT_SPLITS` ``[name]``.
        transform: Applied to each :class:`~wsss.data.base.Sample`.

    Raises:
        WsssError: unknown name, or any problem the dataset finds with its files.
    """
    cls = dataset_class(name)
    return cls(root, split if split is not None else DEFAULT_SPLITS[name], transform=transform)
