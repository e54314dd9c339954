"""Exact, unpadded sharding of per-image work, and resume by skipping finished outputs."""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """The contiguous slice of ``items`` that process ``rank`` of ``world`` handles.

    Every item goes to exactly one rank and none is repeated (unlike a padded
    ``DistributedSampler``); shard sizes differ by at most one, the lower ranks taking the extra.

    Raises:
        ValueError: ``world < 1`` or ``rank`` outside ``[0, world)``.
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"need 0 <= rank < world, got rank={rank}, world={world}")
    n = len(items)
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    stop = start + base + (1 if rank < extra else 0)
    return list(items[start:stop])


def pending(ids: Sequence[str], output: Callable[[str], Path]) -> list[str]:
    """The ids whose output file does not exist yet (outputs are written atomically, so an
    existing file is a finished one).

    Temporary files that a killed run left beside these ids' outputs (``atomic_path`` names them
    ``.<stem>.<random>.tmp<suffix>``) are removed. Only the given ids' leftovers are touched, so
    processes working on other shards of the same folder are not disturbed.
    """
    outputs = {i: output(i) for i in ids}
    remove_stale_temporaries(outputs.values())
    return [i for i, path in outputs.items() if not path.exists()]


def remove_stale_temporaries(paths: Iterable[Path]) -> int:
    """Delete the leftover temporary files of ``paths`` (see :func:`pending`); returns how many."""
    wanted: dict[Path, set[str]] = defaultdict(set)
    for path in paths:
        wanted[path.parent].add(path.name)
    removed = 0
    for folder, names in wanted.items():
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            head, sep, suffix = entry.name.rpartition(".tmp")
            if not (sep and head.startswith(".") and "." in head[1:]):
                continue
            stem = head[1:].rsplit(".", 1)[0]
            if stem + suffix in names:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(entry.path)
                    removed += 1
    return removed
