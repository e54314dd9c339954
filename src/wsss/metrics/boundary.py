"""Boundary F-score of class boundaries within a pixel tolerance (ES-CRF / DAVIS protocol).

For each image and each class present (on GT-labelled pixels) in GT or prediction, the binary masks
``label == c`` of both get boundary maps: a pixel is on the boundary when one of its 4-neighbours
has the other mask value. Predicted 255 is a label of its own here (its edge with class ``c`` is a
boundary of ``c``) unless void is filled.

GT void (255) needs a rule, because VOC (and the shipped benchmark) draw a void band along every
object border, so that almost no two GT classes touch. ``void="fill"`` (default) gives each void
pixel the label of its nearest labelled GT pixel (Euclidean), which puts the GT boundary in the
middle of the band, and compares every pixel; predicted 255 is filled the same way, so a
prediction equal to the GT scores 100. ``void="exclude"`` compares only pairs of
GT-labelled pixels, so an edge between a class and void is no boundary on either side; this suits
datasets whose void marks unlabelled regions rather than borders (ADE20K, Cityscapes).

A predicted boundary pixel is matched when a GT boundary pixel lies within ``tolerance`` pixels
(Euclidean disk), and a GT boundary pixel when a predicted one does. Per class, the counts
(matched predicted, predicted, matched GT, GT) are int64 and add up exactly over images and
processes. Precision and recall follow the DAVIS conventions: with no predicted boundary precision
is 1, with no GT boundary recall is 1, and F = 2PR / (P + R) (0 when P + R = 0).

Two summaries: the dataset-level F per class from the summed counts, averaged over the classes
present somewhere; and the DAVIS-style mean over images of each image's mean F over its classes,
accumulated as int64 fixed point (``round(F * 1e9)``) so that it is identical under any sharding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy import ndimage

from wsss.io.palette import IGNORE_INDEX
from wsss.metrics.confusion import all_reduce_counts, as_numpy, check_labels, json_float

#: How GT void pixels enter the boundary maps (see the module docstring).
VoidRule = Literal["fill", "exclude"]

#: Scale of the fixed-point per-image F sums.
FIXED_POINT = 10**9


def boundary_map(mask: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pixels of a binary mask with a 4-neighbour of the other value, both pixels valid.

    Shapes:
        mask, valid: ``(H, W)`` bool. Returns ``(H, W)`` bool.
    """
    out = np.zeros(mask.shape, dtype=bool)
    rows = (mask[1:] != mask[:-1]) & valid[1:] & valid[:-1]
    out[1:] |= rows
    out[:-1] |= rows
    cols = (mask[:, 1:] != mask[:, :-1]) & valid[:, 1:] & valid[:, :-1]
    out[:, 1:] |= cols
    out[:, :-1] |= cols
    return out


def _fill_void(label: np.ndarray) -> np.ndarray:
    """Give each 255 pixel the label of its nearest non-255 pixel (unchanged if all or none)."""
    void = label == IGNORE_INDEX
    if not void.any() or void.all():
        return label
    rows, cols = ndimage.distance_transform_edt(void, return_distances=False, return_indices=True)
    return label[rows, cols]


def disk(radius: float) -> np.ndarray:
    """Boolean structuring element of the offsets ``(dy, dx)`` with ``dy² + dx² <= radius²``."""
    r = math.floor(radius)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    return dy**2 + dx**2 <= radius**2


def _near(boundary: np.ndarray, structure: np.ndarray) -> np.ndarray:
    if structure.shape == (1, 1) or not boundary.any():
        return boundary
    return ndimage.binary_dilation(boundary, structure=structure)


@dataclass(frozen=True)
class ImageBoundaryCounts:
    """Boundary counts of one image.

    Attributes:
        counts: Per class ``(matched predicted, predicted, matched GT, GT)`` boundary pixels.
        present: Classes present (on GT-labelled pixels) in GT or prediction.

    Shapes:
        counts: ``(C, 4)`` int64; present: ``(C,)`` bool.
    """

    counts: np.ndarray
    present: np.ndarray

    def mean_f(self) -> float:
        """Mean F over the present classes, in [0, 1] (NaN when no class is present)."""
        if not self.present.any():
            return math.nan
        _, _, f = f_measure(self.counts[self.present])
        return float(f.mean())


def boundary_counts(
    pred: np.ndarray | torch.Tensor,
    gt: np.ndarray | torch.Tensor,
    *,
    num_classes: int,
    tolerance: float = 1,
    void: VoidRule = "fill",
) -> ImageBoundaryCounts:
    """Per-class boundary counts of one prediction.

    Args:
        pred: Predicted class ids, 255 = unlabelled.
        gt: GT class ids, 255 = ignore.
        num_classes: ``C``.
        tolerance: Match distance in pixels (Euclidean); 0 asks for exact positions.
        void: GT-255 rule, ``"fill"`` (nearest label) or ``"exclude"`` (see the module docs).

    Shapes:
        pred, gt: ``(H, W)``.

    Raises:
        ValueError: shapes differ or are not 2-D, ids out of range, negative tolerance.
    """
    pred, gt = as_numpy(pred), as_numpy(gt)
    if pred.shape != gt.shape or gt.ndim != 2:
        raise ValueError(
            f"need (H, W) prediction and GT of one shape, got {pred.shape}, {gt.shape}"
        )
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    check_labels(pred, num_classes, "prediction")
    check_labels(gt, num_classes, "GT")
    if void not in ("fill", "exclude"):
        raise ValueError(f"void must be 'fill' or 'exclude', got {void!r}")
    valid = gt != IGNORE_INDEX
    if void == "fill":
        gt, pred = _fill_void(gt), _fill_void(pred)
        valid = gt != IGNORE_INDEX
    classes = np.union1d(gt[valid], pred[valid])
    classes = classes[classes != IGNORE_INDEX].astype(np.int64)
    structure = disk(tolerance)
    counts = np.zeros((num_classes, 4), dtype=np.int64)
    for c in classes:
        gt_b = boundary_map(gt == c, valid)
        pred_b = boundary_map(pred == c, valid)
        counts[c] = (
            np.count_nonzero(pred_b & _near(gt_b, structure)),
            np.count_nonzero(pred_b),
            np.count_nonzero(gt_b & _near(pred_b, structure)),
            np.count_nonzero(gt_b),
        )
    present = np.zeros(num_classes, dtype=bool)
    present[classes] = True
    return ImageBoundaryCounts(counts, present)


def f_measure(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F in [0, 1] from ``(..., 4)`` boundary counts (DAVIS conventions)."""
    counts = np.asarray(counts, dtype=np.float64)
    mp, np_, mg, ng = (counts[..., k] for k in range(4))
    precision = np.divide(mp, np_, out=np.ones_like(mp), where=np_ > 0)
    recall = np.divide(mg, ng, out=np.ones_like(mg), where=ng > 0)
    total = precision + recall
    f = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return precision, recall, f


def boundary_f_score(
    pred: np.ndarray | torch.Tensor,
    gt: np.ndarray | torch.Tensor,
    *,
    num_classes: int,
    tolerance: float = 1,
    void: VoidRule = "fill",
) -> float:
    """One image's boundary F in percent: the mean over its present classes (NaN if none).

    Args:
        pred: Predicted class ids, 255 = unlabelled.
        gt: GT class ids, 255 = ignore.
        num_classes: ``C``.
        tolerance: Match distance in pixels.

    Shapes:
        pred, gt: ``(H, W)``.
    """
    counts = boundary_counts(pred, gt, num_classes=num_classes, tolerance=tolerance, void=void)
    return 100.0 * counts.mean_f()


@dataclass(frozen=True)
class BoundaryScores:
    """Boundary scores of a dataset, in percent.

    Attributes:
        f, precision, recall: Per class from the summed counts; NaN for classes never present.
        mean_f: Mean of ``f`` over the classes present in some image.
        image_mean_f: Mean over images of each image's mean F over its classes (DAVIS style).
        present: Classes present (in GT or prediction) in at least one image.
        num_images: Images with at least one present class.
        tolerance: Match distance in pixels.
        void: The GT-255 rule used.

    Shapes:
        f, precision, recall, present: ``(C,)``.
    """

    f: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    mean_f: float
    image_mean_f: float
    present: np.ndarray
    num_images: int
    tolerance: float
    void: VoidRule = "fill"

    def to_dict(self, class_names: Sequence[str]) -> dict[str, Any]:
        """JSON-ready scores; per-class F keyed by name for present classes only."""
        if len(class_names) != len(self.f):
            raise ValueError(f"{len(class_names)} class names for {len(self.f)} classes")
        listed = np.flatnonzero(self.present)
        return {
            "tolerance": self.tolerance,
            "void": self.void,
            "mean_f": json_float(self.mean_f),
            "image_mean_f": json_float(self.image_mean_f),
            "num_images": int(self.num_images),
            "f": {class_names[c]: json_float(self.f[c]) for c in listed},
            "precision": {class_names[c]: json_float(self.precision[c]) for c in listed},
            "recall": {class_names[c]: json_float(self.recall[c]) for c in listed},
        }


class BoundaryFScore:
    """Accumulates boundary counts over images; ``reduce`` sums them over processes exactly.

    Args:
        num_classes: ``C``, background included.
        tolerance: Match distance in pixels (1 in ES-CRF).
        void: GT-255 rule, ``"fill"`` or ``"exclude"`` (see the module docstring).
    """

    def __init__(self, num_classes: int, tolerance: float = 1, void: VoidRule = "fill") -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        self.num_classes = num_classes
        self.tolerance = tolerance
        self.void: VoidRule = void
        self.counts = torch.zeros(num_classes, 4, dtype=torch.int64)
        self.class_images = torch.zeros(num_classes, dtype=torch.int64)
        self.f_sum = torch.zeros((), dtype=torch.int64)  # sum of round(image F * FIXED_POINT)
        self.num_images = torch.zeros((), dtype=torch.int64)

    def reset(self) -> None:
        """Zero all counts."""
        for t in (self.counts, self.class_images, self.f_sum, self.num_images):
            t.zero_()

    def update(self, pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor) -> None:
        """Add one image (see :func:`boundary_counts`)."""
        image = boundary_counts(
            pred, gt, num_classes=self.num_classes, tolerance=self.tolerance, void=self.void
        )
        self.counts += torch.from_numpy(image.counts)
        self.class_images += torch.from_numpy(image.present.astype(np.int64))
        if image.present.any():
            self.f_sum += round(image.mean_f() * FIXED_POINT)
            self.num_images += 1

    def merge(self, other: BoundaryFScore) -> BoundaryFScore:
        """Add another accumulator's counts (exact); returns self."""
        if (other.num_classes, other.tolerance) != (self.num_classes, self.tolerance):
            raise ValueError("cannot merge boundary scores of other classes or tolerance")
        self.counts += other.counts
        self.class_images += other.class_images
        self.f_sum += other.f_sum
        self.num_images += other.num_images
        return self

    def reduce(self) -> BoundaryFScore:
        """Sum over all processes (no-op in one process); call once; returns self."""
        c = self.num_classes
        flat = torch.cat(
            [self.counts.flatten(), self.class_images, self.f_sum[None], self.num_images[None]]
        )
        flat = all_reduce_counts(flat)
        self.counts = flat[: 4 * c].reshape(c, 4).clone()
        self.class_images = flat[4 * c : 5 * c].clone()
        self.f_sum, self.num_images = flat[5 * c].clone(), flat[5 * c + 1].clone()
        return self

    def compute(self) -> BoundaryScores:
        """Per-class and mean boundary scores in percent."""
        present = self.class_images.numpy() > 0
        precision, recall, f = (100.0 * v for v in f_measure(self.counts.numpy()))
        for v in (precision, recall, f):
            v[~present] = np.nan
        n = int(self.num_images)
        return BoundaryScores(
            f=f,
            precision=precision,
            recall=recall,
            mean_f=float(f[present].mean()) if present.any() else math.nan,
            image_mean_f=100.0 * int(self.f_sum) / FIXED_POINT / n if n else math.nan,
            present=present,
            num_images=n,
            tolerance=self.tolerance,
            void=self.void,
        )
