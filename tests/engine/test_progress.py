"""The progress bar draws from the loop: no thread of its own, so no deadlock at garbage collection."""

from __future__ import annotations

import threading

from wsss.engine.progress import track


def test_the_bar_runs_no_thread_and_yields_every_item() -> None:
    before = threading.active_count()
    seen = []
    for item in track(range(5), description="items"):
        seen.append(item)
        assert threading.active_count() == before  # rich's track() adds two threads
    assert seen == list(range(5))


def test_a_loop_left_early_closes_from_another_thread() -> None:
    bar = track(iter(range(5)), description="items", total=5)
    assert next(bar) == 0
    closer = threading.Thread(target=bar.close)
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive()
    assert list(track([], description="none", enabled=False)) == []
