"""One frame of a street: the drawing order, the ego vehicle, and the camera's look (haze, lighting, noise)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from ..labels import NAME_TO_ID as ID
from .camera import View, visible_things
from .colors import shade
from .layout import STREET_AHEAD, Street
from .objects import DRAW
from .raster import Canvas
from .static import draw_ground, draw_segment, draw_sky, draw_skyline

FPS = 17.0  # Cityscapes video frame rate, used for sequences

# Texture (noise) amplitude per label id, in 0..255 units: foliage and grass are busy, sky is flat.
_TEXTURE_AMPLITUDE = np.full(256, 4.0, np.float32)
for _name, _amp in {
    "road": 4.5, "sidewalk": 5.0, "parking": 6.0, "building": 4.0, "wall": 6.0, "fence": 3.0,
    "pole": 2.0, "traffic light": 2.0, "traffic sign": 2.0, "vegetation": 16.0, "terrain": 13.0,
    "sky": 1.2, "person": 3.0, "rider": 3.0, "car": 2.5, "truck": 3.0, "bus": 3.0,
    "motorcycle": 2.5, "bicycle": 2.0, "ego vehicle": 1.5, "static": 4.0,
}.items():  # fmt: skip
    _TEXTURE_AMPLITUDE[ID[_name]] = _amp


def _render(street: Street, t: float, size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    view = View(street, size, s_cam=street.cam_speed * t)
    canvas = Canvas(size)
    draw_sky(canvas, view, street)
    draw_ground(canvas, view, street, t)
    draw_skyline(canvas, view, street)
    for segment in sorted(street.segments, key=lambda g: -max(g.s0, view.s_cam)):
        draw_segment(canvas, view, segment)
    for thing, u, s in sorted(visible_things(view, street, t), key=lambda p: -p[2]):  # far to near
        DRAW[thing.kind](canvas, view, thing, u, s, t)
    _draw_ego_vehicle(canvas, street)
    return _finish(canvas, street, rng), canvas.lab


def _draw_ego_vehicle(canvas: Canvas, street: Street) -> None:
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
        stamp.detail(band, shade(street.hood_color, 1.25) if max(street.hood_color) < 200 else (180, 190, 200))
        stamp.commit()
    if street.border is not None:
        b = max(1, round(street.border * width))
        for rect in ((0, 0, b, height), (width - b, 0, width, height), (0, height - b, width, height)):
            x0, y0, x1, y1 = rect
            canvas.rgb[y0:y1, x0:x1] = 0.0
            canvas.lab[y0:y1, x0:x1] = ID["rectification border"]
            canvas.zbuf[y0:y1, x0:x1] = 0.0


def _finish(canvas: Canvas, street: Street, rng: np.random.Generator) -> np.ndarray:
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


def render_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One random street scene: (RGB uint8 H×W×3, Cityscapes label ids uint8 H×W)."""
    check_size(size)
    street = Street(rng)
    return _render(street, 0.0, size, rng)


def render_sequence(
    rng: np.random.Generator, size: tuple[int, int], num: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``num`` consecutive frames at 17 fps of one street: the camera drives on, cars and people move."""
    check_size(size)
    street = Street(rng, length=STREET_AHEAD + 15.0 * num / FPS)
    noise_seed = int(rng.integers(1 << 62))
    for i in range(num):
        yield _render(street, i / FPS, size, np.random.default_rng([noise_seed, i]))


def check_size(size) -> None:
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f"size must be (height, width) with both >= 16, got {size!r}")
