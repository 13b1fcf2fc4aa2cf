"""Resumable, DDP-sharded sample order with per-sample augmentation seeds.

Exact resume needs the data stream after iteration N to be a pure function of (seed, N), whatever
the number of DataLoader workers. So the sampler derives each epoch's permutation from
(seed, epoch), yields ``(index, sample_seed, focus_class)``, and the dataset seeds the sample's
augmentation from ``sample_seed``: no RNG state lives in workers, and resuming is "start at
epoch e, batch b".

Rare-class sampling (DAFormer, Hoyer et al. CVPR 2022, Sec. 3.3): a ``fraction`` of the slots of
each epoch is refilled by drawing a class c with P(c) ∝ exp((1 - f_c) / T) (f_c the class's share of
the labelled pixels), then an image holding at least ``min_pixels`` of c; the sample's crop is then
placed on a pixel of c (``focus_class``; DAFormer instead re-crops until c shows). At 1024×2048 a
motorcycle covers ≈ 0.02 % of the pixels, so uniform crops almost never show one; the classes the
network never sees stay at 0 % IoU.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

# leads the seeds of the rare-class slot draws, apart from every (seed, epoch, ...) sample seed
_RARE_SLOTS = 0x52435300


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (SeedSequence's hashing: well spread, deterministic)."""
    return int(np.random.SeedSequence(list(values)).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


NO_FOCUS = -1  # focus_class of a sample drawn uniformly


def rare_class_probabilities(class_pixels: np.ndarray, temperature: float, min_pixels: int = 1) -> np.ndarray:
    """DAFormer's class distribution P(c) ∝ exp((1 - f_c) / T) from (images, classes) pixel counts.

    Classes that no image holds with at least ``min_pixels`` pixels get probability 0 (they cannot be
    sampled). Smaller T samples the rarest classes more; T → ∞ is uniform over classes.
    """
    if temperature <= 0:
        raise ValueError(f"rare-class temperature must be > 0, got {temperature}")
    totals = class_pixels.sum(axis=0).astype(np.float64)
    frequency = totals / max(totals.sum(), 1.0)
    logits = (1.0 - frequency) / temperature
    available = (class_pixels >= min_pixels).any(axis=0)
    if not available.any():
        raise ValueError(f"rare-class sampling: no image holds any class with >= {min_pixels} pixels")
    weights = np.where(available, np.exp(logits - logits[available].max()), 0.0)
    return weights / weights.sum()


class RareClassFocus:
    """Which images hold each class, and how often each class is drawn (see the module docstring)."""

    def __init__(self, class_pixels: np.ndarray, fraction: float, temperature: float = 0.01, min_pixels: int = 64):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"rare-class fraction must be in [0, 1], got {fraction}")
        if min_pixels < 1:
            raise ValueError(f"rare-class min_pixels must be >= 1, got {min_pixels}")
        self.fraction = float(fraction)
        self.probabilities = rare_class_probabilities(class_pixels, temperature, min_pixels)
        self.images = [np.flatnonzero(class_pixels[:, c] >= min_pixels) for c in range(class_pixels.shape[1])]

    def draw(self, rng: np.random.Generator) -> tuple[int, int]:
        """``(image index, class)`` for one rare-class slot."""
        c = int(rng.choice(len(self.probabilities), p=self.probabilities))
        return int(rng.choice(self.images[c])), c


class ResumableSampler(Sampler):
    """Infinite stream of ``(index, sample_seed, focus_class)``; each rank takes every world_size-th
    sample of the epoch's permutation, and ``focus`` (rare-class sampling) refills some slots."""

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        start_iteration: int = 0,
        focus: RareClassFocus | None = None,
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
        self.focus = focus

    def epoch_order(self, epoch: int) -> list[tuple[int, int]]:
        """This rank's ``(index, focus_class)`` slots of ``epoch``."""
        generator = torch.Generator().manual_seed(_mix(self.seed, epoch))
        order = torch.randperm(self.num_samples, generator=generator)[self.rank :: self.world_size]
        slots = [(index, NO_FOCUS) for index in order[: self.batches_per_epoch * self.batch_size].tolist()]
        if self.focus is not None and self.focus.fraction > 0:
            rng = np.random.default_rng(_mix(_RARE_SLOTS, self.seed, epoch, self.rank))
            for slot in np.flatnonzero(rng.random(len(slots)) < self.focus.fraction):
                slots[slot] = self.focus.draw(rng)
        return slots

    def __iter__(self):
        epoch, batch = divmod(self.start_iteration, self.batches_per_epoch)
        for e in itertools.count(epoch):
            slots = self.epoch_order(e)
            start = batch * self.batch_size if e == epoch else 0
            for position, (index, focus_class) in enumerate(slots[start:], start):
                # a rare-class slot may repeat an image within the epoch or on another rank: its global
                # slot number tells them apart (+ 1: SeedSequence ignores trailing zeros)
                salt = () if focus_class == NO_FOCUS else (position * self.world_size + self.rank + 1,)
                yield index, _mix(self.seed, e, index, *salt), focus_class


class SeededSamples(Dataset):
    """Applies ``transform(image, target, rng, focus_class)`` with an RNG seeded per sample by the sampler."""

    def __init__(self, dataset, transform):
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed, focus_class = key
        image, target = self.dataset[index]
        return self.transform(image, target, np.random.default_rng(seed), focus_class=focus_class)
