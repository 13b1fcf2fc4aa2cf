"""Training augmentation and evaluation preprocessing (NDNet / VNet recipe).

Training: random scale from ``scales`` (image bilinear, label nearest), pad to the crop size
(image with the mean color, so it normalises to 0; label with 255), random crop, random horizontal
flip, then ``(img / 255 - mean) / std`` as float32 CHW and the target as int64 HW. Scale, pad and crop
are a single ``cv2.warpAffine`` that renders only the crop window — the result matches resizing the
whole image and cropping it (same pixel-centre convention as ``cv2.resize``), without resizing full
frames to twice their size.

``photometric`` (off unless configured) changes brightness, contrast, saturation and hue of the
crop at random, as MMSegmentation's PhotoMetricDistortion does: CamVid's sequences differ in light
(0001TP is filmed at dusk), and a network that sees one street's light learns it.

Randomness comes from a numpy Generator per process seeded with ``torch.initial_seed()``: DataLoader
workers get different seeds (base seed + worker id), and the base seed is drawn from torch's RNG, so
``torch.manual_seed`` makes a run reproducible. Pass ``rng`` to fix the stream explicitly instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from ..normalization import normalization_coefficients
from .labels import IGNORE_INDEX

DEFAULT_MEAN = (0.5, 0.5, 0.5)  # the training configs' default (data.mean / data.std)
DEFAULT_STD = (0.5, 0.5, 0.5)
PAPER_SCALES = (0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


def _size(value, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    height, width = (int(v) for v in value)
    if height < 1 or width < 1:
        raise ValueError(f"{name} must be positive (height, width), got {value!r}")
    return height, width


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """RGB uint8 (H, W, 3) → float32 (3, H, W) tensor of ``(image / 255 - mean) / std``."""
    scale, shift = normalization_coefficients(mean, std, np.float32)
    out = image.astype(np.float32) * scale + shift
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


def to_target(train_ids: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(train_ids).astype(np.int64))


class PhotoMetricDistortion:
    """Random brightness (added), contrast (multiplied), saturation (multiplied) and hue (shifted, in
    degrees), each applied with probability 1/2, on an RGB uint8 image; contrast before or after
    the HSV changes at random, as in MMSegmentation's transform of the same name."""

    def __init__(self, brightness: float = 32, contrast=(0.5, 1.5), saturation=(0.5, 1.5), hue: float = 18):
        self.brightness, self.hue = float(brightness), float(hue)
        self.contrast, self.saturation = tuple(contrast), tuple(saturation)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = image.astype(np.float32)
        if rng.random() < 0.5:
            out += rng.uniform(-self.brightness, self.brightness)
        contrast_first = rng.random() < 0.5
        if contrast_first:
            out = self._contrast(out, rng)
        out = self._hsv(np.clip(out, 0, 255), rng)
        if not contrast_first:
            out = self._contrast(out, rng)
        return np.clip(out, 0, 255).round().astype(np.uint8)

    def _contrast(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return image * rng.uniform(*self.contrast) if rng.random() < 0.5 else image

    def _hsv(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # float32 HSV: hue in degrees [0, 360), saturation and value in [0, 1] after scaling by 1/255
        saturate, shift = rng.random() < 0.5, rng.random() < 0.5
        if not (saturate or shift):
            return image
        hsv = cv2.cvtColor(image / 255.0, cv2.COLOR_RGB2HSV)
        if saturate:
            hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*self.saturation), 0, 1)
        if shift:
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-self.hue, self.hue)) % 360
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0


class TrainTransform:
    """Random scale, pad, crop and flip; ``(image RGB uint8, train ids uint8) → (float32 CHW, int64 HW)``.

    ``base_size`` (H, W) resizes every sample first (e.g. half resolution); ``scales`` multiply that.
    """

    def __init__(
        self,
        crop_size: Sequence[int] = (512, 1024),
        scales: Sequence[float] = PAPER_SCALES,
        base_size: Sequence[int] | None = None,
        mean: Sequence[float] = DEFAULT_MEAN,
        std: Sequence[float] = DEFAULT_STD,
        flip: bool = True,
        rng: np.random.Generator | int | None = None,
        photometric: PhotoMetricDistortion | None = None,
    ):
        self.crop_size = _size(crop_size, "crop_size")
        self.base_size = _size(base_size, "base_size")
        self.scales = tuple(float(s) for s in scales)
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"scales must be positive numbers, got {scales!r}")
        self.mean, self.std = tuple(mean), tuple(std)
        self.flip = flip
        self.photometric = photometric
        self._fixed_rng = np.random.default_rng(rng) if isinstance(rng, int) else rng
        self._rng: np.random.Generator | None = None
        self._rng_seed: int | None = None

    def _generator(self) -> np.random.Generator:
        if self._fixed_rng is not None:
            return self._fixed_rng
        seed = torch.initial_seed()  # differs per DataLoader worker and per epoch's worker start
        if self._rng is None or self._rng_seed != seed:
            self._rng, self._rng_seed = np.random.default_rng(seed), seed
        return self._rng

    def __call__(
        self, image: np.ndarray, target: np.ndarray, rng: np.random.Generator | None = None, focus_class: int = -1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``rng`` overrides the transform's own generator (the trainer seeds each sample: exact resume).
        ``focus_class`` >= 0 places the crop on a random pixel of that train id (rare-class sampling);
        a label map without that class gets a uniform crop."""
        rng = rng if rng is not None else self._generator()
        height, width = image.shape[:2]
        base_h, base_w = self.base_size or (height, width)
        scale = self.scales[int(rng.integers(len(self.scales)))]
        scaled_h, scaled_w = max(1, round(base_h * scale)), max(1, round(base_w * scale))
        sx, sy = scaled_w / width, scaled_h / height
        crop_h, crop_w = self.crop_size
        focus = np.flatnonzero(target.ravel() == focus_class) if focus_class >= 0 else ()
        if len(focus):
            fy, fx = divmod(int(focus[rng.integers(len(focus))]), width)
            # the scaled pixel nearest to its centre (cv2.resize's convention, as the matrix below;
            # INTER_NEAREST rounds). When downscaling, that pixel may sample a neighbour instead.
            y0 = _window_start(rng, round(sy * fy + (sy - 1) / 2), scaled_h, crop_h)
            x0 = _window_start(rng, round(sx * fx + (sx - 1) / 2), scaled_w, crop_w)
        else:
            # Top-left of the crop in the scaled image; smaller images are padded at the bottom/right.
            y0 = int(rng.integers(scaled_h - crop_h + 1)) if scaled_h > crop_h else 0
            x0 = int(rng.integers(scaled_w - crop_w + 1)) if scaled_w > crop_w else 0
        flip = self.flip and rng.random() < 0.5

        # dst = s * src + (s - 1) / 2 - offset: cv2.resize's pixel-centre alignment, then the crop shift.
        matrix = np.array([[sx, 0.0, (sx - 1) / 2 - x0], [0.0, sy, (sy - 1) / 2 - y0]])
        # Edges replicate, as cv2.resize does; the padding is painted explicitly afterwards.
        out_image = cv2.warpAffine(
            image, matrix, (crop_w, crop_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        out_target = cv2.warpAffine(
            target, matrix, (crop_w, crop_h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE
        )
        if self.photometric is not None:  # before the padding is painted: the pad stays the mean
            out_image = self.photometric(out_image, rng)
        valid_h, valid_w = min(crop_h, scaled_h - y0), min(crop_w, scaled_w - x0)
        if valid_h < crop_h or valid_w < crop_w:
            pad_color = np.rint(np.asarray(self.mean) * 255.0).astype(np.uint8)
            out_image[valid_h:], out_image[:, valid_w:] = pad_color, pad_color
            out_target[valid_h:], out_target[:, valid_w:] = IGNORE_INDEX, IGNORE_INDEX
        if flip:
            out_image, out_target = out_image[:, ::-1], out_target[:, ::-1]
        return normalize(out_image, self.mean, self.std), to_target(out_target)


def _window_start(rng: np.random.Generator, inside: int, length: int, window: int) -> int:
    """Random start of a ``window`` within ``[0, length)`` that covers position ``inside``."""
    if length <= window:
        return 0
    inside = min(max(inside, 0), length - 1)
    low, high = max(0, inside - window + 1), min(inside, length - window)
    return int(rng.integers(low, high + 1))


class EvalTransform:
    """Normalise; optionally resize the *image* to ``size`` (H, W), keeping the label at full resolution
    (predictions are upsampled back and scored against the original labels)."""

    def __init__(
        self,
        mean: Sequence[float] = DEFAULT_MEAN,
        std: Sequence[float] = DEFAULT_STD,
        size: Sequence[int] | None = None,
    ):
        self.mean, self.std = tuple(mean), tuple(std)
        self.size = _size(size, "size")

    def __call__(self, image: np.ndarray, target: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if self.size is not None and image.shape[:2] != self.size:
            image = cv2.resize(image, (self.size[1], self.size[0]), interpolation=cv2.INTER_LINEAR)
        return normalize(image, self.mean, self.std), to_target(target)
