"""Greedy mini-batch sampling of Group-WSSS: groups of K images that share classes.

Paper ("Training Details"): starting from a randomly sampled image ``I_i``, find ``K - 1`` other
images each sharing as many classes with ``I_i`` as possible; the ``K`` images form one graph.
This module makes that an epoch of groups (each image used once per epoch):

1. A seeded permutation of the dataset gives the anchor order and breaks ties.
2. The next image of the permutation that is not yet in a group is the anchor; its partners are
   the ``K - 1`` images not yet in a group with the most classes in common with it (ties: the
   earlier in the permutation). All ``K`` leave the pool.
3. Leftovers: every group is full until fewer than ``K`` images remain; that last short group of
   ``N mod K`` images is dropped with ``drop_last`` (training, as the CAM recipe drops its
   last incomplete batch) and kept otherwise (inference, so that every image gets CAMs).
4. Images with no partner: when no image left in the pool shares a class with the anchor, the
   best-ranked ones (0 shared classes) still complete the group. The graph then has no edge to
   them (:func:`~wsss.group.adjacency.label_adjacency`): they only see their self edge, i.e.
   they train as single images. This happens mostly late in an epoch, when the pool is small.

The groups are a pure function of ``(labels, group_size, seed, epoch)``.

Inference (:func:`inference_groups`) uses the same greedy grouping with every image kept: each
image is *owned* by exactly one group, which writes its CAMs. The short last group (``N mod K``
images) is padded up to ``K`` with the images sharing the most classes with its anchor among the
already-covered ones (ties: the earlier in the permutation); the padding images only give context
and their outputs are discarded. With fewer than ``K`` images in all, the one group stays short.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Sampler

from wsss.data.base import SegmentationDataset
from wsss.engine.training import derived_seed

__all__ = ["GreedyGroupSampler", "InferenceGroup", "greedy_groups", "inference_groups"]


def greedy_groups(
    labels: np.ndarray | torch.Tensor, group_size: int = 4, *, seed: int = 0,
    drop_last: bool = True,
) -> list[list[int]]:  # fmt: skip
    """One epoch of greedy groups over a label matrix (see the module docstring).

    Args:
        labels: Multi-hot image-level labels of the dataset (non-zero = present).
        group_size: ``K`` (4).
        seed: Seed of the permutation (anchor order and tie-breaking).
        drop_last: Drop the final group when it has fewer than ``K`` images.

    Returns:
        Groups of dataset indices, each starting with its anchor; partners follow by decreasing
        number of shared classes.

    Shapes:
        labels: ``(N, L)``.

    Example:
        >>> labels = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
        >>> sorted(sorted(g) for g in greedy_groups(labels, 2, seed=0))
        [[0, 2], [1, 3]]
    """
    present = _present(labels, group_size)
    n = present.shape[0]
    order, rank = _permutation(n, seed)
    available = np.ones(n, dtype=bool)
    left = n
    groups: list[list[int]] = []
    for anchor in order:
        if not available[anchor]:
            continue
        available[anchor] = False
        left -= 1
        partners = _best_partners(present, int(anchor), available, rank, min(group_size - 1, left))
        available[partners] = False
        left -= len(partners)
        groups.append([int(anchor), *partners])
    if drop_last and groups and len(groups[-1]) < group_size:
        groups.pop()
    return groups


def _present(labels: np.ndarray | torch.Tensor, group_size: int) -> np.ndarray:
    present = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels) != 0
    if present.ndim != 2:
        raise ValueError(f"labels: expected a (N, L) matrix, got shape {present.shape}")
    if group_size < 1:
        raise ValueError(f"group_size must be positive, got {group_size}")
    return present


def _permutation(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeded anchor order and each index's rank in it."""
    order = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return order, rank


class InferenceGroup(NamedTuple):
    """A group run at inference: ``members[:owned]`` get their outputs written, the rest
    (padding of the last group) only give context."""

    members: list[int]
    owned: int


def inference_groups(
    labels: np.ndarray | torch.Tensor, group_size: int = 4, *, seed: int = 0
) -> list[InferenceGroup]:
    """Greedy groups covering every image exactly once, for inference (see the module notes).

    Args:
        labels: Multi-hot image-level labels of the split (non-zero = present).
        group_size: ``K``.
        seed: Seed of the permutation, as :func:`greedy_groups`.

    Returns:
        The groups of ``greedy_groups(labels, K, seed=seed, drop_last=False)``, the last one
        padded to ``K`` members when the split has at least ``K`` images. The owned members of
        all groups are ``0..N-1``, each once.

    Shapes:
        labels: ``(N, L)``.

    Example:
        >>> groups = inference_groups(np.array([[1, 0], [1, 0], [0, 1]]), 2, seed=0)
        >>> sorted(i for g in groups for i in g.members[: g.owned])
        [0, 1, 2]
        >>> [len(g.members) for g in groups]
        [2, 2]
    """
    present = _present(labels, group_size)
    groups = greedy_groups(present, group_size, seed=seed, drop_last=False)
    out = [InferenceGroup(g, len(g)) for g in groups]
    n = present.shape[0]
    if out and len(out[-1].members) < group_size <= n:
        last = out[-1].members
        available = np.ones(n, dtype=bool)
        available[last] = False
        _, rank = _permutation(n, seed)
        pad = _best_partners(present, last[0], available, rank, group_size - len(last))
        out[-1] = InferenceGroup([*last, *pad], len(last))
    return out


def _best_partners(
    present: np.ndarray, anchor: int, available: np.ndarray, rank: np.ndarray, count: int
) -> list[int]:
    """The ``count`` available images sharing the most classes with ``anchor`` (ties: lower
    rank first), best first."""
    if count <= 0:
        return []
    n = len(rank)
    shared = present[:, present[anchor]].sum(axis=1).astype(np.int64)
    score = np.where(available, shared * (n + 1) + (n - rank), -1)
    top = np.argpartition(-score, count - 1)[:count]
    return [int(i) for i in top[np.argsort(-score[top], kind="stable")]]


class GreedyGroupSampler(Sampler[list[int]]):
    """Yields the greedy groups of one epoch; use it as a ``DataLoader``'s ``batch_sampler``.

    Each epoch's groups come from :func:`greedy_groups` with the seed derived from
    ``(seed, epoch)``; call :meth:`set_epoch` before each epoch for a new grouping.

    Args:
        labels: Multi-hot labels of the dataset, ``(N, L)``.
        group_size: ``K`` (4).
        seed: Run seed.
        drop_last: Drop the short final group.

    Example:
        >>> sampler = GreedyGroupSampler(np.eye(3, dtype=int).repeat(2, axis=0), group_size=2)
        >>> len(sampler), all(len(g) == 2 for g in sampler)
        (3, True)
    """

    def __init__(
        self, labels: np.ndarray | torch.Tensor, *, group_size: int = 4, seed: int = 0,
        drop_last: bool = True,
    ) -> None:  # fmt: skip
        self.labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if self.labels.ndim != 2:
            raise ValueError(f"labels: expected a (N, L) matrix, got shape {self.labels.shape}")
        if group_size < 1:
            raise ValueError(f"group_size must be positive, got {group_size}")
        self.group_size, self.seed, self.drop_last = group_size, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose grouping :meth:`__iter__` yields."""
        self.epoch = epoch

    def groups(self) -> list[list[int]]:
        """The groups of the current epoch."""
        return greedy_groups(self.labels, self.group_size, seed=derived_seed(self.seed, self.epoch, 2),
                             drop_last=self.drop_last)  # fmt: skip

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.groups())

    def __len__(self) -> int:
        n, k = len(self.labels), self.group_size
        return n // k if self.drop_last else -(-n // k)


def dataset_labels(dataset: SegmentationDataset) -> np.ndarray:
    """The ``(N, L)`` multi-hot label matrix of ``dataset`` in ``dataset.ids`` order (reads the
    masks or the label file, not the images)."""
    rows = [dataset.image_labels(i, dataset.load_mask(i)) for i in dataset.ids]
    return np.stack(rows) if rows else np.zeros((0, dataset.classes.num_labels), np.float32)


def epoch_batches(
    sampler: GreedyGroupSampler, epoch: int, groups_per_batch: int
) -> list[list[list[int]]]:
    """The global batches of one epoch: that epoch's greedy groups, ``groups_per_batch`` at a
    time (an incomplete last batch dropped)."""
    sampler.set_epoch(epoch)
    groups = sampler.groups()
    count = len(groups) // groups_per_batch
    return [groups[i * groups_per_batch : (i + 1) * groups_per_batch] for i in range(count)]
