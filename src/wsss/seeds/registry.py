"""The seed schemes by name: a plain dict and a ``create_seeder`` factory."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from wsss.errors import WsssError
from wsss.io.cams import CamFile
from wsss.seeds.group import GroupSeeds
from wsss.seeds.irnet import IrnetSeeds
from wsss.seeds.wsgcn import WsgcnSeeds

__all__ = ["SEED_METHODS", "Seeder", "create_seeder", "seeder_options"]


class Seeder(Protocol):
    """What every seed scheme is: a frozen dataclass of options, called once per image."""

    name: ClassVar[str]
    #: True: seeds at the image size (from ``high_res``); False: at the stride-4 CAM size.
    full_resolution: ClassVar[bool]

    def __call__(
        self, image: np.ndarray, cam: CamFile, *, device: str | torch.device = "cpu"
    ) -> np.ndarray: ...


#: Method name -> seed scheme class (keyword-only options with the published defaults).
SEED_METHODS: dict[str, type[IrnetSeeds] | type[WsgcnSeeds] | type[GroupSeeds]] = {
    "irnet": IrnetSeeds,
    "wsgcn": WsgcnSeeds,
    "group": GroupSeeds,
}


def create_seeder(method: str, **options: Any) -> Seeder:
    """The seed scheme ``method`` with ``options`` (unset ones take the published defaults).

    Raises:
        WsssError: unknown method or option (the message lists the valid ones), or invalid values.
    """
    if method not in SEED_METHODS:
        raise WsssError(f"unknown seed method {method!r}; valid: {', '.join(SEED_METHODS)}")
    cls = SEED_METHODS[method]
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise WsssError(
            f"seed method {method!r} has no option(s) {', '.join(unknown)}; "
            f"its options: {', '.join(valid)}"
        )
    return cls(**options)


def seeder_options(seeder: Seeder) -> dict[str, Any]:
    """``{"method": name, **options}``: the resolved configuration of a seed scheme."""
    assert dataclasses.is_dataclass(seeder) and not isinstance(seeder, type)
    return {"method": seeder.name, **dataclasses.asdict(seeder)}
