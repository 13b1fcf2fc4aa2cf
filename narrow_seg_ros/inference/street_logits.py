"""Street-scene logits as a network might give them, to test and time the post-processing on.

"Real-ish" input for :mod:`~narrow_seg_ros.inference.postprocess` (``narrow-seg bench-postprocess``
and the tests): 1/32 logits of a random street label map (road, sidewalks, buildings, sky, trees,
cars, poles with signs, people), made like a network's output: area fractions of each class at
the logit resolution, scaled, plus smooth and per-pixel noise. Its boundary cells (low-resolution
cells whose four corners disagree) make up about a quarter of the image, as in an FCN-32 output;
the post-processing's cost grows with that fraction, so :func:`boundary_cell_fraction` reports it.
"""

from __future__ import annotations

import cv2
import numpy as np

NUM_CLASSES = 19
# Cityscapes train ids of the classes the scene draws.
ROAD, SIDEWALK, BUILDING, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY = 0, 1, 2, 4, 5, 6, 7, 8, 9, 10
PERSON, RIDER, CAR, TRUCK, BUS, MOTORCYCLE, BICYCLE = 11, 12, 13, 14, 15, 17, 18


def street_scene_labels(height: int = 256, width: int = 512, seed: int = 0) -> np.ndarray:
    """A random street-like label map (uint8 train ids)."""
    rng = np.random.default_rng(seed)
    labels = np.full((height, width), BUILDING, np.uint8)
    horizon = int(height * rng.uniform(0.42, 0.5))
    x = 0
    while x < width:  # skyline: buildings of random widths and heights
        block = int(rng.integers(width // 16, width // 5))
        labels[: int(rng.uniform(0.05, 0.35) * height), x : x + block] = SKY
        x += block
    for _ in range(rng.integers(2, 5)):  # tree crowns
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0.15, 0.4) * height))
        axes = (int(rng.uniform(0.04, 0.12) * width), int(rng.uniform(0.08, 0.18) * height))
        cv2.ellipse(labels, centre, axes, 0, 0, 360, VEGETATION, -1)
    # Ground: a road widening towards the camera, sidewalks, terrain beyond, a fence.
    yy, xx = np.mgrid[0:height, 0:width]
    below = yy >= horizon
    depth = (yy - horizon) / max(1, height - horizon)
    road_half = width * (0.08 + 0.55 * depth)
    road_centre = width * rng.uniform(0.4, 0.6)
    labels[below] = SIDEWALK
    labels[below & (np.abs(xx - road_centre) < road_half)] = ROAD
    labels[below & (np.abs(xx - road_centre) > road_half + width * (0.05 + 0.3 * depth))] = TERRAIN
    labels[horizon - int(0.04 * height) : horizon, : int(width * rng.uniform(0.1, 0.3))] = FENCE
    for _ in range(rng.integers(3, 7)):  # vehicles, larger when nearer
        near = rng.uniform(0.05, 0.8)
        bottom = int(horizon + near * (height - horizon))
        half_w, tall = int(width * (0.02 + 0.125 * near)), int(height * (0.03 + 0.18 * near))
        cx = int(road_centre + rng.uniform(-1, 1) * width * (0.08 + 0.55 * near))
        vehicle = CAR if rng.random() < 0.8 else rng.choice([TRUCK, BUS])
        labels[max(0, bottom - tall) : bottom, max(0, cx - half_w) : cx + half_w] = vehicle
    for _ in range(rng.integers(4, 9)):  # poles, some with a sign or a traffic light
        px, pw = int(rng.uniform(0, width)), max(1, int(width * rng.uniform(0.004, 0.01)))
        top, bottom = int(rng.uniform(0.1, 0.3) * height), int(horizon + rng.uniform(0, 0.5) * (height - horizon))
        labels[top:bottom, px : px + pw] = POLE
        if rng.random() < 0.6:
            size = int(width * rng.uniform(0.01, 0.025))
            labels[top : top + size, max(0, px - size // 2) : px + size // 2 + pw] = (
                SIGN if rng.random() < 0.6 else LIGHT
            )
    for _ in range(rng.integers(2, 8)):  # people and two-wheelers
        near = rng.uniform(0.05, 0.7)
        bottom = int(horizon + near * (height - horizon))
        tall = int(height * (0.05 + 0.2 * near))
        px = int(rng.uniform(0, width))
        who = PERSON if rng.random() < 0.7 else rng.choice([RIDER, BICYCLE, MOTORCYCLE])
        labels[max(0, bottom - tall) : bottom, px : px + max(2, tall // 3)] = who
    return labels


def street_scene_logits(low_size=(32, 64), num_classes: int = NUM_CLASSES, seed: int = 0) -> np.ndarray:
    """(C, h, w) float32 logits of :func:`street_scene_labels` as a network might give them."""
    rng = np.random.default_rng(seed)
    labels = street_scene_labels(seed=seed)
    h, w = low_size
    one_hot = (labels[None] == np.arange(num_classes)[:, None, None]).astype(np.float32)
    fraction = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA) for c in one_hot])
    coarse = rng.standard_normal((num_classes, max(2, h // 4), max(2, w // 4))).astype(np.float32)
    smooth = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in coarse])
    return (12.0 * fraction - 3.0 + smooth + 0.3 * rng.standard_normal((num_classes, h, w))).astype(np.float32)


def boundary_cell_fraction(logits: np.ndarray) -> float:
    """Share of low-resolution cells whose four corners have different argmaxes."""
    label = logits.argmax(0)
    corners = (label[:-1, :-1], label[:-1, 1:], label[1:, :-1], label[1:, 1:])
    uniform = (corners[0] == corners[1]) & (corners[0] == corners[2]) & (corners[0] == corners[3])
    return float(1 - uniform.mean())
