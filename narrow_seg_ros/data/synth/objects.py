"""Street objects drawn one stamp each: lamps, trees, signs, traffic lights, bins, vehicles, people, cycles."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..labels import NAME_TO_ID as ID
from .camera import NEAR_CLIP, View
from .colors import shade
from .layout import Thing
from .raster import Canvas


def _draw_lamp(canvas: Canvas, view: View, thing: Thing, u: float, s: float, t: float) -> None:
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
    stamp.fill(points[8:], shade(p["color"], 0.7), ID["pole"])  # the lamp head counts as pole too
    stamp.commit()


def _draw_tree(canvas: Canvas, view: View, thing: Thing, u: float, s: float, t: float) -> None:
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
            stamp.highlight(centre - radius * 0.25, radius * 0.6, shade(color, 1.12))
    stamp.commit()


_RED, _WHITE, _BLUE, _YELLOW, _GREEN = (200, 30, 30), (235, 235, 235), (40, 80, 170), (240, 200, 30), (30, 100, 60)
_SIGN_COLORS = {  # shape -> three variants of (rim, face)
    "circle": [(_RED, _WHITE), (_BLUE, _BLUE), (_RED, _BLUE)],
    "triangle": [(_RED, _WHITE)] * 3,
    "square": [(_WHITE, _YELLOW), (_BLUE, _BLUE), (_WHITE, _BLUE)],
    "octagon": [(_RED, _RED)] * 3,
    "rectangle": [(_GREEN, _GREEN), (_BLUE, _BLUE), (_WHITE, _WHITE)],
}


def _draw_sign(canvas: Canvas, view: View, thing: Thing, u: float, s: float, t: float) -> None:
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


def _draw_traffic_light(canvas: Canvas, view: View, thing: Thing, u: float, s: float, t: float) -> None:
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


def _draw_bin(canvas: Canvas, view: View, thing: Thing, u: float, s: float, t: float) -> None:
    w, length, h = thing.p["size"]
    corners = _box(view, u - w / 2, u + w / 2, s - length / 2, s + length / 2, 0.0, h)
    stamp = canvas.stamp([corners], float(s - length / 2 - view.s_cam))
    stamp.fill(cv2.convexHull(corners.astype(np.float32))[:, 0], thing.p["color"], ID["static"])
    stamp.commit()


def _box(view: View, u0, u1, s0, s1, z0, z1) -> np.ndarray:
    """8 projected corners; bit 0 of the index selects u1, bit 1 s1, bit 2 z1."""
    i = np.arange(8)
    return view.project(np.where(i & 1, u1, u0), np.where(i & 2, s1, s0), np.where(i & 4, z1, z0))


_FACES = {"near": [0, 1, 5, 4], "left": [0, 2, 6, 4], "right": [1, 3, 7, 5], "top": [4, 5, 7, 6]}


def _draw_vehicle(canvas: Canvas, view: View, thing: Thing, u: float, s: float, t: float) -> None:
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
    side_color, face_color, top_color = shade(paint, 0.72), shade(paint, 0.9), shade(paint, 1.08)
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
        stamp.fill(cabin[_FACES[visible_side]], shade(paint, 0.72), label)
        side = cabin[_FACES[visible_side]]
        stamp.detail(side + (side.mean(0) - side) * 0.12, glass)
    if height < view.cam_height:
        stamp.fill(cabin[_FACES["top"]], shade(paint, 1.08), label)
    face = cabin[_FACES["near"]]
    stamp.fill(face, shade(paint, 0.9), label)
    stamp.detail(face + (face.mean(0) - face) * 0.14, glass)


def _truck_cab(stamp, view, u, width, height, span, visible_side, label, windscreen: bool) -> None:
    cab = _box(view, u - width / 2 + 0.05, u + width / 2 - 0.05, span[0], span[1], 0.45, height)
    white = (215.0, 215.0, 212.0)
    if visible_side:
        stamp.fill(cab[_FACES[visible_side]], shade(white, 0.8), label)
    if height < view.cam_height:
        stamp.fill(cab[_FACES["top"]], white, label)
    if windscreen:  # oncoming: the cab front faces the camera
        face = cab[_FACES["near"]]
        stamp.fill(face, shade(white, 0.92), label)
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


def _limbs(view: View, u, s, heading, joints: dict) -> dict[str, np.ndarray]:
    """Project joints given in the body frame (forward, right, up) for a body facing ``heading``."""
    fwd, right, up = np.array(list(joints.values()), np.float64).T
    sin, cos = math.sin(heading), math.cos(heading)
    points = view.project(u + fwd * sin + right * cos, s + fwd * cos - right * sin, up)
    return dict(zip(joints, points))


def _draw_person(canvas: Canvas, view: View, thing: Thing, u: float, s: float, t: float) -> None:
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
        stamp.line(np.array([joints[f"sh_{side}"], joints[f"hand_{side}"]]), arm, shade(outfit["shirt"], 0.9), label)
    r = 0.105 * k * scale
    stamp.disc(head, r, outfit["skin"], label)
    hair = head + np.array([[-1.05, -0.2], [1.05, -0.2], [0.8, -1.25], [-0.8, -1.25]]) * r
    stamp.detail(hair, outfit["hair"])
    stamp.commit()


def _draw_cycle(canvas: Canvas, view: View, thing: Thing, u: float, s: float, t: float) -> None:
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
        stamp.fill(cv2.convexHull(np.concatenate(wheels).astype(np.float32))[:, 0], shade(p["frame"], 0.5), label)
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


DRAW = {
    "lamp": _draw_lamp,
    "tree": _draw_tree,
    "sign": _draw_sign,
    "traffic_light": _draw_traffic_light,
    "bin": _draw_bin,
    "vehicle": _draw_vehicle,
    "person": _draw_person,
    "cycle": _draw_cycle,
}
