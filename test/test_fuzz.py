"""Hostile input for the message → frame decoders: hypothesis properties (narrow_seg_ros.fuzz) with a
small, derandomized budget, the failures fuzzing found as regression tests, and the size limit.

Longer campaigns: ``narrow-seg fuzz all --cases 10000`` (docs/reliability.md).
"""

import re
import time
import tracemalloc
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import run_cli
from hypothesis import HealthCheck, example, given, settings

from narrow_seg_ros.fuzz import (
    CompressedCase,
    ImageCase,
    check_compressed,
    check_image,
    compressed_cases,
    image_cases,
    png_bomb,
    png_bytes,
)
from narrow_seg_ros.ros.image_conversion import (
    MAX_PIXELS,
    ImageConversionError,
    compressed_size,
    compressed_to_rgb,
    image_to_numpy,
    image_to_rgb,
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
    proc = run_cli("fuzz", "all", "--cases", "25", "--seed", "3", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {
        line.split()[0]: line.split()[1:]
        for line in proc.stdout.splitlines()
        if line.startswith(("image ", "compressed "))
    }
    assert set(rows) == {"image", "compressed"}
    assert all(int(tried) == 25 and int(failures) == 0 for tried, failures, _ in rows.values()), rows
    assert "replay: narrow-seg fuzz all --cases 25 --seed 3" in proc.stdout
