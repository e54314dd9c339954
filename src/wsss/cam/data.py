"""Training samples of the CAM classifiers: images with their image-level labels, augmented."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wsss.data.base import Sample, SegmentationDataset
from wsss.data.transforms import TrainTransform
from wsss.engine.samples import SeededSamples

__all__ = ["SeededTrainSamples", "make_transform"]


class SeededTrainSamples(SeededSamples):
    """Sample ``(epoch, index)`` augmented with its own seed; the mask is dropped before the
    transform: the classifier only sees image-level labels.

    Args:
        dataset: The training split.
        transform: The augmentation (drawing from torch's global generator).
        seed: Run seed.
    """

    def __init__(
        self, dataset: SegmentationDataset, transform: Callable[[Sample], Any], seed: int
    ) -> None:
        super().__init__(dataset, seed)
        self.transform = transform

    def load(self, index: int) -> Sample:
        sample = self.dataset.load(self.dataset.ids[index])
        sample.mask = None
        return sample

    def augment(self, data: Sample) -> dict[str, Any]:
        return self.transform(data)


def make_transform(config: Any) -> TrainTransform:
    """The training augmentation of a CAM ``config`` (:class:`~wsss.cam.train.TrainConfig`)."""
    jitter = (0.3, 0.3, 0.3, 0.1) if config.color_jitter else None
    return TrainTransform(
        long_side=config.long_side, crop=config.crop, flip=config.flip, color_jitter=jitter
    )
