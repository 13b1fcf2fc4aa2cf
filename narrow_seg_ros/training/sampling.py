"""Resumable, DDP-sharded sample order with per-sample augmentation seeds.

Exact resume needs the data stream after iteration N to be a pure function of (seed, N), whatever
the number of DataLoader workers. So the sampler derives each epoch's permutation from
(seed, epoch), yields ``(index, sample_seed)`` pairs, and the dataset seeds the sample's
augmentation from ``sample_seed``: no RNG state lives in workers, and resuming is "start at
epoch e, batch b".
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (SeedSequence's hashing: well spread, deterministic)."""
    return int(np.random.SeedSequence(list(values)).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


class ResumableSampler(Sampler):
    """Infinite stream of ``(index, sample_seed)``; each rank takes every world_size-th sample."""

    def __init__(
        self, num_samples: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1, start_iteration: int = 0
    ):
        per_rank = num_samples // world_size
        if per_rank < batch_size:
            raise ValueError(
                f"{num_samples} training samples cannot fill a batch of {batch_size} on each of {world_size} rank(s)"
            )
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = per_rank // batch_size
        self.start_iteration = start_iteration

    def epoch_order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(_mix(self.seed, epoch))
        order = torch.randperm(self.num_samples, generator=generator)[self.rank :: self.world_size]
        return order[: self.batches_per_epoch * self.batch_size].tolist()

    def __iter__(self):
        epoch, batch = divmod(self.start_iteration, self.batches_per_epoch)
        for e in itertools.count(epoch):
            order = self.epoch_order(e)
            start = batch * self.batch_size if e == epoch else 0
            for index in order[start:]:
                yield index, _mix(self.seed, e, index)


class SeededSamples(Dataset):
    """Applies ``transform(image, target, rng)`` with an RNG seeded per sample by the sampler."""

    def __init__(self, dataset, transform):
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        image, target = self.dataset[index]
        return self.transform(image, target, np.random.default_rng(seed))
