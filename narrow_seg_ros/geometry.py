"""Image-size arithmetic shared by training, export and the engine (no torch: the engine's
onnxruntime path runs without it)."""

from __future__ import annotations


def padded_size(size, multiple: int) -> tuple[int, int]:
    """``size`` (H, W) rounded up to multiples of ``multiple``: the canvas a network input of any
    size is padded to (bottom and right, with the mean color) so every downsampling is exact."""
    return tuple(-(-int(v) // multiple) * multiple for v in size)
