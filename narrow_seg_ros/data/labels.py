"""Cityscapes label table, read from ``cityscapesscripts`` so it cannot drift from the benchmark.

Cityscapes ground truth (``*_gtFine_labelIds.png``) stores *label ids* (0..33); networks train on the
19 *train ids* (0..18) and every other id becomes ``IGNORE_INDEX``. ``ID_TO_TRAINID`` is the lookup
table for that mapping; ``PALETTE`` holds the official colors of the 19 train classes. (Painting a
mask with a palette is ``narrow_seg_ros.palette.colorize``: the deployed path needs no dataset tool.)
"""

from __future__ import annotations

import numpy as np
from cityscapesscripts.helpers.labels import labels as _CITYSCAPES_LABELS

from ..inference.rules import UNLABELED as IGNORE_INDEX  # one value for unlabeled, in data and in masks

# 'license plate' has id -1 (it only exists in instance annotations); it can't appear in a uint8 map.
_VALID_LABELS = [label for label in _CITYSCAPES_LABELS if label.id >= 0]
_TRAIN_LABELS = sorted((label for label in _VALID_LABELS if 0 <= label.trainId < IGNORE_INDEX), key=lambda x: x.trainId)

CLASS_NAMES: tuple[str, ...] = tuple(label.name for label in _TRAIN_LABELS)
PALETTE = np.array([label.color for label in _TRAIN_LABELS], dtype=np.uint8)  # (19, 3) RGB
NAME_TO_ID: dict[str, int] = {label.name: label.id for label in _VALID_LABELS}

ID_TO_TRAINID = np.full(256, IGNORE_INDEX, dtype=np.uint8)
for _label in _TRAIN_LABELS:
    ID_TO_TRAINID[_label.id] = _label.trainId
ID_TO_TRAINID.flags.writeable = False  # shared module state: never modified in place
PALETTE.flags.writeable = False


def label_ids_to_train_ids(label_img: np.ndarray) -> np.ndarray:
    """Map a Cityscapes label-id image (any shape) to train ids; unknown ids become ``IGNORE_INDEX``."""
    label_img = np.asarray(label_img)
    if label_img.dtype != np.uint8:
        if not np.issubdtype(label_img.dtype, np.integer):
            raise ValueError(f"label ids must be integers, got dtype {label_img.dtype}")
        if label_img.size and (label_img.min() < 0 or label_img.max() > 255):
            raise ValueError("label ids must lie in 0..255")
    return ID_TO_TRAINID[label_img]
