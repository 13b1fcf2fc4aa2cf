"""Cityscapes-layout dataset: ``leftImg8bit/{split}/{city}/*_leftImg8bit.png`` images with
``gtFine/{split}/{city}/*_gtFine_labelIds.png`` labels (real Cityscapes, or ``narrow-seg synth``).

Label ids are mapped to the 19 train ids (others → 255) here, so both sources take the same path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from .labels import CLASS_NAMES, PALETTE, label_ids_to_train_ids
from .pairs import PairDataset

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def find_pairs(root: str | Path, split: str) -> list[tuple[Path, Path]]:
    """Sorted (image, label) paths of ``split``; ValueError if there are no images or a label is missing."""
    root = Path(root)
    image_dir = root / "leftImg8bit" / split
    images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
    if not images:
        raise ValueError(f"no images matching {image_dir}/*/*{IMAGE_SUFFIX} (is {root} a Cityscapes-layout folder?)")
    pairs = []
    for image in images:
        name = image.name[: -len(IMAGE_SUFFIX)]
        label = root / "gtFine" / split / image.parent.name / f"{name}{LABEL_SUFFIX}"
        if not label.is_file():
            raise ValueError(f"label missing for {image}: expected {label}")
        pairs.append((image, label))
    return pairs


def read_train_ids(path: str | Path) -> np.ndarray:
    """Train ids uint8 (H, W) from a ``*_gtFine_labelIds.png``."""
    label_ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label_ids is None:
        raise ValueError(f"cannot read label {path}")
    if label_ids.ndim != 2:
        raise ValueError(f"{path}: a labelIds PNG has one channel, got shape {label_ids.shape}")
    return label_ids_to_train_ids(label_ids)


class CityscapesDataset(PairDataset):
    """``(image, target)`` pairs; without a transform, RGB uint8 (H, W, 3) and train ids uint8 (H, W)."""

    def __init__(self, root: str | Path, split: str = "train", transform: Callable | None = None):
        self.root = Path(root)
        self.split = split
        self.transform = transform
        self.files = find_pairs(self.root, split)
        self.class_names = list(CLASS_NAMES)
        self.palette = PALETTE

    def read_target(self, path: str | Path) -> np.ndarray:
        return read_train_ids(path)

    def name(self, index: int) -> str:
        """Frame name without suffix, e.g. ``aachen_000000_000019``."""
        return self.files[index][0].name[: -len(IMAGE_SUFFIX)]
