"""Pixel-affinity networks trained from seeds: IRNet's boundary network and AffinityNet (PSA)."""

from wsss.affinity.infer import ImageAffinity, image_affinity, load_affinity
from wsss.affinity.irn import IRNetAffinity, boundary_to_affinity
from wsss.affinity.pairs import PairLabels, affinity_loss, downsample_labels, pair_labels
from wsss.affinity.psa import AffinityNet, feature_to_affinity
from wsss.affinity.train import (
    METHODS,
    PRESETS,
    AffinityConfig,
    build_affinity_model,
    resolve_config,
    train,
)

__all__ = [
    "METHODS",
    "PRESETS",
    "AffinityConfig",
    "AffinityNet",
    "IRNetAffinity",
    "ImageAffinity",
    "PairLabels",
    "affinity_loss",
    "boundary_to_affinity",
    "build_affinity_model",
    "downsample_labels",
    "feature_to_affinity",
    "image_affinity",
    "load_affinity",
    "pair_labels",
    "resolve_config",
    "train",
]
