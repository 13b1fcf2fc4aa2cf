"""How a network's logits become the published mask, beyond what a frame asks for: the output
size, the confidence threshold (with the rule that scores confidence) and the label groups.

seg_node, ``narrow-seg infer`` and Python users of :class:`~.engine.Segmenter` all pass these in the
engine's :class:`~.requests.Request` and the engine applies them in one place (``Segmenter._finish``
calls :func:`published_mask`), so the same configuration gives the same bytes everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..sizes import parse_wh
from .requests import Request

if TYPE_CHECKING:
    from .groups import LabelGroups

# The mask value of a pixel that carries no class: below the confidence threshold, in no label
# group; also the training targets' ignore index (data.labels), so masks and datasets agree.
UNLABELED = 255
# output_size values other than a fixed WxH; "reference" follows a topic and is seg_node's alone
OUTPUT_SIZES = ("camera", "network", "reference")


def parse_output_size(value: str) -> str | tuple[int, int]:
    """The ``output_size`` parameter: camera, network, reference, or WxH (width x height) → (H, W)."""
    if value in OUTPUT_SIZES:
        return value
    try:
        return parse_wh(value)
    except ValueError:
        raise ValueError(
            f"output_size={value!r}: use camera, network, reference or WxH (width x height, positive, e.g. 640x480)"
        ) from None


def output_shape(output_size, frame_shape, network_size) -> tuple[int, int]:
    """(H, W) of a frame's outputs: ``None`` or ``camera`` = the frame's, ``network`` = the input
    size, else an (H, W) pair."""
    if output_size is None or output_size == "camera":
        return tuple(frame_shape[:2])
    if output_size == "network":
        return tuple(network_size)
    if isinstance(output_size, str):
        raise ValueError(f"output_size {output_size!r}: the engine takes camera, network or (H, W)"
                         " (seg_node resolves reference to its topic's size)")  # fmt: skip
    h, w = (int(v) for v in output_size)
    if h <= 0 or w <= 0:
        raise ValueError(f"output_size {h}x{w} (HxW) must be positive")
    return h, w


def published_mask(mask: np.ndarray, confidence, threshold: float, groups: LabelGroups | None) -> np.ndarray:
    """The class mask as published: pixels whose confidence is below ``threshold`` unlabeled, then
    classes mapped to their groups (an unlabeled pixel stays unlabeled)."""
    if threshold > 0:
        mask = mask.copy()
        mask[confidence < round(threshold * 255)] = UNLABELED  # confidence is uint8: probability x 255
    return mask if groups is None else groups.apply(mask)


@dataclass(frozen=True)
class OutputRules:
    """One configuration's rules, turned into each frame's request. ``output_size``: camera,
    network or (H, W)."""

    output_size: str | tuple[int, int] = "camera"
    confidence_rule: str = "max"
    confidence_threshold: float = 0.0
    groups: LabelGroups | None = None

    def request(self, image: np.ndarray, encoding: str = "rgb8", output_size=None, **outputs) -> Request:
        """The request for one frame; ``output_size`` (H, W) replaces the rule's (seg_node's
        reference size); ``outputs``: confidence, color, overlay, overlay_alpha."""
        return Request(image, encoding, output_size or self.output_size, **self.options(), **outputs)

    def options(self) -> dict:
        """The request fields these rules set, other than the output size."""
        return {
            "confidence_rule": self.confidence_rule,
            "confidence_threshold": self.confidence_threshold,
            "groups": self.groups,
        }

    def labels(self, class_names, palette) -> tuple[list[str], np.ndarray]:
        """Names and RGB colors of the published mask's ids: the groups', else the classes'."""
        if self.groups is not None:
            return list(self.groups.names), self.groups.palette
        return list(class_names), np.asarray(palette, np.uint8).reshape(-1, 3)
