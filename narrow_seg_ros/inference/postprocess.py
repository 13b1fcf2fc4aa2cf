"""Low-resolution logits → full-resolution class mask, confidence, colors: exact and cheap.

The reference semantics are the network's own upsample followed by an argmax::

    mask = argmax_c(F.interpolate(logits[None], (H, W), mode="bilinear", align_corners=ac)[0])

Doing that literally expands every class at full resolution (19 × 1024 × 2048 floats, then an
argmax over them: hundreds of ms on two CPU cores). :func:`logits_to_mask` returns the same mask
in ~13 ms there (``bench_postprocess``) from three facts about the bilinear blend of the four
logit vectors (the *corners* of the low-resolution *cell*) that an output pixel reads:

1. If one class is the argmax at all four corners it is the argmax everywhere in the cell. Most
   of the image is therefore a row/column gather of the low-resolution argmax.
2. In the other (*boundary*) cells, class k can only win where its blend reaches every average
   ``sum_j θ_j l_j`` of the classes' blends (the maximum is at least any average). The blend of
   ``l_k - sum_j θ_j l_j`` can only be >= 0 somewhere if one of its corners is, so every θ
   gives a sound pruning test on the corners alone; :func:`_cell_candidates` uses a few. The
   tempting "keep k if max_corners(l_k) >= min_corners(max_j l_j)" is *not* sound: a class
   that is argmax at no corner can win in the middle of a cell (see the tests).
3. Along one output column of a cell (a *strip*) each candidate's logit is linear in the row
   weight λ, so the rows it wins form an interval that follows from pairwise line crossings:
   work per strip and candidate pair, not per pixel. A strip then shows its first class from
   the top of its row band and usually a second one from some row on; three or more (rare)
   are written as runs. The fill is a whole-image uint8 compare / and / xor.

Exactness: PyTorch's CPU kernel computes ``fma(t0, h0, t1 * h1)`` with ``t = fma(x00, w0, x01 *
w1)`` in float32, and the half-pixel source coordinate ``scale * (dst + 0.5) - 0.5`` as an FMA
too (matched bit for bit against torch 2.13's AVX2/AVX-512 build). Every decision above is taken
with a margin ``tol`` (~64 float32 ulps of the largest |logit|, several times that kernel's
rounding error); the rare pixels inside the margin (near-ties) are evaluated with the emulated
kernel formula itself, ties going to the lower class as in ``torch.argmax``. So the mask equals
the reference bit for bit on this build; a build that rounds differently (no FMA, a GPU) can
only differ where the top two logits agree to ~1e-7 relative. Outputs with ``H + W <= 128`` go
straight to torch: it routes them to a channels-last kernel with another rounding order.

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

__all__ = [
    "colorize",
    "logits_to_confidence",
    "logits_to_mask",
    "overlay",
    "reference_confidence",
    "reference_mask",
]

# torch sends bilinear outputs with H + W <= 128 to its channels-last kernel (rounds differently).
_TORCH_SMALL_OUTPUT = 128
# Decision margin in units of max|logit|: ~64 float32 ulps, several times the rounding error of
# torch's blend (~8 ulps for a difference of two blends) plus that of our own float32 tests.
_REL_TOL = 4e-6
# Near-tie pixels are evaluated in chunks of this many (bounds memory in degenerate inputs).
_EXACT_CHUNK = 1 << 16

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
    scale: float  # source = scale * dst (align_corners) or scale * (dst + 0.5) - 0.5, clamped at 0
    half_pixel: bool
    lam_padded: np.ndarray  # w_hi as float64 plus a +inf sentinel (index out_len)


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
    lam_padded = np.append(w_hi.astype(_F64), np.inf)
    arrays = (lo, w_lo, w_hi, start, count, hi_of, lam_padded)
    for arr in arrays:
        arr.flags.writeable = False  # cached and shared between calls
    return _Taps(*arrays[:6], float(scale), not align_corners, lam_padded)


def _rows_from(lam, band, band_start, band_rows, taps: _Taps, strict: bool) -> np.ndarray:
    """Offset within each band of the first output row whose λ is >= ``lam`` (``> lam`` if
    ``strict``), or the band's row count if none; ``lam`` may carry a leading candidate axis.

    Inverts the source-coordinate formula in float64 and corrects by one row for torch's float32
    rounding of the source coordinate (half an ulp, far below one row's step for any output
    shorter than 2**23); numpy's searchsorted is several times slower.
    """
    band_stop = band_start + band_rows

    def reached(r):  # rows past the end of the axis read the +inf sentinel
        return taps.lam_padded[r] > lam if strict else taps.lam_padded[r] >= lam

    if taps.scale == 0:  # every output reads source 0 with λ = 0 (one output, or one source)
        return np.where(reached(band_start), 0, band_rows)
    target = band + np.clip(lam, -1.0, 2.0)
    guess = (target + 0.5) / taps.scale - 0.5 if taps.half_pixel else target / taps.scale
    row = np.clip(np.ceil(guess), band_start, band_stop).astype(np.int64)
    # λ >= 0 everywhere, and rows clamped to source 0 share λ = 0: answer those directly.
    row = np.where(lam < 0 if strict else lam <= 0, band_start, row)
    back = (row > band_start) & reached(row - 1)
    ahead = ~back & (row < band_stop) & ~reached(row)
    return row + ahead - back - band_start


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


def _torch_upsample(logits, out_size, align_corners: bool):
    import torch
    import torch.nn.functional as F

    low = torch.from_numpy(_as_logits(logits))[None]
    return F.interpolate(low, size=_as_size(out_size), mode="bilinear", align_corners=align_corners)[0]


def reference_mask(logits, out_size, align_corners: bool) -> np.ndarray:
    """The definition (slow): torch float32 bilinear upsample of every class, then argmax."""
    import torch

    return _torch_upsample(logits, out_size, align_corners).argmax(0).to(torch.uint8).numpy()


def reference_confidence(logits, out_size, align_corners: bool) -> np.ndarray:
    """The definition (slow): ``round(255 * max softmax)`` of the upsampled logits, uint8."""
    import torch

    prob = torch.softmax(_torch_upsample(logits, out_size, align_corners), 0).amax(0)
    return (prob * 255).round_().to(torch.uint8).numpy()


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
    if not boundary.any():
        return np.take(band_label, rows.lo, axis=0)

    strips = _boundary_strips(low, label, boundary, rows, cols, tol)
    band_label[strips.band, strips.x] = strips.first
    mask = np.take(band_label, rows.lo, axis=0)
    _apply_second_classes(mask, strips, rows)
    for y, x, cls in strips.runs + strips.exact:  # rarer classes further down a strip; near-ties
        mask[y, x] = cls
    return mask


class _Strips:
    """The boundary cells' answer, built group by group. A *strip* is one output column of a
    boundary cell within its row band. It shows ``first`` from the band's top, ``second`` from
    row offset ``second_from`` on (``-1``: none); ``runs`` and ``exact`` list (y, x, class)
    pixels written afterwards: other classes of strips with 3+ candidates, and near-ties."""

    def __init__(self, num_strips: int):
        self.band = np.empty(num_strips, np.int64)
        self.x = np.empty(num_strips, np.int64)
        self.first = np.empty(num_strips, np.uint8)
        self.second = np.zeros(num_strips, np.uint8)
        self.second_from = np.full(num_strips, -1, np.int64)
        self.runs: list = []
        self.exact: list = []
        self._used = 0

    def add(self, band, x) -> np.ndarray:
        ids = np.arange(self._used, self._used + band.size)
        self.band[ids], self.x[ids] = band, x
        self._used += band.size
        return ids


def _ragged_arange(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts (n,): (owner index, 0-based position within its owner) of sum(counts) items."""
    owner = np.repeat(np.arange(counts.size), counts)
    offsets = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - offsets[owner]


def _boundary_strips(low, label, boundary, rows: _Taps, cols: _Taps, tol: float) -> _Strips:
    cell_i, cell_j = np.nonzero(boundary)
    i1, j1 = rows.hi_of[cell_i], cols.hi_of[cell_j]
    # (4, C, cells): top-left, top-right, bottom-left, bottom-right corner logits.
    corners = np.stack([low[:, cell_i, cell_j], low[:, cell_i, j1], low[:, i1, cell_j], low[:, i1, j1]])
    leaders = np.stack([label[cell_i, cell_j], label[cell_i, j1], label[i1, cell_j], label[i1, j1]])
    keep = _cell_candidates(corners, leaders, tol)
    cell_k = keep.sum(0)

    # One strip per (cell, output column); cells grouped by candidate count so arrays stay
    # dense. Layout: candidates first, strips last, so reductions over candidates vectorise.
    strip_count = cols.count[cell_j]
    strips = _Strips(int(strip_count.sum()))
    for k in np.unique(cell_k).tolist():
        sel = np.flatnonzero(cell_k == k)
        classes = np.argsort(~keep[:, sel], axis=0, kind="stable")[:k]  # kept classes, ascending
        values = np.take_along_axis(corners[:, :, sel], classes[None], axis=1)  # (4, k, cells)
        owner, offset = _ragged_arange(strip_count[sel])
        x = cols.start[cell_j[sel]][owner] + offset
        band = cell_i[sel][owner]
        ids = strips.add(band, x)
        v = np.repeat(values, strip_count[sel], axis=2)
        classes = np.repeat(classes, strip_count[sel], axis=1)
        # Column values: torch's first (horizontal) pass, bit-exact.
        w_lo, w_hi = cols.w_lo[x], cols.w_hi[x]
        t0 = _fma32(v[0], w_lo, v[1] * w_hi)
        t1 = _fma32(v[2], w_lo, v[3] * w_hi)
        if k == 1:  # every other class loses by more than the margin
            strips.first[ids] = classes[0]
        elif k == 2:
            _pair_strips(strips, ids, t0, t1, classes, band, x, rows, tol)
        else:
            _envelope_strips(strips, ids, t0, t1, classes, band, x, rows, tol)
    return strips


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


def _pair_strips(strips: _Strips, ids, t0, t1, classes, band, x, rows: _Taps, tol: float) -> None:
    """Strips with two candidates a < b: d = t_a - t_b is linear in λ (d0 + slope λ). The class
    ahead at the top is sure while it leads by ``tol``, the other one from where it leads by
    ``tol`` on; rows in between (usually none) are near-ties."""
    t0_64, t1_64 = t0.astype(_F64), t1.astype(_F64)
    d0 = t0_64[0] - t0_64[1]
    slope = (t1_64[0] - t1_64[1]) - d0
    with np.errstate(divide="ignore", invalid="ignore"):
        a_sure = (tol - d0) / slope  # a leads by tol beyond (slope > 0) or before (slope < 0)
        b_sure = (-tol - d0) / slope
    a_first = (slope < 0) | ((slope == 0) & (d0 > 0))
    first_until = np.where(a_first, a_sure, b_sure)
    second_from = np.where(a_first, b_sure, a_sure)
    flat = slope == 0  # parallel: one class leads by tol everywhere, or nowhere
    first_until[flat] = np.where(np.abs(d0[flat]) >= tol, np.inf, -np.inf)
    second_from[flat] = np.inf
    band_start, band_rows = rows.start[band], rows.count[band]
    # One search for both: the first class's last sure row (strict) equals the first row past
    # first_until; nudging that threshold up by an ulp turns ">" into ">=".
    first_stop, second_start = _rows_from(
        np.stack([np.nextafter(first_until, np.inf), second_from]), band, band_start, band_rows, rows, strict=False
    )
    strips.first[ids] = np.where(a_first, classes[0], classes[1])
    strips.second[ids] = np.where(a_first, classes[1], classes[0])
    strips.second_from[ids] = np.where(second_start < band_rows, second_start, -1)
    _near_ties(strips, t0, t1, classes, band, x, first_stop, second_start, rows)


def _envelope_strips(strips: _Strips, ids, t0, t1, classes, band, x, rows: _Taps, tol: float) -> None:
    """Strips with k >= 3 candidates (fact 3). Candidate a beats b by at least ``tol`` where
    ``d0 + slope λ >= tol`` (d = t_a - t_b), a half-line in λ; intersecting over b gives the
    interval where a is sure. Sure intervals of different classes are disjoint; a strip whose
    sure intervals leave any row uncovered (a near-tie) is evaluated exactly in full."""
    k = classes.shape[0]
    t0_64, t1_64 = t0.astype(_F64), t1.astype(_F64)
    d0 = t0_64[:, None] - t0_64[None]  # d0[a, b] = t0_a - t0_b
    slope = (t1_64[:, None] - t1_64[None]) - d0
    with np.errstate(divide="ignore", invalid="ignore"):
        root = (tol - d0) / slope
    lower = np.where(slope > 0, root, -np.inf)
    upper = np.where(slope < 0, root, np.inf)
    lower[(slope == 0) & (d0 < tol)] = np.inf  # parallel and never ahead by the margin: empty
    for a in range(k):
        lower[a, a], upper[a, a] = -np.inf, np.inf
    band_start, band_rows = rows.start[band], rows.count[band]
    start = _rows_from(lower.max(1), band, band_start, band_rows, rows, strict=False)
    stop = _rows_from(upper.min(1), band, band_start, band_rows, rows, strict=True)
    length = np.maximum(stop - start, 0)
    start = np.where(length > 0, start, band_rows)

    # The two topmost sure intervals go to first/second; any further ones (rare) become runs.
    strip = np.arange(band.size)
    top = start.argmin(0)
    start_rest = start.copy()
    start_rest[top, strip] = np.iinfo(np.int64).max
    below = start_rest.argmin(0)
    strips.first[ids] = classes[top, strip]
    strips.second[ids] = classes[below, strip]
    strips.second_from[ids] = np.where(start[below, strip] < band_rows, start[below, strip], -1)
    start_rest[below, strip] = np.iinfo(np.int64).max
    slot, s = np.nonzero(start_rest < band_rows)
    if s.size:
        owner, offset = _ragged_arange(length[slot, s])
        y = band_start[s][owner] + start[slot, s][owner] + offset
        strips.runs.append((y, x[s][owner], classes[slot, s][owner]))
    (uncovered,) = np.nonzero(length.sum(0) < band_rows)
    if uncovered.size:
        _near_ties(
            strips,
            t0[:, uncovered],
            t1[:, uncovered],
            classes[:, uncovered],
            band[uncovered],
            x[uncovered],
            np.zeros(uncovered.size, np.int64),
            band_rows[uncovered],
            rows,
        )


def _near_ties(strips: _Strips, t0, t1, classes, band, x, row_lo, row_hi, rows: _Taps) -> None:
    """Rows [row_lo, row_hi) (offsets in the band) of each strip, by torch's float32 formula;
    ties go to the lower class, as candidates ascend."""
    (s,) = np.nonzero(row_hi > row_lo)
    if not s.size:
        return
    owner, offset = _ragged_arange(row_hi[s] - row_lo[s])
    strip = s[owner]
    ys = rows.start[band[strip]] + row_lo[strip] + offset
    winner = np.empty(ys.size, np.uint8)
    for lo in range(0, ys.size, _EXACT_CHUNK):
        s_chunk, y = strip[lo : lo + _EXACT_CHUNK], ys[lo : lo + _EXACT_CHUNK]
        values = _fma32(t0[:, s_chunk], rows.w_lo[y], t1[:, s_chunk] * rows.w_hi[y])
        winner[lo : lo + _EXACT_CHUNK] = classes[values.argmax(0), s_chunk]
    strips.exact.append((ys, x[strip], winner))


def _apply_second_classes(mask: np.ndarray, strips: _Strips, rows: _Taps) -> None:
    """From ``second_from`` on, a strip shows its second class: over the whole image, compare
    each pixel's row offset in its band with its column's ``second_from`` (row-expanded like the
    first classes) and XOR ``first ^ second`` in where it is reached. Whole-image OpenCV ops on
    uint8 beat any per-band or per-strip loop here."""
    (s,) = np.nonzero(strips.second_from >= 0)
    if not s.size:
        return
    offset_type = np.uint8 if rows.count.max() < 255 else np.uint16  # the maximum means "never"
    h, width = rows.count.size, mask.shape[1]
    from_row = np.full((h, width), np.iinfo(offset_type).max, offset_type)
    toggle = np.zeros((h, width), np.uint8)
    band, x = strips.band[s], strips.x[s]
    from_row[band, x] = strips.second_from[s]
    toggle[band, x] = strips.second[s] ^ strips.first[s]
    reached = cv2.compare(_row_offsets(rows, width, offset_type), np.take(from_row, rows.lo, axis=0), cv2.CMP_GE)
    cv2.bitwise_and(reached, np.take(toggle, rows.lo, axis=0), dst=reached)
    cv2.bitwise_xor(mask, reached, dst=mask)


@functools.lru_cache(maxsize=4)
def _row_offsets(rows: _Taps, width: int, dtype) -> np.ndarray:
    """(H, width) image of each output row's offset within its band (cached: 2 MB at 1024×2048)."""
    offsets = (np.arange(rows.lo.size) - rows.start[rows.lo]).astype(dtype)
    image = np.ascontiguousarray(np.broadcast_to(offsets[:, None], (offsets.size, width)))
    image.flags.writeable = False
    return image


# ---------------------------------------------------------------------------------------------
# confidence, colors
# ---------------------------------------------------------------------------------------------


def logits_to_confidence(logits, out_size, align_corners: bool, grid_stride: int = 16) -> np.ndarray:
    """``round(255 * max softmax)`` of the upsampled logits, uint8 (H, W), approximately.

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
    exp_sum = cv2.exp(grid.reshape(grid.shape[0], -1)).sum(0).reshape(grid_h, grid_w)
    confidence = cv2.convertScaleAbs((255.0 / exp_sum).astype(_F32))  # the max contributes exp(0) = 1
    if (grid_h, grid_w) == (height, width):
        return confidence
    return cv2.resize(confidence, (width, height), interpolation=cv2.INTER_LINEAR)


def _grid_taps(out_len: int, grid_len: int, in_len: int, align_corners: bool):
    """Bilinear taps (lo, hi, fraction) of the real-valued output positions that cv2.resize
    maps grid samples to, with torch's source-coordinate formula."""
    y = (np.arange(grid_len) + 0.5) * (out_len / grid_len) - 0.5
    if align_corners:
        src = y * ((in_len - 1) / (out_len - 1)) if out_len > 1 else np.zeros_like(y)
    else:
        src = np.maximum((y + 0.5) * (in_len / out_len) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), in_len - 1)
    hi = np.minimum(lo + 1, in_len - 1)
    return lo, hi, np.clip(src - lo, 0, 1).astype(_F32)


def colorize(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Class mask (H, W) uint8 → RGB (H, W, 3) uint8 by a 256-entry lookup table; class ids
    without a palette row (e.g. 255 = ignore) are black."""
    mask = np.asarray(mask)
    palette = np.asarray(palette, dtype=np.uint8)
    if mask.dtype != np.uint8 or mask.ndim != 2:
        raise ValueError(f"expected a uint8 (H, W) mask, got {mask.dtype} {mask.shape}")
    if palette.ndim != 2 or palette.shape[1] != 3 or palette.shape[0] > 256:
        raise ValueError(f"expected a (C <= 256, 3) palette, got {palette.shape}")
    lut = np.zeros((256, 1, 3), np.uint8)
    lut[: len(palette), 0] = palette
    # cv2.applyColorMap with a user table: gray → 3 channels and one 3-channel LUT, ~2 ms at
    # 1024x2048 (three cv2.LUT + merge ~4 ms, np.take ~17 ms). The table's channel order is kept.
    return cv2.applyColorMap(np.ascontiguousarray(mask), lut)


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
