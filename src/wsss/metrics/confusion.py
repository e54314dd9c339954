"""One int64 confusion matrix over a whole split: mIoU, accuracies, labelled-pixel ratio.

The matrix has shape ``(C, C + 1)``: rows are GT classes, columns predicted classes, and the extra
last column counts GT-labelled pixels whose prediction is 255 (unlabelled). GT 255 is ignored.
Keeping that column lets one pass give both policies for predicted 255 (SPEC section 0):

* ``"background"`` (IRNet): a predicted 255 counts as class 0;
* ``"ignore"`` (WSGCN): those pixels are dropped, which flatters partial labels.

Counts are exact integers, so matrices from shards or processes add up to the single-process one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist

from wsss.engine import all_reduce_sum
from wsss.io.palette import IGNORE_INDEX

PredIgnore = Literal["background", "ignore"]
PRED_IGNORE_POLICIES: tuple[str, ...] = ("background", "ignore")


def as_numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    """A numpy view of an array or (any-device) tensor."""
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def all_reduce_counts(counts: torch.Tensor) -> torch.Tensor:
    """Sum an int64 CPU tensor over processes (moved to the GPU and back under ``nccl``)."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return all_reduce_sum(counts.cuda()).cpu()
    return all_reduce_sum(counts)


def check_labels(label: np.ndarray, num_classes: int, what: str) -> None:
    """Raise ``ValueError`` unless every value lies in ``[0, num_classes)`` or is 255."""
    if label.dtype.kind not in "iu":
        raise ValueError(f"{what} must hold integer class ids, got dtype {label.dtype}")
    if label.size == 0:
        return
    bad = ((label < 0) | (label >= num_classes)) & (label != IGNORE_INDEX)
    if bad.any():
        ids = np.unique(label[bad])[:5].tolist()
        raise ValueError(
            f"{what} holds class id(s) {ids} outside 0..{num_classes - 1} (255 = unlabelled)"
        )


def confusion_counts(
    pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor, num_classes: int
) -> np.ndarray:
    """The ``(C, C + 1)`` int64 confusion matrix of one prediction.

    Args:
        pred: Predicted class ids, 255 = unlabelled.
        gt: GT class ids, 255 = ignore.
        num_classes: ``C``.

    Returns:
        ``counts[g, p]`` = number of pixels with GT ``g`` and prediction ``p``; column ``C`` holds
        predicted 255. GT-255 pixels are not counted.

    Shapes:
        pred, gt: the same shape, any number of dimensions.

    Raises:
        ValueError: shapes differ, or an id is outside ``[0, C)`` and not 255.
    """
    pred, gt = as_numpy(pred), as_numpy(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from GT shape {gt.shape}")
    check_labels(pred, num_classes, "prediction")
    check_labels(gt, num_classes, "GT")
    valid = gt != IGNORE_INDEX
    g = gt[valid].astype(np.int64)
    p = pred[valid].astype(np.int64)
    p[p == IGNORE_INDEX] = num_classes
    width = num_classes + 1
    flat = np.bincount(g * width + p, minlength=num_classes * width)
    return flat.reshape(num_classes, width).astype(np.int64)


def _percent(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``100 * num / den`` elementwise, NaN where ``den == 0``."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(100.0 * num, den, out=out, where=den > 0)
    return out


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def json_float(value: float) -> float | None:
    """A float for JSON: NaN becomes None."""
    value = float(value)
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of one confusion matrix under one predicted-255 policy (percentages in [0, 100]).

    Attributes:
        iou: Per-class IoU ``TP / (TP + FP + FN)``; NaN for classes absent from GT and prediction,
            0 for classes predicted but never in GT.
        miou: Mean IoU over the classes that are not NaN.
        pixel_accuracy: Correct pixels over counted pixels.
        mean_class_accuracy: Mean of ``recall`` over classes present in GT.
        precision: Per-class ``TP / predicted``; NaN where the class is never predicted.
        recall: Per-class ``TP / GT``; NaN where the class is not in GT.
        labelled_ratio: Share of GT-labelled pixels whose prediction is not 255.
        present: Classes with GT-labelled pixels.
        predicted: Classes predicted on GT-labelled pixels (under the policy).
        num_pixels: GT-labelled pixels (before the policy drops any).
        pred_ignore: The policy used for predicted 255.

    Shapes:
        iou, precision, recall, present, predicted: ``(C,)``.
    """

    iou: np.ndarray
    miou: float
    pixel_accuracy: float
    mean_class_accuracy: float
    precision: np.ndarray
    recall: np.ndarray
    labelled_ratio: float
    present: np.ndarray
    predicted: np.ndarray
    num_pixels: int
    pred_ignore: str

    def to_dict(self, class_names: Sequence[str]) -> dict[str, Any]:
        """JSON-ready scores; per-class values keyed by name, only classes in GT or predicted.

        Args:
            class_names: Name of each class id (``len == C``).
        """
        if len(class_names) != len(self.iou):
            raise ValueError(f"{len(class_names)} class names for {len(self.iou)} classes")
        listed = [c for c in range(len(self.iou)) if self.present[c] or self.predicted[c]]

        def per_class(values: np.ndarray) -> dict[str, float | None]:
            return {class_names[c]: json_float(values[c]) for c in listed}

        return {
            "pred_ignore": self.pred_ignore,
            "miou": json_float(self.miou),
            "pixel_accuracy": json_float(self.pixel_accuracy),
            "mean_class_accuracy": json_float(self.mean_class_accuracy),
            "labelled_ratio": json_float(self.labelled_ratio),
            "num_pixels": int(self.num_pixels),
            "iou": per_class(self.iou),
            "precision": per_class(self.precision),
            "recall": per_class(self.recall),
        }


def scores_from_counts(counts: np.ndarray | torch.Tensor, pred_ignore: str) -> SegmentationScores:
    """Scores of a ``(C, C + 1)`` confusion matrix (see :func:`confusion_counts`).

    Args:
        counts: The matrix; column ``C`` counts predicted 255.
        pred_ignore: ``"background"`` (predicted 255 counts as class 0) or ``"ignore"``
            (those pixels are dropped).
    """
    counts = as_numpy(counts).astype(np.int64)
    num_classes = counts.shape[0]
    if counts.shape != (num_classes, num_classes + 1):
        raise ValueError(f"confusion counts must be (C, C + 1), got {counts.shape}")
    if pred_ignore not in PRED_IGNORE_POLICIES:
        raise ValueError(f"pred_ignore must be one of {PRED_IGNORE_POLICIES}, got {pred_ignore!r}")
    mat = counts[:, :num_classes].copy()
    if pred_ignore == "background":
        mat[:, 0] += counts[:, num_classes]
    tp = np.diag(mat)
    in_gt, in_pred = mat.sum(axis=1), mat.sum(axis=0)
    iou = _percent(tp, in_gt + in_pred - tp)
    recall = _percent(tp, in_gt)
    total = int(counts.sum())
    return SegmentationScores(
        iou=iou,
        miou=_nanmean(iou),
        pixel_accuracy=float(_percent(tp.sum(), mat.sum())),
        mean_class_accuracy=_nanmean(recall),
        precision=_percent(tp, in_pred),
        recall=recall,
        labelled_ratio=float(_percent(total - counts[:, num_classes].sum(), total)),
        present=counts.sum(axis=1) > 0,
        predicted=in_pred > 0,
        num_pixels=total,
        pred_ignore=pred_ignore,
    )


class ConfusionMatrix:
    """Accumulates a ``(C, C + 1)`` int64 confusion matrix over many predictions.

    Use ``update`` per image (or batch), ``reduce`` once after the last update when running under
    several processes, then ``compute``.

    Args:
        num_classes: ``C``, background included.

    Example:
        >>> cm = ConfusionMatrix(3)
        >>> cm.update(np.array([[0, 1], [2, 255]]), np.array([[0, 1], [1, 2]]))
        >>> round(cm.compute().miou, 2)
        33.33
    """

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.counts = torch.zeros(num_classes, num_classes + 1, dtype=torch.int64)

    def reset(self) -> None:
        """Zero the counts."""
        self.counts.zero_()

    def update(self, pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor) -> None:
        """Add one prediction (see :func:`confusion_counts` for shapes and errors)."""
        self.counts += torch.from_numpy(confusion_counts(pred, gt, self.num_classes))

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix's counts to this one (exact); returns self."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        self.counts += other.counts
        return self

    def reduce(self) -> ConfusionMatrix:
        """Sum the counts over all processes (no-op in one process); call once; returns self."""
        self.counts = all_reduce_counts(self.counts)
        return self

    def compute(self, pred_ignore: PredIgnore = "background") -> SegmentationScores:
        """Scores under a predicted-255 policy (``"background"`` or ``"ignore"``)."""
        return scores_from_counts(self.counts, pred_ignore)
