"""The street's fixed parts: sky, ground with markings and shadows, skyline, facades, hedges, walls, fences."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..labels import NAME_TO_ID as ID
from .camera import NEAR_CLIP, View, visible_things
from .colors import shade
from .layout import STREET_AHEAD, Segment, Street
from .raster import Canvas, Stamp, fill_image


def draw_sky(canvas: Canvas, view: View, street: Street) -> None:
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


def draw_ground(canvas: Canvas, view: View, street: Street, t: float) -> None:
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
    zones = _fill_zone_strips(zone, view, street, depth)

    # Markings and crosswalks: ground polygons with extra zone codes (label road), kept on the road.
    colors, labels = [z.color for z in zones], [z.label for z in zones]
    marks = np.zeros_like(zone)
    for polygons, color in _marking_polygons(view, street):
        colors.append(color)
        labels.append(ID["road"])
        fill_image(marks, list(polygons - [0.5, first + 0.5]), len(colors) - 1)
    kind_lut = np.zeros(256, np.uint8)
    kind_lut[: len(zones)] = [_KIND_CODE[z.kind] for z in zones]
    on_road = cv2.LUT(zone, kind_lut) == _ROAD
    on_road &= marks > 0
    np.copyto(zone, marks, where=on_road)

    # Brightness factor: texture scaled per zone, then paving joints and shadows.
    factor = _ground_texture(view, depth)
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


def _fill_zone_strips(zone: np.ndarray, view: View, street: Street, depth: np.ndarray) -> list:
    """Zone strips, far left to far right, between boundaries u_0 < u_1 < ... (±inf at the ends),
    filled into ``zone`` (ground rows, at ``depth`` each) as their index; returns the zones."""
    width = view.size[1]
    zones = street.zones[-1][::-1] + street.zones[1]
    bounds = [-z.outer for z in street.zones[-1][-2::-1]] + [0.0] + [z.outer for z in street.zones[1][:-1]]
    rows = len(depth)
    sample = np.r_[np.arange(0, rows - 1, 4 if view.k else rows), rows - 1]  # edges are straight if k = 0
    scale = view.f / depth[sample]  # pixels per metre across the road, per sampled row
    offset = view.cx - 0.5 - scale * (view.cam_u - 0.5 * view.k * depth[sample] ** 2)
    edge_x = [np.full(len(sample), -4.0)]
    edge_x += [np.clip(offset + scale * b, -4.0, width + 4.0) for b in bounds]
    edge_x += [np.full(len(sample), width + 4.0)]
    y = sample.astype(np.float64)
    for index in range(len(zones)):
        left = np.stack([edge_x[index], y], -1)
        right = np.stack([edge_x[index + 1], y], -1)[::-1]
        fill_image(zone, np.concatenate([left, right]), index)
    return zones


def _ground_texture(view: View, depth: np.ndarray) -> np.ndarray:
    """World-fixed texture of the ground rows (a smooth random tile indexed by s and u, so it moves
    with the road in sequences), sampled at half resolution as it is smooth anyway."""
    width = view.size[1]
    half_depth = depth[::2, None]
    half_cols = np.arange(0.5, width, 2.0) - view.cx
    half_u = half_cols * (half_depth / view.f) + (view.cam_u - 0.5 * view.k * half_depth**2)
    tile = _texture_tile()
    coarse = tile[
        np.floor((half_depth + view.s_cam) * 3).astype(np.int64) & 255, np.floor(half_u * 3).astype(np.int64) & 255
    ]
    return cv2.resize(coarse, (width, len(depth)), interpolation=cv2.INTER_LINEAR)


def _ground_polygons(view: View, u0, u1, s0, s1) -> np.ndarray:
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


def _marking_polygons(view: View, street: Street) -> list[tuple[np.ndarray, tuple]]:
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


def _ground_masks(view: View, street: Street, t: float, first: int) -> list[tuple[np.ndarray, float]]:
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
    for thing, u, s in visible_things(view, street, t):
        if thing.kind == "vehicle":
            length, w, _ = thing.p["dims"]
            if s - length / 2 - view.s_cam < NEAR_CLIP + 0.5:
                continue  # too close to be drawn (see objects._draw_vehicle), so it casts no shadow either
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
            fill_image(mask, list(group - [0.5, first + 0.5]), 1)
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


def draw_skyline(canvas: Canvas, view: View, street: Street) -> None:
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


def _plane_depth(view: View, u: float, x0: int, x1: int) -> np.ndarray:
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


def draw_segment(canvas: Canvas, view: View, seg: Segment) -> None:
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
        stamp.fill(end_face, shade(color, 0.72), label, depth=float(seg.s0 - view.s_cam))
    if seg.kind == "building":
        _facade_details(stamp, view, seg, s0)
    elif seg.kind == "wall":
        band = view.project(seg.u, np.r_[ss, ss[::-1]], np.r_[np.full_like(ss, seg.height - 0.12), tops[::-1]])
        stamp.detail(band, shade(color, 1.15))
    for i, (s, _, _, col) in enumerate(crowns):
        stamp.depth = float(s - view.s_cam)
        stamp.disc(centres[i], radii[i], col, label)
        if radii[i] > 4:
            stamp.highlight(centres[i] - radii[i] * 0.25, radii[i] * 0.6, shade(col, 1.12))
    stamp.commit()


def _fence(stamp: Stamp, view: View, seg: Segment, s0: float, depth: np.ndarray, label, color) -> None:
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


def _facade_details(stamp: Stamp, view: View, seg: Segment, s0: float) -> None:
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
    stamp.detail(bands[0], shade(p["color"], 0.75))
    stamp.detail(bands[1], shade(p["color"], 0.8))
    shops = p["shops"][p["shops"] - 1.4 > s0 + 0.1]
    if len(shops):
        stamp.detail(_window_quads(view, seg.u, shops, np.full(len(shops), 1.75), 1.4, 1.15), (40, 45, 50))


def _window_quads(view: View, u: float, cs: np.ndarray, zs: np.ndarray, hw: float, hh: float) -> np.ndarray:
    s = np.stack([cs - hw, cs + hw, cs + hw, cs - hw], 1)
    z = np.stack([zs - hh, zs - hh, zs + hh, zs + hh], 1)
    return view.project(u, s, z)  # (N, 4, 2)
