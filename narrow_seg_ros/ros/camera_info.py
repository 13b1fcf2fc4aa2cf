"""camera_info for the masks: the camera's model scaled to the mask's resolution.

As image_proc's resize node does, K and P are multiplied by the width and height ratios. A
camera_info with binning or a region of interest (REP 104: K and P describe the full-resolution
sensor) is first reduced to the published image's own pixels (offset by the ROI, divided by the
binning), so the result has no binning and no ROI: it describes the mask as it is.
"""

from __future__ import annotations

import copy

from sensor_msgs.msg import CameraInfo

OUTPUT_SIZES = ("camera", "network", "reference")


def scale_camera_info(info: CameraInfo, height: int, width: int, header=None) -> CameraInfo:
    """``info`` (the camera's) for an image of it resized to ``height`` x ``width``."""
    if info.width == 0 or info.height == 0:
        raise ValueError("camera_info has no image size (width or height 0)")
    out = copy.deepcopy(info)
    bx, by = info.binning_x or 1, info.binning_y or 1
    roi = info.roi
    ox, oy = (roi.x_offset, roi.y_offset) if roi.width and roi.height else (0, 0)
    sx, sy = width / info.width, height / info.height
    k, p = list(info.k), list(info.p)
    # row 0 (x): fx, skew, cx, Tx; row 1 (y): fy, cy, Ty
    out.k = [k[0] * sx / bx, k[1] * sx / bx, (k[2] - ox) * sx / bx, 0.0, k[4] * sy / by, (k[5] - oy) * sy / by,
             *k[6:]]  # fmt: skip
    out.p = [p[0] * sx / bx, p[1] * sx / bx, (p[2] - ox) * sx / bx, p[3] * sx / bx,
             0.0, p[5] * sy / by, (p[6] - oy) * sy / by, p[7] * sy / by, *p[8:]]  # fmt: skip
    out.width, out.height = int(width), int(height)
    out.binning_x = out.binning_y = 0
    out.roi = type(roi)()
    if header is not None:
        out.header = header
    return out


def parse_output_size(value: str) -> str | tuple[int, int]:
    """The ``output_size`` parameter: camera, network, reference, or WxH → (H, W)."""
    if value in OUTPUT_SIZES:
        return value
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise ValueError(f"output_size={value!r}: use camera, network, reference or WxH (e.g. 640x480)") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"output_size={value!r}: width and height must be positive")
    return h, w
