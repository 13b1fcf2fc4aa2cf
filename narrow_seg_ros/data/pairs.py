"""The part every labelled dataset shares: ``files`` of (image, label) paths read as a pair."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch.utils.data


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class PairDataset(torch.utils.data.Dataset):
    """``(image, target)`` from ``self.files[index]``: RGB uint8 (H, W, 3) and the subclass's
    ``read_target`` (uint8 (H, W)), or what ``self.transform`` makes of them. A size mismatch is an
    error naming the image (``label_kind``: what the subclass calls its label files)."""

    files: list[tuple[Path, Path]]
    transform = None
    label_kind = "label"

    def read_target(self, path: str | Path) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        image_path, label_path = self.files[index]
        image, target = read_image(image_path), self.read_target(label_path)
        if image.shape[:2] != target.shape:
            raise ValueError(f"{image_path}: image {image.shape[:2]} and {self.label_kind} {target.shape} sizes differ")
        if self.transform is not None:
            return self.transform(image, target)
        return image, target
