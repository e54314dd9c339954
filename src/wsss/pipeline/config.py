"""Pipeline configurations: shipped by name (``demo``, ...) or a YAML file, plus overrides."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from wsss.errors import WsssError


def shipped_configs() -> list[str]:
    """Names of the configurations shipped in ``wsss/configs``."""
    folder = resources.files("wsss") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_config(name_or_file: str) -> dict[str, Any]:
    """Read a shipped configuration by name, or a YAML file by path."""
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise WsssError("missing configuration file", path)
        text = path.read_text(encoding="utf-8")
        source: str | Path = path
    else:
        if name_or_file not in shipped_configs():
            raise WsssError(
                f"unknown configuration {name_or_file!r}; shipped: {', '.join(shipped_configs())}"
            )
        text = (resources.files("wsss") / "configs" / f"{name_or_file}.yaml").read_text("utf-8")
        source = f"{name_or_file}.yaml"
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise WsssError(f"invalid YAML ({err})", source) from None
    if not isinstance(config, dict):
        raise WsssError("a configuration must be a mapping", source)
    return config


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``config`` with dotted keys (``data.train``) set; None values skipped."""
    out = copy.deepcopy(config)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = out
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return out
