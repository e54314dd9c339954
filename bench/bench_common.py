"""Shared by the side-by-side benches (``rw_vs_dense.py``, ``gcn_vs_dense.py``, ``gcn_vs_pyg.py``):
timing, the machine's state, and writing the JSON.

Times are medians of repeated calls in one process; the machine is shared, so the JSON records
the load average before and after and the OpenMP wait policy. Ratios of two methods timed in the
same process, interleaved, are what carries over to another machine.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from wsss.io.atomic import atomic_write_text

T = TypeVar("T")

#: The real VOC 2012 photos with ground truth (VOC layout, split ``samples``).
VOC_SAMPLES = Path("/work/shared/data/voc-samples/VOC2012")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Seconds of one call and its result."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median_seconds(fn: Callable[[], T], runs: int) -> tuple[float, list[float], T]:
    """Median seconds of ``runs`` calls, every call's seconds, and the last result."""
    times, out = [], None
    for _ in range(runs):
        seconds, out = timed(fn)
        times.append(seconds)
    return statistics.median(times), times, out  # type: ignore[return-value]


def peak_rss_mb() -> float:
    """The process's maximum resident size so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine(threads: int) -> dict[str, Any]:
    """Sets the torch threads and returns what the JSON records about the run's conditions."""
    torch.set_num_threads(threads)
    return {
        "torch_threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg()[0],
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def finish(result: dict[str, Any], out: Path) -> None:
    """Adds the closing load average and peak RSS, prints the JSON and writes it to ``out``."""
    result["load_average_after"] = os.getloadavg()[0]
    result["peak_rss_mb"] = peak_rss_mb()
    text = json.dumps(result, indent=2) + "\n"
    print(text, end="")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)


def agreement(p: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    """Argmax agreement and largest absolute difference of two ``(N, K)`` outputs."""
    return {
        "label_agreement": float((p.argmax(1) == q.argmax(1)).double().mean()),
        "max_abs_diff": float((p.double() - q.double()).abs().max()),
    }
