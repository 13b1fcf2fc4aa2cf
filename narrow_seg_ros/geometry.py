"""Image-size and interpolation arithmetic shared by training, export and the engine (no torch:
the engine's onnxruntime path runs without it)."""

from __future__ import annotations

import numpy as np


def padded_size(size, multiple: int) -> tuple[int, int]:
    """``size`` (H, W) rounded up to multiples of ``multiple``: the canvas a network input of any
    size is padded to (bottom and right, with the mean color) so every downsampling is exact."""
    return tuple(-(-int(v) // multiple) * multiple for v in size)


def bilinear_taps(dst, out_len: int, in_len: int, align_corners: bool):
    """Where torch's bilinear interpolation reads, along one axis, for output positions ``dst``
    (a float64 numpy array; integers for the output pixels): the source indices ``lo`` and
    ``hi = min(lo + 1, in_len - 1)`` and the weight ``frac`` of ``hi`` (``1 - frac`` that of ``lo``).

    Computed in float64, one rounding per operation in PyTorch's order, so the taps are the ones
    ``F.interpolate(mode="bilinear")`` uses up to its own float32 rounding.
    """
    dst = np.asarray(dst, dtype=np.float64)
    if align_corners:
        src = dst * ((in_len - 1) / (out_len - 1)) if out_len > 1 else np.zeros_like(dst)
    else:
        src = np.maximum((dst + 0.5) * (in_len / out_len) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), in_len - 1)
    hi = np.minimum(lo + 1, in_len - 1)
    return lo, hi, np.clip(src - lo, 0.0, 1.0)
