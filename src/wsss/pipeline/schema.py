"""Every setting ``wsss run`` knows: a configuration is checked against them before any stage.

A run configuration is a mapping of sections (``data``, ``cam``, ``seg``, ...). Each section's
valid keys are listed here; the keys of the three trained sections (``cam``, ``group``, ``seg``)
include every argument of their trainer's ``resolve_*`` function that the pipeline does not set
itself (dataset, split, seed, ...), read from its signature so that the two never drift apart.
:func:`check_config` refuses an unknown key (naming it, the nearest valid one and every valid key
of its section) and a value of the wrong type, with the one-line errors of the CLI.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wsss.errors import WsssError

__all__ = ["SECTIONS", "check_config", "section_keys", "trainer_options", "trainer_settings"]

#: A key's allowed types (``None`` where null is allowed); ``float`` accepts ints, ``list``
#: accepts any sequence of the item type named in the tuple's second place.
Spec = tuple[type | None, ...]

ANY: Spec = (object,)
INT: Spec = (int,)
OPT_INT: Spec = (int, None)
FLOAT: Spec = (float,)
STR: Spec = (str,)
OPT_STR: Spec = (str, None)
BOOL: Spec = (bool,)
LIST: Spec = (list,)
DICT: Spec = (dict,)

#: Sections whose keys are fixed here (the trained sections add their trainer's options).
SECTIONS: dict[str, dict[str, Spec]] = {
    "": {"name": STR, "seed": INT, "device": STR, "stages": (list, None)},
    "data": {"dataset": STR, "root": OPT_STR, "train": INT, "val": INT, "size": INT,
             "train_split": OPT_STR, "own_texture_prob": (float, None)},
    "cam": {"scales": LIST, "weights": OPT_STR, "model": STR, "combine": OPT_STR,
            "output_stride": OPT_INT, "person_proxies": BOOL},
    "crf": {"bg_threshold": (float, None), "preset": OPT_STR, "n_iter": OPT_INT},
    "group": {"group_size": INT, "rounds": INT, "output": STR, "scales": LIST, "init": OPT_STR,
              "weights": OPT_STR, "drop_eval": STR},
    "pseudo": {"split": STR, "eval_split": OPT_STR, "cam_calibration": (str, float, None)},
    "seeds": {"methods": LIST},
    "affinity": {"methods": LIST, "seeds": STR, "epochs": (dict, None), "batch_size": OPT_INT,
                 "irn": (dict, None), "psa": (dict, None)},
    "gcn": {"batch_size": INT, "variants": LIST},
    "ablation": {"gcn_images": INT},
    "seg": {"labels": STR, "scales": LIST, "flip": BOOL, "variants": LIST, "weights": OPT_STR},
    "evaluation": {"pred_ignore": STR, "boundary_tolerance": FLOAT},
    "report": {"samples": INT},
}  # fmt: skip

#: Keys of one ``gcn.variants`` entry, and of one ``seg.variants`` entry besides the seg options.
GCN_VARIANT_KEYS: dict[str, Spec] = {"name": STR, "label": STR, "graph": STR, "affinity": OPT_STR,
                                     "features": OPT_STR}  # fmt: skip
SEG_VARIANT_KEYS: dict[str, Spec] = {"name": STR, "label": STR, "head": STR, "weights": OPT_STR,
                                     "labels": STR}  # fmt: skip

#: Arguments of each trainer's ``resolve_*`` that the pipeline sets itself.
_SET_BY_PIPELINE = {"dataset", "root", "split", "seed", "model", "labels", "init", "group_size",
                    "steps", "cam_checkpoint", "cam_config", "check_init", "seeds", "method"}  # fmt: skip


def _resolvers() -> dict[str, Callable[..., Any]]:
    from wsss.affinity.train import resolve_config as affinity
    from wsss.cam.train import resolve_config as cam
    from wsss.group.config import resolve_group_config as group
    from wsss.seg.config import resolve_config as seg

    return {"affinity": affinity, "cam": cam, "group": group, "seg": seg}


def _spec_of(annotation: Any) -> Spec:
    """The allowed types of an annotation (``int | None`` -> ``(int, None)``)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(annotation) for t in _spec_of(arg))
    if annotation is type(None):
        return (None,)
    if origin in (tuple, list):
        return (list,)
    if annotation in (str, Path) or (origin is None and annotation is Path):
        return (str,)
    return (annotation,) if isinstance(annotation, type) else ANY


def trainer_options(section: str) -> dict[str, Spec]:
    """The options of the trained ``section`` (``cam``, ``affinity``, ``group``, ``seg``) that a configuration
    may set: the trainer's ``resolve_*`` arguments the pipeline does not set, with their types."""
    resolve = _resolvers()[section]
    hints = typing.get_type_hints(resolve)
    names = inspect.signature(resolve).parameters
    return {n: _spec_of(hints[n]) for n in names if n not in _SET_BY_PIPELINE}


def trainer_settings(section: Mapping[str, Any], trainer: str) -> dict[str, Any]:
    """The entries of a configuration ``section`` that are options of ``trainer``'s recipe
    (:func:`trainer_options`), None values left to the preset; lists as tuples."""
    valid = trainer_options(trainer)
    return {k: tuple(v) if isinstance(v, list) else v
            for k, v in section.items() if k in valid and v is not None}  # fmt: skip


def section_keys(section: str) -> dict[str, Spec]:
    """Every valid key of ``section`` (``""`` for the top level) with its allowed types."""
    keys = dict(SECTIONS[section])
    if section in ("cam", "group", "seg"):
        keys = {**trainer_options(section), **keys}
    if section == "":
        keys.update({name: DICT for name in SECTIONS if name})
    return keys


def _unknown(dotted: str, key: str, valid: Mapping[str, Spec]) -> WsssError:
    near = difflib.get_close_matches(key, list(valid), n=1)
    hint = f" (did you mean {dotted[: -len(key)]}{near[0]}?)" if near else ""
    return WsssError(
        f"unknown setting {dotted!r}{hint}; valid keys here: {', '.join(sorted(valid))}"
    )


def _check_type(dotted: str, value: Any, spec: Spec) -> None:
    if value is None:
        if None in spec:
            return
    elif any(_fits(value, t) for t in spec if t is not None):
        return
    names = ", ".join("null" if t is None else t.__name__ for t in spec)
    raise WsssError(f"setting {dotted!r} must be {names}, got {value!r}")


def _fits(value: Any, kind: type) -> bool:
    if kind is object:
        return True
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_mapping(node: Mapping[str, Any], valid: Mapping[str, Spec], prefix: str) -> None:
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if key not in valid:
            raise _unknown(dotted, str(key), valid)
        _check_type(dotted, value, valid[key])


def _check_affinity(config: Mapping[str, Any]) -> None:
    """Each method's own recipe (``affinity.irn``, ``affinity.psa``) and the per-method epochs."""
    section = config.get("affinity") or {}
    for method in ("irn", "psa"):
        if section.get(method):
            _check_mapping(section[method], trainer_options("affinity"), f"affinity.{method}.")
    for method, epochs in (section.get("epochs") or {}).items():
        if method not in ("irn", "psa"):
            raise _unknown(f"affinity.epochs.{method}", str(method), {"irn": INT, "psa": INT})
        _check_type(f"affinity.epochs.{method}", epochs, OPT_INT)


def _check_variants(config: Mapping[str, Any]) -> None:
    seg_keys = {**trainer_options("seg"), **SEG_VARIANT_KEYS}
    for section, keys in (("gcn", GCN_VARIANT_KEYS), ("seg", seg_keys)):
        for i, variant in enumerate((config.get(section) or {}).get("variants") or []):
            if not isinstance(variant, Mapping):
                raise WsssError(f"{section}.variants[{i}] must be a mapping, got {variant!r}")
            _check_mapping(variant, keys, f"{section}.variants[{i}].")


def check_config(config: Mapping[str, Any]) -> None:
    """Check every key and value type of a run configuration.

    Raises:
        WsssError: an unknown key (with the nearest valid one and the section's valid keys) or a
            value of the wrong type, in one line.
    """
    _check_mapping(config, section_keys(""), "")
    for section in SECTIONS:
        if section and config.get(section) is not None:
            _check_mapping(config[section], section_keys(section), f"{section}.")
    _check_affinity(config)
    _check_variants(config)
