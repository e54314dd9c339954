"""Progress bars for long loops (rich), silent when disabled or off the main process.

The bar is drawn from the loop itself (``auto_refresh=False``, at most every
:data:`REFRESH_SECONDS`), never from a thread of its own: rich's ``Progress.track`` runs a
refresh thread and a tracking thread, and a loop left by an exception leaves its generator to the
garbage collector, which may close it inside the refresh thread; the close then waits for the
tracking thread, which waits for the refresh thread's lock: a deadlock, seen in the test suite.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from wsss.engine.distributed import is_main_process

__all__ = ["REFRESH_SECONDS", "track"]

T = TypeVar("T")

#: Shortest time between two redraws of a bar.
REFRESH_SECONDS = 0.1


def track(
    items: Iterable[T], *, description: str, total: int | None = None, enabled: bool = True
) -> Iterator[T]:
    """Yield from ``items`` with a progress bar (only when ``enabled`` on the main process).

    Args:
        items: What to iterate over.
        description: The bar's label.
        total: Number of items (default: ``len(items)`` when it has one).
        enabled: Draw the bar; False (or a process other than rank 0) yields the items only.
    """
    if not enabled or not is_main_process():
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False, auto_refresh=False) as progress:
        task = progress.add_task(description, total=total)
        progress.refresh()
        last = time.monotonic()
        for item in items:
            yield item
            progress.advance(task)
            now = time.monotonic()
            if now - last >= REFRESH_SECONDS:
                progress.refresh()
                last = now
        progress.refresh()
