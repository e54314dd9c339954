"""CAM evaluation over a sweep of the constant background threshold.

For a threshold ``t`` the CAM label of a pixel is the argmax over ``[t, CAM_1, ..., CAM_K]`` (the
background plane first, so it wins ties): the pixel gets its best class iff that class's CAM value
exceeds ``t``, else background (SPEC section 0; IRNet uses 0.15, AffinityNet 0.2).

Since the label only switches from the best class to background as ``t`` grows past the pixel's
maximum, one pass bins pixels by how many thresholds lie below their maximum, and cumulative sums
give all ``T`` confusion matrices at once: a ``(T, C, C + 1)`` int64 tensor (the last column, the
predicted-255 one of :class:`~wsss.metrics.confusion.ConfusionMatrix`, stays zero).
Comparisons are made in float64 against the exact threshold values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from wsss.io.palette import IGNORE_INDEX
from wsss.metrics.confusion import (
    SegmentationScores,
    all_reduce_counts,
    as_numpy,
    check_labels,
    scores_from_counts,
)

#: 0.00, 0.05, ..., 0.95, built from integers so that 0.15 and 0.2 are exact float literals.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(k / 20 for k in range(20))


def check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    """Validate a strictly increasing, non-empty list of finite thresholds."""
    values = tuple(float(t) for t in thresholds)
    if not values or not all(math.isfinite(t) for t in values):
        raise ValueError(f"need a non-empty list of finite thresholds, got {values}")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"thresholds must be strictly increasing, got {values}")
    return values


def _check_cams(keys: np.ndarray, cams: np.ndarray, gt: np.ndarray, num_classes: int) -> None:
    if gt.ndim != 2 or cams.ndim != 3 or cams.shape[1:] != gt.shape:
        raise ValueError(f"need CAMs (K, H, W) and GT (H, W), got {cams.shape} and {gt.shape}")
    if keys.shape != (cams.shape[0],) or keys.dtype.kind not in "iu":
        raise ValueError(f"need {cams.shape[0]} integer keys for the CAMs, got {keys!r}")
    if keys.size and (keys.min() < 1 or keys.max() >= num_classes):
        raise ValueError(f"CAM keys {keys.tolist()} outside 1..{num_classes - 1}")
    check_labels(gt, num_classes, "GT")


def sweep_counts(
    keys: np.ndarray | torch.Tensor,
    cams: np.ndarray | torch.Tensor,
    gt: np.ndarray | torch.Tensor,
    *,
    num_classes: int,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> np.ndarray:
    """Confusion matrices of one image's CAM labels at every threshold.

    Args:
        keys: Class id of each CAM (1..C-1; background 0 is never a key).
        cams: CAM values, normally in [0, 1].
        gt: GT class ids, 255 = ignore.
        num_classes: ``C``.
        thresholds: Strictly increasing background thresholds.

    Returns:
        ``(T, C, C + 1)`` int64; entry ``[i]`` is the confusion matrix at ``thresholds[i]``.

    Shapes:
        keys: ``(K,)``; cams: ``(K, H, W)``; gt: ``(H, W)``.
    """
    keys, cams, gt = as_numpy(keys), as_numpy(cams), as_numpy(gt)
    thr = np.asarray(check_thresholds(thresholds), dtype=np.float64)
    _check_cams(keys, cams, gt, num_classes)
    valid = gt != IGNORE_INDEX
    g = gt[valid].astype(np.int64)
    if keys.size:
        values = cams[:, valid]
        best = keys.astype(np.int64)[values.argmax(axis=0)]
        above = np.searchsorted(thr, values.max(axis=0).astype(np.float64), side="left")
    else:
        best = np.zeros_like(g)
        above = np.zeros_like(g)
    n_t, c = len(thr), num_classes
    # hist[j, g, k]: pixels with GT g, best class k, and exactly j thresholds below their maximum.
    hist = np.bincount((above * c + g) * c + best, minlength=(n_t + 1) * c * c)
    cum = np.cumsum(hist.reshape(n_t + 1, c, c), axis=0)
    out = np.zeros((n_t, c, c + 1), dtype=np.int64)
    out[:, :, :c] = cum[n_t] - cum[:n_t]  # more thresholds below the maximum than i: best class
    out[:, :, 0] += cum[:n_t].sum(axis=2)  # the others: background
    return out


@dataclass(frozen=True)
class CamSweepResult:
    """Scores of the CAM labels at each threshold.

    Attributes:
        thresholds: The background thresholds, increasing.
        scores: Scores at each threshold.
        best_index: Index of the highest mIoU (the lowest threshold on ties).
    """

    thresholds: tuple[float, ...]
    scores: tuple[SegmentationScores, ...]
    best_index: int

    @property
    def miou(self) -> np.ndarray:
        """``(T,)`` mIoU per threshold, in percent."""
        return np.array([s.miou for s in self.scores])

    @property
    def curve(self) -> list[tuple[float, float]]:
        """``(threshold, mIoU)`` pairs."""
        return [(t, s.miou) for t, s in zip(self.thresholds, self.scores, strict=True)]

    @property
    def best_threshold(self) -> float:
        return self.thresholds[self.best_index]

    @property
    def best(self) -> SegmentationScores:
        return self.scores[self.best_index]

    def at(self, threshold: float) -> SegmentationScores:
        """Scores at one of the swept thresholds (matched within 1e-9)."""
        for t, s in zip(self.thresholds, self.scores, strict=True):
            if abs(t - threshold) <= 1e-9:
                return s
        raise KeyError(f"threshold {threshold} was not swept (swept: {list(self.thresholds)})")


class CamSweep:
    """Accumulates ``(T, C, C + 1)`` int64 confusion matrices of CAM labels over images.

    Args:
        num_classes: ``C``, background included.
        thresholds: Strictly increasing background thresholds (default 0.00..0.95 by 0.05).
    """

    def __init__(self, num_classes: int, thresholds: Sequence[float] | None = None) -> None:
        if num_classes < 2:
            raise ValueError(
                f"num_classes must be >= 2 (background and a class), got {num_classes}"
            )
        self.num_classes = num_classes
        self.thresholds = check_thresholds(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
        shape = (len(self.thresholds), num_classes, num_classes + 1)
        self.counts = torch.zeros(shape, dtype=torch.int64)

    def reset(self) -> None:
        """Zero the counts."""
        self.counts.zero_()

    def update(
        self,
        keys: np.ndarray | torch.Tensor,
        cams: np.ndarray | torch.Tensor,
        gt: np.ndarray | torch.Tensor,
    ) -> None:
        """Add one image (see :func:`sweep_counts` for shapes)."""
        counts = sweep_counts(
            keys, cams, gt, num_classes=self.num_classes, thresholds=self.thresholds
        )
        self.counts += torch.from_numpy(counts)

    def merge(self, other: CamSweep) -> CamSweep:
        """Add another sweep's counts (exact); returns self."""
        if (other.num_classes, other.thresholds) != (self.num_classes, self.thresholds):
            raise ValueError("cannot merge sweeps over other classes or thresholds")
        self.counts += other.counts
        return self

    def reduce(self) -> CamSweep:
        """Sum the counts over all processes (no-op in one process); call once; returns self."""
        self.counts = all_reduce_counts(self.counts)
        return self

    def compute(self) -> CamSweepResult:
        """Scores at every threshold and the best one."""
        scores = tuple(scores_from_counts(m, "background") for m in self.counts)
        miou = np.array([-math.inf if math.isnan(s.miou) else s.miou for s in scores])
        return CamSweepResult(self.thresholds, scores, int(np.argmax(miou)))
