"""camera_info for the masks: the camera's model scaled to the mask's resolution.

As image_proc's resize node does, K and P are multiplied by the width and height ratios. A
camera_info with binning or a region of interest (REP 104: K and P describe the full-resolution
sensor) is first reduced to the published image's own pixels (offset by the ROI, divided by the
binning), so the result has no binning and no ROI: it describes the mask as it is.

Which image size the ratios start from: REP 104 makes ``width`` x ``height`` the calibrated
(full) resolution and the published image ``roi / binning`` (the ROI all zeros meaning the full
resolution), while many drivers publish ``width`` x ``height`` as the image's own size. With a ROI
the two readings are told apart (the ROI inside ``width`` x ``height``, or its binned size equal to
it); with binning alone they are not, and ``image_size`` (the size of the image the camera_info came
with) decides; without it ``width`` x ``height`` is taken as the image's.

A camera_info is input from the network: anything but a consistent, finite one raises
:class:`CameraInfoError` (a ValueError) naming the field, and no NaN or inf reaches the output
(``narrow-seg fuzz camera_info``, docs/reliability.md).
"""

from __future__ import annotations

import copy
import math
from numbers import Integral

import numpy as np
from sensor_msgs.msg import CameraInfo

# re-exported beside the camera_info scaling it sizes; the parser is the engine's, shared with infer
from ..inference.rules import parse_output_size as parse_output_size

U32 = 1 << 32


class CameraInfoError(ValueError):
    """A camera_info that cannot describe the mask; the message names the field and why."""


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}..."


def _uint32(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= value < U32:
        raise CameraInfoError(f"camera_info {name} {_short(value)} is not a uint32")
    return int(value)


def _numbers(name: str, value, size: int | None) -> list[float]:
    """A float64 array field as floats: numbers only, ``size`` of them, every one finite."""
    try:
        array = np.asarray(value)
    except Exception:  # an object numpy cannot even look at
        array = np.asarray(None)
    if array.ndim != 1 or array.dtype.kind not in "fiu":
        raise CameraInfoError(f"camera_info {name} is {_short(value)}, not a list of numbers")
    if size is not None and array.size != size:
        raise CameraInfoError(f"camera_info {name} has {array.size} values, expected {size}")
    array = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise CameraInfoError(f"camera_info {name}[{bad[0]}] is {array[bad[0]]}: {name} must be finite")
    return array.tolist()


def _positive_size(what: str, size) -> tuple[int, int]:
    """(height, width) given as (height, width): positive ints."""
    try:
        height, width = size
    except (TypeError, ValueError):
        raise CameraInfoError(f"{what} {_short(size)} is not a (height, width) pair") from None
    for value in (height, width):
        if isinstance(value, bool) or not isinstance(value, Integral) or not 0 < value < U32:
            raise CameraInfoError(f"{what} {_short(width)}x{_short(height)} (width x height) must be positive ints")
    return int(height), int(width)


def described_size(info: CameraInfo, image_size=None) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """((height, width) of the image ``info`` describes, (x, y) ROI offset, (x, y) binning), checked.

    ``image_size``: (height, width) of the image that came with ``info``; it decides between the
    two readings of a binned camera_info without ROI (module docstring)."""
    width, height = _uint32("width", info.width), _uint32("height", info.height)
    if width == 0 or height == 0:
        raise CameraInfoError(f"camera_info has no image size: {width}x{height} (width x height)")
    bx, by = _uint32("binning_x", info.binning_x) or 1, _uint32("binning_y", info.binning_y) or 1
    if bx > width or by > height:
        raise CameraInfoError(
            f"camera_info binning {bx}x{by} is larger than its size {width}x{height} (width x height): "
            "the binned image would be under a pixel"
        )
    roi = info.roi
    x, y, rw, rh = (_uint32(f"roi.{n}", getattr(roi, n)) for n in ("x_offset", "y_offset", "width", "height"))
    if image_size is not None:
        image_size = _positive_size("image size", image_size)
    if rw == 0 and rh == 0 and x == 0 and y == 0:  # REP 104: the full resolution
        own, binned = (height, width), (height // by, width // bx)
        if image_size is None or image_size == own:
            return own, (0, 0), (bx, by)
        if image_size == binned:
            return binned, (0, 0), (bx, by)
        raise CameraInfoError(
            f"camera_info describes {width}x{height} (width x height; binned {bx}x{by}: {binned[1]}x{binned[0]}), "
            f"but its image is {image_size[1]}x{image_size[0]}"
        )
    if rw == 0 or rh == 0:
        raise CameraInfoError(
            f"camera_info ROI {rw}x{rh} at ({x}, {y}) is empty: a ROI is all zeros (the full image) or has a size"
        )
    binned = (rh // by, rw // bx)
    if 0 in binned:
        raise CameraInfoError(f"camera_info ROI {rw}x{rh} binned {bx}x{by} is under a pixel")
    if image_size is not None and image_size != binned:
        raise CameraInfoError(
            f"camera_info ROI {rw}x{rh} at ({x}, {y}) binned {bx}x{by} is {binned[1]}x{binned[0]} (width x "
            f"height), but its image is {image_size[1]}x{image_size[0]}"
        )
    inside = x + rw <= width and y + rh <= height
    if binned != (height, width) and not inside:
        raise CameraInfoError(
            f"camera_info ROI {rw}x{rh} at ({x}, {y}) reaches outside its {width}x{height} (width x height), "
            f"and binned {bx}x{by} it is {binned[1]}x{binned[0]}, not that size either"
        )
    return binned, (x, y), (bx, by)


def scale_camera_info(info: CameraInfo, height: int, width: int, header=None, image_size=None) -> CameraInfo:
    """``info`` (the camera's) for an image of it resized to ``height`` x ``width``.

    ``image_size``: (height, width) of the camera's image, where known (module docstring). Raises
    CameraInfoError (a ValueError) for a camera_info that is inconsistent, holds NaN or inf, or
    whose values overflow when scaled; the result's K, P, R and D are finite."""
    out_h, out_w = _positive_size("mask size", (height, width))
    (base_h, base_w), (ox, oy), (bx, by) = described_size(info, image_size)
    k, p = _numbers("K", info.k, 9), _numbers("P", info.p, 12)
    _numbers("R", info.r, 9)
    _numbers("D", info.d, None)
    # u' = (u - ox) / bx * sx (and v likewise): the image coordinates the matrices map to, as a
    # 3x3 transform applied to K (3x3) and P (3x4) from the left; the third rows stay
    fx, fy = out_w / base_w / bx, out_h / base_h / by
    k_out = (
        [fx * (k[j] - ox * k[6 + j]) for j in range(3)] + [fy * (k[3 + j] - oy * k[6 + j]) for j in range(3)] + k[6:]
    )
    p_out = (
        [fx * (p[j] - ox * p[8 + j]) for j in range(4)] + [fy * (p[4 + j] - oy * p[8 + j]) for j in range(4)] + p[8:]
    )
    for name, values in (("K", k_out), ("P", p_out)):
        bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        if bad is not None:
            raise CameraInfoError(
                f"camera_info scaled from {base_w}x{base_h} to {out_w}x{out_h} (width x height) overflows: "
                f"{name}[{bad}] becomes {values[bad]}"
            )
    out = copy.deepcopy(info)
    out.k, out.p = k_out, p_out
    out.width, out.height = out_w, out_h
    out.binning_x = out.binning_y = 0
    out.roi = copy.deepcopy(info.roi)
    out.roi.x_offset = out.roi.y_offset = out.roi.width = out.roi.height = 0
    out.roi.do_rectify = False
    if header is not None:
        out.header = header
    return out
