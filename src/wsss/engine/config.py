"""Saved training configurations: the frozen dataclass each trainer writes as ``config.json``."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

C = TypeVar("C", bound="SavedConfig")


class SavedConfig:
    """Mixin of a frozen dataclass of JSON values: :meth:`to_dict` / :meth:`from_dict`.

    Class attributes:
        TUPLE_FIELDS: Fields held as tuples (lists in JSON).
        OMIT_IF_NONE: Fields left out of :meth:`to_dict` when None, so that runs written before
            the field existed still resume (their checkpoints compare equal).
        OMIT_AT: Fields left out of :meth:`to_dict` at these values (options added later whose
            value before was this one, so that older runs still resume).
        DEFAULTS: Values of fields missing from an older run's dictionary.
    """

    TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ("long_side",)
    OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ()
    OMIT_AT: ClassVar[dict[str, Any]] = {}
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples as lists)."""
        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        for name in self.TUPLE_FIELDS:
            out[name] = list(out[name])
        for name in self.OMIT_IF_NONE:
            if out[name] is None:
                del out[name]
        for name, value in self.OMIT_AT.items():
            if out[name] == value:
                del out[name]
        return out

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        """The inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        kept = {**cls.DEFAULTS, **{k: v for k, v in values.items() if k in names}}
        for name in cls.TUPLE_FIELDS:
            kept[name] = tuple(kept[name])
        return cls(**kept)


def fill_preset(preset: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` with every None replaced by ``preset``'s value (``long_side`` as a tuple of ints)."""
    values = {k: preset[k] if v is None else v for k, v in given.items()}
    if "long_side" in values:
        values["long_side"] = tuple(int(v) for v in values["long_side"])
    return values


def recipe_checks(config: Any) -> list[tuple[bool, str]]:
    """The checks every training recipe shares, for the fields ``config`` has (epochs, batch
    size, lr, crop, long side, seed). The output stride depends on the backbone:
    :func:`wsss.models.backbones.check_backbone` checks it."""
    has = {f.name for f in dataclasses.fields(config)}
    checks = [
        ("epochs", lambda c: c.epochs >= 1, "epochs must be >= 1, got {0.epochs}"),
        ("batch_size", lambda c: c.batch_size >= 1, "batch size must be >= 1, got {0.batch_size}"),
        ("lr", lambda c: c.lr > 0, "lr must be positive, got {0.lr}"),
        ("crop", lambda c: c.crop >= 8, "crop must be >= 8, got {0.crop}"),
        ("long_side", lambda c: 1 <= c.long_side[0] <= c.long_side[1], "bad long side {0.long_side}"),
        ("seed", lambda c: c.seed >= 0, "seed must be non-negative, got {0.seed}"),
    ]  # fmt: skip
    return [(ok(config), text.format(config)) for name, ok, text in checks if name in has]


def raise_first(checks: list[tuple[bool, str]]) -> None:
    """Raise :class:`~wsss.errors.WsssError` with the first failed check's message."""
    from wsss.errors import WsssError

    for ok, problem in checks:
        if not ok:
            raise WsssError(problem)
