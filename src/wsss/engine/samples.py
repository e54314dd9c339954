"""Training samples whose augmentation is a pure function of ``(seed, epoch, index)``."""

from __future__ import annotations

from typing import Any

import torch

from wsss.data.base import SegmentationDataset
from wsss.engine.training import sample_rng


class SeededSamples(torch.utils.data.Dataset):
    """A dataset indexed by ``(epoch, index)``: sample ``index``, augmented under its own seed.

    Subclasses say how a sample is read (:meth:`load`) and augmented (:meth:`augment`); the
    augmentation draws from torch's global generator, seeded here by
    :func:`~wsss.engine.training.sample_rng` (a forked RNG), so the result depends neither
    on the process nor on what ran before.

    Args:
        dataset: The training split.
        seed: Run seed.
    """

    def __init__(self, dataset: SegmentationDataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, index: int) -> Any:
        """The untransformed sample ``index``."""
        raise NotImplementedError

    def augment(self, data: Any) -> Any:
        """The augmented sample (drawing from torch's global generator)."""
        raise NotImplementedError

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        data = self.load(index)
        with sample_rng(self.seed, epoch, index):
            return self.augment(data)
