"""The pinhole camera that follows the road, and which street objects it can see."""

from __future__ import annotations

import numpy as np

from .layout import Street, Thing

NEAR_CLIP = 1.0  # m; geometry nearer than this to the camera plane would project to infinity
OBJECT_RANGE = 170.0  # m; smaller things further away than this are a pixel or two and are skipped


class View:
    """Pinhole camera at road position ``s_cam``: projects world points (u, s, z) to pixels."""

    def __init__(self, street: Street, size: tuple[int, int], s_cam: float):
        height, width = size
        self.size = size
        self.f = street.focal_ratio * width
        self.cx = width / 2.0
        self.horizon = street.horizon_ratio * height
        self.cam_height = street.cam_height
        self.cam_u = street.cam_u
        self.k = street.curvature
        self.s_cam = s_cam

    def project(self, u, s, z) -> np.ndarray:
        """Broadcast arrays of u, s, z → (..., 2) pixel coordinates; depth is clamped to NEAR_CLIP."""
        if isinstance(s, float):  # common case, e.g. one face of a box: scalar depth, fewer array ops
            depth = max(s - self.s_cam, NEAR_CLIP)
            scale = self.f / depth
            x = np.multiply(u, scale) + (self.cx + scale * (0.5 * self.k * depth * depth - self.cam_u))
            y = np.multiply(z, -scale) + (self.horizon + scale * self.cam_height)
        else:
            depth = np.maximum(np.subtract(s, self.s_cam), NEAR_CLIP)
            x = self.cx + self.f * (np.subtract(u, self.cam_u) + 0.5 * self.k * depth * depth) / depth
            y = self.horizon + self.f * np.subtract(self.cam_height, z) / depth
        out = np.empty(np.broadcast(x, y).shape + (2,))
        out[..., 0] = x
        out[..., 1] = y
        return out

    def billboard(self, u, s, local: np.ndarray) -> np.ndarray:
        """Points given in metres (right, up) on the upright plane facing the camera at ground point (u, s)."""
        depth = max(s - self.s_cam, NEAR_CLIP)
        scale = self.f / depth
        anchor = (
            self.cx + scale * (u - self.cam_u + 0.5 * self.k * depth * depth),
            self.horizon + scale * self.cam_height,
        )
        return np.multiply(local, (scale, -scale)) + anchor

    def pixels(self, metres: float, s: float) -> float:
        return metres * self.f / max(s - self.s_cam, NEAR_CLIP)


def visible_things(view: View, street: Street, t: float) -> list[tuple[Thing, float, float]]:
    """Things in depth range whose conservative footprint (±4 m across, 13 m deep) can reach the image."""
    placed = []
    half_width = view.size[1] / 2 / view.f  # tan of half the horizontal field of view
    for thing in street.things:
        u, s = thing.at(t)
        depth = s - view.s_cam
        if not NEAR_CLIP + 1.0 < depth < OBJECT_RANGE:
            continue
        lateral = abs(u - view.cam_u + 0.5 * view.k * depth * depth)
        if (lateral - 4.0) / (depth + 13.0) < half_width:
            placed.append((thing, u, s))
    return placed
