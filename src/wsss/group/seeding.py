"""Each part of the group classifier initialised from its own random stream.

Rows of ``wsss ablate group`` differ by optional pieces (another message rule, no graph dropout,
...). Built from one global stream, a piece with parameters added or removed would shift the
initial weights of every part built after it, and a row would differ from its baseline by more
than its option. Under :func:`part_stream` a part draws its initial weights from a generator
seeded by ``(seed, part)`` only, so every shared part starts from the same weights in every row
at the same seed, and the global stream (graph dropout, data loading) is left untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from wsss.engine.training import derived_seed

__all__ = ["PART_IDS", "part_stream"]

#: The stream id of every part built by :func:`part_stream` (new parts take new ids).
PART_IDS: dict[str, int] = {
    "coattention": 1, "self_edge": 2, "update": 3, "intermediate_readout": 4, "graph_readout": 5,
}  # fmt: skip


@contextmanager
def part_stream(seed: int | None, part: str) -> Iterator[None]:
    """Build ``part`` with the CPU generator seeded by ``derived_seed(seed, PART_IDS[part])``.

    The global CPU stream is restored afterwards. With ``seed`` None nothing changes (the part
    draws from the global stream, as any module).
    """
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(seed, PART_IDS[part]) % 2**63)
        yield
