"""Classifier training and multi-scale CAM inference (the pipeline's first stage)."""

from wsss.cam.infer import (
    DEFAULT_SCALES,
    image_cam_file,
    infer_cams,
    load_trained,
    multiscale_cams,
    normalize_cams,
)
from wsss.cam.train import MODELS, PRESETS, TrainConfig, build_model, resolve_config, train

__all__ = [
    "DEFAULT_SCALES",
    "MODELS",
    "PRESETS",
    "TrainConfig",
    "build_model",
    "image_cam_file",
    "infer_cams",
    "load_trained",
    "multiscale_cams",
    "normalize_cams",
    "resolve_config",
    "train",
]
