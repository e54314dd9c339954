"""Refiners for CAMs made by any method: dense CRF, random walk, WSGCN's GCN (``wsss refine``)."""

from wsss.refine.infer import (
    REFINERS,
    CamCrfRefiner,
    background_warnings,
    create_refiner,
    find_image,
    refine_folder,
)

__all__ = [
    "REFINERS",
    "CamCrfRefiner",
    "background_warnings",
    "create_refiner",
    "find_image",
    "refine_folder",
]
