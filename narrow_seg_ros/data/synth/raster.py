"""Rasterising shapes into image, label map and depth alike, so labels stay exact."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..labels import NAME_TO_ID as ID


class Canvas:
    """The frame being drawn: uint8 RGB (cv2 draws and copies those fastest), label ids, z-buffer."""

    def __init__(self, size: tuple[int, int]):
        self.rgb = np.zeros((*size, 3), np.uint8)
        self.lab = np.full(size, ID["sky"], np.uint8)
        self.zbuf = np.full(size, np.inf, np.float32)  # depth of drawn objects; ground and sky stay at inf
        self.ground_depth = np.zeros(size, np.float32)  # for haze: depth of ground pixels, 0 for sky

    def stamp(self, extent, depth: float) -> Stamp:
        return Stamp(self, extent, depth)


class Stamp:
    """One object drawn off-canvas; ``commit`` copies back only the pixels its labelled shapes cover
    and that are nearer than what the canvas already shows. Details can only recolour those pixels.

    Most objects lie at one depth (``base_depth``); a per-pixel depth map is made only once a part
    is drawn at another depth (``depth`` may be changed between calls, or passed to ``fill``).
    """

    SHIFT = 2  # fixed-point bits: vertices keep quarter-pixel precision, so motion in sequences is smooth
    SCALE = 1 << SHIFT

    def __init__(self, canvas: Canvas, extent, depth: float):
        points = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in extent])
        height, width = canvas.lab.shape
        lo, hi = points.min(0), points.max(0)
        x0, y0 = max(math.floor(lo[0]) - 2, 0), max(math.floor(lo[1]) - 2, 0)
        x1, y1 = min(math.ceil(hi[0]) + 3, width), min(math.ceil(hi[1]) + 3, height)
        self.canvas, self.depth, self.base_depth = canvas, depth, depth
        self.visible = x0 < x1 and y0 < y1
        if not self.visible:
            return
        self.x0, self.x1 = x0, x1
        self.window = (slice(y0, y1), slice(x0, x1))
        self.origin = np.array([x0 + 0.5, y0 + 0.5])  # projections put pixel centres at +0.5, cv2 at 0
        self.rgb = np.empty((y1 - y0, x1 - x0, 3), np.uint8)  # only pixels drawn into are copied back
        self.lab = np.zeros((y1 - y0, x1 - x0), np.uint8)  # 0 ('unlabeled') = not drawn
        self.depth_map: np.ndarray | None = None

    def _fixed(self, points) -> np.ndarray:
        # Truncation is a quarter-pixel rounding that image, label and depth share. Coordinates stay
        # far inside int32: depth >= NEAR_CLIP bounds them by about focal length × 1000.
        return ((np.asarray(points, np.float64) - self.origin) * self.SCALE).astype(np.int32)

    def _polys(self, polygons) -> list[np.ndarray]:
        """One (n, 2) array, an (N, n, 2) array of polygons, or a list of (n, 2) arrays."""
        if isinstance(polygons, list):
            return [self._fixed(p).reshape(-1, 2) for p in polygons]
        fixed = self._fixed(polygons)
        return [fixed] if fixed.ndim == 2 else list(fixed)

    def _depth_target(self, depth: float) -> np.ndarray | None:
        if self.depth_map is None:
            if depth == self.base_depth:
                return None
            self.depth_map = np.where(self.lab != 0, np.float32(self.base_depth), np.float32(np.inf))
        return self.depth_map

    def fill(self, polygons, color, label: int, depth: float | None = None) -> None:
        """Fill polygons (one (n, 2) array or a list of non-overlapping ones) in image and label map."""
        if not self.visible:
            return
        polys, depth = self._polys(polygons), self.depth if depth is None else depth
        depth_map = self._depth_target(depth)
        cv2.fillPoly(self.rgb, polys, color, cv2.LINE_8, self.SHIFT)
        cv2.fillPoly(self.lab, polys, int(label), cv2.LINE_8, self.SHIFT)
        if depth_map is not None:
            cv2.fillPoly(depth_map, polys, float(depth), cv2.LINE_8, self.SHIFT)

    def fill_plane(self, polygons, color, label: int, column_depth: np.ndarray) -> None:
        """Like ``fill``, for shapes on a vertical plane whose depth varies by column (x0..x1-1)."""
        if not self.visible:
            return
        polys = self._polys(polygons)
        first = self.depth_map is None and not self.lab.any()
        cv2.fillPoly(self.rgb, polys, color, cv2.LINE_8, self.SHIFT)
        cv2.fillPoly(self.lab, polys, int(label), cv2.LINE_8, self.SHIFT)
        if first:  # the usual case (a facade is drawn first): every labelled pixel is on the plane
            self.depth_map = np.where(self.lab != 0, column_depth, np.float32(np.inf))
            return
        depth_map = self._depth_target(np.nan)  # nan never equals base_depth: always a map
        covered = np.zeros(self.lab.shape, np.uint8)
        cv2.fillPoly(covered, polys, 1, cv2.LINE_8, self.SHIFT)
        np.copyto(depth_map, np.broadcast_to(column_depth, self.lab.shape), where=covered.view(bool))

    def line(self, points, thickness: float, color, label: int, closed: bool = False) -> None:
        if not self.visible:
            return
        pts, width = self._polys(points), max(1, round(thickness))
        depth_map = self._depth_target(self.depth)
        cv2.polylines(self.rgb, pts, closed, color, width, cv2.LINE_8, self.SHIFT)
        cv2.polylines(self.lab, pts, closed, int(label), width, cv2.LINE_8, self.SHIFT)
        if depth_map is not None:
            cv2.polylines(depth_map, pts, closed, float(self.depth), width, cv2.LINE_8, self.SHIFT)

    def disc(self, centre, radius: float, color, label: int) -> None:
        if not self.visible:
            return
        c = tuple(int(v) for v in self._fixed(centre).ravel()[:2])
        r = max(1, round(radius * self.SCALE))
        depth_map = self._depth_target(self.depth)
        cv2.circle(self.rgb, c, r, color, -1, cv2.LINE_8, self.SHIFT)
        cv2.circle(self.lab, c, r, int(label), -1, cv2.LINE_8, self.SHIFT)
        if depth_map is not None:
            cv2.circle(depth_map, c, r, float(self.depth), -1, cv2.LINE_8, self.SHIFT)

    def highlight(self, centre, radius: float, color) -> None:
        """Image-only disc (sunlit side of a crown), clipped like ``detail``."""
        if self.visible:
            c = tuple(int(v) for v in self._fixed(centre).ravel()[:2])
            cv2.circle(self.rgb, c, max(1, round(radius * self.SCALE)), color, -1, cv2.LINE_8, self.SHIFT)

    def detail(self, polygons, color) -> None:
        """Image-only paint (windows, lights); it survives only on pixels this object labels."""
        if not self.visible:
            return
        cv2.fillPoly(self.rgb, self._polys(polygons), color, cv2.LINE_8, self.SHIFT)

    def commit(self) -> None:
        if not self.visible:
            return
        zbuf = self.canvas.zbuf[self.window]
        if self.depth_map is None:
            nearer = zbuf >= np.float32(self.base_depth)
        else:
            nearer = self.depth_map <= zbuf
        nearer &= self.lab != 0
        mask = nearer.view(np.uint8)
        cv2.copyTo(self.rgb, mask, self.canvas.rgb[self.window])  # writes into the canvas views
        cv2.copyTo(self.lab, mask, self.canvas.lab[self.window])
        if self.depth_map is None:
            zbuf[nearer] = self.base_depth
        else:
            cv2.copyTo(self.depth_map, mask, zbuf)


def fill_image(image: np.ndarray, polygons, value) -> None:
    """fillPoly in pixel-index coordinates (pixel centres at integers), quarter-pixel precision."""
    polygons = polygons if isinstance(polygons, list) else [polygons]
    fixed = [np.rint(np.clip(p, -(2**20), 2**20) * 4).astype(np.int32) for p in polygons]
    cv2.fillPoly(image, fixed, value, cv2.LINE_8, 2)
