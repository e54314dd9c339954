"""What every benchmark records about the machine, and its command line (``--out``, ``--runs``,
``--threads``; the JSON is printed and, with ``--out``, written atomically)."""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from wsss.io.atomic import atomic_write_text


def machine(runs: int, threads: int, load_before: float) -> dict[str, Any]:
    """Runs, threads, ``OMP_WAIT_POLICY``, load average before and now, versions."""
    return {
        "runs": runs,
        "torch_threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_before_after": [load_before, os.getloadavg()[0]],
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def main(run: Callable[[int, int], dict], doc: str, *, runs: int = 5) -> None:
    """Parse the command line, call ``run(runs, threads)``, print and write its JSON."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here as well")
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    text = json.dumps(run(args.runs, args.threads), indent=2) + "\n"
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text)
