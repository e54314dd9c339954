"""Greedy mini-batch sampling of groups on hand-made label sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsss.group import GreedyGroupSampler, greedy_groups

# 8 images: 0-3 have class A (2 and 3 also C), 4-7 have class B
LABELS = np.array([
    [1, 0, 0], [1, 0, 0], [1, 0, 1], [1, 0, 1],
    [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0],
])  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_groups_by_shared_class(seed):
    groups = greedy_groups(LABELS, 4, seed=seed)
    # the first anchor takes the 3 images of its class: whatever the anchor, A and B split
    assert sorted(sorted(g) for g in groups) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_partners_share_the_most_classes():
    # images 2 and 3 share two classes (A, C): an anchor 2 or 3 takes the other if it is free
    taken = 0
    for seed in range(20):
        used: set[int] = set()
        for anchor, partner in greedy_groups(LABELS, 2, seed=seed):
            other = {2: 3, 3: 2}.get(anchor)
            if other is not None and other not in used:
                assert partner == other
                taken += 1
            used |= {anchor, partner}
    assert taken > 0


def test_greedy_choice_against_the_pool():
    rng = np.random.default_rng(0)
    labels = (rng.random((30, 5)) < 0.3).astype(int)
    groups = greedy_groups(labels, 3, seed=7, drop_last=False)
    assert sorted(i for g in groups for i in g) == list(range(30))  # each image once
    for pos, (anchor, *partners) in enumerate(groups):
        later = [i for g in groups[pos + 1 :] for i in g]  # still in the pool at that time
        counts = [int((labels[anchor] & labels[p]).sum()) for p in partners]
        assert counts == sorted(counts, reverse=True)
        if later:
            best_left = max(int((labels[anchor] & labels[i]).sum()) for i in later)
            assert min(counts) >= best_left


def test_no_partner_and_leftovers():
    labels = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0]])
    # K = 5: one group of everything, 1 and 2 have no partner sharing a class
    assert sorted(greedy_groups(labels, 5, seed=0)[0]) == [0, 1, 2, 3, 4]
    # K = 2: two full groups; the fifth image is dropped or kept alone
    dropped = greedy_groups(labels, 2, seed=1)
    kept = greedy_groups(labels, 2, seed=1, drop_last=False)
    assert [len(g) for g in dropped] == [2, 2] and [len(g) for g in kept] == [2, 2, 1]
    assert kept[:2] == dropped
    assert greedy_groups(np.zeros((0, 3)), 4) == []


def test_deterministic_and_seeded():
    labels = (np.random.default_rng(1).random((40, 6)) < 0.3).astype(int)
    assert greedy_groups(labels, 4, seed=3) == greedy_groups(torch.from_numpy(labels), 4, seed=3)
    assert greedy_groups(labels, 4, seed=3) != greedy_groups(labels, 4, seed=4)


def test_sampler_epochs_and_length():
    labels = (np.random.default_rng(2).random((10, 4)) < 0.4).astype(int)
    sampler = GreedyGroupSampler(labels, group_size=4, seed=0)
    first = list(sampler)
    assert len(sampler) == len(first) == 2 and all(len(g) == 4 for g in first)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert len(GreedyGroupSampler(labels, group_size=4, drop_last=False)) == 3
    with pytest.raises(ValueError, match=r"\(N, L\)"):
        GreedyGroupSampler(labels[0])
    with pytest.raises(ValueError, match="group_size"):
        greedy_groups(labels, 0)


def test_sampler_in_a_dataloader():
    labels = torch.eye(3).repeat_interleave(2, dim=0)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.arange(6), labels),
        batch_sampler=GreedyGroupSampler(labels, group_size=2),
    )
    for index, group_labels in loader:
        assert len(index) == 2 and (group_labels[0] == group_labels[1]).all()
