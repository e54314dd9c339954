"""Run directories: the resolved configuration and a manifest next to a run's outputs.

Layout::

    <run>/config.yaml      the resolved configuration (every value the run used)
    <run>/manifest.json    versions, command line, and per-stage status, times and outputs
    <run>/<stage>/...      each stage's outputs
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import yaml

import wsss
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text


def _cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _environment() -> dict[str, Any]:
    import numpy
    import torch
    import torchvision

    return {
        "wsss": wsss.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
    }


def thread_setting() -> dict[str, Any]:
    """This process's torch threads and OpenMP wait policy (``default`` when unset): the same
    seed gives slightly different floats at another thread count, and the policy changes the
    seconds (docs/benchmark.md#time)."""
    import torch

    policy = os.environ.get("OMP_WAIT_POLICY", "").strip() or "default"
    return {"threads": torch.get_num_threads(), "omp_wait_policy": policy}


class RunDir:
    """A run's folder with its ``config.yaml`` and ``manifest.json``.

    Args:
        path: The folder (created if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def save_config(self, config: dict[str, Any]) -> None:
        """Write the resolved configuration (atomically)."""
        atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False))

    def load_config(self) -> dict[str, Any] | None:
        """The saved configuration, or None if there is none yet."""
        if not self.config_path.is_file():
            return None
        try:
            loaded = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise WsssError(f"unreadable configuration ({err})", self.config_path) from None
        return loaded if isinstance(loaded, dict) else None

    def manifest(self) -> dict[str, Any]:
        """The manifest (a fresh one if none has been written)."""
        if self.manifest_path.is_file():
            try:
                return json.loads(self.manifest_path.read_text(encoding="utf-8"))
            except ValueError as err:
                raise WsssError(f"unreadable manifest ({err})", self.manifest_path) from None
        return {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "stages": {}}

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        manifest["environment"] = _environment()
        manifest["command"] = sys.argv
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=2) + "\n")

    def stage_done(self, name: str) -> bool:
        """Whether stage ``name`` finished in this run directory."""
        return self.manifest()["stages"].get(name, {}).get("status") == "done"

    def record_stage(
        self,
        name: str,
        *,
        seconds: float,
        outputs: dict[str, Any],
        cpu_seconds: float | None = None,
    ) -> None:
        """Mark stage ``name`` finished, with its wall time, the CPU time of this process (all its
        threads) when given, and a summary of its outputs."""
        manifest = self.manifest()
        cpu = {} if cpu_seconds is None else {"cpu_seconds": round(cpu_seconds, 3)}
        manifest["stages"][name] = {"status": "done", "seconds": round(seconds, 3), **cpu,
                                    **thread_setting(), **outputs}  # fmt: skip
        self._write_manifest(manifest)

    def clear_stage(self, name: str) -> None:
        """Forget that stage ``name`` finished (its files stay; per-image stages skip them)."""
        manifest = self.manifest()
        manifest["stages"].pop(name, None)
        self._write_manifest(manifest)
