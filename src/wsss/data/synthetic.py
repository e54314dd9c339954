"""The shipped benchmark ("synthetic VOC"): VOC layout, class names from its ``meta.json``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsss.data.base import Sample, resolve_root
from wsss.data.classes import ClassSet
from wsss.data.voc import VOCSegmentation
from wsss.errors import WsssError

META_FILE = "meta.json"


def read_meta(root: Path) -> dict[str, Any]:
    """The generator's ``meta.json`` (class names, seed, size, counts)."""
    path = root / META_FILE
    if not path.is_file():
        raise WsssError(
            "not a synthetic benchmark: meta.json missing",
            path,
            hint="create one with `wsss synth`",
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        names = tuple(str(n) for n in meta["classes"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise WsssError(f"unreadable meta.json ({err})", path) from None
    if len(names) < 2 or names[0] != "background":
        raise WsssError("meta.json 'classes' must start with 'background'", path)
    return meta


class SyntheticSegmentation(VOCSegmentation):
    """The benchmark written by ``wsss synth``: a VOC-layout folder with its own class list.

    Args:
        root: Benchmark folder (falls back to ``$WSSS_SYNTH_ROOT``).
        split: ``train`` or ``val`` (any list file in ``ImageSets/Segmentation``).
        transform: Applied to each sample.
    """

    env_var = "WSSS_SYNTH_ROOT"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        *,
        transform: Callable[[Sample], Any] | None = None,
    ) -> None:
        base = resolve_root(root, self.env_var)
        meta = read_meta(base)
        self.classes = ClassSet(tuple(meta["classes"]), has_background=True)
        self.meta = meta
        super().__init__(base, split, transform=transform)
