"""Exact, unpadded sharding of per-image work, and resume by skipping finished outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    existing file is a finished one)."""
    return [i for i in ids if not output(i).exists()]
