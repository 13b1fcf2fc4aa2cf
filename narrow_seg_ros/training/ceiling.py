"""The best mIoU a network's output head could reach on a labelled split, whatever its backbone.

NDNet's FCN32 head predicts one logit vector per 32×32 input pixels and upsamples bilinearly, so
a pole or a traffic light narrower than a cell can only be drawn as well as a blend of the
neighbouring cells' logits allows (with head="fcn8" the cells are 8×8: its skip logits add up to
one stride-8 grid that is upsampled the same way, so the same search bounds it). For each label map this module searches those low-resolution
logits directly: it starts from the class fractions of each cell (the area average of the one-hot
labels) and then minimises the full-resolution cross-entropy with Adam, the loss the networks are
trained with. The resulting confusion matrix bounds what training can achieve at that input size
(approximately: Adam stops after ``steps``, and the lowest cross-entropy is not exactly the best
IoU), which tells how far a mIoU target is from the head's limit.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.labels import IGNORE_INDEX
from .losses import upsampled_cross_entropy
from .metrics import ConfusionMatrix


def cell_fractions(target: torch.Tensor, num_classes: int, grid: tuple[int, int]) -> torch.Tensor:
    """(1, C, h, w) share of each class in each of the ``grid`` cells of a (H, W) label map.

    Ignored pixels count for no class. Cells follow ``F.adaptive_avg_pool2d``'s partition, which
    for sizes that divide evenly is the network's stride grid.
    """
    valid = target != IGNORE_INDEX
    one_hot = F.one_hot(torch.where(valid, target, 0).long(), num_classes).permute(2, 0, 1).float()
    return F.adaptive_avg_pool2d((one_hot * valid)[None], grid)


def best_low_res_logits(
    target: torch.Tensor, num_classes: int, grid: tuple[int, int], align_corners: bool, steps: int, lr: float = 0.5
) -> torch.Tensor:
    """Low-resolution logits (1, C, h, w) whose bilinear upsample best fits ``target`` (H, W)."""
    logits = torch.log(cell_fractions(target, num_classes, grid) + 1e-3).requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    for _ in range(steps):
        loss = upsampled_cross_entropy(logits, target[None], align_corners)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return logits.detach()


def best_mask(
    target: torch.Tensor, num_classes: int, grid: tuple[int, int], align_corners: bool, steps: int
) -> torch.Tensor:
    """Class-index mask (H, W) the head draws from :func:`best_low_res_logits`."""
    logits = best_low_res_logits(target, num_classes, grid, align_corners, steps)
    return F.interpolate(logits, size=tuple(target.shape), mode="bilinear", align_corners=align_corners)[0].argmax(0)


def head_ceiling(
    dataset,
    num_classes: int,
    grid: tuple[int, int],
    align_corners: bool,
    steps: int = 60,
    max_images: int | None = None,
    progress: bool = False,
) -> ConfusionMatrix:
    """Confusion matrix of the best logits on ``dataset`` ((image, train ids) pairs).

    ``grid`` is the (h, w) of the network's low-resolution output at the input size the engine
    resizes every image to.
    """
    matrix = ConfusionMatrix(num_classes)
    count = len(dataset) if max_images is None else min(len(dataset), max_images)
    for i in tqdm(range(count), desc="ceiling", disable=not progress, leave=False):
        target = torch.as_tensor(np.asarray(dataset[i][1])).long()
        matrix.update(best_mask(target, num_classes, grid, align_corners, steps), target)
    return matrix
