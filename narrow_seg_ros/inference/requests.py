"""What a caller asks of the engine for one frame: light enough for the node to import before the
engine (and torch) are loaded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Request:
    """One frame to segment and the outputs wanted for it."""

    image: np.ndarray  # uint8 (H, W, 3)
    encoding: str = "rgb8"  # rgb8 or bgr8
    output_size: tuple[int, int] | None = None  # (H, W); None = the frame's own size
    confidence: bool = False
    color: bool = False
    overlay: bool = False
    overlay_alpha: float = 0.5
    confidence_rule: str = "max"  # max softmax probability, or margin (top-1 minus top-2)
