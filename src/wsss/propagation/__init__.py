"""Label propagation from CAMs: the IRNet / AffinityNet random walk (sparse, exact)."""

from wsss.data.transforms import normalize_image
from wsss.propagation.infer import (
    PROPAGATORS,
    Propagator,
    RandomWalkPropagator,
    cams_on_grid,
    create_propagator,
    propagate,
)
from wsss.propagation.random_walk import (
    RW_PRESETS,
    RandomWalkSettings,
    psa_background,
    random_walk,
    random_walk_labels,
    random_walk_settings,
)

__all__ = [
    "PROPAGATORS",
    "RW_PRESETS",
    "Propagator",
    "RandomWalkPropagator",
    "RandomWalkSettings",
    "cams_on_grid",
    "create_propagator",
    "normalize_image",
    "propagate",
    "psa_background",
    "random_walk",
    "random_walk_labels",
    "random_walk_settings",
]
