"""Procedural street scenes written in the Cityscapes folder layout.

Real Cityscapes cannot ship with the package, so tests, demos and smoke-training runs use these
scenes instead: a pinhole camera above a (possibly curving) road with lane markings, sidewalks,
building facades with windows, hedges, walls, fences, a distant skyline, poles, street lamps,
traffic signs and lights, trees, parked and moving cars, trucks and buses, pedestrians, cyclists,
bins, an ego-vehicle hood, varied lighting, haze and sensor noise.

Labels are exact by construction: every shape is rasterised into the image and into the label map
with the same polygon and the same non-anti-aliased fill, and each object is drawn off-canvas
first and copied back only where its labelled shapes lie and where it is nearer than what is
already there (a z-buffer). Image-only details (windows, lights, markings) can only recolour
pixels of their own object, so image boundaries always coincide with label boundaries.
Label maps hold Cityscapes *label ids*, as ``*_gtFine_labelIds.png`` does.

World coordinates are metres in the frame of the road: ``u`` across the road (right positive,
0 on the centre line), ``s`` along it, ``z`` up. A constant-curvature road is approximated by
shifting points sideways by ``curvature * Z**2 / 2`` at distance ``Z`` ahead of the camera, so the
camera always looks along the road, as a car following it does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from .labels import NAME_TO_ID

ID = NAME_TO_ID  # Cityscapes label ids by name

NEAR_CLIP = 1.0  # m; geometry nearer than this to the camera plane would project to infinity
STREET_AHEAD = 220.0  # m of street generated ahead of the camera
OBJECT_RANGE = 170.0  # m; smaller things further away than this are a pixel or two and are skipped
FPS = 17.0  # Cityscapes video frame rate, used for sequences
ANNOTATED_FRAME = 19  # Cityscapes annotates the 20th frame of each snippet: city_000000_000019
SPLITS = ("train", "val", "test")

# Texture (noise) amplitude per label id, in 0..255 units: foliage and grass are busy, sky is flat.
_TEXTURE_AMPLITUDE = np.full(256, 4.0, np.float32)
for _name, _amp in {
    "road": 4.5, "sidewalk": 5.0, "parking": 6.0, "building": 4.0, "wall": 6.0, "fence": 3.0,
    "pole": 2.0, "traffic light": 2.0, "traffic sign": 2.0, "vegetation": 16.0, "terrain": 13.0,
    "sky": 1.2, "person": 3.0, "rider": 3.0, "car": 2.5, "truck": 3.0, "bus": 3.0,
    "motorcycle": 2.5, "bicycle": 2.0, "ego vehicle": 1.5, "static": 4.0,
}.items():  # fmt: skip
    _TEXTURE_AMPLITUDE[ID[_name]] = _amp

_CAR_PAINT = [(228, 228, 225), (232, 232, 232), (25, 25, 28), (30, 30, 34), (160, 163, 168), (120, 122, 126),
              (88, 92, 98), (30, 45, 92), (40, 72, 140), (150, 28, 28), (40, 72, 52), (185, 170, 135),
              (210, 180, 40)]  # fmt: skip
_FACADE = [(192, 180, 158), (205, 198, 186), (150, 82, 62), (122, 122, 126), (214, 192, 140), (172, 150, 128),
           (104, 94, 88), (182, 172, 176), (160, 170, 175), (220, 215, 205)]  # fmt: skip
_CLOTHES = [(30, 30, 35), (60, 60, 70), (25, 40, 90), (120, 30, 35), (200, 200, 200), (70, 90, 60), (150, 120, 80),
            (90, 60, 40), (40, 60, 120), (180, 150, 60), (100, 100, 105)]  # fmt: skip
_SKIN = [(235, 200, 170), (220, 180, 140), (190, 140, 100), (140, 95, 65), (95, 65, 45)]
_HAIR = [(30, 25, 20), (70, 50, 30), (150, 120, 70), (110, 110, 110), (20, 20, 20)]


def _jitter(rng: np.random.Generator, color, amount: float = 12.0) -> tuple[float, float, float]:
    c = np.clip(np.asarray(color, np.float64) + rng.normal(0.0, amount, 3), 0, 255)
    return (float(c[0]), float(c[1]), float(c[2]))


def _shade(color, factor: float) -> tuple[float, float, float]:
    return tuple(float(min(255.0, c * factor)) for c in color)  # type: ignore[return-value]


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


_GREENS = [(70, 105, 40), (55, 90, 35), (90, 120, 50), (80, 100, 45), (100, 110, 50), (60, 85, 50), (45, 75, 35)]


def _foliage(rng: np.random.Generator) -> tuple[float, float, float]:
    """A leaf green: varied in shade and a little in hue, never grey (per-channel jitter would be)."""
    return _shade(_jitter(rng, _pick(rng, _GREENS), 5), rng.uniform(0.7, 1.2))


class _Thing:
    """A street object: kind, position (u, s) at t = 0, velocity, and kind-specific parameters."""

    __slots__ = ("kind", "u", "s", "vu", "vs", "p")

    def __init__(self, kind: str, u: float, s: float, vu: float = 0.0, vs: float = 0.0, **params):
        self.kind, self.u, self.s, self.vu, self.vs, self.p = kind, u, s, vu, vs, params

    def at(self, t: float) -> tuple[float, float]:
        return self.u + self.vu * t, self.s + self.vs * t


class _Segment:
    """A stretch of roadside backdrop (building, hedge, wall or fence) whose face is the plane u = const."""

    __slots__ = ("kind", "side", "u", "s0", "s1", "height", "p")

    def __init__(self, kind: str, side: int, u: float, s0: float, s1: float, height: float, **params):
        self.kind, self.side, self.u, self.s0, self.s1, self.height, self.p = kind, side, u, s0, s1, height, params


class _Zone:
    """A strip of ground parallel to the road: road, parking, curb, sidewalk, verge, beyond."""

    __slots__ = ("outer", "label", "color", "kind", "texture")

    def __init__(self, outer: float, label: str, color, kind: str, texture: float):
        self.outer, self.label, self.color, self.kind, self.texture = outer, ID[label], color, kind, texture


class Street:
    """Everything random about one street; rendering it at any time ``t`` is deterministic.

    ``length`` metres of street are populated ahead of ``s = 0`` (the camera's position at t = 0).
    """

    def __init__(self, rng: np.random.Generator, length: float = STREET_AHEAD):
        self.length = length
        self._camera(rng)
        self._cross_section(rng)
        self._appearance(rng)
        self.segments: list[_Segment] = []
        for side in (-1, 1):
            self._backdrop(rng, side)
        self.things: list[_Thing] = []
        self._street_furniture(rng)
        self._vehicles(rng)
        self._people(rng)
        self._skyline(rng)

    # --- generation -------------------------------------------------------------------------------

    def _camera(self, rng):
        self.focal_ratio = rng.uniform(0.62, 1.0)  # focal length / image width (Cityscapes: ~1.1)
        self.horizon_ratio = rng.uniform(0.36, 0.5)  # horizon row / image height
        self.cam_height = rng.uniform(1.25, 1.7)
        self.cam_speed = rng.uniform(5.0, 12.0)  # m/s, for sequences
        bend = rng.random()
        self.curvature = 0.0 if bend < 0.35 else float(rng.uniform(-1, 1)) / rng.uniform(250.0, 900.0)

    def _cross_section(self, rng):
        self.lane_width = lw = rng.uniform(2.9, 3.6)
        self.lanes_right = int(_pick(rng, [1, 1, 2, 2, 3]))
        self.lanes_left = 0 if rng.random() < 0.2 else int(_pick(rng, [1, 1, 2]))
        self.cam_u = (int(rng.integers(self.lanes_right)) + 0.5) * lw + rng.uniform(-0.3, 0.3)
        self.urban = rng.uniform(0.2, 1.0)  # share of buildings (vs. greenery) along the street
        asphalt = _jitter(rng, _pick(rng, [(78, 78, 82), (95, 94, 96), (110, 108, 106), (70, 72, 80)]), 6)
        self.zones = {}  # side -> list[_Zone], ordered outwards
        self.parking = {}  # side -> (inner, outer) of the parking strip, or None
        self.curb = {}  # side -> distance of the curb (sidewalk starts) from the centre line
        self.property_line = {}
        self.sidewalk = {}  # side -> (inner, outer)
        paving = _jitter(rng, _pick(rng, [(150, 148, 145), (170, 160, 150), (135, 120, 115), (160, 160, 165)]), 8)
        grass = _jitter(rng, _pick(rng, [(95, 120, 55), (110, 125, 70), (120, 115, 75), (85, 110, 60)]), 8)
        for side, lanes in ((1, self.lanes_right), (-1, self.lanes_left)):
            edge = lanes * lw
            zones = [_Zone(edge, "road", asphalt, "road", 0.06)]
            self.parking[side] = None
            if rng.random() < 0.45:
                width = rng.uniform(2.0, 2.5)
                cobbles = rng.random() < 0.5  # distinct paving is labelled 'parking', plain asphalt 'road'
                color = _jitter(rng, (105, 100, 98), 8) if cobbles else asphalt
                zones.append(
                    _Zone(edge + width, "parking" if cobbles else "road", color, "cobbles" if cobbles else "road", 0.1)
                )
                self.parking[side] = (edge, edge + width)
                edge += width
            zones.append(_Zone(edge + 0.2, "sidewalk", _shade(paving, 1.15), "curb", 0.04))
            self.curb[side] = edge + 0.2
            walk = rng.uniform(1.8, 5.0)
            zones.append(_Zone(edge + 0.2 + walk, "sidewalk", paving, "sidewalk", 0.06))
            self.sidewalk[side] = (edge + 0.2, edge + 0.2 + walk)
            edge += 0.2 + walk
            if rng.random() < 0.4:
                edge += rng.uniform(1.0, 5.0)
                zones.append(_Zone(edge, "terrain", grass, "grass", 0.18))
            self.property_line[side] = edge
            beyond = "terrain" if rng.random() > self.urban else "sidewalk"
            zones.append(_Zone(np.inf, beyond, grass if beyond == "terrain" else paving, "grass", 0.15))
            self.zones[side] = zones
        self.markings = self._markings(rng)
        self.crosswalk = rng.uniform(12.0, 60.0) if rng.random() < 0.4 else None

    def _markings(self, rng):
        """(u centre, half width, dash period, dash length, color); period 0 = solid."""
        lw = self.lane_width
        white = self.paint_white = _shade((222, 222, 215), rng.uniform(0.75, 1.0))
        half = rng.uniform(0.06, 0.08)
        period, dash = _pick(rng, [(9.0, 3.0), (12.0, 6.0), (6.0, 3.0)])
        lines = []
        for i in range(1, self.lanes_right):
            lines.append((i * lw, half, period, dash, white))
        for i in range(1, self.lanes_left):
            lines.append((-i * lw, half, period, dash, white))
        if self.lanes_left:
            centre = _pick(rng, ["solid", "double", "dashed"])
            color = white if rng.random() < 0.75 else (205, 165, 40)
            if centre == "double":
                lines += [(-0.12, half, 0.0, 0.0, color), (0.12, half, 0.0, 0.0, color)]
            else:
                lines.append((0.0, half, period if centre == "dashed" else 0.0, dash, color))
        if rng.random() < 0.6:
            lines += [(self.lanes_right * lw - 0.25, half, 0.0, 0.0, white)]
            if self.lanes_left:
                lines += [(-self.lanes_left * lw + 0.25, half, 0.0, 0.0, white)]
        return [(u, h, p, d, c, rng.uniform(0, 20)) for u, h, p, d, c in lines]

    def _appearance(self, rng):
        overcast = rng.random() < 0.35
        self.sky_zenith = _jitter(rng, (170, 178, 188) if overcast else (75, 130, 205), 12)
        self.sky_horizon = _jitter(rng, (205, 208, 212) if overcast else (180, 205, 230), 8)
        self.clouds = rng.standard_normal((6, 12)).astype(np.float32)  # fixed, so sequences don't flicker
        self.cloud_cover = rng.uniform(0.0, 0.9)
        self.visibility = rng.uniform(150.0, 700.0)  # m, for atmospheric haze
        self.sun_side = int(_pick(rng, [-1, 1]))  # facades on this side cast shadows onto the street
        self.shadow_ratio = 0.0 if overcast else rng.uniform(0.2, 1.2)  # shadow length / height
        self.shadow_strength = rng.uniform(0.45, 0.75)
        self.contrast = rng.uniform(0.75, 1.15)
        self.brightness = rng.uniform(-30.0, 20.0)
        self.cast = rng.uniform(0.9, 1.1, 3)
        self.sensor_noise = rng.uniform(1.0, 4.0)
        self.hood = rng.uniform(0.08, 0.18) if rng.random() < 0.5 else None  # ego-vehicle hood height / H
        self.hood_color = _jitter(rng, _pick(rng, _CAR_PAINT), 6)
        self.border = rng.uniform(0.004, 0.012) if rng.random() < 0.2 else None  # rectification border / W

    def _backdrop(self, rng, side: int):
        s = -15.0
        line = self.property_line[side]
        while s < self.length:
            roll = rng.random()
            if roll < 0.1:  # gap between buildings
                s += rng.uniform(2.0, 12.0)
                continue
            if roll < 0.1 + 0.8 * self.urban:
                length = rng.uniform(8.0, 30.0)
                self.segments.append(self._building(rng, side, side * (line + rng.uniform(0.0, 2.5)), s, s + length))
            elif roll < 0.93:
                length = rng.uniform(6.0, 25.0)
                self.segments.append(self._hedge(rng, side, side * (line + rng.uniform(0.0, 1.5)), s, s + length))
            else:
                length = rng.uniform(5.0, 20.0)
                kind = "wall" if rng.random() < 0.5 else "fence"
                height = rng.uniform(1.0, 2.4)
                if kind == "wall":
                    color = _jitter(rng, _pick(rng, [(150, 145, 140), (170, 120, 100), (120, 118, 112)]), 10)
                else:
                    color = _jitter(rng, _pick(rng, [(60, 62, 60), (120, 100, 80), (150, 150, 150), (40, 70, 50)]), 8)
                self.segments.append(
                    _Segment(
                        kind,
                        side,
                        side * (line + 0.1),
                        s,
                        s + length,
                        height,
                        color=color,
                        spacing=rng.uniform(0.12, 0.22),
                    )
                )
                behind = side * (line + rng.uniform(3.0, 10.0))  # something taller behind a wall or fence
                if rng.random() < 0.5:
                    self.segments.append(self._building(rng, side, behind, s, s + length))
                else:
                    self.segments.append(self._hedge(rng, side, behind, s, s + length))
            s += length

    def _building(self, rng, side, u, s0, s1) -> _Segment:
        height = rng.uniform(7.0, 28.0)
        floor, column = rng.uniform(2.8, 3.6), rng.uniform(2.2, 3.8)
        shop = rng.random() < 0.5  # a ground floor of shop windows instead of ordinary ones
        columns = np.arange(s0 + column / 2, s1 - column / 3, column)
        floors = np.arange((3.6 if shop else 0.9) + floor * 0.3, height - 1.2, floor)
        window_s, window_z = (a.ravel() for a in np.meshgrid(columns, floors))
        return _Segment(
            "building",
            side,
            u,
            s0,
            s1,
            height,
            color=_jitter(rng, _pick(rng, _FACADE), 10),
            window_s=window_s,
            window_z=window_z,
            tints=rng.choice(3, len(window_s), p=rng.dirichlet((3, 1, 1))),
            window_w=rng.uniform(0.35, 0.65) * column / 2,
            window_h=rng.uniform(0.4, 0.6) * floor / 2,
            shops=np.arange(s0 + 2.5, s1 - 1.0, 4.0) if shop else np.zeros(0),
            frame=_jitter(rng, (230, 230, 225), 10),
            depth=rng.uniform(8.0, 16.0),
        )

    def _hedge(self, rng, side, u, s0, s1) -> _Segment:
        height = rng.uniform(1.5, 7.0)
        n = int((s1 - s0) / 4.0) + 2
        crowns = [
            (
                rng.uniform(s0, s1),
                rng.uniform(0.6, 1.0) * height,
                rng.uniform(1.0, 3.0),
                _foliage(rng),
            )
            for _ in range(n)
        ]
        return _Segment(
            "hedge",
            side,
            u,
            s0,
            s1,
            height,
            color=_foliage(rng),
            bumps=rng.uniform(0, 6.28, 3),
            crowns=crowns,
        )

    def _street_furniture(self, rng):
        lamp_sides = _pick(rng, [(-1, 1), (-1, 1), (1,), (-1,), ()])
        for side in lamp_sides:
            spacing, s = rng.uniform(18.0, 35.0), rng.uniform(-10.0, 10.0)
            color = _jitter(rng, _pick(rng, [(90, 95, 100), (140, 140, 135), (50, 60, 55)]), 8)
            height = rng.uniform(6.0, 9.0)
            while s < self.length:
                u = side * (self.curb[side] + 0.5)
                self.things.append(
                    _Thing("lamp", u, s, side=side, height=height, color=color, arm=rng.uniform(1.2, 2.5))
                )
                s += spacing
        if rng.random() < 0.65:
            for side in (-1, 1):
                inner, outer = self.sidewalk[side]
                if outer - inner < 2.5 and self.property_line[side] - outer < 1.0:
                    continue  # no room for trees
                where = (
                    (outer + self.property_line[side]) / 2 if self.property_line[side] - outer > 1.0 else inner + 1.0
                )
                s = rng.uniform(-10.0, 5.0)
                while s < self.length:
                    if rng.random() < 0.8:
                        at = where + rng.uniform(-0.2, 0.2)
                        self.things.append(self._tree(rng, side * at, s, side, self.property_line[side] - at))
                    s += rng.uniform(6.0, 14.0)
        for _ in range(rng.poisson(self.length / 30.0) + 1):
            side = int(_pick(rng, [-1, 1]))
            u = side * (self.curb[side] + rng.uniform(0.3, 0.6))
            self.things.append(self._sign(rng, u, rng.uniform(5.0, self.length)))
        for _ in range(rng.poisson(self.length / 40.0)):
            side = int(_pick(rng, [-1, 1]))
            u = side * (self.sidewalk[side][1] - 0.4)
            self.things.append(
                _Thing(
                    "bin",
                    u,
                    rng.uniform(0.0, self.length),
                    color=_jitter(rng, (60, 80, 60), 20),
                    size=(rng.uniform(0.4, 0.7), rng.uniform(0.4, 1.6), rng.uniform(0.6, 1.0)),
                )
            )
        if self.crosswalk is not None and rng.random() < 0.8:
            for side in (-1, 1):
                if side == -1 and not self.lanes_left:
                    continue
                pole = self.curb[side] + 0.4
                outer_lane = (
                    self.lanes_right if side == 1 else self.lanes_left
                ) * self.lane_width - self.lane_width / 2
                arm = pole - outer_lane if rng.random() < 0.5 else 0.0  # overhead arm reaching the outer lane
                housing = _jitter(rng, _pick(rng, [(40, 40, 40), (200, 170, 40)]), 6)
                self.things.append(
                    _Thing(
                        "traffic_light",
                        side * pole,
                        self.crosswalk - 1.5,
                        side=side,
                        reach=arm,
                        lit=int(rng.integers(3)),
                        housing=housing,
                    )
                )

    def _tree(self, rng, u, s, side, room) -> _Thing:
        """A trunk and a crown of overlapping discs that stays out of facades ``room`` m outwards."""
        height = rng.uniform(4.0, 9.0)
        radius = rng.uniform(1.2, 2.8)
        blobs = []
        for _ in range(int(rng.integers(5, 10))):
            r = radius * rng.uniform(0.45, 0.8)
            x = min(rng.normal(0, radius * 0.5) * side, max(room - r, -r)) * side  # side * x: outwards
            blobs.append((x, height - radius + rng.normal(0, radius * 0.4), r, _foliage(rng)))
        return _Thing(
            "tree",
            u,
            s,
            trunk=_jitter(rng, (90, 75, 60), 10),
            crown_base=height - 2 * radius,
            blobs=blobs,
            thickness=rng.uniform(0.2, 0.4),
        )

    def _sign(self, rng, u, s) -> _Thing:
        shape = _pick(rng, ["circle", "circle", "triangle", "square", "octagon", "rectangle"])
        return _Thing(
            "sign",
            u,
            s,
            shape=shape,
            height=rng.uniform(2.0, 3.0),
            size=rng.uniform(0.55, 0.8),
            pole=_jitter(rng, (140, 140, 140), 10),
            variant=int(rng.integers(3)),
        )

    def _vehicles(self, rng):
        lw = self.lane_width
        keep_clear = (self.crosswalk - 6.0, self.crosswalk + 5.0) if self.crosswalk is not None else None
        for lane in range(-self.lanes_left, self.lanes_right):
            direction = 1 if lane >= 0 else -1
            centre = (lane + 0.5) * lw
            own_lane = abs(centre - self.cam_u) < lw / 2
            speed = (
                self.cam_speed * rng.uniform(1.0, 1.15)
                if own_lane
                else (self.cam_speed * rng.uniform(0.8, 1.2) if direction > 0 else -rng.uniform(6.0, 14.0))
            )
            density = rng.uniform(0.45, 1.0)
            s = rng.uniform(7.0, 25.0) if own_lane else rng.uniform(-10.0, 20.0)
            while s < self.length:
                vehicle = self._vehicle(rng, centre + rng.uniform(-0.25, 0.25), s, direction, speed, lane_cars=True)
                length = vehicle.p["dims"][0]
                clear = keep_clear is None or not (keep_clear[0] < s + length and s < keep_clear[1])
                if rng.random() < density and clear:
                    self.things.append(vehicle)
                s += length + rng.uniform(4.0, 25.0) / density
        for side, strip in self.parking.items():
            if strip is None:
                continue
            occupancy, s = rng.uniform(0.4, 0.95), rng.uniform(-12.0, -2.0)
            centre = side * (strip[0] + strip[1]) / 2
            while s < self.length:
                vehicle = self._vehicle(rng, centre, s, side if self.lanes_left else 1, 0.0, lane_cars=False)
                if rng.random() < occupancy:
                    self.things.append(vehicle)
                s += vehicle.p["dims"][0] + rng.uniform(0.6, 3.0)

    def _vehicle(self, rng, u, s, direction, speed, lane_cars) -> _Thing:
        roll = rng.random()
        if lane_cars and roll < 0.07:
            kind, dims = "bus", (rng.uniform(10.5, 12.5), 2.55, rng.uniform(2.9, 3.2))
            paint = _jitter(rng, _pick(rng, [(220, 220, 215), (200, 40, 40), (240, 200, 40), (40, 90, 170)]), 8)
        elif roll < (0.17 if lane_cars else 0.05):
            kind, dims = "truck", (rng.uniform(6.0, 9.0), 2.45, rng.uniform(2.9, 3.8))
            paint = _jitter(rng, _pick(rng, [(230, 230, 230), (200, 200, 205), (60, 80, 130), (180, 40, 30)]), 8)
        else:
            van = rng.random() < 0.15
            kind = "car"
            dims = (
                (rng.uniform(4.6, 5.2), 1.95, rng.uniform(1.9, 2.1))
                if van
                else (rng.uniform(3.7, 4.9), rng.uniform(1.68, 1.9), rng.uniform(1.38, 1.6))
            )
            paint = _jitter(rng, _pick(rng, _CAR_PAINT), 6)
        # s is the near end; motion is along s at `speed` (0 for parked vehicles)
        return _Thing(
            "vehicle",
            u,
            s + dims[0] / 2,
            vs=speed,
            body=kind,
            dims=dims,
            paint=paint,
            facing=direction,
            van=kind == "car" and dims[2] > 1.8,
        )

    def _people(self, rng):
        busy = rng.uniform(0.4, 1.6)
        for _ in range(rng.poisson(self.length / 11.0 * busy) + 2):
            side = int(_pick(rng, [-1, 1]))
            inner, outer = self.sidewalk[side]
            u = side * rng.uniform(inner + 0.4, max(inner + 0.5, outer - 0.3))
            s = rng.uniform(3.0, self.length * 0.8)
            walking = rng.random() < 0.75
            heading = _pick(rng, [0.0, math.pi]) if walking else rng.uniform(0, 2 * math.pi)
            speed = rng.uniform(1.0, 1.6) if walking else 0.0
            for k in range(1 if rng.random() < 0.7 else int(rng.integers(2, 4))):  # sometimes small groups
                du, ds = (side * 0.6 * k, rng.uniform(-0.5, 0.5) * k)
                self.things.append(self._person(rng, u - du, s + ds, heading, speed))
        if self.crosswalk is not None:
            road = (-self.lanes_left * self.lane_width, self.lanes_right * self.lane_width)
            for _ in range(int(rng.integers(0, 5))):
                heading = _pick(rng, [math.pi / 2, -math.pi / 2])
                s = self.crosswalk + rng.uniform(0.5, 3.0)
                self.things.append(self._person(rng, rng.uniform(*road), s, heading, rng.uniform(0.9, 1.5)))
        for _ in range(rng.poisson(self.length / 50.0)):
            direction = 1 if (rng.random() < 0.7 or not self.lanes_left) else -1
            edge = (self.lanes_right if direction > 0 else self.lanes_left) * self.lane_width
            u = direction * (edge - rng.uniform(0.6, 1.0))
            speed = rng.uniform(3.0, 7.0) * direction
            motor = rng.random() < 0.3
            if motor:
                speed *= 2.0
            heading = 0.0 if direction > 0 else math.pi
            self.things.append(
                _Thing(
                    "cycle",
                    u,
                    rng.uniform(6.0, self.length * 0.8),
                    vs=speed,
                    heading=heading,
                    motor=motor,
                    rider=self._outfit(rng),
                    frame=_jitter(rng, _pick(rng, _CAR_PAINT), 10),
                    pedal=rng.uniform(0, 6.28),
                )
            )
        for _ in range(rng.poisson(self.length / 60.0)):  # parked bicycles, seen side-on
            side = int(_pick(rng, [-1, 1]))
            u = side * (self.curb[side] + rng.uniform(0.8, 1.5))
            self.things.append(
                _Thing(
                    "cycle",
                    u,
                    rng.uniform(5.0, self.length * 0.6),
                    heading=math.pi / 2 * side,
                    motor=False,
                    rider=None,
                    frame=_jitter(rng, _pick(rng, _CAR_PAINT), 10),
                    pedal=0.0,
                )
            )

    def _outfit(self, rng) -> dict:
        return {
            "shirt": _jitter(rng, _pick(rng, _CLOTHES), 12),
            "pants": _jitter(rng, _pick(rng, _CLOTHES), 10),
            "skin": _jitter(rng, _pick(rng, _SKIN), 8),
            "hair": _jitter(rng, _pick(rng, _HAIR), 6),
            "height": rng.uniform(1.55, 1.95),
            "width": rng.uniform(0.9, 1.15),
        }

    def _person(self, rng, u, s, heading, speed) -> _Thing:
        vu, vs = speed * math.sin(heading), speed * math.cos(heading)
        return _Thing(
            "person",
            u,
            s,
            vu=vu,
            vs=vs,
            heading=heading,
            moving=speed > 0,
            phase=rng.uniform(0, 6.28),
            **self._outfit(rng),
        )

    def _skyline(self, rng):
        """Distant blocks and tree lines on the horizon, in image-width fractions (static on screen)."""
        self.skyline = []
        x = -0.05
        while x < 1.05:
            width = rng.uniform(0.02, 0.12)
            distance = rng.uniform(250.0, 500.0)
            if rng.random() < 0.55 * self.urban + 0.2:
                self.skyline.append(
                    ("building", x, x + width, rng.uniform(8.0, 50.0), distance, _jitter(rng, _pick(rng, _FACADE), 12))
                )
            else:
                self.skyline.append(("vegetation", x, x + width, rng.uniform(6.0, 16.0), distance, _foliage(rng)))
            x += width * rng.uniform(0.6, 1.0)


class _View:
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


class _Canvas:
    """The frame being drawn: uint8 RGB (cv2 draws and copies those fastest), label ids, z-buffer."""

    def __init__(self, size: tuple[int, int]):
        self.rgb = np.zeros((*size, 3), np.uint8)
        self.lab = np.full(size, ID["sky"], np.uint8)
        self.zbuf = np.full(size, np.inf, np.float32)  # depth of drawn objects; ground and sky stay at inf
        self.ground_depth = np.zeros(size, np.float32)  # for haze: depth of ground pixels, 0 for sky

    def stamp(self, extent, depth: float) -> _Stamp:
        return _Stamp(self, extent, depth)


class _Stamp:
    """One object drawn off-canvas; ``commit`` copies back only the pixels its labelled shapes cover
    and that are nearer than what the canvas already shows. Details can only recolour those pixels.

    Most objects lie at one depth (``base_depth``); a per-pixel depth map is made only once a part
    is drawn at another depth (``depth`` may be changed between calls, or passed to ``fill``).
    """

    SHIFT = 2  # fixed-point bits: vertices keep quarter-pixel precision, so motion in sequences is smooth
    SCALE = 1 << SHIFT

    def __init__(self, canvas: _Canvas, extent, depth: float):
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


# --- rendering ------------------------------------------------------------------------------------


def _render(street: Street, t: float, size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    view = _View(street, size, s_cam=street.cam_speed * t)
    canvas = _Canvas(size)
    _draw_sky(canvas, view, street)
    _draw_ground(canvas, view, street, t)
    _draw_skyline(canvas, view, street)
    for segment in sorted(street.segments, key=lambda g: -max(g.s0, view.s_cam)):
        _draw_segment(canvas, view, segment)
    for thing, u, s in sorted(_visible_things(view, street, t), key=lambda p: -p[2]):  # far to near
        _DRAW[thing.kind](canvas, view, thing, u, s, t)
    _draw_ego_vehicle(canvas, street)
    return _finish(canvas, street, rng), canvas.lab


def _visible_things(view: _View, street: Street, t: float) -> list[tuple[_Thing, float, float]]:
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


def _draw_sky(canvas: _Canvas, view: _View, street: Street) -> None:
    """Vertical gradient with clouds, built at 1/8 resolution and upsampled (it is smooth)."""
    height, width = view.size
    rows = min(max(math.ceil(view.horizon) + 1, 1), height)  # the ground covers everything below
    small_h, small_w = max(rows // 8, 2), max(width // 8, 2)
    y = (np.arange(small_h, dtype=np.float32) + 0.5) * (rows / small_h)
    blend = np.clip((view.horizon - y) / max(view.horizon, 1.0), 0, 1) ** 0.6
    zenith, horizon = np.array(street.sky_zenith, np.float32), np.array(street.sky_horizon, np.float32)
    sky = np.repeat((horizon + (zenith - horizon) * blend[:, None])[:, None, :], small_w, axis=1)
    if street.cloud_cover > 0.05:
        clouds = cv2.resize(street.clouds, (small_w, max(round(height / 8), 2)), interpolation=cv2.INTER_CUBIC)
        cover = np.clip((clouds[:small_h] - (1.0 - street.cloud_cover)) * 0.8, 0.0, 0.8)[..., None]
        sky += (235.0 - sky) * cover
    canvas.rgb[:rows] = cv2.resize(np.rint(sky).astype(np.uint8), (width, rows), interpolation=cv2.INTER_LINEAR)


# Ground strip kinds, as small ints so per-pixel tests are cheap.
_ROAD, _COBBLES, _CURB, _SIDEWALK, _GRASS = range(5)
_KIND_CODE = {"road": _ROAD, "cobbles": _COBBLES, "curb": _CURB, "sidewalk": _SIDEWALK, "grass": _GRASS}


def _draw_ground(canvas: _Canvas, view: _View, street: Street, t: float) -> None:
    """The ground below the horizon: strips (zones) parallel to the road, markings, texture, shadows.

    Zones and markings are ground-plane polygons rasterised into a zone-index image, which two
    lookup tables turn into colours and labels, so both come from the same pixels. Texture, paving
    joints and shadows are one brightness factor per pixel that only touches the image.
    """
    height, width = view.size
    first = max(math.floor(view.horizon - 0.5) + 1, 0)  # first row whose centre lies below the horizon
    if first >= height:
        return
    rows = np.arange(first, height, dtype=np.float64) + 0.5
    depth = view.f * view.cam_height / (rows - view.horizon)  # per row
    zone = np.zeros((height - first, width), np.uint8)

    # Zone strips, far left to far right, between boundaries u_0 < u_1 < ... (±inf at the ends).
    zones = street.zones[-1][::-1] + street.zones[1]
    bounds = [-z.outer for z in street.zones[-1][-2::-1]] + [0.0] + [z.outer for z in street.zones[1][:-1]]
    sample = np.r_[
        np.arange(0, len(rows) - 1, 4 if view.k else len(rows)), len(rows) - 1
    ]  # edges are straight if k = 0
    scale = view.f / depth[sample]  # pixels per metre across the road, per sampled row
    offset = view.cx - 0.5 - scale * (view.cam_u - 0.5 * view.k * depth[sample] ** 2)
    edge_x = [np.full(len(sample), -4.0)]
    edge_x += [np.clip(offset + scale * b, -4.0, width + 4.0) for b in bounds]
    edge_x += [np.full(len(sample), width + 4.0)]
    y = sample.astype(np.float64)
    for index in range(len(zones)):
        left = np.stack([edge_x[index], y], -1)
        right = np.stack([edge_x[index + 1], y], -1)[::-1]
        _fill_image(zone, np.concatenate([left, right]), index)

    # Markings and crosswalks: ground polygons with extra zone codes (label road), kept on the road.
    colors, labels = [z.color for z in zones], [z.label for z in zones]
    marks = np.zeros_like(zone)
    for polygons, color in _marking_polygons(view, street):
        colors.append(color)
        labels.append(ID["road"])
        _fill_image(marks, list(polygons - [0.5, first + 0.5]), len(colors) - 1)
    kind_lut = np.zeros(256, np.uint8)
    kind_lut[: len(zones)] = [_KIND_CODE[z.kind] for z in zones]
    on_road = cv2.LUT(zone, kind_lut) == _ROAD
    on_road &= marks > 0
    np.copyto(zone, marks, where=on_road)

    # Brightness factor: world-fixed texture (a smooth random tile indexed by s and u, so it moves
    # with the road in sequences), sampled at half resolution as it is smooth anyway.
    half_depth = depth[::2, None]
    half_cols = np.arange(0.5, width, 2.0) - view.cx
    half_u = half_cols * (half_depth / view.f) + (view.cam_u - 0.5 * view.k * half_depth**2)
    tile = _texture_tile()
    coarse = tile[
        np.floor((half_depth + view.s_cam) * 3).astype(np.int64) & 255, np.floor(half_u * 3).astype(np.int64) & 255
    ]
    factor = cv2.resize(coarse, (width, height - first), interpolation=cv2.INTER_LINEAR)
    texture_lut = np.full(256, 0.05, np.float32)  # markings: a little wear
    texture_lut[: len(zones)] = [z.texture for z in zones]
    factor *= cv2.LUT(zone, texture_lut)
    factor += 1.0
    for mask, strength in _ground_masks(view, street, t, first):
        factor[mask] *= strength

    zone_lut = np.zeros((256, 4), np.uint8)
    zone_lut[: len(colors), :3] = np.rint(colors)
    zone_lut[: len(colors), 3] = labels
    channels = [cv2.multiply(cv2.LUT(zone, zone_lut[:, c].copy()), factor, dtype=cv2.CV_8U) for c in range(3)]
    canvas.rgb[first:] = cv2.merge(channels)
    canvas.lab[first:] = cv2.LUT(zone, zone_lut[:, 3].copy())
    canvas.ground_depth[first:] = depth[:, None]


def _fill_image(image: np.ndarray, polygons, value) -> None:
    """fillPoly in pixel-index coordinates (pixel centres at integers), quarter-pixel precision."""
    polygons = polygons if isinstance(polygons, list) else [polygons]
    fixed = [np.rint(np.clip(p, -(2**20), 2**20) * 4).astype(np.int32) for p in polygons]
    cv2.fillPoly(image, fixed, value, cv2.LINE_8, 2)


def _ground_polygons(view: _View, u0, u1, s0, s1) -> np.ndarray:
    """Outlines (N, 2n, 2) of the ground rectangles [u0, u1] × [s0, s1] (arrays broadcast together),
    clipped at NEAR_CLIP; on a bend the long sides are sampled, as they curve in the image."""
    u0, u1, s0, s1 = (a.ravel() for a in np.broadcast_arrays(u0, u1, s0, s1))
    s0 = np.maximum(s0, view.s_cam + NEAR_CLIP)
    keep = s1 > s0
    u0, u1, s0, s1 = u0[keep], u1[keep], s0[keep], s1[keep]
    steps = np.linspace(0.0, 1.0, 6 if view.k else 2)
    ss = s0[:, None] + (s1 - s0)[:, None] * steps
    along = np.concatenate([ss, ss[:, ::-1]], 1)
    across = np.concatenate([np.repeat(u0[:, None], len(steps), 1), np.repeat(u1[:, None], len(steps), 1)], 1)
    return view.project(across, along, 0.0)


def _marking_polygons(view: _View, street: Street) -> list[tuple[np.ndarray, tuple]]:
    """(polygons, colour) per lane line (dashes within 160 m) and for the crosswalk and stop line."""
    out = []
    ahead = view.s_cam + 160.0  # further away a marking would be sub-pixel noise
    for centre, half, period, dash, color, phase in street.markings:
        if period:
            starts = np.arange(math.floor((view.s_cam + phase) / period) * period - phase, ahead, period)
            polygons = _ground_polygons(view, centre - half, centre + half, starts, starts + dash)
        else:
            polygons = _ground_polygons(view, centre - half, centre + half, view.s_cam, ahead)
        if len(polygons):
            out.append((polygons, color))
    if street.crosswalk is not None:
        road_left, road_right = -street.lanes_left * street.lane_width, street.lanes_right * street.lane_width
        stripes = np.arange(road_left + 0.25, road_right - 0.5, 1.0)
        cw = street.crosswalk
        polygons = _ground_polygons(view, stripes, stripes + 0.5, cw, cw + 3.5)
        stop_line = _ground_polygons(view, 0.2, road_right - 0.2, cw - 1.2, cw - 0.8)
        out += [(p, street.paint_white) for p in (polygons, stop_line) if len(p)]
    return out


def _ground_masks(view: _View, street: Street, t: float, first: int) -> list[tuple[np.ndarray, float]]:
    """Brightness masks of the ground rows: paving joints, and shadows of facades, trees and vehicles."""
    height, width = view.size
    joints, soft, hard = [], [], []
    near = view.s_cam + 30.0  # joints only where they are a few pixels apart
    for side in (-1, 1):
        for zone_kind, spacing, gap in (("sidewalk", 0.6, 0.04), ("cobbles", 0.25, 0.03)):
            inner = 0.0
            for z in street.zones[side]:
                if z.kind == zone_kind:
                    lo, hi = sorted((side * inner, side * z.outer))
                    across = np.arange(math.ceil(lo / spacing) * spacing, hi, spacing)
                    along = np.arange(math.ceil(view.s_cam / spacing) * spacing, near, spacing)
                    joints.append(_ground_polygons(view, across, across + gap, view.s_cam, near))
                    joints.append(_ground_polygons(view, lo, hi, along, along + gap))
                inner = z.outer
    if street.shadow_ratio > 0:
        for seg in street.segments:
            ahead = seg.s0 - view.s_cam < STREET_AHEAD
            if ahead and seg.side == street.sun_side and seg.kind in ("building", "hedge", "wall"):
                inner = seg.side * (abs(seg.u) - seg.height * street.shadow_ratio)
                soft.append(_ground_polygons(view, min(seg.u, inner), max(seg.u, inner), seg.s0, seg.s1))
    for thing, u, s in _visible_things(view, street, t):
        if thing.kind == "vehicle":
            length, w, _ = thing.p["dims"]
            if s - length / 2 - view.s_cam < NEAR_CLIP + 0.5:
                continue  # too close to be drawn (see _draw_vehicle), so it casts no shadow either
            hard.append(
                _ground_polygons(view, u - w / 2 - 0.15, u + w / 2 + 0.15, s - length / 2 - 0.2, s + length / 2 + 0.2)
            )
        elif thing.kind == "tree" and street.shadow_ratio > 0:
            r = max(b[2] for b in thing.p["blobs"]) * 1.4
            angle = np.linspace(0, 2 * np.pi, 12, endpoint=False)
            us, ss = u + r * np.cos(angle) - street.sun_side * r, s + r * np.sin(angle)
            if ss.min() - view.s_cam > NEAR_CLIP:
                soft.append(view.project(us, ss, 0.0)[None])
    masks = []
    for groups, strength in ((joints, 0.8), (soft, street.shadow_strength), (hard, 0.45)):
        groups = [g for g in groups if len(g)]
        if not groups:
            continue
        mask = np.zeros((height - first, width), np.uint8)
        for group in groups:  # one call per group: overlapping polygons within one call would cancel out
            _fill_image(mask, list(group - [0.5, first + 0.5]), 1)
        masks.append((mask.view(bool), strength))
    return masks


_TILE: np.ndarray | None = None


def _texture_tile() -> np.ndarray:
    """Smooth 256×256 noise (unit std) for world-fixed ground texture; same for every scene."""
    global _TILE
    if _TILE is None:
        tile = np.random.default_rng(12345).standard_normal((256, 256)).astype(np.float32)
        padded = np.pad(tile, 16, mode="wrap")  # blur as a torus, so the tile repeats seamlessly
        tile = cv2.GaussianBlur(padded, (0, 0), 3.0)[16:-16, 16:-16]
        _TILE = tile / tile.std()
    return _TILE


def _draw_skyline(canvas: _Canvas, view: _View, street: Street) -> None:
    """Distant blocks and tree lines, one stamp; each block at its own depth."""
    width = view.size[1]
    shapes = []
    for kind, x0, x1, top, distance, color in street.skyline:
        scale = view.f / distance
        base = view.horizon + view.cam_height * scale
        left, right = x0 * width, x1 * width
        if kind == "building":
            poly = np.array([[left, base], [right, base], [right, base - top * scale], [left, base - top * scale]])
        else:
            xs = np.linspace(left, right, 9)
            bumps = 0.35 * top * np.abs(np.sin(np.linspace(0, 3 * np.pi, 9) + x0 * 40))
            poly = np.concatenate(
                [[[left, base]], np.stack([xs, base - (top * 0.65 + bumps) * scale], -1), [[right, base]]]
            )
        shapes.append((poly, color, ID[kind], distance))
    if not shapes:
        return
    stamp = canvas.stamp([poly for poly, *_ in shapes], 0.0)
    for poly, color, label, distance in sorted(shapes, key=lambda x: -x[3]):
        stamp.fill(poly, color, label, depth=distance)
    stamp.commit()


def _plane_depth(view: _View, u: float, x0: int, x1: int) -> np.ndarray:
    """Depth, for pixel columns x0..x1-1, of the vertical plane u = const (a facade along the road).

    Solves (k/2) Z² - m Z + d = 0 with m = (x - cx) / f and d = u - u_cam, in the form that is
    stable as the curvature k → 0 (Z = d / m); no intersection → inf.
    """
    m = (np.arange(x0, x1, dtype=np.float64) + 0.5 - view.cx) / view.f
    d = u - view.cam_u
    disc = m * m - 2.0 * view.k * d
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = 2.0 * d / (m + np.copysign(np.sqrt(np.maximum(disc, 0.0)), m))
    depth[(disc < 0) | ~(depth > 0)] = np.inf
    return depth.astype(np.float32)


def _draw_segment(canvas: _Canvas, view: _View, seg: _Segment) -> None:
    s0 = max(seg.s0, view.s_cam + NEAR_CLIP)
    if seg.s1 <= s0 or s0 - view.s_cam > STREET_AHEAD:
        return
    clipped = s0 > seg.s0
    # The outline is sampled along s: every 3 m on a curve, densely enough for the hedge's bumps.
    step = 1.5 if seg.kind == "hedge" else (3.0 if view.k else np.inf)
    ss = np.linspace(s0, seg.s1, max(2, math.ceil((seg.s1 - s0) / step) + 1))
    tops = np.full_like(ss, seg.height)
    if seg.kind == "hedge":
        a, b, c = seg.p["bumps"]
        tops = seg.height * (0.8 + 0.1 * np.sin(ss * 0.9 + a) + 0.1 * np.sin(ss * 0.37 + b) * np.cos(ss * 1.3 + c))
    outline = np.concatenate([view.project(seg.u, ss, 0.0), view.project(seg.u, ss[::-1], tops[::-1])])
    extent = [outline]
    end_face = None
    if seg.kind == "building" and not clipped:
        back = seg.u + seg.side * seg.p["depth"]
        end_face = view.project([seg.u, back, back, seg.u], seg.s0, [0.0, 0.0, seg.height, seg.height])
        extent.append(end_face)
    crowns = []
    if seg.kind == "hedge":
        crowns = [(s, z, r, col) for s, z, r, col in seg.p["crowns"] if s - view.s_cam > NEAR_CLIP + r]
    if crowns:
        crown_s, crown_z, crown_r = (np.array(v) for v in list(zip(*crowns))[:3])
        centres = view.project(seg.u, crown_s, crown_z)
        radii = crown_r * view.f / (crown_s - view.s_cam)
        extent += [centres - radii[:, None], centres + radii[:, None]]
    stamp = canvas.stamp(extent, float(s0 - view.s_cam))
    if not stamp.visible:
        return
    label, color = ID["vegetation" if seg.kind == "hedge" else seg.kind], seg.p["color"]
    depth = _plane_depth(view, seg.u, stamp.x0, stamp.x1)
    if seg.kind == "fence":
        _fence(stamp, view, seg, s0, depth, label, color)
    else:
        stamp.fill_plane(outline, color, label, depth)
    if end_face is not None:  # shares only an edge with the facade, so drawing order is immaterial
        stamp.fill(end_face, _shade(color, 0.72), label, depth=float(seg.s0 - view.s_cam))
    if seg.kind == "building":
        _facade_details(stamp, view, seg, s0)
    elif seg.kind == "wall":
        band = view.project(seg.u, np.r_[ss, ss[::-1]], np.r_[np.full_like(ss, seg.height - 0.12), tops[::-1]])
        stamp.detail(band, _shade(color, 1.15))
    for i, (s, _, _, col) in enumerate(crowns):
        stamp.depth = float(s - view.s_cam)
        stamp.disc(centres[i], radii[i], col, label)
        if radii[i] > 4:
            stamp.highlight(centres[i] - radii[i] * 0.25, radii[i] * 0.6, _shade(col, 1.12))
    stamp.commit()


def _fence(stamp: _Stamp, view: _View, seg: _Segment, s0: float, depth: np.ndarray, label, color) -> None:
    """Rails and slats only: the fence label covers the bars, the gaps show what is behind."""
    spacing, h = seg.p["spacing"], seg.height
    ss = np.linspace(s0, seg.s1, max(2, math.ceil((seg.s1 - s0) / 3.0) + 1))
    for z0, z1 in ((h - 0.1, h), (0.15, 0.25)):  # rails overlap slats: separate calls
        rail = view.project(seg.u, np.r_[ss, ss[::-1]], np.r_[np.full_like(ss, z0), np.full_like(ss, z1)])
        stamp.fill_plane(rail, color, label, depth)
    slat = np.arange(math.ceil(s0 / spacing) * spacing, seg.s1 - 0.04, spacing)
    if len(slat):
        corners = np.stack([slat, slat + 0.04, slat + 0.04, slat], 1)
        stamp.fill_plane(view.project(seg.u, corners, np.array([0.0, 0.0, h, h])), color, label, depth)


def _facade_details(stamp: _Stamp, view: _View, seg: _Segment, s0: float) -> None:
    """Windows (three tints), cornice, plinth and shop fronts, vectorised per facade."""
    p = seg.p
    cs, zs, hw, hh = p["window_s"], p["window_z"], p["window_w"], p["window_h"]
    if len(cs):
        pixels = 2 * hh * view.f / np.maximum(cs - view.s_cam, NEAR_CLIP)
        keep = (cs - hw > s0 + 0.2) & (pixels >= 2.0)  # windows under 2 px would only alias
        framed = keep & (pixels >= 6.0)
        if framed.any():
            stamp.detail(_window_quads(view, seg.u, cs[framed], zs[framed], hw + 0.08, hh + 0.08), p["frame"])
        if keep.any():
            glass, tints = _window_quads(view, seg.u, cs[keep], zs[keep], hw, hh), p["tints"][keep]
            for tint, color in enumerate([(45, 52, 60), (120, 140, 165), (215, 195, 130)]):
                if (tints == tint).any():
                    stamp.detail(glass[tints == tint], color)
    ends = np.array([max(seg.s0, s0 + 0.01), seg.s1])
    bands = view.project(
        seg.u, np.r_[ends, ends[::-1]], np.array([[seg.height - 0.5] * 2 + [seg.height] * 2, [0, 0, 0.5, 0.5]])
    )
    stamp.detail(bands[0], _shade(p["color"], 0.75))
    stamp.detail(bands[1], _shade(p["color"], 0.8))
    shops = p["shops"][p["shops"] - 1.4 > s0 + 0.1]
    if len(shops):
        stamp.detail(_window_quads(view, seg.u, shops, np.full(len(shops), 1.75), 1.4, 1.15), (40, 45, 50))


def _window_quads(view: _View, u: float, cs: np.ndarray, zs: np.ndarray, hw: float, hh: float) -> np.ndarray:
    s = np.stack([cs - hw, cs + hw, cs + hw, cs - hw], 1)
    z = np.stack([zs - hh, zs - hh, zs + hh, zs + hh], 1)
    return view.project(u, s, z)  # (N, 4, 2)


# --- street objects -------------------------------------------------------------------------------


def _draw_lamp(canvas: _Canvas, view: _View, thing: _Thing, u: float, s: float, t: float) -> None:
    p = thing.p
    h, reach = p["height"], -p["side"] * p["arm"]  # the arm points over the road
    d = math.copysign(1.0, reach)
    points = view.billboard(u, s, [
        (-0.08, 0), (0.08, 0), (0.06, h), (-0.06, h),  # pole
        (0, h - 0.12), (reach, h - 0.05), (reach, h + 0.03), (0, h),  # arm
        (reach - 0.3 * d, h - 0.18), (reach + 0.15 * d, h - 0.18), (reach + 0.15 * d, h + 0.02), (reach - 0.3 * d, h + 0.02),
    ])  # fmt: skip
    stamp = canvas.stamp([points], float(s - view.s_cam))
    stamp.fill(points[:4], p["color"], ID["pole"])
    stamp.fill(points[4:8], p["color"], ID["pole"])
    stamp.fill(points[8:], _shade(p["color"], 0.7), ID["pole"])  # the lamp head counts as pole too
    stamp.commit()


def _draw_tree(canvas: _Canvas, view: _View, thing: _Thing, u: float, s: float, t: float) -> None:
    p = thing.p
    w = p["thickness"] / 2
    trunk_top = p["crown_base"] + 1.0
    trunk = view.billboard(u, s, [[-w, 0], [w, 0], [w * 0.7, trunk_top], [-w * 0.7, trunk_top]])
    centres = view.billboard(u, s, [(x, z) for x, z, _, _ in p["blobs"]])
    radii = np.array([r for _, _, r, _ in p["blobs"]]) * view.pixels(1.0, s)
    stamp = canvas.stamp([trunk, centres - radii[:, None], centres + radii[:, None]], float(s - view.s_cam))
    stamp.fill(trunk, p["trunk"], ID["vegetation"])
    for centre, radius, (_, _, _, color) in zip(centres, radii, p["blobs"]):
        stamp.disc(centre, radius, color, ID["vegetation"])
        if radius > 4:
            stamp.highlight(centre - radius * 0.25, radius * 0.6, _shade(color, 1.12))
    stamp.commit()


_RED, _WHITE, _BLUE, _YELLOW, _GREEN = (200, 30, 30), (235, 235, 235), (40, 80, 170), (240, 200, 30), (30, 100, 60)
_SIGN_COLORS = {  # shape -> three variants of (rim, face)
    "circle": [(_RED, _WHITE), (_BLUE, _BLUE), (_RED, _BLUE)],
    "triangle": [(_RED, _WHITE)] * 3,
    "square": [(_WHITE, _YELLOW), (_BLUE, _BLUE), (_WHITE, _BLUE)],
    "octagon": [(_RED, _RED)] * 3,
    "rectangle": [(_GREEN, _GREEN), (_BLUE, _BLUE), (_WHITE, _WHITE)],
}


def _draw_sign(canvas: _Canvas, view: _View, thing: _Thing, u: float, s: float, t: float) -> None:
    p = thing.p
    h, r = p["height"], p["size"] / 2
    pole = view.billboard(u, s, [[-0.035, 0], [0.035, 0], [0.035, h], [-0.035, h]])
    angles = {"circle": 20, "triangle": 3, "square": 4, "octagon": 8}.get(p["shape"], 4)
    if p["shape"] == "rectangle":
        plate_m = np.array([[-2 * r, h - r * 0.6], [2 * r, h - r * 0.6], [2 * r, h + r * 0.6], [-2 * r, h + r * 0.6]])
    else:
        start = math.pi / 2 if p["shape"] == "triangle" else (math.pi / 4 if p["shape"] == "square" else math.pi / 8)
        if p["shape"] == "triangle" and p["variant"] == 0:
            start = -math.pi / 2  # give-way sign, point down
        a = start + np.linspace(0, 2 * np.pi, angles, endpoint=False)
        plate_m = np.stack([r * np.cos(a), h + r * np.sin(a)], -1)
    plate = view.billboard(u, s, plate_m)
    stamp = canvas.stamp([pole, plate], float(s - view.s_cam))
    stamp.fill(pole, p["pole"], ID["pole"])
    outer, inner = _SIGN_COLORS[p["shape"]][p["variant"]]
    stamp.fill(plate, outer, ID["traffic sign"])
    centre = plate_m.mean(0)
    stamp.detail(view.billboard(u, s, centre + (plate_m - centre) * 0.72), inner)
    if p["shape"] in ("rectangle", "octagon"):  # a hint of lettering
        stamp.detail(view.billboard(u, s, centre + (plate_m - centre) * np.array([0.6, 0.12])), (240, 240, 240))
    stamp.commit()


def _draw_traffic_light(canvas: _Canvas, view: _View, thing: _Thing, u: float, s: float, t: float) -> None:
    p = thing.p
    side, reach = p["side"], p["reach"]
    height = 5.6 if reach else 3.2
    pole = view.billboard(u, s, [[-0.07, 0], [0.07, 0], [0.06, height], [-0.06, height]])
    x = -side * reach  # housing position relative to the pole (over the road when there is an arm)
    polys = [pole]
    if reach:
        polys.append(view.billboard(u, s, [[0, height - 0.15], [x, height - 0.1], [x, height], [0, height]]))
    top = height - (0.1 if reach else 0.0)
    housing_m = np.array([[x - 0.16, top - 0.9], [x + 0.16, top - 0.9], [x + 0.16, top], [x - 0.16, top]])
    if not reach:
        housing_m[:, 0] += 0.25 * -side
    housing = view.billboard(u, s, housing_m)
    stamp = canvas.stamp(polys + [housing], float(s - view.s_cam))
    for poly in polys:
        stamp.fill(poly, (70, 72, 70), ID["pole"])
    stamp.fill(housing, p["housing"], ID["traffic light"])
    cx = housing_m[:, 0].mean()
    lamp_colors = [(255, 40, 30), (255, 180, 20), (40, 230, 120)]
    for i in range(3):
        cz = top - 0.15 - 0.3 * i
        color = lamp_colors[i] if i == p["lit"] else (35, 35, 35)
        disc = view.billboard(
            u, s, [[cx + 0.1 * math.cos(a), cz + 0.1 * math.sin(a)] for a in np.linspace(0, 6.28, 10)]
        )
        stamp.detail(disc, color)
    stamp.commit()


def _draw_bin(canvas: _Canvas, view: _View, thing: _Thing, u: float, s: float, t: float) -> None:
    w, length, h = thing.p["size"]
    corners = _box(view, u - w / 2, u + w / 2, s - length / 2, s + length / 2, 0.0, h)
    stamp = canvas.stamp([corners], float(s - length / 2 - view.s_cam))
    stamp.fill(cv2.convexHull(corners.astype(np.float32))[:, 0], thing.p["color"], ID["static"])
    stamp.commit()


def _box(view: _View, u0, u1, s0, s1, z0, z1) -> np.ndarray:
    """8 projected corners; bit 0 of the index selects u1, bit 1 s1, bit 2 z1."""
    i = np.arange(8)
    return view.project(np.where(i & 1, u1, u0), np.where(i & 2, s1, s0), np.where(i & 4, z1, z0))


_FACES = {"near": [0, 1, 5, 4], "left": [0, 2, 6, 4], "right": [1, 3, 7, 5], "top": [4, 5, 7, 6]}


def _draw_vehicle(canvas: _Canvas, view: _View, thing: _Thing, u: float, s: float, t: float) -> None:
    p = thing.p
    length, width, height = p["dims"]
    kind, paint, facing = p["body"], p["paint"], p["facing"]
    label = ID[kind]
    s0, s1 = s - length / 2, s + length / 2
    near_depth = s0 - view.s_cam
    if near_depth < NEAR_CLIP + 0.5:  # partly behind the camera; it would be off-screen anyway
        return
    lateral = u - view.cam_u + 0.5 * view.k * near_depth**2  # camera-frame X of the vehicle centre
    visible_side = "left" if lateral > width / 2 else ("right" if lateral < -width / 2 else None)
    wheel_r = 0.32 if kind == "car" else 0.5
    clearance = 0.28 if kind == "car" else 0.45
    body_top = height * (0.8 if p["van"] else 0.64) if kind == "car" else height
    side_color, face_color, top_color = _shade(paint, 0.72), _shade(paint, 0.9), _shade(paint, 1.08)
    if view.pixels(width, s0) < 10:  # a few pixels wide: the silhouette is all that shows
        corners = _box(view, u - width / 2, u + width / 2, s0, s1, 0.0, height)
        stamp = canvas.stamp([corners], float(near_depth))
        stamp.fill(cv2.convexHull(corners.astype(np.float32))[:, 0], face_color, label)
        stamp.commit()
        return
    cab_length = 2.2 if kind == "truck" else 0.0  # a truck: cargo box plus a lower cab at its front
    body_s0, body_s1 = (s0, s1 - cab_length) if facing > 0 else (s0 + cab_length, s1)
    body = _box(view, u - width / 2, u + width / 2, body_s0, body_s1, clearance, body_top)
    outline = _box(view, u - width / 2, u + width / 2, s0, s1, 0.0, height)  # wheels to roof
    stamp = canvas.stamp([outline], float(near_depth))
    if not stamp.visible:
        return

    # Wheels: cylinders (hull of both rims), all projected at once; far side first, then the body,
    # then the visible side's wheels on top of it.
    angle = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    axles = [s0 + 0.85, s1 - 0.85] if kind != "bus" else [s0 + 2.6, s1 - 2.4]
    rims = np.array([u - width / 2 + 0.02, u - width / 2 + 0.24, u + width / 2 - 0.24, u + width / 2 - 0.02])
    ring_s = np.add.outer(axles, wheel_r * np.cos(angle))  # (axle, point)
    ring_z = wheel_r + wheel_r * np.sin(angle)
    rim_points = view.project(rims[:, None, None], ring_s[None], ring_z)  # (rim, axle, point, 2)
    wheels = {
        side: [cv2.convexHull(np.concatenate(rim_points[pair, a]).astype(np.float32))[:, 0] for a in range(2)]
        for side, pair in (("left", [0, 1]), ("right", [2, 3]))
    }
    tyre = (22.0, 22.0, 24.0)
    for side, hulls in wheels.items():
        if side != visible_side:
            stamp.fill(hulls, tyre, label)
    cab = (u, width, height * 0.8, (s1 - cab_length, s1) if facing > 0 else (s0, s0 + cab_length))
    if kind == "truck" and facing > 0:  # seen from behind, the cab is the farther part
        _truck_cab(stamp, view, *cab, visible_side, label, windscreen=False)
    if visible_side:
        stamp.fill(body[_FACES[visible_side]], side_color, label)
    if body_top < view.cam_height:
        stamp.fill(body[_FACES["top"]], top_color, label)
    stamp.fill(body[_FACES["near"]], face_color, label)
    if kind == "truck" and facing < 0:
        _truck_cab(stamp, view, *cab, visible_side, label, windscreen=True)
    elif kind == "car":
        _car_cabin(stamp, view, u, s0, s1, width, body_top, height, facing, paint, visible_side, label, p["van"])
    elif kind == "bus":
        _bus_windows(stamp, view, u, s0, s1, width, height, visible_side)
    if visible_side:
        stamp.fill(wheels[visible_side], tyre, label)
        outer = rim_points[0 if visible_side == "left" else 3]
        centres = outer.mean(1, keepdims=True)
        stamp.detail(list(centres + (outer - centres) * 0.55), (150, 150, 150))  # hub caps
    _vehicle_face(stamp, view, u, s0, width, clearance, body_top, facing, kind)
    stamp.commit()


def _car_cabin(stamp, view, u, s0, s1, width, body_top, height, facing, paint, visible_side, label, van) -> None:
    length = s1 - s0
    if van:
        a, b = s0 + 0.1, s1 - 0.9 if facing > 0 else s1 - 0.1
        if facing < 0:
            a = s0 + 0.9
    else:  # the cabin sits a little towards the rear of the car
        a, b = (s0 + 0.22 * length, s1 - 0.3 * length) if facing > 0 else (s0 + 0.3 * length, s1 - 0.22 * length)
    i = np.arange(8)
    top = (i & 4) > 0
    inset_u = np.where(top, 0.18, 0.06)
    cu = np.where(i & 1, u + width / 2 - inset_u, u - width / 2 + inset_u)
    slope = np.where(top, 0.35 * (b - a) / 2 * (0.2 if van else 1.0), 0.0)
    cs = np.where(i & 2, b - slope, a + slope)
    cz = np.where(top, height, body_top)
    cabin = view.project(cu, cs, cz)
    glass = (48.0, 56.0, 66.0)
    if visible_side:
        stamp.fill(cabin[_FACES[visible_side]], _shade(paint, 0.72), label)
        side = cabin[_FACES[visible_side]]
        stamp.detail(side + (side.mean(0) - side) * 0.12, glass)
    if height < view.cam_height:
        stamp.fill(cabin[_FACES["top"]], _shade(paint, 1.08), label)
    face = cabin[_FACES["near"]]
    stamp.fill(face, _shade(paint, 0.9), label)
    stamp.detail(face + (face.mean(0) - face) * 0.14, glass)


def _truck_cab(stamp, view, u, width, height, span, visible_side, label, windscreen: bool) -> None:
    cab = _box(view, u - width / 2 + 0.05, u + width / 2 - 0.05, span[0], span[1], 0.45, height)
    white = (215.0, 215.0, 212.0)
    if visible_side:
        stamp.fill(cab[_FACES[visible_side]], _shade(white, 0.8), label)
    if height < view.cam_height:
        stamp.fill(cab[_FACES["top"]], white, label)
    if windscreen:  # oncoming: the cab front faces the camera
        face = cab[_FACES["near"]]
        stamp.fill(face, _shade(white, 0.92), label)
        bottom, top = face[[0, 1]], face[[3, 2]]
        stamp.detail(np.concatenate([top + (bottom - top) * 0.1, (top + (bottom - top) * 0.45)[::-1]]), (50, 58, 66))


def _bus_windows(stamp, view, u, s0, s1, width, height, visible_side) -> None:
    glass = (45, 52, 60)
    if visible_side:
        side_u = u - width / 2 if visible_side == "left" else u + width / 2
        stamp.detail(
            view.project(side_u, [s0 + 0.5, s1 - 0.5, s1 - 0.5, s0 + 0.5], [1.2, 1.2, height - 0.4, height - 0.4]),
            glass,
        )
    stamp.detail(
        view.project(
            [u - width / 2 + 0.2, u + width / 2 - 0.2, u + width / 2 - 0.2, u - width / 2 + 0.2],
            s0,
            [1.3, 1.3, height - 0.3, height - 0.3],
        ),
        glass,
    )


def _vehicle_face(stamp, view, u, s0, width, clearance, body_top, facing, kind) -> None:
    """Bumper, number plate and tail or head lights on the face turned to the camera."""
    hw = width / 2
    lamp_z = body_top - 0.3 if kind == "car" else clearance + 0.4
    rects = np.array([  # (u0, u1, z0, z1) relative to the centre line of the face
        (-hw, hw, clearance, clearance + 0.2), (-0.26, 0.26, 0.5, 0.62),
        (-hw + 0.05, -hw + 0.35, lamp_z, lamp_z + 0.15), (hw - 0.35, hw - 0.05, lamp_z, lamp_z + 0.15),
    ])  # fmt: skip
    quads = view.project(u + rects[:, [0, 1, 1, 0]], s0, rects[:, [2, 2, 3, 3]])
    stamp.detail(quads[0], (40, 40, 42))
    stamp.detail(quads[1], (230, 230, 225))
    stamp.detail(quads[2:], (200, 30, 25) if facing > 0 else (240, 240, 220))


def _limbs(view: _View, u, s, heading, joints: dict) -> dict[str, np.ndarray]:
    """Project joints given in the body frame (forward, right, up) for a body facing ``heading``."""
    fwd, right, up = np.array(list(joints.values()), np.float64).T
    sin, cos = math.sin(heading), math.cos(heading)
    points = view.project(u + fwd * sin + right * cos, s + fwd * cos - right * sin, up)
    return dict(zip(joints, points))


def _draw_person(canvas: _Canvas, view: _View, thing: _Thing, u: float, s: float, t: float) -> None:
    p = thing.p
    k, w = p["height"] / 1.75, p["width"]
    if view.pixels(p["height"], s) < 24:  # small: a flat silhouette reads the same
        _figure(canvas, view, u, s, p, ID["person"], hip=0.92 * k, feet=0.0)
        return
    swing = 0.28 * math.sin(p["phase"] + t * 7.0) if p["moving"] else 0.0
    joints = {
        "hip_l": (0, -0.09 * w, 0.92 * k), "hip_r": (0, 0.09 * w, 0.92 * k),
        "knee_l": (swing * 0.55, -0.1 * w, 0.5 * k), "knee_r": (-swing * 0.55, 0.1 * w, 0.5 * k),
        "foot_l": (swing, -0.1 * w, 0.06 * k), "foot_r": (-swing, 0.1 * w, 0.06 * k),
        "sh_l": (0, -0.2 * w, 1.42 * k), "sh_r": (0, 0.2 * w, 1.42 * k),
        "hand_l": (-swing * 0.7, -0.25 * w, 0.82 * k), "hand_r": (swing * 0.7, 0.25 * w, 0.82 * k),
        "head": (0.02, 0, 1.62 * k),
    }  # fmt: skip
    torso = [(a * 0.11, r * 0.19 * w, z * k) for a in (-1, 1) for r in (-1, 1) for z in (0.9, 1.45)]
    _human(canvas, view, u, s, p, _limbs(view, u, s, p["heading"], joints), torso, p["heading"], ID["person"])


def _figure(canvas, view, u, s, outfit, label, hip: float, feet: float, depth: float | None = None) -> None:
    """Camera-facing silhouette (legs, torso, head) for people a few pixels tall."""
    k, w = outfit["height"] / 1.75, outfit["width"]
    shoulder = hip + 0.53 * k
    points = view.billboard(u, s, [
        (-0.13 * w, hip), (0.13 * w, hip), (0.12 * w, feet), (-0.12 * w, feet),  # legs
        (-0.2 * w, shoulder), (0.2 * w, shoulder), (0.16 * w, hip - 0.04), (-0.16 * w, hip - 0.04),  # torso
        (0.0, shoulder + 0.2 * k),  # head centre
    ])  # fmt: skip
    radius = view.pixels(0.11 * k, s)
    stamp = canvas.stamp(
        [points, points[8] - radius - 1, points[8] + radius + 1], float(s - view.s_cam) if depth is None else depth
    )
    stamp.fill(points[:4], outfit["pants"], label)
    stamp.fill(points[4:8], outfit["shirt"], label)
    stamp.disc(points[8], radius, outfit["skin"], label)
    stamp.commit()


def _human(canvas, view, u, s, outfit, joints, torso, heading, label, depth: float | None = None) -> None:
    """Limbs as thick lines between projected joints, a box torso (convex hull), a disc head."""
    scale = view.pixels(1.0, s)
    k = outfit["height"] / 1.75
    torso = cv2.convexHull(np.array(list(_limbs(view, u, s, heading, dict(enumerate(torso))).values()), np.float32))[
        :, 0
    ]
    head = joints["head"]
    extent = [torso, head - 0.2 * scale, head + 0.2 * scale, np.array(list(joints.values()))]
    stamp = canvas.stamp(extent, float(s - view.s_cam) if depth is None else depth)
    if not stamp.visible:
        return
    leg, arm = 0.15 * k * scale, 0.09 * k * scale
    for side in ("l", "r"):
        stamp.line(
            np.array([joints[f"hip_{side}"], joints[f"knee_{side}"], joints[f"foot_{side}"]]),
            leg,
            outfit["pants"],
            label,
        )
    stamp.fill(torso, outfit["shirt"], label)
    for side in ("l", "r"):
        stamp.line(np.array([joints[f"sh_{side}"], joints[f"hand_{side}"]]), arm, _shade(outfit["shirt"], 0.9), label)
    r = 0.105 * k * scale
    stamp.disc(head, r, outfit["skin"], label)
    hair = head + np.array([[-1.05, -0.2], [1.05, -0.2], [0.8, -1.25], [-0.8, -1.25]]) * r
    stamp.detail(hair, outfit["hair"])
    stamp.commit()


def _draw_cycle(canvas: _Canvas, view: _View, thing: _Thing, u: float, s: float, t: float) -> None:
    """Bicycle or motorcycle as 3D line work, optionally with a rider (label 'rider')."""
    p = thing.p
    motor, heading, rider = p["motor"], p["heading"], p["rider"]
    label = ID["motorcycle" if motor else "bicycle"]
    r, base = (0.32, 0.72) if motor else (0.33, 0.55)  # wheel radius, half the wheelbase
    depth = float(s - view.s_cam)
    angle = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = [(r * math.cos(a), 0.0, r + r * math.sin(a)) for a in angle]
    points = _limbs(view, u, s, heading, {
        **{("rear", i): (x - base, y, z) for i, (x, y, z) in enumerate(ring)},
        **{("front", i): (x + base, y, z) for i, (x, y, z) in enumerate(ring)},
        "rear": (-base, 0, r), "front": (base, 0, r), "crank": (-0.05, 0, 0.32), "seat": (-0.22, 0, 0.92),
        "bar": (base - 0.12, 0, 1.0), "bar_l": (base - 0.15, -0.25, 1.02), "bar_r": (base - 0.15, 0.25, 1.02),
    })  # fmt: skip
    wheels = [np.array([points[(w, i)] for i in range(len(ring))]) for w in ("rear", "front")]
    scale = view.pixels(1.0, s)
    stamp = canvas.stamp(wheels + [points["bar"][None]], depth)
    if not stamp.visible:
        return
    if view.pixels(2 * base, s) < 14:  # small: wheels and frame merge into one dark blob
        stamp.fill(cv2.convexHull(np.concatenate(wheels).astype(np.float32))[:, 0], _shade(p["frame"], 0.5), label)
    else:
        color, tube = p["frame"], 0.04 * scale
        for wheel in wheels:
            stamp.line(wheel, (0.1 if motor else 0.045) * scale, (25, 25, 25), label, closed=True)
        frame = np.array([points[n] for n in ("rear", "crank", "seat", "rear", "crank", "bar", "front")])
        stamp.line(frame, tube, color, label)
        stamp.line(np.array([points["seat"], points["bar"]]), tube, color, label)
        stamp.line(np.array([points["bar_l"], points["bar_r"]]), tube * 0.8, (40, 40, 40), label)
        if motor:
            body = [(a * 0.45, b * 0.18, z) for a in (-1, 1) for b in (-1, 1) for z in (0.35, 0.85)]
            hull = np.array(list(_limbs(view, u, s, heading, dict(enumerate(body))).values()), np.float32)
            stamp.fill(cv2.convexHull(hull)[:, 0], color, label)
    stamp.commit()
    if rider is None:
        return
    lift = 0.1 if motor else 0.0
    if view.pixels(rider["height"], s) < 24:
        _figure(canvas, view, u, s, rider, ID["rider"], hip=0.95 + lift, feet=0.25 + lift, depth=depth - 0.01)
        return
    k, w = rider["height"] / 1.75, rider["width"]
    pedal = p["pedal"] + t * 5.0
    c, sn = 0.15 * math.cos(pedal), 0.15 * math.sin(pedal)
    joints = {
        "hip_l": (-0.2, -0.1, 0.95), "hip_r": (-0.2, 0.1, 0.95),
        "knee_l": (0.1, -0.13, 0.75 + 0.5 * sn), "knee_r": (0.1, 0.13, 0.75 - 0.5 * sn),
        "foot_l": (-0.05 + c, -0.15, 0.32 + sn), "foot_r": (-0.05 - c, 0.15, 0.32 - sn),
        "sh_l": (0.05, -0.2, 0.95 + 0.5 * k), "sh_r": (0.05, 0.2, 0.95 + 0.5 * k),
        "hand_l": (base - 0.15, -0.24, 1.03), "hand_r": (base - 0.15, 0.24, 1.03),
        "head": (0.12, 0, 1.17 + 0.5 * k),
    }  # fmt: skip
    joints = {name: (f, side, z + lift) for name, (f, side, z) in joints.items()}
    torso = [
        (f, b * 0.19 * w, z + lift)
        for f, z in ((-0.3, 0.93), (-0.1, 0.93), (-0.05, 0.95 + 0.5 * k), (0.15, 0.95 + 0.5 * k))
        for b in (-1, 1)
    ]
    # The rider is in front of the frame where they overlap (legs over the top tube).
    _human(canvas, view, u, s, rider, _limbs(view, u, s, heading, joints), torso, heading, ID["rider"], depth - 0.01)


_DRAW = {
    "lamp": _draw_lamp,
    "tree": _draw_tree,
    "sign": _draw_sign,
    "traffic_light": _draw_traffic_light,
    "bin": _draw_bin,
    "vehicle": _draw_vehicle,
    "person": _draw_person,
    "cycle": _draw_cycle,
}


def _draw_ego_vehicle(canvas: _Canvas, street: Street) -> None:
    height, width = canvas.lab.shape
    if street.hood is not None:
        top = height * (1.0 - street.hood)
        xs = np.linspace(0, width, 33)
        arc = top + (height - top) * 0.6 * ((xs - width / 2) / (width / 2)) ** 2
        hood = np.concatenate([np.stack([xs, arc], -1), [[width, height + 2], [0, height + 2]]])
        stamp = canvas.stamp([hood], 0.0)
        stamp.fill(hood, street.hood_color, ID["ego vehicle"])
        band = np.concatenate(
            [
                np.stack([xs, arc + (height - top) * 0.25], -1),
                np.stack([xs[::-1], arc[::-1] + (height - top) * 0.32], -1),
            ]
        )
        stamp.detail(band, _shade(street.hood_color, 1.25) if max(street.hood_color) < 200 else (180, 190, 200))
        stamp.commit()
    if street.border is not None:
        b = max(1, round(street.border * width))
        for rect in ((0, 0, b, height), (width - b, 0, width, height), (0, height - b, width, height)):
            x0, y0, x1, y1 = rect
            canvas.rgb[y0:y1, x0:x1] = 0.0
            canvas.lab[y0:y1, x0:x1] = ID["rectification border"]
            canvas.zbuf[y0:y1, x0:x1] = 0.0


def _finish(canvas: _Canvas, street: Street, rng: np.random.Generator) -> np.ndarray:
    """Haze, global lighting (contrast, brightness, color cast), texture and sensor noise."""
    height, width = canvas.lab.shape
    depth = np.where(canvas.zbuf < np.inf, canvas.zbuf, canvas.ground_depth)  # sky: 0, no haze
    clear = cv2.exp(depth * np.float32(-1.0 / street.visibility))
    horizon = cv2.resize(
        np.rint([[street.sky_horizon]]).astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
    )
    rgb = cv2.blendLinear(canvas.rgb, horizon, clear, 1.0 - clear)
    # One affine color transform: contrast about mid-grey, brightness, per-channel cast.
    gain = street.contrast * street.cast
    offset = gain * 128.0 * (1.0 / street.contrast - 1.0) + street.brightness
    rgb = cv2.transform(rgb, np.concatenate([np.diag(gain), offset[:, None]], 1).astype(np.float32))
    # Luminance noise: uniform bytes (std 256 / sqrt(12)) scaled per label (foliage busy, sky flat).
    uniform = np.frombuffer(rng.bytes(height * width), np.int8).reshape(height, width)
    amplitude = cv2.LUT(
        canvas.lab, (_TEXTURE_AMPLITUDE + np.float32(street.sensor_noise)) * np.float32(math.sqrt(12) / 256)
    )
    noise = cv2.multiply(uniform, amplitude, dtype=cv2.CV_16S)
    return cv2.add(rgb, cv2.merge([noise, noise, noise]), dtype=cv2.CV_8U)


# --- public API -----------------------------------------------------------------------------------


def render_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One random street scene: (RGB uint8 H×W×3, Cityscapes label ids uint8 H×W)."""
    _check_size(size)
    street = Street(rng)
    return _render(street, 0.0, size, rng)


def render_sequence(
    rng: np.random.Generator, size: tuple[int, int], num: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``num`` consecutive frames at 17 fps of one street: the camera drives on, cars and people move."""
    _check_size(size)
    street = Street(rng, length=STREET_AHEAD + 15.0 * num / FPS)
    noise_seed = int(rng.integers(1 << 62))
    for i in range(num):
        yield _render(street, i / FPS, size, np.random.default_rng([noise_seed, i]))


def generate(
    out_dir: str | Path,
    num: int,
    size: tuple[int, int] = (512, 1024),
    seed: int = 0,
    split: str = "train",
    city: str = "synthtown",
    sequence: bool = False,
    progress: bool = False,
) -> list[tuple[Path, Path]]:
    """Write ``num`` scenes as ``out_dir``/leftImg8bit and ``out_dir``/gtFine in the Cityscapes layout.

    Independent scenes are named ``{city}_{i:06d}_000019`` (scene ``i`` depends only on ``seed`` and
    ``i``); with ``sequence=True`` the frames of one drive are ``{city}_{seed:06d}_{i:06d}``.
    Same arguments → byte-identical files. Returns [(image path, label path), ...].
    """
    _check_size(size)
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be a positive integer, got {num!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not re.fullmatch(r"[A-Za-z0-9-]+", city or ""):
        raise ValueError(f"city must be letters, digits or '-' (Cityscapes names split on '_'), got {city!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    out_dir = Path(out_dir)
    image_dir = out_dir / "leftImg8bit" / split / city
    label_dir = out_dir / "gtFine" / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)

    if sequence:
        frames = render_sequence(np.random.default_rng([seed, 1]), size, num)
        names = (f"{city}_{seed % 1_000_000:06d}_{i:06d}" for i in range(num))
    else:
        frames = (render_scene(np.random.default_rng([seed, 0, i]), size) for i in range(num))
        names = (f"{city}_{i:06d}_{ANNOTATED_FRAME:06d}" for i in range(num))
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, total=num, desc=f"synth {split}", unit="img")
    written = []
    for (rgb, label_ids), name in zip(frames, names):
        image_path = image_dir / f"{name}_leftImg8bit.png"
        label_path = label_dir / f"{name}_gtFine_labelIds.png"
        _write_png(image_path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        _write_png(label_path, label_ids)
        written.append((image_path, label_path))
    return written


def _write_png(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array):
        raise OSError(f"could not write {path}")


def _check_size(size) -> None:
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f"size must be (height, width) with both >= 16, got {size!r}")
