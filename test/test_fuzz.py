"""Hostile input: hypothesis properties (narrow_seg_ros.fuzz) for the message → frame decoders,
camera_info, recordings, YAML files, weights and video packets with a small, derandomized budget,
the failures fuzzing found as regression tests, the size limits, and `narrow-seg infer` on mangled
recordings.

Longer campaigns: ``narrow-seg fuzz all --cases 10000`` (docs/reliability.md).
"""

import importlib.util
import io
import os
import re
import subprocess
import sys
import time
import tracemalloc
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import REPO, run_cli
from hypothesis import HealthCheck, example, given, settings

from narrow_seg_ros.fuzz import (
    CAMVID_NAMES,
    CAMVID_PALETTE,
    CameraInfoCase,
    CompressedCase,
    ConfigCase,
    ImageCase,
    RecordingCase,
    WeightsCase,
    camera_info_cases,
    check_camera_info,
    check_compressed,
    check_config,
    check_image,
    check_recording,
    check_video,
    check_weights,
    compressed_cases,
    config_attacks,
    config_cases,
    image_cases,
    onnx_model_bytes,
    png_bomb,
    png_bytes,
    recording_cases,
    video_cases,
    weights_cases,
    weights_seed,
    write_recording,
)
from narrow_seg_ros.resources import torch_available
from narrow_seg_ros.ros.image_conversion import (
    MAX_PIXELS,
    ImageConversionError,
    compressed_size,
    compressed_to_rgb,
    image_to_numpy,
    image_to_rgb,
)
from narrow_seg_ros.safe_yaml import check_yaml

# Weights files are built with torch and onnx (the training tools, `pip install .[train]`); the
# torch-free environments (scripts/test.sh --env) have neither, and run the other targets.
HAS_TRAINING_TOOLS = torch_available() and importlib.util.find_spec("onnx") is not None
NEEDS_TRAINING_TOOLS = pytest.mark.skipif(
    not HAS_TRAINING_TOOLS,
    reason="builds .pt and .onnx files with torch and onnx, absent here (torch-free environment)",
)

# camera_info is a ROS message: the Python 3.10 environment has no ROS (scripts/setup.sh --env py310)
NEEDS_ROS_MESSAGES = pytest.mark.skipif(
    importlib.util.find_spec("sensor_msgs") is None, reason="sensor_msgs (ROS 2) is not installed in this environment"
)

# the video target encodes its clips and decodes with PyAV, an optional dependency of the node
NEEDS_AV = pytest.mark.skipif(
    importlib.util.find_spec("av") is None,
    reason="PyAV (av) is not installed: the video target encodes and decodes with it",
)

# CI budget: a few hundred cases per target, the same ones on every run, no example database.
CI = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def jpeg(height=8, width=8, **params):
    flags = [item for key, value in params.items() for item in (getattr(cv2, f"IMWRITE_JPEG_{key.upper()}"), value)]
    ok, encoded = cv2.imencode(".jpg", np.full((height, width, 3), 90, np.uint8), flags)
    assert ok
    return encoded.tobytes()


def with_jpeg_size(data, width, height):
    """``data`` with its SOF0 frame header declaring ``width`` x ``height``."""
    out = bytearray(data)
    sof = out.find(b"\xff\xc0")
    out[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(out)


# ---------------------------------------------------------------------------------------------------
# properties; each @example is a failure a campaign found (minimal case), kept as a regression


@CI
@given(case=image_cases())
# height 2^32 on a stand-in message: refused for the data length, not for the field (fixed: uint32 check)
@example(case=ImageCase(height=2**32, width=1, step=6, encoding="16SC3", is_bigendian=0, data=bytes(6)))
# height -1: numpy's ValueError "strides is incompatible with shape" (fixed: uint32 check first)
@example(case=ImageCase(height=-1, width=1, step=2, encoding="8SC2", is_bigendian=0, data=bytes(2)))
# encoding None: TypeError from the encoding regex (fixed: "encoding is a NoneType, expected a str")
@example(case=ImageCase(height=1, width=1, step=6, encoding=None, is_bigendian=0, data=bytes(6)))
# is_bigendian -1 on a 16-bit image: accepted as big-endian (fixed: uint8 check)
@example(case=ImageCase(height=1, width=1, step=6, encoding="16SC3", is_bigendian=-1, data=bytes(6)))
# the issue's shapes: 2^31-1 x 2^31-1, step 2^32-1, a 3-byte buffer, with and without the limit
@example(
    case=ImageCase(height=2**31 - 1, width=2**31 - 1, step=2**32 - 1, encoding="rgb8", is_bigendian=0, data=b"abc")
)
@example(
    case=ImageCase(
        height=2**31 - 1,
        width=2**31 - 1,
        step=2**32 - 1,
        encoding="mono16",
        is_bigendian=1,
        data=b"ab",
        max_pixels=None,
    )
)
def test_image_decoders_property(case):
    check_image(case)


@CI
@given(case=compressed_cases())
# The issue's decompression bombs: decoded at 2.7 GB (5.2 GB peak RSS, 8-14 s) before the limit.
@example(case=CompressedCase(data=with_jpeg_size(jpeg(), 30000, 30000), format="jpeg", max_pixels=MAX_PIXELS))
@example(case=CompressedCase(data=png_bomb(65535, 65535, complete=False), format="png", max_pixels=MAX_PIXELS))
# A format string that repr() quotes with double quotes ("'") (the property's own message pattern).
@example(case=CompressedCase(data=b"\x89PNG\r\n\x1a\n" + bytes(59), format="'", max_pixels=64))
def test_compressed_decoder_property(case):
    check_compressed(case)


# ---------------------------------------------------------------------------------------------------
# raw Image: field checks and the size limit


@pytest.mark.parametrize(
    "fields,message",
    [
        (dict(height=-1), r"^height -1 is not a uint32$"),
        (dict(width=2**32), r"^width 4294967296 is not a uint32$"),
        (dict(step=1.5), r"^step 1.5 is not a uint32$"),
        (dict(is_bigendian=256), r"^is_bigendian 256 is not a uint8$"),
        (dict(encoding=b"rgb8"), r"^encoding is a bytes, expected a str$"),
    ],
)
def test_fields_no_message_can_hold_are_refused(fields, message):
    msg = SimpleNamespace(
        **{**dict(height=2, width=2, step=6, encoding="rgb8", is_bigendian=0, data=bytes(12)), **fields}
    )
    with pytest.raises(ImageConversionError, match=message):
        image_to_numpy(msg)


def test_raw_image_over_the_limit_is_refused_before_its_data_is_looked_at():
    msg = SimpleNamespace(height=8192, width=8193, step=8193 * 3, encoding="rgb8", is_bigendian=0, data=b"")
    expected = (
        "image 8193x8192 (width x height), 67117056 pixels, over the limit of 67108864 pixels (max_pixels) for rgb8"
    )
    with pytest.raises(ImageConversionError, match=f"^{re.escape(expected)}$"):
        image_to_numpy(msg)
    with pytest.raises(ImageConversionError, match="over the limit"):
        image_to_rgb(msg)
    with pytest.raises(ImageConversionError, match=r"^data has 0 bytes, expected at least 201351168"):
        image_to_numpy(msg, max_pixels=None)


def test_raw_limit_boundary():
    msg = SimpleNamespace(height=4, width=6, step=6, encoding="mono8", is_bigendian=0, data=bytes(24))
    assert image_to_numpy(msg, max_pixels=24).shape == (4, 6)
    assert image_to_rgb(msg, max_pixels=24)[0].shape == (4, 6, 3)
    with pytest.raises(ImageConversionError, match=r"image 6x4 \(width x height\), 24 pixels, over the limit of 23"):
        image_to_rgb(msg, max_pixels=23)


@pytest.mark.parametrize("bad", [0, -5, 2.5, "100"])
def test_max_pixels_argument_is_checked(bad):
    msg = SimpleNamespace(height=1, width=2, step=2, encoding="mono8", is_bigendian=0, data=bytes(2))
    with pytest.raises(ValueError, match="max_pixels must be a positive int or None"):
        image_to_numpy(msg, max_pixels=bad)
    with pytest.raises(ValueError, match="max_pixels must be a positive int or None"):
        compressed_to_rgb(SimpleNamespace(format="png", data=b"x"), max_pixels=bad)


# ---------------------------------------------------------------------------------------------------
# CompressedImage: header read before decoding, bombs refused, other formats refused


def test_png_bomb_generator_makes_real_pngs():
    """A small bomb decodes to exactly what it declares, so the large ones are real bombs, not junk."""
    data = png_bomb(700, 300)
    bgr, order = compressed_to_rgb(SimpleNamespace(format="png", data=data))
    assert order == "bgr8" and bgr.shape == (300, 700, 3) and not bgr.any()
    gray, _ = compressed_to_rgb(SimpleNamespace(format="png", data=png_bomb(5000, 1000, color_type=0)))
    assert gray.shape == (1000, 5000, 3)


def test_the_issues_png_bomb_is_refused_before_decoding():
    """30000 x 30000 rgb in 2.6 MB: 2.7 GB decoded (5.2 GB peak RSS, 14 s) before the limit existed."""
    data = png_bomb(30000, 30000)
    assert 2_000_000 < len(data) < 3_000_000
    msg = SimpleNamespace(format="png", data=data)
    tracemalloc.start()
    try:
        with pytest.raises(ImageConversionError) as raised:
            compressed_to_rgb(msg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(raised.value) == (
        f"refusing 'png' CompressedImage ({len(data)} bytes): PNG header declares 30000x30000 (width x height), "
        "900000000 pixels, over the limit of 67108864 pixels (max_pixels)"
    )
    assert peak < 1 << 20  # nothing decoded


def test_65535_square_png_and_jpeg_are_refused():
    with pytest.raises(ImageConversionError, match=r"PNG header declares 65535x65535 .* over the limit"):
        compressed_to_rgb(SimpleNamespace(format="png", data=png_bomb(65535, 65535, complete=False)))
    data = with_jpeg_size(jpeg(), 65535, 65535)
    with pytest.raises(
        ImageConversionError, match=r"^refusing 'jpeg' CompressedImage \(\d+ bytes\): JPEG header declares"
    ):
        compressed_to_rgb(SimpleNamespace(format="jpeg", data=data))


def test_a_small_jpeg_declaring_30000_square_is_refused():
    """631 bytes that decoded to 2.7 GB (5.2 GB peak RSS, 8.5 s): libjpeg fills what the data lacks."""
    data = with_jpeg_size(jpeg(), 30000, 30000)
    with pytest.raises(ImageConversionError, match=r"JPEG header declares 30000x30000 \(width x height\), 900000000"):
        compressed_to_rgb(SimpleNamespace(format="jpeg", data=data))


@pytest.mark.parametrize("codec", ["png", "jpeg", "jpeg-progressive"])
def test_compressed_limit_boundary(codec):
    if codec == "png":
        data = png_bytes(8, 5)
    else:
        data = jpeg(5, 8, progressive=int(codec.endswith("progressive")))
    assert compressed_to_rgb(SimpleNamespace(format=codec, data=data), max_pixels=40)[0].shape == (5, 8, 3)
    with pytest.raises(ImageConversionError, match=r"declares 8x5 \(width x height\), 40 pixels, over the limit of 39"):
        compressed_to_rgb(SimpleNamespace(format=codec, data=data), max_pixels=39)


def test_header_size_is_read_without_decoding():
    assert compressed_size(png_bytes(13, 7, color_type=6, bit_depth=16, interlace=1)) == ("PNG", 13, 7)
    assert compressed_size(jpeg(7, 13)) == ("JPEG", 13, 7)
    assert compressed_size(jpeg(7, 13, progressive=1)) == ("JPEG", 13, 7)
    # libjpeg's rules: garbage and fill bytes between segments are skipped, a SOF inside an APP
    # segment is not a frame header, and the first frame header counts
    data = jpeg(7, 13)
    fake = b"\xff\xc0\x00\x0b\x08\x75\x30\x75\x30\x01\x01\x11\x00"
    noisy = data[:2] + b"\xff\xe1\x00\x0f" + fake + b"\x12\x00\xff\xff" + data[2:]
    assert compressed_size(noisy) == ("JPEG", 13, 7)
    assert compressed_to_rgb(SimpleNamespace(format="jpeg", data=noisy))[0].shape == (7, 13, 3)
    assert compressed_size(data[:2] + fake + data[2:]) == ("JPEG", 30000, 30000)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDX" + bytes(17), "PNG data does not start with an IHDR chunk"),
        (b"\xff\xd8\xff\xda\x00\x02", r"JPEG data has SOS marker before its frame header \(SOF marker\)"),
        (b"\xff\xd8\xff\xe0\x00", "JPEG data ends inside a marker segment"),
        (b"\xff\xd8\xff\xc0\x00\x11\x08\x00", r"JPEG frame header \(SOF marker\) is truncated"),
        (png_bomb(0, 5, complete=False), r"PNG header declares an empty image 0x5 \(width x height\)"),
    ],
)
def test_broken_headers_raise_specific_errors(data, message):
    with pytest.raises(
        ImageConversionError, match=rf"^could not decode 'png' CompressedImage \(\d+ bytes\): {message}"
    ):
        compressed_to_rgb(SimpleNamespace(format="png", data=data))


@pytest.mark.parametrize("unit", [b"\xff\x01", b"\xff\xe0\x00\x00"], ids=["TEM", "empty APP0"])
def test_jpeg_header_scan_is_bounded(unit):
    """10 MB of markers before the frame header took the header scan 1.4 s (TEM) and 2.2 s (APP0
    segments of length 0): the scan now stops after 1000 markers."""
    data = b"\xff\xd8\xff" + unit * (10_000_000 // len(unit))
    started = time.perf_counter()
    with pytest.raises(ImageConversionError, match=r"over 1000 markers before its frame header \(SOF marker\)"):
        compressed_to_rgb(SimpleNamespace(format="jpeg", data=data))
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    "ext,starts",
    [(".bmp", "42 4d"), (".tiff", "49 49 2a 00"), (".webp", "52 49 46 46"), (".pgm", "50 35"), (".jp2", "00 00 00 0c")],
)
def test_other_formats_are_refused(ext, starts):
    """OpenCV reads them, but each codec is attack surface and their headers are not read here (a
    19-byte PGM header declaring 30000 x 30000 was handed to OpenCV)."""
    ok, encoded = cv2.imencode(ext, np.zeros((64, 64), np.uint8))
    assert ok
    with pytest.raises(ImageConversionError, match=rf"not PNG or JPEG data \(starts with {starts}.*only PNG and JPEG"):
        compressed_to_rgb(SimpleNamespace(format="rgb8; tiff compressed bgr8", data=encoded.tobytes()))


def test_format_must_be_a_string():
    with pytest.raises(ImageConversionError, match=r"^format is a NoneType, expected a str$"):
        compressed_to_rgb(SimpleNamespace(format=None, data=png_bytes(2, 2)))


# ---------------------------------------------------------------------------------------------------
# the campaign command


def test_fuzz_command_runs_a_campaign():
    """``fuzz all`` runs every target whose tools are installed and says which it leaves out (in the
    torch-free environments: config and weights, which build files with torch; camera_info without
    ROS messages)."""
    proc = run_cli("fuzz", "all", "--cases", "25", "--seed", "3", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from narrow_seg_ros.cli.fuzz import TARGET_NEEDS

    absent = {t for t, modules in TARGET_NEEDS.items() if any(importlib.util.find_spec(m) is None for m in modules)}
    allowed = {"config", "weights", "camera_info"} if not HAS_TRAINING_TOOLS else set()
    allowed |= {"video"} if importlib.util.find_spec("av") is None else set()
    assert absent <= allowed
    assert all(f"skipping {t}: needs " in proc.stdout for t in absent), proc.stdout
    targets = tuple(
        t for t in ("image", "compressed", "camera_info", "recording", "config", "weights", "video") if t not in absent
    )
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line.startswith(targets)}
    assert set(rows) == set(targets)
    assert all(int(tried) == 25 and int(failures) == 0 for tried, failures, *_ in rows.values()), rows
    assert "replay: narrow-seg fuzz all --cases 25 --seed 3" in proc.stdout


# ===================================================================================================
# The issue "Hostile input": camera_info, recordings, YAML files, weights. Each property runs with a
# small derandomized budget; each @example and plain test below is a failure a campaign (or the
# measurement quoted) found before the fix.

INFO = "rosbag2_bagfile_information"


def _flipped(data: bytes, pos: int, bit: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= 1 << bit
    return bytes(out)


# targets whose cases cost milliseconds to tens of milliseconds (temporary files, sessions)
CI_FILES = settings(CI, max_examples=120)


@NEEDS_ROS_MESSAGES
@CI
@given(case=camera_info_cases())
# K[0] NaN: propagated into the published camera_info (fixed: K, P, R, D must be finite)
@example(case=CameraInfoCase(k=(float("nan"), 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0), real=True))
# fx 1e308 scaled up 2x: inf published (fixed: the result is checked, "overflows")
@example(case=CameraInfoCase(k=(1e308, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0), out=(960, 1280), real=True))
# binning 2^32-1 on a 640-wide camera: K divided down to 1e-7, published (fixed: binning <= size)
@example(case=CameraInfoCase(binning_x=2**32 - 1))
# width -1 on a message built in-process (rclpy checks no field by default): K mirrored
@example(case=CameraInfoCase(width=-1, real=True))
# a ROI 0 wide with an offset: taken as "no ROI" (fixed: a ROI is all zeros or has a size)
@example(case=CameraInfoCase(roi=(100, 50, 0, 480)))
# K 8 values long: scaled as if 9 (fixed: 9 values)
@example(case=CameraInfoCase(k=(1.0,) * 8, real=True))
# an uncalibrated camera (K zero) with a ROI: given a principal point of -offset (fixed: K' = A K)
@example(case=CameraInfoCase(width=1, height=1, roi=(0, 1, 1, 1), k=(0.0,) * 9, p=(0.0,) * 12, out=(1, 1)))
# a ROI inside the sensor (REP 104): the ratio was taken from width, not from the ROI's binned size
@example(case=CameraInfoCase(roi=(100, 50, 320, 240), out=(240, 320), image_size=(240, 320)))
def test_camera_info_property(case):
    check_camera_info(case)


@NEEDS_ROS_MESSAGES
def test_camera_info_binning_without_roi_follows_the_image_size():
    """REP 104: width x height is the calibrated resolution and a 2x-binned image 320x240. Drivers
    that publish the binned size as width x height exist too; the image's size tells which."""
    from sensor_msgs.msg import CameraInfo

    from narrow_seg_ros.ros.camera_info import CameraInfoError, scale_camera_info

    info = CameraInfo(width=640, height=480, binning_x=2, binning_y=2)
    info.k = [600.0, 0, 320, 0, 600, 240, 0, 0, 1]
    info.p = [600.0, 0, 320, 0, 0, 600, 240, 0, 0, 0, 1, 0]
    info.r = [1.0, 0, 0, 0, 1, 0, 0, 0, 1]
    spec = scale_camera_info(info, 240, 320, image_size=(240, 320))  # REP 104: the image is 320x240
    assert spec.k[0] == pytest.approx(300.0) and spec.k[2] == pytest.approx(160.0)
    driver = scale_camera_info(info, 480, 640, image_size=(480, 640))  # width x height is the image's
    assert driver.k[0] == pytest.approx(300.0) and driver.k[2] == pytest.approx(160.0)
    with pytest.raises(CameraInfoError, match=r"describes 640x480 .* but its image is 100x100$"):
        scale_camera_info(info, 100, 100, image_size=(100, 100))


@CI_FILES
@given(case=recording_cases())
# each raised straight out of rosbags before bags.py caught every error of a read
@example(case=RecordingCase("mcap-file", [("storage", "set", 8, 8)]))  # EOFError (zstd file)
@example(case=RecordingCase("mcap-file", [("storage", "set", 0, 0)]))  # ZstdError
@example(case=RecordingCase("mcap", [("storage", "delete", 206, 8)]))  # MemoryError: a record length of 2^63
@example(case=RecordingCase("mcap-zstd", [("storage", "flip", 616, 0)]))  # OverflowError
@example(case=RecordingCase("sqlite3", [("metadata", "set", 1, 217)]))  # UnicodeDecodeError
@example(case=RecordingCase("mcap-file", [("storage", "set", 198, 195)]))  # KeyError (a type name)
@example(case=RecordingCase("mcap", [("storage", "field", 7699, 8, 0, "little")]))  # struct.error
@example(case=RecordingCase("mcap-zstd", [("storage", "field", 1061, 8, 1, "little"), ("storage", "truncate", 8)]))
@example(case=RecordingCase("sqlite3-message", [("storage", "flip", 581, 3), ("storage", "truncate", 28272), ("storage", "flip", 2603, 3)]))  # apsw CorruptError  # fmt: skip
@example(case=RecordingCase("mcap", [("metadata", "set", 0, 0)]))  # a BagError of seven lines (ruamel's)
@example(case=RecordingCase("mcap", [("metadata", "text", "nested 100000 deep")]))  # RecursionError
# infer's progress bar summed a message count of "x": TypeError (fixed: counts checked at open)
@example(case=RecordingCase("sqlite3", [("metadata", "key-set", (INFO, "topics_with_message_count", 0, "message_count"), "x")]))  # fmt: skip
@example(case=RecordingCase("mcap", [("metadata", "text", "alias bomb (10^10 expanded)")]))
# files: '' made rosbags' close() fail before it closed the SQLite file: a descriptor left open
@example(case=RecordingCase("sqlite3", [("metadata", "key-set", (INFO, "files"), "")]))
# decompression bombs, each mode: rosbags inflated them whole (64 MiB from 2 KB allocated 141 MiB)
@example(case=RecordingCase("sqlite3-message", [("bomb", "message", 64 << 20, False)]))
@example(case=RecordingCase("mcap-zstd", [("bomb", "chunk", 600 << 20, False)]))
@example(case=RecordingCase("mcap-zstd", [("bomb", "chunk", 600 << 20, True)]))
@example(case=RecordingCase("mcap-zstd", [("bomb", "lz4-chunk", 64 << 20, False)]))
@example(case=RecordingCase("mcap-file", [("bomb", "file", 64 << 20, True)]))
# the property held the BagError (and in its traceback rosbags' SQLite connection) past its fd count
@example(case=RecordingCase("sqlite3-message", [("bomb", "message", 64 << 20, False), ("storage", "truncate", 0)]))
def test_recording_property(case):
    check_recording(case)


def test_a_fifo_for_a_storage_file_is_refused_at_once(tmp_path):
    """rosbags only checks that the storage file exists: SQLite's open of a FIFO waited for a writer
    for ever (no timeout can interrupt it, it is C)."""
    from narrow_seg_ros.data.bags import BagError, open_bag

    bag = RecordingCase("sqlite3", [("layout", "storage-fifo")]).build(tmp_path)
    started = time.perf_counter()
    with pytest.raises(BagError, match=r"sqlite3\.db3 is not a regular file \(a directory, FIFO or device\)"):
        with open_bag(bag):
            pass
    assert time.perf_counter() - started < 1


MANGLED = {
    "truncated": (RecordingCase("mcap", [("storage", "truncate", 4000)]), "damaged or truncated"),
    "message-count": (
        RecordingCase(
            "sqlite3", [("metadata", "key-set", (INFO, "topics_with_message_count", 0, "message_count"), "x")]
        ),
        "a message count of 'x'",
    ),
    "fifo": (RecordingCase("sqlite3", [("layout", "storage-fifo")]), "is not a regular file"),
    "bomb": (RecordingCase("mcap-zstd", [("bomb", "chunk", 600 << 20, True)]), "a decompression bomb?"),
    "broken-midway": (None, "cannot read a sensor_msgs/msg/Image message on /cam/image_raw"),
}


@pytest.mark.parametrize("name", list(MANGLED))
def test_infer_on_a_mangled_recording_exits_2_with_one_line_and_leaves_nothing(tmp_path, name):
    """``narrow-seg infer --input <mangled>`` as a user runs it: exit 2, one line on stderr, no
    traceback, no output and no partial folder, also when the damage is found after the first
    frames were written (broken-midway: the second raw frame's CDR is cut)."""
    case, message = MANGLED[name]
    source = tmp_path / "source"
    source.mkdir()
    if case is None:
        write_recording(source / "bag", "sqlite3", broken_frame=1)
        bag = source / "bag"
    else:
        bag = case.build(source)
    out = tmp_path / "out"
    out.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "narrow_seg_ros.cli.main",
        "infer",
        "--input",
        str(bag),
        "--output",
        str(out / "masks"),
    ]
    cmd += ["--weights", str(REPO / "models" / "ndnet45_fcn8_camvid.onnx"), "--device", "cpu"]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "TQDM_DISABLE": "1"}
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(lines) == 1 and lines[0].startswith("narrow-seg infer: error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert list(out.iterdir()) == []  # no output, no .masks.partial-* folder


@NEEDS_TRAINING_TOOLS  # the dataset YAML (spec) loader is data.folder, on the training side
@CI_FILES
@given(case=config_cases())
# the "billion laughs": 10 s and 1 GB per file before the guard (ten times that per level added)
@example(case=ConfigCase("spec", config_attacks("spec")["alias bomb as a class name"].encode(), ["bomb"]))
@example(case=ConfigCase("spec", config_attacks("spec")["alias bomb as a color"].encode(), ["bomb"]))
@example(case=ConfigCase("spec", config_attacks("spec")["alias bomb as a split"].encode(), ["bomb"]))
@example(case=ConfigCase("spec", config_attacks("spec")["merge-key bomb"].encode(), ["merge"]))
# RecursionError after seconds of parsing (fixed: 64 levels, checked on the parser's events)
@example(case=ConfigCase("spec", config_attacks("spec")["nested 100000 deep"].encode(), ["deep"]))
# ValueError "month must be in 1..12" not naming the file; UnicodeDecodeError likewise
@example(case=ConfigCase("spec", config_attacks("spec")["bad timestamp"].encode(), ["timestamp"]))
@example(case=ConfigCase("spec", b"\xbd", ["random"]))
# a PyYAML error of seven lines
@example(case=ConfigCase("spec", b"clas{es:\n  - {n", ["valid", ("truncate", 15)]))
# sorted() of unknown keys None and "x": TypeError
@example(case=ConfigCase("spec", b"classes: [{name: a, color: [1, 2, 3]}]\nsplits: {}\n~: 1\nx: 2\n", ["document"]))
# ignore_index a list: "'<=' not supported between instances of 'int' and 'list'"
@example(
    case=ConfigCase("spec", b"classes: [{name: a, color: [1, 2, 3]}]\nsplits: {}\nignore_index: [1]\n", ["document"])
)
def test_config_property(case):
    check_config(case)


# the node's own inputs among them, tested in every environment (cameras: where rclpy is)
NODE_LOADERS = ("groups", "params") + (("cameras",) if importlib.util.find_spec("rclpy") else ())


@CI_FILES
@given(case=config_cases().filter(lambda case: case.loader in NODE_LOADERS))
# a node name of 3000 characters, listed whole in the "no ros__parameters for" error
@example(case=ConfigCase("params", b"? " + b"x" * 3000 + b"\n: ros__parameters: {}\n", ["document"]))
# a node name holding a newline, listed as it was in the "several seg_node nodes" error
@example(
    case=ConfigCase(
        "params",
        b"seg_node:\n  ros__parameters: {}\n? '\n\n  '\n: seg_node:\n    ros__parameters: {}\n",
        ["document"],
    )
)
def test_config_property_for_the_node_s_inputs(case):
    """Label groups, parameter files and cameras strings: what the node reads, without torch."""
    check_config(case)


def test_yaml_guard_counts_aliases_and_depth():
    assert check_yaml("a: &x [1, 2]\nb: [*x, *x]\n") is None  # 1 + 3 + 3 + 3 + 2: fine
    with pytest.raises(ValueError, match=r"expands to more than 100 nodes"):
        check_yaml("a: &x [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: &y [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]\n", max_nodes=100)
    with pytest.raises(ValueError, match=r"nested deeper than 64 levels"):
        check_yaml("[" * 65 + "]" * 65)
    with pytest.raises(ValueError, match=r"the alias \*a refers to a node that contains it"):
        check_yaml("x: &a [1, *a]\n")
    assert check_yaml("x: [") is None  # syntax errors: left to the loader


@pytest.mark.parametrize("attack", ["alias bomb as a group's classes", "nested 100000 deep", "tabs", "merge-key bomb"])
def test_groups_refuse_hostile_yaml_with_a_clear_error(attack):
    check_config(ConfigCase("groups", config_attacks("groups")[attack].encode(), [attack]))


@pytest.mark.parametrize(
    "text",
    [
        "groups:\n  - {name: a, classes: 5}\n",  # TypeError
        "groups:\n  - {name: a, classes: [Road], color: [300, 0, 0]}\n",  # OverflowError
        "groups:\n" + "".join(f"  - {{name: g{i}}}\n" for i in range(300)),  # group ids past 255
    ],
)
def test_groups_refuse_wrong_types_with_a_clear_error(text):
    check_config(ConfigCase("groups", text.encode(), ["document"]))


@pytest.mark.parametrize(
    "text, message",
    [
        ("groups:\n  - {name: a, classes: 5}\n", r"group 'a': classes 5 is not a list of class names"),
        ("groups:\n  - {name: a, classes: [Road], color: [300, 0, 0]}\n", r"color \[300, 0, 0\] is not three integers"),
        ("groups:\n  - {name: [a], classes: [Road]}\n", r"group 0: name \['a'\] is not a name"),
        ("groups:\n" + "".join(f"  - {{name: g{i}}}\n" for i in range(255)), r"255 groups, over the 254 a mask holds"),
        ("groups: [{name: a}, {name: a}]\n", r"group 1: the name 'a' appears twice"),
        ("groups:\n  - {name: a\n", r"not valid YAML: while parsing a flow mapping"),
    ],
)
def test_groups_errors_name_the_field(tmp_path, text, message):
    from narrow_seg_ros.inference.groups import load_groups

    path = tmp_path / "groups.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: .*{message}"):
        load_groups(path, CAMVID_NAMES, np.asarray(CAMVID_PALETTE, np.uint8))


def _weights_examples(test):
    """The weights campaign's minimal cases, built only where onnx is installed (at import)."""
    if not HAS_TRAINING_TOOLS:
        return test
    # a flipped byte left the graph without outputs: the property's own IndexError (the engine loads it)
    test = example(case=WeightsCase("onnx", _flipped(onnx_model_bytes(fixed=(32, 48)), 267, 3), ["flip"]))(test)
    # a dimension name of the graph's input made not UTF-8: UnicodeDecodeError not naming the file,
    # raised when the engine asked onnxruntime for the input's shape
    return example(case=WeightsCase("onnx", _flipped(onnx_model_bytes(), 250, 7), ["flip"]))(test)


@NEEDS_TRAINING_TOOLS
@CI
@given(case=weights_cases())
@_weights_examples
def test_weights_property(case):
    check_weights(case)


@NEEDS_TRAINING_TOOLS
@pytest.mark.parametrize(
    "seed, message",
    [
        ("tensor", "is not a narrow_seg_ros weights file"),
        ("checkpoint", "is not a narrow_seg_ros weights file"),
        ("torchscript", r"damaged, truncated or not a torch\.save file\): "),
        ("pickled-class", r"damaged, truncated or not a torch\.save file\): UnpicklingError: Weights only load failed"),
        ("onnx", r"damaged, truncated or not a torch\.save file\): "),
    ],
)
def test_foreign_files_are_refused_by_name(tmp_path, seed, message):
    from narrow_seg_ros.weights import load_weights

    path = tmp_path / "foreign.pt"
    path.write_bytes(weights_seed(seed))
    with pytest.raises(ValueError, match=message) as raised:
        load_weights(path)
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)


@NEEDS_TRAINING_TOOLS
@pytest.mark.parametrize(
    "key, value, message",
    [
        ("std", [0.5, "a", 0.5], "mean/std must be 3 values each"),  # TypeError from min() before
        ("std", [float("nan")] * 3, "mean/std must be 3 values each"),  # accepted before: NaN logits
        ("input_size", [10**6, 10**6], r"input_size \[1000000, 1000000\] is not \[height, width\] of 1\.\.8192"),
        ("palette", [[300, 0, 0], [0, 0, 0]], "each 0..255"),  # OverflowError in the engine before
        ("model_options", None, "model_options None is not a mapping"),  # TypeError in build_model before
        ("class_names", "road", "class_names 'road' is not a list of names"),
    ],
)
def test_weights_fields_are_checked(tmp_path, key, value, message):
    import torch

    from narrow_seg_ros.weights import load_weights

    document = torch.load(io.BytesIO(weights_seed("small")), weights_only=True)
    document[key] = value
    path = tmp_path / "w.pt"
    torch.save(document, path)
    with pytest.raises(ValueError, match=message):
        load_weights(path)


@NEEDS_TRAINING_TOOLS
def test_a_state_dict_of_another_network_is_a_value_error(tmp_path):
    """load_state_dict's RuntimeError (missing and unexpected keys) escaped build_model."""
    from narrow_seg_ros.weights import load_weights

    path = tmp_path / "w.pt"
    path.write_bytes(weights_seed("small"))
    with pytest.raises(ValueError, match=r"the state dict does not fit the ndnet45 head=fcn8 network: Error"):
        load_weights(path).build_model()


@NEEDS_TRAINING_TOOLS
@pytest.mark.parametrize(
    "recipe",
    [
        dict(classes=19),  # metadata names 11 classes, the graph has 19: loads, masks hold ids 11..18
        dict(metadata={"palette": [[1, 2, 3]]}),  # 1 color for 11 classes: loads
        dict(metadata={"input_multiple": 0}),  # ZeroDivisionError
        dict(metadata={"input_size": [10**6, 10**6]}),  # MemoryError (28 TB) at warm-up
        dict(metadata={"class_names": None}),  # TypeError
        dict(raw_metadata="[1, 2]"),  # a list returned as the metadata, KeyError... later
        dict(raw_metadata="{class_names: [Road]"),  # JSONDecodeError not naming the file
    ],
)
def test_onnx_whose_metadata_lies_is_refused_at_load(recipe):
    if recipe.get("classes") == 19:
        recipe = {**recipe, "metadata": {"class_names": CAMVID_NAMES, "palette": CAMVID_PALETTE}}
    check_weights(WeightsCase("onnx", onnx_model_bytes(**recipe), [recipe]))


@NEEDS_TRAINING_TOOLS
@pytest.mark.parametrize(
    "recipe, message",
    [
        (
            dict(classes=19, metadata={"class_names": CAMVID_NAMES, "palette": CAMVID_PALETTE}),
            r"metadata names 11 classes, the graph outputs 19",
        ),
        (dict(metadata={"input_multiple": 0}), r"metadata: input_multiple 0 is not a positive int"),
        (dict(metadata={"std": [0.5, 0.0, 0.5]}), r"metadata: mean/std must be 3 values each, std > 0"),
        (dict(metadata={"input_size": [10**6, 10**6]}), r"input_size \[1000000, 1000000\] is not \[height, width\]"),
        (dict(metadata={"palette": [[1, 2, 3]]}), r"palette must have one RGB triple per class"),
        (dict(raw_metadata="[1, 2]"), r"metadata is a JSON list, not an object"),
        (dict(raw_metadata="{class_names: [Road]"), r"metadata is not JSON: JSONDecodeError: Expecting"),
        (dict(raw_metadata="{}"), r"metadata lacks model, class_names, palette, mean, std, input_size, output_stride"),
    ],
)
def test_onnx_metadata_errors_name_the_file_and_the_field(tmp_path, recipe, message):
    """The checks .pt weights have (weights.load_weights), for the metadata of an .onnx."""
    from narrow_seg_ros.inference.engine import Segmenter

    path = tmp_path / "lying.onnx"
    path.write_bytes(onnx_model_bytes(**recipe))
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: .*{message}") as raised:
        Segmenter.from_weights(path, backend="onnxruntime", device="cpu", threads=1, warmup=0)
    assert "\n" not in str(raised.value)


# ===================================================================================================
# H.264 / H.265 packets (the regressions the campaigns found are in test_video.py, which needs PyAV)


@NEEDS_AV
@settings(CI, max_examples=60)
@given(case=video_cases())
def test_video_property(case):
    check_video(case)
