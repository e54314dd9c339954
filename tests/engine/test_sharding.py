import itertools

import pytest

from wsss.engine import pending, shard
from wsss.engine.distributed import dist_info


@pytest.mark.parametrize("n", [0, 1, 5, 7, 10, 11])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_cover_exactly_once(n, world):
    items = list(range(n))
    parts = [shard(items, r, world) for r in range(world)]
    assert list(itertools.chain(*parts)) == items  # contiguous, in order, no repeats, no padding
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)


def test_shard_by_hand():
    assert shard("abcdefg", 0, 3) == ["a", "b", "c"]
    assert shard("abcdefg", 1, 3) == ["d", "e"]
    assert shard("abcdefg", 2, 3) == ["f", "g"]


def test_bad_rank():
    with pytest.raises(ValueError):
        shard([1], 2, 2)
    with pytest.raises(ValueError):
        shard([1], 0, 0)


def test_pending(tmp_path):
    (tmp_path / "b.png").write_bytes(b"")
    assert pending(["a", "b", "c"], lambda i: tmp_path / f"{i}.png") == ["a", "c"]


def test_dist_info_from_environment(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert (dist_info().rank, dist_info().world) == (0, 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert (dist_info().rank, dist_info().world) == (1, 3)


def test_pending_removes_only_its_own_stale_temporaries(tmp_path):
    from wsss.io.atomic import atomic_path

    (tmp_path / "a.png").write_bytes(b"done")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.png") as tmp:
        tmp.write_bytes(b"half")
        left = tmp.with_name(tmp.name.replace(".tmp", "x.tmp"))  # what a kill would leave
        left.write_bytes(b"half")
        other = tmp_path / ".c.abc12345.tmp.png"  # another shard's file in progress
        other.write_bytes(b"busy")
        decoy = tmp_path / ".b.keep"
        decoy.write_bytes(b"x")
        raise RuntimeError
    assert left.exists()
    todo = pending(["a", "b"], lambda i: tmp_path / f"{i}.png")
    assert todo == ["b"]
    assert not left.exists()
    assert other.exists() and decoy.exists() and (tmp_path / "a.png").exists()
