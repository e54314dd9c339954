"""Segmentation networks (DeepLab-v2, DeepLabV3+, ES-CRF), their training and prediction."""

from wsss.seg.deeplab import DeepLabV2, DeepLabV3Plus, SegmentationModel
from wsss.seg.escrf import ESCRF, es_crf, pairwise_message, superpixel_mean
from wsss.seg.registry import SEG_MODELS, create_seg_model

__all__ = [
    "ESCRF",
    "SEG_MODELS",
    "DeepLabV2",
    "DeepLabV3Plus",
    "SegmentationModel",
    "create_seg_model",
    "es_crf",
    "pairwise_message",
    "superpixel_mean",
]
