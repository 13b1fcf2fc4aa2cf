"""What a caller asks of the engine for one frame: light enough for the node to import before the
engine (and torch) are loaded. The rules that shape the published mask (output size, confidence
threshold, label groups) are fields here, so every caller hands them to the one place that applies
them; ``rules.OutputRules`` fills them from a configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .groups import LabelGroups


@dataclass
class Request:
    """One frame to segment and the outputs wanted for it."""

    image: np.ndarray  # uint8 (H, W, 3)
    encoding: str = "rgb8"  # rgb8 or bgr8
    # None or "camera" = the frame's own size, "network" = the network's input size, or (H, W)
    output_size: tuple[int, int] | str | None = None
    confidence: bool = False
    color: bool = False
    overlay: bool = False
    overlay_alpha: float = 0.5
    confidence_rule: str = "max"  # max softmax probability, or margin (top-1 minus top-2)
    # pixels whose confidence (by confidence_rule) is below this become unlabeled in the mask; 0 = off
    confidence_threshold: float = 0.0
    groups: LabelGroups | None = None  # the mask then carries group ids (color and overlay keep the classes')
