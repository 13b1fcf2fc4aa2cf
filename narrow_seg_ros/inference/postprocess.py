"""Low-resolution logits → full-resolution class mask, confidence, colors: exact and cheap.

The reference semantics are the network's own upsample followed by an argmax::

    mask = argmax_c(F.interpolate(logits[None], (H, W), mode="bilinear", align_corners=ac)[0])

Doing that literally expands every class at full resolution (19 × 1024 × 2048 floats, then an
argmax over them: hundreds of ms on two CPU cores). :func:`logits_to_mask` returns the same mask
in a few ms there (``bench_postprocess``) from two facts about the bilinear blend of the four
logit vectors (the *corners* of the low-resolution *cell*) that an output pixel reads:

1. If one class is the argmax at all four corners it is the argmax everywhere in the cell. Most
   of the image is therefore a row/column gather of the low-resolution argmax.
2. In the other (*boundary*) cells, class k can only win where its blend reaches every average
   ``sum_j θ_j l_j`` of the classes' blends (the maximum is at least any average). The blend of
   ``l_k - sum_j θ_j l_j`` can only be >= 0 somewhere if one of its corners is, so every θ
   gives a sound pruning test on the corners alone; :func:`_cell_candidates` uses a few. The
   tempting "keep k if max_corners(l_k) >= min_corners(max_j l_j)" is *not* sound: a class
   that is argmax at no corner can win in the middle of a cell (see the tests).

The boundary cells' pixels are then evaluated one by one for their few candidates by a compiled
kernel (``boundary_kernel.py``, parallel over cells) with PyTorch's own float32 formula:
``fma(t0, h0, t1 * h1)`` with ``t = fma(x00, w0, x01 * w1)``, the half-pixel source coordinate
``scale * (dst + 0.5) - 0.5`` being an FMA too (matched bit for bit against torch 2.13's
AVX2/AVX-512 build); ties go to the lower class as in ``torch.argmax``. The two decisions taken
without evaluating (a uniform cell; a pruned class) use a margin ``tol`` (~64 float32 ulps of the
largest |logit|, several times that kernel's rounding error). So the mask equals the reference
bit for bit on this build; a build that rounds differently (no FMA, a GPU) can only differ where
the top two logits agree to ~1e-7 relative. Outputs with ``H + W <= 128`` go straight to torch:
it routes them to a channels-last kernel with another rounding order.

:func:`logits_to_confidence` (max softmax probability of the interpolated logits, as uint8) is
exact on a grid every ``grid_stride`` output pixels and bilinearly resized in between; see its
docstring for the measured error. :func:`colorize` and :func:`overlay` are a lookup table and a
blend. Batch size 1 only; float16 logits are widened to float32 first (as the reference does).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import bilinear_taps
from ..palette import colorize
from .boundary_kernel import fill_boundary_cells
from .params import CONFIDENCE_RULES

__all__ = [
    "colorize",
    "logits_to_confidence",
    "logits_to_mask",
    "overlay",
    "reference_confidence",
    "reference_mask",
    "upsample_argmax",
]

# torch sends bilinear outputs with H + W <= 128 to its channels-last kernel (rounds differently).
_TORCH_SMALL_OUTPUT = 128
# Decision margin in units of max|logit|: ~64 float32 ulps, several times the rounding error of
# torch's blend (~8 ulps for a difference of two blends) plus that of our own float32 tests.
_REL_TOL = 4e-6

_F32, _F64 = np.float32, np.float64


# ---------------------------------------------------------------------------------------------
# torch's bilinear taps along one axis
# ---------------------------------------------------------------------------------------------


def _fma32(a, b, c) -> np.ndarray:
    """float32 ``a * b + c`` rounded once, like a hardware FMA (a*b is exact in float64)."""
    return (np.multiply(a, b, dtype=_F64) + c).astype(_F32)


@dataclass(frozen=True, eq=False)  # hashed by identity: instances are cached
class _Taps:
    """Where each output index reads along one axis, exactly as torch's CPU kernel computes it.

    ``lo``: first source index (the second is ``hi_of[lo] = min(lo + 1, in_len - 1)``);
    ``w_lo``/``w_hi``: float32 weights, ``w_hi`` being λ, the fractional source position.
    Output indices with the same ``lo`` form a *band* ``[start[i], start[i] + count[i])``
    (the mapping is monotone), empty for source indices no output reads (downsizing).
    """

    lo: np.ndarray
    w_lo: np.ndarray
    w_hi: np.ndarray
    start: np.ndarray
    count: np.ndarray
    hi_of: np.ndarray

    @property
    def kernel_args(self) -> tuple:
        return self.start, self.count, self.hi_of, self.w_lo, self.w_hi


@functools.lru_cache(maxsize=64)
def _taps(out_len: int, in_len: int, align_corners: bool) -> _Taps:
    dst = np.arange(out_len, dtype=_F32)
    if align_corners:
        scale = _F32(in_len - 1) / _F32(out_len - 1) if out_len > 1 else _F32(0)
        src = dst * scale
    else:
        scale = _F32(in_len) / _F32(out_len)
        src = np.maximum(_fma32(scale, dst + _F32(0.5), _F32(-0.5)), _F32(0))
    lo = np.minimum(np.floor(src).astype(np.int64), in_len - 1)
    w_hi = np.clip(src - lo.astype(_F32), 0, 1).astype(_F32)
    w_lo = (_F32(1) - w_hi).astype(_F32)
    start = np.searchsorted(lo, np.arange(in_len), side="left")
    count = np.searchsorted(lo, np.arange(in_len), side="right") - start
    hi_of = np.minimum(np.arange(in_len) + 1, in_len - 1)
    arrays = (lo, w_lo, w_hi, start, count, hi_of)
    for arr in arrays:
        arr.flags.writeable = False  # cached and shared between calls
    return _Taps(*arrays)


# ---------------------------------------------------------------------------------------------
# input handling and references
# ---------------------------------------------------------------------------------------------


def _as_logits(logits) -> np.ndarray:
    """(C, h, w) or (1, C, h, w), any float dtype (e.g. a CPU tensor) → contiguous float32 (C, h, w)."""
    arr = np.asarray(logits)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(f"batch size 1 only, got logits of shape {arr.shape}")
        arr = arr[0]
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise ValueError(f"expected logits (C, h, w), got shape {arr.shape}")
    if arr.shape[0] > 256:
        raise ValueError(f"at most 256 classes fit a uint8 mask, got {arr.shape[0]}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"logits must be floating point, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=_F32)


def _as_size(out_size) -> tuple[int, int]:
    height, width = (int(v) for v in out_size)
    if height < 1 or width < 1:
        raise ValueError(f"out_size must be positive, got {tuple(out_size)}")
    return height, width


def upsample_argmax(logits, out_size, align_corners: bool, confidence: bool = False, rule: str = "max"):
    """The reference semantics in torch, on the logits' device: (C, h, w) tensor → float32 bilinear
    upsample of every class to ``out_size`` → (uint8 mask (H, W), uint8 confidence by ``rule`` or
    None) as tensors. The definition the fast paths here are tested against, and the engine's
    GPU post-processing (cheap there)."""
    import torch
    import torch.nn.functional as F

    up = F.interpolate(logits[None].float(), size=tuple(out_size), mode="bilinear", align_corners=align_corners)[0]
    mask = up.argmax(0).to(torch.uint8)
    return mask, probability_confidence(torch.softmax(up, 0), rule) if confidence else None


def _reference(logits, out_size, align_corners: bool, confidence: bool = False, rule: str = "max"):
    import torch

    return upsample_argmax(torch.from_numpy(_as_logits(logits)), _as_size(out_size), align_corners, confidence, rule)


def reference_mask(logits, out_size, align_corners: bool) -> np.ndarray:
    """The definition (slow): torch float32 bilinear upsample of every class, then argmax."""
    return _reference(logits, out_size, align_corners)[0].numpy()


def reference_confidence(logits, out_size, align_corners: bool, rule: str = "max") -> np.ndarray:
    """The definition (slow): ``round(255 * max softmax)`` of the upsampled logits, uint8 (``margin``:
    top-1 minus top-2 probability)."""
    return _reference(logits, out_size, align_corners, True, rule)[1].numpy()


def probability_confidence(prob, rule: str = "max"):
    """(C, H, W) torch probabilities → uint8 (H, W) confidence by ``rule`` (max or margin)."""
    import torch

    if _check_rule(rule) == "margin" and prob.shape[0] > 1:
        top2 = prob.topk(2, dim=0).values
        value = top2[0] - top2[1]
    else:
        value = prob.amax(0)
    return (value * 255).round_().to(torch.uint8)


def _check_rule(rule: str) -> str:
    if rule not in CONFIDENCE_RULES:
        raise ValueError(f"confidence rule must be one of {CONFIDENCE_RULES}, got {rule!r}")
    return rule


# ---------------------------------------------------------------------------------------------
# the mask
# ---------------------------------------------------------------------------------------------


def logits_to_mask(logits, out_size, align_corners: bool) -> np.ndarray:
    """Class mask (H, W) uint8 equal to :func:`reference_mask` (see the module docstring)."""
    low = _as_logits(logits)
    height, width = _as_size(out_size)
    num_classes, h, w = low.shape
    if not np.isfinite(low).all():
        raise ValueError("logits contain NaN or inf")
    if num_classes == 1:
        return np.zeros((height, width), np.uint8)
    if height + width <= _TORCH_SMALL_OUTPUT:
        return reference_mask(low, (height, width), align_corners)
    rows, cols = _taps(height, h, align_corners), _taps(width, w, align_corners)
    tol = _REL_TOL * max(float(np.abs(low).max()), 1e-30)

    # Low-resolution argmax, and whether it leads by more than the margin (then no rounding can
    # let another class reach it anywhere between such corners).
    label = low.argmax(0)
    runner_up = low.copy()
    np.put_along_axis(runner_up, label[None], -np.inf, 0)
    sure = (np.take_along_axis(low, label[None], 0)[0] - runner_up.max(0)) > tol
    label = label.astype(np.uint8)

    # Cell (i, j) is read by the output rows with lo == i and columns with lo == j; its corners
    # are rows i, hi_of[i] × columns j, hi_of[j].
    r1, c1 = rows.hi_of, cols.hi_of
    label_below, sure_below = label[r1], sure[r1]
    uniform = (
        (label == label[:, c1])
        & (label == label_below)
        & (label == label_below[:, c1])
        & sure
        & sure[:, c1]
        & sure_below
        & sure_below[:, c1]
    )
    boundary = ~uniform & (rows.count > 0)[:, None] & (cols.count > 0)[None, :]
    band_label = np.take(label, cols.lo, axis=1)  # (h, W): final wherever the cell is uniform
    mask = np.take(band_label, rows.lo, axis=0)
    cell_i, cell_j = np.nonzero(boundary)
    if cell_i.size:
        i1, j1 = rows.hi_of[cell_i], cols.hi_of[cell_j]
        # (4, C, cells): top-left, top-right, bottom-left, bottom-right corner logits.
        corners = np.stack([low[:, cell_i, cell_j], low[:, cell_i, j1], low[:, i1, cell_j], low[:, i1, j1]])
        leaders = np.stack([label[cell_i, cell_j], label[cell_i, j1], label[i1, cell_j], label[i1, j1]])
        keep = _cell_candidates(corners, leaders, tol)
        fill_boundary_cells(mask, low, cell_i, cell_j, keep, rows.kernel_args, cols.kernel_args)
    return mask


def _cell_candidates(corners: np.ndarray, leaders: np.ndarray, tol: float) -> np.ndarray:
    """(C, cells) mask of the classes that may win somewhere in each cell (all necessary
    conditions, so pruning the others is sound; the margin keeps float rounding from reviving
    a pruned class).

    * A blend lies between its smallest and largest corner: k must have a corner at least as
      high as the largest smallest-corner of any class.
    * Where k wins, its blend reaches ``sum_j θ_j l_j`` for every distribution θ over classes
      (the maximum is at least any average). ``l_k - sum_j θ_j l_j`` is a blend of its corner
      values, so one of those must be >= 0. We use θ = each corner's argmax class ("leader")
      and θ = the mean of the four leaders; the latter removes classes that are never close to
      either side of a boundary, which the others keep.
    """
    cells = np.arange(corners.shape[2])
    keep = corners.max(0) >= corners.min(0).max(0) - tol
    leader_logits = np.stack([corners[:, leaders[q], cells] for q in range(4)])  # (leader, corner, cells)
    for reference in (*leader_logits, leader_logits.mean(0)):
        keep &= (corners >= reference[:, None] - tol).any(0)
    return keep


# ---------------------------------------------------------------------------------------------
# confidence, colors
# ---------------------------------------------------------------------------------------------


def logits_to_confidence(logits, out_size, align_corners: bool, grid_stride: int = 16, rule: str = "max") -> np.ndarray:
    """``round(255 * max softmax)`` of the upsampled logits, uint8 (H, W), approximately; with
    ``rule="margin"`` the top-1 minus the top-2 probability (low where two classes compete).

    Exact (every class, torch's coordinate mapping) on a grid of points every ``grid_stride``
    output pixels, placed where ``cv2.resize``'s half-pixel bilinear mapping puts its samples,
    then bilinearly resized to (H, W). The softmax is not linear in the logits, so values
    between grid points are approximate: the bulk of the image is exact or off by a level, but
    the narrow confidence dips along class boundaries come out blurred and too shallow. Error
    vs :func:`reference_confidence` in uint8 levels, 1024×2048 from 1/32 street-scene logits
    (``bench_postprocess``; it scales with ``grid_stride`` / cell size):

    ============  ======  ======  ======  ======
    grid_stride   mean    median  p99     max
    ============  ======  ======  ======  ======
    32            ~7      0       ~100    ~190
    16 (default)  ~4.8    0       ~75     ~155
    8             ~2.5    0       ~48     ~117
    4             ~1      0       ~20     ~77
    1             0       0       0       1
    ============  ======  ======  ======  ======

    Cost grows with the grid: ~3 ms at stride 16 there, ~4× per halving.
    """
    low = _as_logits(logits)
    height, width = _as_size(out_size)
    if grid_stride < 1:
        raise ValueError(f"grid_stride must be >= 1, got {grid_stride}")
    grid_h, grid_w = -(-height // grid_stride), -(-width // grid_stride)
    # Separable bilinear interpolation to the grid: columns on the small array first, then
    # whole-row gathers (numpy's threaded BLAS is erratic on a busy two-core machine).
    col_lo, col_hi, col_frac = _grid_taps(width, grid_w, low.shape[2], align_corners)
    row_lo, row_hi, row_frac = _grid_taps(height, grid_h, low.shape[1], align_corners)
    left = low[:, :, col_lo]
    cols_done = left + (low[:, :, col_hi] - left) * col_frac  # (C, h, grid_w)
    top = np.take(cols_done, row_lo, axis=1)
    grid = top + (np.take(cols_done, row_hi, axis=1) - top) * row_frac[:, None]  # (C, grid_h, grid_w)
    grid -= grid.max(0)
    exp = cv2.exp(grid.reshape(grid.shape[0], -1))
    exp_sum = exp.sum(0).reshape(grid_h, grid_w)
    top = 1.0  # the max contributes exp(0) = 1
    if _check_rule(rule) == "margin" and exp.shape[0] > 1:
        top = 1.0 - np.partition(exp, -2, axis=0)[-2].reshape(grid_h, grid_w)
    confidence = cv2.convertScaleAbs((255.0 * top / exp_sum).astype(_F32))
    if (grid_h, grid_w) == (height, width):
        return confidence
    return cv2.resize(confidence, (width, height), interpolation=cv2.INTER_LINEAR)


def _grid_taps(out_len: int, grid_len: int, in_len: int, align_corners: bool):
    """Bilinear taps (lo, hi, fraction) of the real-valued output positions that cv2.resize
    maps grid samples to, with torch's source-coordinate formula."""
    y = (np.arange(grid_len) + 0.5) * (out_len / grid_len) - 0.5
    lo, hi, frac = bilinear_taps(y, out_len, in_len, align_corners)
    return lo, hi, frac.astype(_F32)


def overlay(image_rgb: np.ndarray, color_mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``(1 - alpha) * image + alpha * color_mask``, rounded to uint8."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if image_rgb.shape != color_mask.shape or image_rgb.dtype != np.uint8 or color_mask.dtype != np.uint8:
        raise ValueError(
            f"image and color mask must be uint8 of one shape, got {image_rgb.dtype} {image_rgb.shape} "
            f"and {color_mask.dtype} {color_mask.shape}"
        )
    return cv2.addWeighted(image_rgb, 1.0 - alpha, color_mask, alpha, 0.0)
