"""Scenes written as PNG files in the Cityscapes folder layout."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from .render import check_size, render_scene, render_sequence

ANNOTATED_FRAME = 19  # Cityscapes annotates the 20th frame of each snippet: city_000000_000019
SPLITS = ("train", "val", "test")


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
    check_size(size)
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
