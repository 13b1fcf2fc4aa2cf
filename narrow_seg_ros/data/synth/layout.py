"""The random street: cross-section, backdrop, objects, lighting; everything drawn later is fixed here."""

from __future__ import annotations

import math

import numpy as np

from ..labels import NAME_TO_ID as ID
from .colors import CAR_PAINT, CLOTHES, FACADE, HAIR, SKIN, foliage, jitter, pick, shade

STREET_AHEAD = 220.0  # m of street generated ahead of the camera


class Thing:
    """A street object: kind, position (u, s) at t = 0, velocity, and kind-specific parameters."""

    __slots__ = ("kind", "u", "s", "vu", "vs", "p")

    def __init__(self, kind: str, u: float, s: float, vu: float = 0.0, vs: float = 0.0, **params):
        self.kind, self.u, self.s, self.vu, self.vs, self.p = kind, u, s, vu, vs, params

    def at(self, t: float) -> tuple[float, float]:
        return self.u + self.vu * t, self.s + self.vs * t


class Segment:
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
        self.segments: list[Segment] = []
        for side in (-1, 1):
            self._backdrop(rng, side)
        self.things: list[Thing] = []
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
        self.lanes_right = int(pick(rng, [1, 1, 2, 2, 3]))
        self.lanes_left = 0 if rng.random() < 0.2 else int(pick(rng, [1, 1, 2]))
        self.cam_u = (int(rng.integers(self.lanes_right)) + 0.5) * lw + rng.uniform(-0.3, 0.3)
        self.urban = rng.uniform(0.2, 1.0)  # share of buildings (vs. greenery) along the street
        asphalt = jitter(rng, pick(rng, [(78, 78, 82), (95, 94, 96), (110, 108, 106), (70, 72, 80)]), 6)
        self.zones = {}  # side -> list[_Zone], ordered outwards
        self.parking = {}  # side -> (inner, outer) of the parking strip, or None
        self.curb = {}  # side -> distance of the curb (sidewalk starts) from the centre line
        self.property_line = {}
        self.sidewalk = {}  # side -> (inner, outer)
        paving = jitter(rng, pick(rng, [(150, 148, 145), (170, 160, 150), (135, 120, 115), (160, 160, 165)]), 8)
        grass = jitter(rng, pick(rng, [(95, 120, 55), (110, 125, 70), (120, 115, 75), (85, 110, 60)]), 8)
        for side, lanes in ((1, self.lanes_right), (-1, self.lanes_left)):
            edge = lanes * lw
            zones = [_Zone(edge, "road", asphalt, "road", 0.06)]
            self.parking[side] = None
            if rng.random() < 0.45:
                width = rng.uniform(2.0, 2.5)
                cobbles = rng.random() < 0.5  # distinct paving is labelled 'parking', plain asphalt 'road'
                color = jitter(rng, (105, 100, 98), 8) if cobbles else asphalt
                zones.append(
                    _Zone(edge + width, "parking" if cobbles else "road", color, "cobbles" if cobbles else "road", 0.1)
                )
                self.parking[side] = (edge, edge + width)
                edge += width
            zones.append(_Zone(edge + 0.2, "sidewalk", shade(paving, 1.15), "curb", 0.04))
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
        white = self.paint_white = shade((222, 222, 215), rng.uniform(0.75, 1.0))
        half = rng.uniform(0.06, 0.08)
        period, dash = pick(rng, [(9.0, 3.0), (12.0, 6.0), (6.0, 3.0)])
        lines = []
        for i in range(1, self.lanes_right):
            lines.append((i * lw, half, period, dash, white))
        for i in range(1, self.lanes_left):
            lines.append((-i * lw, half, period, dash, white))
        if self.lanes_left:
            centre = pick(rng, ["solid", "double", "dashed"])
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
        self.sky_zenith = jitter(rng, (170, 178, 188) if overcast else (75, 130, 205), 12)
        self.sky_horizon = jitter(rng, (205, 208, 212) if overcast else (180, 205, 230), 8)
        self.clouds = rng.standard_normal((6, 12)).astype(np.float32)  # fixed, so sequences don't flicker
        self.cloud_cover = rng.uniform(0.0, 0.9)
        self.visibility = rng.uniform(150.0, 700.0)  # m, for atmospheric haze
        self.sun_side = int(pick(rng, [-1, 1]))  # facades on this side cast shadows onto the street
        self.shadow_ratio = 0.0 if overcast else rng.uniform(0.2, 1.2)  # shadow length / height
        self.shadow_strength = rng.uniform(0.45, 0.75)
        self.contrast = rng.uniform(0.75, 1.15)
        self.brightness = rng.uniform(-30.0, 20.0)
        self.cast = rng.uniform(0.9, 1.1, 3)
        self.sensor_noise = rng.uniform(1.0, 4.0)
        self.hood = rng.uniform(0.08, 0.18) if rng.random() < 0.5 else None  # ego-vehicle hood height / H
        self.hood_color = jitter(rng, pick(rng, CAR_PAINT), 6)
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
                    color = jitter(rng, pick(rng, [(150, 145, 140), (170, 120, 100), (120, 118, 112)]), 10)
                else:
                    color = jitter(rng, pick(rng, [(60, 62, 60), (120, 100, 80), (150, 150, 150), (40, 70, 50)]), 8)
                self.segments.append(
                    Segment(
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

    def _building(self, rng, side, u, s0, s1) -> Segment:
        height = rng.uniform(7.0, 28.0)
        floor, column = rng.uniform(2.8, 3.6), rng.uniform(2.2, 3.8)
        shop = rng.random() < 0.5  # a ground floor of shop windows instead of ordinary ones
        columns = np.arange(s0 + column / 2, s1 - column / 3, column)
        floors = np.arange((3.6 if shop else 0.9) + floor * 0.3, height - 1.2, floor)
        window_s, window_z = (a.ravel() for a in np.meshgrid(columns, floors))
        return Segment(
            "building",
            side,
            u,
            s0,
            s1,
            height,
            color=jitter(rng, pick(rng, FACADE), 10),
            window_s=window_s,
            window_z=window_z,
            tints=rng.choice(3, len(window_s), p=rng.dirichlet((3, 1, 1))),
            window_w=rng.uniform(0.35, 0.65) * column / 2,
            window_h=rng.uniform(0.4, 0.6) * floor / 2,
            shops=np.arange(s0 + 2.5, s1 - 1.0, 4.0) if shop else np.zeros(0),
            frame=jitter(rng, (230, 230, 225), 10),
            depth=rng.uniform(8.0, 16.0),
        )

    def _hedge(self, rng, side, u, s0, s1) -> Segment:
        height = rng.uniform(1.5, 7.0)
        n = int((s1 - s0) / 4.0) + 2
        crowns = [
            (
                rng.uniform(s0, s1),
                rng.uniform(0.6, 1.0) * height,
                rng.uniform(1.0, 3.0),
                foliage(rng),
            )
            for _ in range(n)
        ]
        return Segment(
            "hedge",
            side,
            u,
            s0,
            s1,
            height,
            color=foliage(rng),
            bumps=rng.uniform(0, 6.28, 3),
            crowns=crowns,
        )

    def _street_furniture(self, rng):
        lamp_sides = pick(rng, [(-1, 1), (-1, 1), (1,), (-1,), ()])
        for side in lamp_sides:
            spacing, s = rng.uniform(18.0, 35.0), rng.uniform(-10.0, 10.0)
            color = jitter(rng, pick(rng, [(90, 95, 100), (140, 140, 135), (50, 60, 55)]), 8)
            height = rng.uniform(6.0, 9.0)
            while s < self.length:
                u = side * (self.curb[side] + 0.5)
                self.things.append(
                    Thing("lamp", u, s, side=side, height=height, color=color, arm=rng.uniform(1.2, 2.5))
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
            side = int(pick(rng, [-1, 1]))
            u = side * (self.curb[side] + rng.uniform(0.3, 0.6))
            self.things.append(self._sign(rng, u, rng.uniform(5.0, self.length)))
        for _ in range(rng.poisson(self.length / 40.0)):
            side = int(pick(rng, [-1, 1]))
            u = side * (self.sidewalk[side][1] - 0.4)
            self.things.append(
                Thing(
                    "bin",
                    u,
                    rng.uniform(0.0, self.length),
                    color=jitter(rng, (60, 80, 60), 20),
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
                housing = jitter(rng, pick(rng, [(40, 40, 40), (200, 170, 40)]), 6)
                self.things.append(
                    Thing(
                        "traffic_light",
                        side * pole,
                        self.crosswalk - 1.5,
                        side=side,
                        reach=arm,
                        lit=int(rng.integers(3)),
                        housing=housing,
                    )
                )

    def _tree(self, rng, u, s, side, room) -> Thing:
        """A trunk and a crown of overlapping discs that stays out of facades ``room`` m outwards."""
        height = rng.uniform(4.0, 9.0)
        radius = rng.uniform(1.2, 2.8)
        blobs = []
        for _ in range(int(rng.integers(5, 10))):
            r = radius * rng.uniform(0.45, 0.8)
            x = min(rng.normal(0, radius * 0.5) * side, max(room - r, -r)) * side  # side * x: outwards
            blobs.append((x, height - radius + rng.normal(0, radius * 0.4), r, foliage(rng)))
        return Thing(
            "tree",
            u,
            s,
            trunk=jitter(rng, (90, 75, 60), 10),
            crown_base=height - 2 * radius,
            blobs=blobs,
            thickness=rng.uniform(0.2, 0.4),
        )

    def _sign(self, rng, u, s) -> Thing:
        shape = pick(rng, ["circle", "circle", "triangle", "square", "octagon", "rectangle"])
        return Thing(
            "sign",
            u,
            s,
            shape=shape,
            height=rng.uniform(2.0, 3.0),
            size=rng.uniform(0.55, 0.8),
            pole=jitter(rng, (140, 140, 140), 10),
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

    def _vehicle(self, rng, u, s, direction, speed, lane_cars) -> Thing:
        roll = rng.random()
        if lane_cars and roll < 0.07:
            kind, dims = "bus", (rng.uniform(10.5, 12.5), 2.55, rng.uniform(2.9, 3.2))
            paint = jitter(rng, pick(rng, [(220, 220, 215), (200, 40, 40), (240, 200, 40), (40, 90, 170)]), 8)
        elif roll < (0.17 if lane_cars else 0.05):
            kind, dims = "truck", (rng.uniform(6.0, 9.0), 2.45, rng.uniform(2.9, 3.8))
            paint = jitter(rng, pick(rng, [(230, 230, 230), (200, 200, 205), (60, 80, 130), (180, 40, 30)]), 8)
        else:
            van = rng.random() < 0.15
            kind = "car"
            dims = (
                (rng.uniform(4.6, 5.2), 1.95, rng.uniform(1.9, 2.1))
                if van
                else (rng.uniform(3.7, 4.9), rng.uniform(1.68, 1.9), rng.uniform(1.38, 1.6))
            )
            paint = jitter(rng, pick(rng, CAR_PAINT), 6)
        # s is the near end; motion is along s at `speed` (0 for parked vehicles)
        return Thing(
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
            side = int(pick(rng, [-1, 1]))
            inner, outer = self.sidewalk[side]
            u = side * rng.uniform(inner + 0.4, max(inner + 0.5, outer - 0.3))
            s = rng.uniform(3.0, self.length * 0.8)
            walking = rng.random() < 0.75
            heading = pick(rng, [0.0, math.pi]) if walking else rng.uniform(0, 2 * math.pi)
            speed = rng.uniform(1.0, 1.6) if walking else 0.0
            for k in range(1 if rng.random() < 0.7 else int(rng.integers(2, 4))):  # sometimes small groups
                du, ds = (side * 0.6 * k, rng.uniform(-0.5, 0.5) * k)
                self.things.append(self._person(rng, u - du, s + ds, heading, speed))
        if self.crosswalk is not None:
            road = (-self.lanes_left * self.lane_width, self.lanes_right * self.lane_width)
            for _ in range(int(rng.integers(0, 5))):
                heading = pick(rng, [math.pi / 2, -math.pi / 2])
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
                Thing(
                    "cycle",
                    u,
                    rng.uniform(6.0, self.length * 0.8),
                    vs=speed,
                    heading=heading,
                    motor=motor,
                    rider=self._outfit(rng),
                    frame=jitter(rng, pick(rng, CAR_PAINT), 10),
                    pedal=rng.uniform(0, 6.28),
                )
            )
        for _ in range(rng.poisson(self.length / 60.0)):  # parked bicycles, seen side-on
            side = int(pick(rng, [-1, 1]))
            u = side * (self.curb[side] + rng.uniform(0.8, 1.5))
            self.things.append(
                Thing(
                    "cycle",
                    u,
                    rng.uniform(5.0, self.length * 0.6),
                    heading=math.pi / 2 * side,
                    motor=False,
                    rider=None,
                    frame=jitter(rng, pick(rng, CAR_PAINT), 10),
                    pedal=0.0,
                )
            )

    def _outfit(self, rng) -> dict:
        return {
            "shirt": jitter(rng, pick(rng, CLOTHES), 12),
            "pants": jitter(rng, pick(rng, CLOTHES), 10),
            "skin": jitter(rng, pick(rng, SKIN), 8),
            "hair": jitter(rng, pick(rng, HAIR), 6),
            "height": rng.uniform(1.55, 1.95),
            "width": rng.uniform(0.9, 1.15),
        }

    def _person(self, rng, u, s, heading, speed) -> Thing:
        vu, vs = speed * math.sin(heading), speed * math.cos(heading)
        return Thing(
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
                    ("building", x, x + width, rng.uniform(8.0, 50.0), distance, jitter(rng, pick(rng, FACADE), 12))
                )
            else:
                self.skyline.append(("vegetation", x, x + width, rng.uniform(6.0, 16.0), distance, foliage(rng)))
            x += width * rng.uniform(0.6, 1.0)
