"""The input normalisation of the weights contract, ``(x / 255 - mean) / std`` for uint8 pixels ``x``,
as the one multiply-add every pre-processing path runs: ``x * scale + shift``.

Each path evaluates the coefficients at the precision it computes in (``dtype``): float32 for
numpy/torch tensors and ONNX graphs, float64 for cv2, which takes its factors as doubles. mean
and std are rounded to float32 first (how weights files and engines hold them), so every path
starts from the same numbers.
"""

from __future__ import annotations

import numpy as np


def normalization_coefficients(mean, std, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift), each (3,) of ``dtype``: ``x * scale + shift == (x / 255 - mean) / std``."""
    std = np.asarray(std, np.float32).astype(dtype)
    mean = np.asarray(mean, np.float32).astype(dtype)
    scale = dtype(1.0) / (dtype(255.0) * std)
    shift = -mean / std
    return scale, shift


def uint8_normalization(mean, std) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift), float32 (1, 3, 1, 1): ``x * scale + shift == (x / 255 - mean) / std`` for
    uint8 pixels, the contract's normalisation as one multiply-add (graphs, GPU backends)."""
    scale, shift = normalization_coefficients(mean, std, np.float32)
    return scale.reshape(1, 3, 1, 1), shift.reshape(1, 3, 1, 1)
