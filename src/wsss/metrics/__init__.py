"""Evaluation: int64 confusion matrices (mIoU), boundary F-score, CAM threshold sweeps."""

from wsss.metrics.boundary import (
    BoundaryFScore,
    BoundaryScores,
    ImageBoundaryCounts,
    boundary_counts,
    boundary_f_score,
)
from wsss.metrics.cam_sweep import DEFAULT_THRESHOLDS, CamSweep, CamSweepResult, sweep_counts
from wsss.metrics.confusion import (
    ConfusionMatrix,
    PredIgnore,
    SegmentationScores,
    confusion_counts,
    scores_from_counts,
)
from wsss.metrics.evaluate import evaluate_cams, evaluate_predictions

__all__ = [
    "DEFAULT_THRESHOLDS",
    "BoundaryFScore",
    "BoundaryScores",
    "CamSweep",
    "CamSweepResult",
    "ConfusionMatrix",
    "ImageBoundaryCounts",
    "PredIgnore",
    "SegmentationScores",
    "boundary_counts",
    "boundary_f_score",
    "confusion_counts",
    "evaluate_cams",
    "evaluate_predictions",
    "scores_from_counts",
    "sweep_counts",
]
