"""Colour palettes and the random colour helpers the street layout draws its looks from."""

from __future__ import annotations

import numpy as np

CAR_PAINT = [(228, 228, 225), (232, 232, 232), (25, 25, 28), (30, 30, 34), (160, 163, 168), (120, 122, 126),
              (88, 92, 98), (30, 45, 92), (40, 72, 140), (150, 28, 28), (40, 72, 52), (185, 170, 135),
              (210, 180, 40)]  # fmt: skip
FACADE = [(192, 180, 158), (205, 198, 186), (150, 82, 62), (122, 122, 126), (214, 192, 140), (172, 150, 128),
           (104, 94, 88), (182, 172, 176), (160, 170, 175), (220, 215, 205)]  # fmt: skip
CLOTHES = [(30, 30, 35), (60, 60, 70), (25, 40, 90), (120, 30, 35), (200, 200, 200), (70, 90, 60), (150, 120, 80),
            (90, 60, 40), (40, 60, 120), (180, 150, 60), (100, 100, 105)]  # fmt: skip
SKIN = [(235, 200, 170), (220, 180, 140), (190, 140, 100), (140, 95, 65), (95, 65, 45)]
HAIR = [(30, 25, 20), (70, 50, 30), (150, 120, 70), (110, 110, 110), (20, 20, 20)]


def jitter(rng: np.random.Generator, color, amount: float = 12.0) -> tuple[float, float, float]:
    c = np.clip(np.asarray(color, np.float64) + rng.normal(0.0, amount, 3), 0, 255)
    return (float(c[0]), float(c[1]), float(c[2]))


def shade(color, factor: float) -> tuple[float, float, float]:
    return tuple(float(min(255.0, c * factor)) for c in color)  # type: ignore[return-value]


def pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


_GREENS = [(70, 105, 40), (55, 90, 35), (90, 120, 50), (80, 100, 45), (100, 110, 50), (60, 85, 50), (45, 75, 35)]


def foliage(rng: np.random.Generator) -> tuple[float, float, float]:
    """A leaf green: varied in shade and a little in hue, never grey (per-channel jitter would be)."""
    return shade(jitter(rng, pick(rng, _GREENS), 5), rng.uniform(0.7, 1.2))
