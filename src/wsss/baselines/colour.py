"""A colour-only pixel classifier: how far colour alone gets on a dataset.

It is *fully supervised* (class-conditional colour histograms counted on ground-truth masks)
and is told each test image's classes, so it is an upper bound for any method that looks at a
pixel's colour only. On the shipped benchmark it must stay far below what propagation reaches:
that is what "no colour-threshold shortcut" means.
"""

from __future__ import annotations

import numpy as np

from wsss.data.base import SegmentationDataset
from wsss.io.palette import IGNORE_INDEX

BITS = 3  # 8 levels per channel -> 512 colour bins


def colour_bins(image: np.ndarray, bits: int = BITS) -> np.ndarray:
    """Quantised colour bin of each pixel.

    Shapes:
        image: ``(H, W, 3)`` uint8. Returns ``(H, W)`` int64 in ``[0, 2**(3*bits))``.
    """
    q = (image >> (8 - bits)).astype(np.int64)
    return (q[..., 0] << (2 * bits)) | (q[..., 1] << bits) | q[..., 2]


class ColourClassifier:
    """Class-conditional colour histograms with Laplace smoothing.

    Args:
        num_classes: Number of label ids (background included).
        bits: Quantisation bits per channel.
    """

    def __init__(self, *, num_classes: int, bits: int = BITS) -> None:
        self.num_classes = num_classes
        self.bits = bits
        self.counts = np.zeros((num_classes, 1 << (3 * bits)), dtype=np.int64)

    def update(self, image: np.ndarray, mask: np.ndarray) -> None:
        """Count the colours of the labelled pixels of one image."""
        valid = mask != IGNORE_INDEX
        index = (
            mask[valid].astype(np.int64) * self.counts.shape[1]
            + colour_bins(image, self.bits)[valid]
        )
        self.counts += np.bincount(index, minlength=self.counts.size).reshape(self.counts.shape)

    def fit(self, dataset: SegmentationDataset) -> ColourClassifier:
        """Count over every image of ``dataset``."""
        for image_id in dataset.ids:
            sample = dataset.load(image_id)
            if sample.mask is not None:
                self.update(sample.image, sample.mask)
        return self

    def log_likelihood(self) -> np.ndarray:
        """``(num_classes, bins)`` log P(colour | class) + log P(class)."""
        counts = self.counts.astype(np.float64) + 1.0
        prior = counts.sum(axis=1, keepdims=True) / counts.sum()
        return np.log(counts / counts.sum(axis=1, keepdims=True)) + np.log(prior)

    def predict(self, image: np.ndarray, present: np.ndarray) -> np.ndarray:
        """Label each pixel with the most likely class among background and ``present``.

        Shapes:
            image: ``(H, W, 3)`` uint8; present: ``(K,)`` class ids. Returns ``(H, W)`` uint8.
        """
        candidates = np.concatenate([[0], np.asarray(present, dtype=np.int64)])
        scores = self.log_likelihood()[candidates][:, colour_bins(image, self.bits)]
        return candidates[scores.argmax(axis=0)].astype(np.uint8)
