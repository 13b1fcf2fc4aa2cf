"""Property-based fuzzing of what the node and the commands read from outside: the message → frame
decoders (``ros.image_conversion``), camera_info scaling, recordings, YAML files, weights and
H.264 / H.265 packets.

Seven targets, each a hypothesis strategy of hostile inputs and a property checked on every one (the
five later ones are described in their functions' docstrings and in docs/reliability.md):

* ``image``: ``sensor_msgs/Image`` fields through ``image_to_numpy`` and ``image_to_rgb``: every
  encoding (and unknown ones), random and extreme height / width / step (up to 2^32-1) with tiny
  buffers, is_bigendian, data shorter or longer than declared, data that is no buffer, and values a
  message could not hold (negative, over 32 bits, not an int). Property: a message that keeps every
  rule of ``image_rule_breaks`` gives exactly the array an independent reference builds; one that
  breaks rules raises ``ImageConversionError`` whose message names one of them; nothing else is ever
  raised, and the memory a call allocates is bounded by the bytes actually sent (4x, for the 3-channel
  output of a 1-byte pixel), never by the declared sizes.
* ``compressed``: ``CompressedImage`` data through ``compressed_to_rgb``: small valid PNGs (every
  colour type and bit depth, interlaced, animated) and JPEGs (baseline, progressive, grey, chroma
  subsampled), then truncated, bit-flipped, bytes inserted or cut, sizes rewritten (PNG IHDR, APNG
  fcTL, JPEG SOF), JPEG segments inserted (a SOF inside an APP segment, fill and garbage bytes,
  EXIF orientation); other formats' headers declaring any size; random bytes; random format
  strings. Property: a bgr8 array of at most ``max_pixels`` pixels whose size is the one
  ``compressed_size`` read from the header (and, for PNG, the IHDR's), or ``ImageConversionError``
  with a specific message; a PNG declaring more than ``max_pixels`` is refused for that reason.

* ``camera_info``: ``ros.camera_info.scale_camera_info`` (``check_camera_info``).
* ``recording``: damaged rosbag2 recordings and decompression bombs through ``data.bags``
  (``check_recording``).
* ``config``: class-table and label-groups YAML (``check_config``).
* ``weights``: damaged and foreign ``.pt`` and ``.onnx`` files (``check_weights``).
* ``video``: damaged H.264 / H.265 packet streams through ``video.VideoDecoder`` (``check_video``).

A failure whose fix lies outside the fuzzed files raises ``PendingFix``: campaigns count it apart.

``test/test_fuzz.py`` runs each with a small derandomized budget (CI); ``narrow-seg fuzz`` runs long,
exploring campaigns. Needs ``hypothesis``, a test dependency (requirements.lock).
"""

from __future__ import annotations

import copy
import inspect
import re
import reprlib
import struct
import sys
import time
import tracemalloc
import zlib
from array import array as py_array
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from .data import camvid_classes
from .ros import image_conversion as ic

__all__ = [
    "TARGETS",
    "CampaignResult",
    "CompressedCase",
    "ImageCase",
    "check_compressed",
    "check_image",
    "compressed_cases",
    "image_cases",
    "image_rule_breaks",
    "png_bomb",
    "png_bytes",
    "run_campaign",
]

# --------------------------------------------------------------------------------------------------
# sensor_msgs/Image

# The fuzzer's own table (encoding -> channels, dtype), kept apart from the module's so that the
# reference it checks against is independent.
_U8, _U16 = np.dtype(np.uint8), np.dtype(np.uint16)
LAYOUTS: dict[str, tuple[int, np.dtype]] = {
    **{name: (3, _U8) for name in ("rgb8", "bgr8", "8UC3")},
    **{name: (4, _U8) for name in ("rgba8", "bgra8", "8UC4")},
    **{name: (3, _U16) for name in ("rgb16", "bgr16")},
    **{name: (4, _U16) for name in ("rgba16", "bgra16")},
    **{name: (1, _U8) for name in ("mono8", "8UC1")},
    "mono16": (1, _U16),
    **{name: (2, _U8) for name in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv")},
    **{f"bayer_{p}8": (1, _U8) for p in ("rggb", "bggr", "gbrg", "grbg")},
    **{f"bayer_{p}16": (1, _U16) for p in ("rggb", "bggr", "gbrg", "grbg")},
    "8SC2": (2, np.dtype(np.int8)),
    "16UC1": (1, _U16),
    "16SC3": (3, np.dtype(np.int16)),
    "32SC1": (1, np.dtype(np.int32)),
    "32FC1": (1, np.dtype(np.float32)),
    "64FC2": (2, np.dtype(np.float64)),
    "8UC7": (7, _U8),
}
_YUV = ("yuv422", "uyvy", "yuv422_yuy2", "yuyv")
_UNKNOWN_ENCODINGS = ["", "RGB8", "rgb8 ", "8UC0", "8UC", "16FC1", "bayer_rggb", "jpeg", "yuv420", "mono8\x00"]
_GENERIC = re.compile(r"(8U|8S|16U|16S|32S|32F|64F)C([1-9][0-9]*)")

U32_MAX = 2**32 - 1
_DEFAULT_LIMIT = ic.MAX_PIXELS if hasattr(ic, "MAX_PIXELS") else None  # (absent before the limit existed)
_U32_EDGES = [0, 1, 2, 3, 4, 5, 7, 8, 255, 256, 65535, 65536, 2**31 - 1, 2**31, U32_MAX]


def _layout(encoding) -> tuple[int, np.dtype] | None:
    if not isinstance(encoding, str):
        return None
    if encoding in LAYOUTS:
        return LAYOUTS[encoding]
    generic = _GENERIC.fullmatch(encoding)
    if generic is None:
        return None
    kind = {"8U": "u1", "8S": "i1", "16U": "u2", "16S": "i2", "32S": "i4", "32F": "f4", "64F": "f8"}[generic.group(1)]
    return int(generic.group(2)), np.dtype(kind)


def _buffer(data) -> memoryview | None:
    try:
        return memoryview(data).cast("B")
    except (TypeError, ValueError):
        return None


@dataclass
class ImageCase:
    """One fuzzed Image: its fields, how ``data`` is held, the limit, and whether to build a real message."""

    height: object
    width: object
    step: object
    encoding: object
    is_bigendian: object
    data: object
    max_pixels: int | None = _DEFAULT_LIMIT
    want: str = "rgb8"
    real: bool = False

    def message(self):
        fields = dict(
            height=self.height, width=self.width, step=self.step, encoding=self.encoding, is_bigendian=self.is_bigendian
        )
        if self.real:
            from sensor_msgs.msg import Image

            msg = Image(**fields)
            msg.data = bytes(self.data)
            return msg
        return SimpleNamespace(**fields, data=self.data)

    def __repr__(self) -> str:  # bytes of data shortened: the failing example must stay readable
        data = self.data
        size = _buffer(data).nbytes if _buffer(data) is not None else None
        shown = f"{type(data).__name__}[{size} bytes]" if size is not None and size > 32 else repr(data)
        return (
            f"ImageCase(height={self.height!r}, width={self.width!r}, step={self.step!r}, "
            f"encoding={self.encoding!r}, is_bigendian={self.is_bigendian!r}, data={shown}, "
            f"max_pixels={self.max_pixels!r}, want={self.want!r}, real={self.real!r})"
        )


def _is_uint(value, bits: int) -> bool:
    return isinstance(value, int) and 0 <= value < 2**bits


def image_rule_breaks(case: ImageCase) -> dict[str, str]:
    """The rules ``case`` breaks, each with the pattern its error message must match; empty = valid.

    The rules are cv_bridge's (sensor_msgs/image_encodings.hpp) plus the size limit. Only the
    domain rules (a message's field types) hide the others: with a field that is no uint, the rest
    are not evaluated.
    """
    breaks: dict[str, str] = {}
    for name, bits in (("height", 32), ("width", 32), ("step", 32), ("is_bigendian", 8)):
        if not _is_uint(getattr(case, name), bits):
            breaks[name] = rf"^{name} .* is not a uint{bits}"
    if not isinstance(case.encoding, str):
        breaks["encoding"] = r"^encoding is a .*, expected a str"
    if breaks:
        return breaks
    height, width, step = case.height, case.width, case.step
    layout = _layout(case.encoding)
    if layout is None:
        breaks["unknown"] = r"^unknown encoding "
    if height == 0 or width == 0:
        breaks["empty"] = r"^empty image \d+x\d+"
    if case.max_pixels is not None and height * width > case.max_pixels:
        breaks["limit"] = (
            r"^image \d+x\d+ \(width x height\), \d+ pixels, over the limit of \d+ pixels \(max_pixels\) for "
        )
    buffer = _buffer(case.data)
    if buffer is None:
        breaks["buffer"] = r"^data is a .*, expected a contiguous bytes-like buffer"
    if layout is not None:
        channels, dtype = layout
        if dtype.itemsize == 1 and case.is_bigendian:
            breaks["bigendian"] = r"^is_bigendian set for 8-bit encoding"
        if case.encoding in _YUV and width % 2:
            breaks["odd"] = r"^width \d+ is odd"
        if step < width * channels * dtype.itemsize:
            breaks["step"] = r"^step \d+ < width\*channels"
        if buffer is not None and buffer.nbytes < height * step:
            breaks["short"] = r"^data has \d+ bytes, expected at least \d+"
    return breaks


def _reference(case: ImageCase) -> np.ndarray:
    """The pixels of a valid ``case``, built by copying rows (not by striding over the buffer)."""
    channels, dtype = _layout(case.encoding)
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if case.is_bigendian else "<")
    row_bytes = case.width * channels * dtype.itemsize
    raw = bytes(_buffer(case.data)[: case.height * case.step])
    rows = np.frombuffer(raw, np.uint8).reshape(case.height, case.step)[:, :row_bytes]
    pixels = np.ascontiguousarray(rows).view(dtype)
    return (
        pixels.reshape(case.height, case.width) if channels == 1 else pixels.reshape(case.height, case.width, channels)
    )


def _expected_rgb(case: ImageCase, pixels: np.ndarray) -> tuple[np.ndarray | None, str] | None:
    """(array or None where only the shape is checked, order) ``image_to_rgb`` must give; None = refused."""
    enc, want = case.encoding, case.want
    if enc in ("rgb8", "bgr8"):
        return pixels, enc
    if enc in ("rgba8", "bgra8"):
        return pixels[..., :3], enc[:3] + "8"
    if enc in ("rgb16", "bgr16", "rgba16", "bgra16"):
        return (pixels[..., :3] >> 8).astype(np.uint8), enc[:3] + "8"
    if enc in ("8UC3", "8UC4"):
        return pixels[..., :3], want
    if enc in ("mono8", "8UC1", "mono16"):
        gray = pixels if pixels.dtype.itemsize == 1 else (pixels >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), want
    if enc in _YUV or enc.startswith("bayer_"):
        return None, want
    return None


def _peak_allocation(call):
    """(result or exception, peak bytes traced while ``call`` ran); numpy and cv2's outputs are traced."""
    tracemalloc.start()
    try:
        try:
            result = call()
        except Exception as err:  # the property decides what is allowed
            result = err
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _accepts_max_pixels(function) -> bool:
    return "max_pixels" in inspect.signature(function).parameters


def _limit_kwargs(function, max_pixels) -> dict:
    return {"max_pixels": max_pixels} if _accepts_max_pixels(function) else {}


_SLACK = 256 * 1024  # bytes any call may allocate whatever the input (small Python objects, the views)


def _check_error(err: BaseException, allowed: dict[str, str], what: str) -> None:
    if not isinstance(err, ic.ImageConversionError):
        raise AssertionError(f"{what} raised {type(err).__name__}: {err}") from err
    message = str(err)
    if not any(re.search(pattern, message) for pattern in allowed.values()):
        raise AssertionError(f"{what} raised an error naming none of the broken rules {sorted(allowed)}: {message}")


def check_image(case: ImageCase) -> None:
    """The ``image`` property (module docstring); raises AssertionError with the reason when it fails."""
    msg = case.message()
    breaks = image_rule_breaks(case)
    buffer = _buffer(case.data)
    budget = _SLACK + 4 * (buffer.nbytes if buffer is not None else 0)
    limit = case.max_pixels if _accepts_max_pixels(ic.image_to_numpy) else None
    if limit is None:
        breaks.pop("limit", None)

    result, peak = _peak_allocation(lambda: ic.image_to_numpy(msg, **_limit_kwargs(ic.image_to_numpy, limit)))
    assert peak <= budget, f"image_to_numpy allocated {peak} bytes for a {budget - _SLACK}-byte budget"
    if breaks:
        assert isinstance(result, BaseException), f"image_to_numpy accepted a message breaking {sorted(breaks)}"
        _check_error(result, breaks, "image_to_numpy")
    else:
        if isinstance(result, BaseException):
            raise AssertionError(f"image_to_numpy refused a valid message: {type(result).__name__}: {result}")
        expected = _reference(case)
        assert result.shape == expected.shape, (result.shape, expected.shape)
        assert result.dtype == expected.dtype, (result.dtype, expected.dtype)
        assert np.ascontiguousarray(result).tobytes() == expected.tobytes(), "pixels differ from the reference"
        if not case.real:
            assert np.shares_memory(result, np.frombuffer(buffer, np.uint8)), "the view is a copy"

    result, peak = _peak_allocation(lambda: ic.image_to_rgb(msg, case.want, **_limit_kwargs(ic.image_to_rgb, limit)))
    assert peak <= budget, f"image_to_rgb allocated {peak} bytes for a {budget - _SLACK}-byte budget"
    expected = None if breaks else _expected_rgb(case, _reference(case))
    if expected is None:
        refused = breaks or {"not a colour encoding": rf"^cannot convert {re.escape(str(case.encoding))} to "}
        assert isinstance(result, BaseException), f"image_to_rgb accepted a message breaking {sorted(refused)}"
        _check_error(result, refused, "image_to_rgb")
        return
    if isinstance(result, BaseException):
        raise AssertionError(f"image_to_rgb refused a valid message: {type(result).__name__}: {result}")
    rgb, order = result
    pixels, expected_order = expected
    assert order == expected_order, (order, expected_order)
    assert rgb.shape == (case.height, case.width, 3) and rgb.dtype == np.uint8, (rgb.shape, rgb.dtype)
    if pixels is not None:
        assert np.array_equal(rgb, pixels), "converted pixels differ from the reference"


def _data_holders(raw: bytes):
    """The ways a message's data arrives: rclpy's array('B'), rosbags' numpy, bytes, and ones that are no buffer."""
    return st.sampled_from(["bytes", "bytearray", "array", "numpy", "memoryview"]).map(
        lambda kind: {
            "bytes": lambda: raw,
            "bytearray": lambda: bytearray(raw),
            "array": lambda: py_array("B", raw),
            "numpy": lambda: np.frombuffer(raw, np.uint8).copy(),
            "memoryview": lambda: memoryview(raw),
        }[kind]()
    )


_NOT_BUFFERS = st.sampled_from(
    [None, "abc", [1, 2, 3], 7, np.zeros((4, 4), np.uint8)[:, ::2], np.array([b"a"], dtype=object)]
)
_u32 = st.one_of(st.integers(0, 16), st.sampled_from(_U32_EDGES), st.integers(0, U32_MAX))
# values no message can hold (a hand-built stand-in can): negative, wider than the field, not an int
_not_u32 = st.one_of(
    st.integers(-(2**64), -1), st.integers(2**32, 2**70), st.sampled_from([None, 1.5, "3", b"3", float("nan")])
)
_limits = st.sampled_from([_DEFAULT_LIMIT, _DEFAULT_LIMIT, _DEFAULT_LIMIT, None, 2**31, 1, 12, 64])


@st.composite
def _consistent_image(draw) -> ImageCase:
    """A valid (or nearly valid) message: known encoding, small size, data of about height*step bytes."""
    encoding = draw(st.sampled_from(sorted(LAYOUTS)))
    channels, dtype = LAYOUTS[encoding]
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    if encoding in _YUV and draw(st.booleans()):
        width += width % 2
    step = width * channels * dtype.itemsize + draw(st.sampled_from([0, 0, 0, 1, 3, 8]))
    size = height * step + draw(st.sampled_from([0, 0, 0, 1, 5, -1, -step]))
    raw = draw(st.binary(min_size=max(size, 0), max_size=max(size, 0)))
    return ImageCase(
        height=height,
        width=width,
        step=step,
        encoding=encoding,
        is_bigendian=int(dtype.itemsize > 1 and draw(st.booleans())),
        data=draw(_data_holders(raw)),
        max_pixels=draw(_limits),
        want=draw(st.sampled_from(["rgb8", "bgr8"])),
        real=False,
    )


@st.composite
def _mutated_image(draw) -> ImageCase:
    """A consistent message with one to three fields replaced by extreme or impossible values."""
    case = draw(_consistent_image())
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(["height", "width", "step", "is_bigendian", "encoding", "data"]))
        if name in ("height", "width", "step"):
            value = draw(st.one_of(_u32, _u32, _not_u32))
        elif name == "is_bigendian":
            value = draw(st.one_of(st.integers(0, 255), st.integers(-3, 1000), st.sampled_from([None, True, "1"])))
        elif name == "encoding":
            value = draw(
                st.one_of(
                    st.sampled_from(sorted(LAYOUTS) + _UNKNOWN_ENCODINGS),
                    st.from_regex(_GENERIC, fullmatch=True),
                    st.text(max_size=10),
                    st.sampled_from([None, b"rgb8", 3]),
                )
            )
        else:
            value = draw(st.one_of(_NOT_BUFFERS, st.binary(max_size=64).flatmap(_data_holders)))
        setattr(case, name, value)
    return case


@st.composite
def _random_image(draw) -> ImageCase:
    """Every field drawn on its own: mostly nonsense, with tiny buffers against huge declared sizes."""
    return ImageCase(
        height=draw(_u32),
        width=draw(_u32),
        step=draw(_u32),
        encoding=draw(st.one_of(st.sampled_from(sorted(LAYOUTS) + _UNKNOWN_ENCODINGS), st.text(max_size=8))),
        is_bigendian=draw(st.integers(0, 255)),
        data=draw(st.binary(max_size=256).flatmap(_data_holders)),
        max_pixels=draw(_limits),
        want=draw(st.sampled_from(["rgb8", "bgr8"])),
    )


def _as_real(case: ImageCase) -> ImageCase:
    """Use a real sensor_msgs/Image for cases whose fields one can hold (rclpy checks them)."""
    fits = all(_is_uint(getattr(case, n), 32) for n in ("height", "width", "step"))
    if fits and _is_uint(case.is_bigendian, 8) and isinstance(case.encoding, str) and _buffer(case.data) is not None:
        try:
            import sensor_msgs.msg  # noqa: F401
        except ImportError:
            return case
        case.real = True
        case.data = bytes(_buffer(case.data))
    return case


def image_cases(real_messages: bool = True) -> st.SearchStrategy[ImageCase]:
    """The ``image`` target's inputs; with ``real_messages``, one in four is a real sensor_msgs/Image."""
    cases = st.one_of(_consistent_image(), _consistent_image(), _mutated_image(), _mutated_image(), _random_image())
    if not real_messages:
        return cases
    return st.tuples(cases, st.integers(0, 3)).map(lambda pair: _as_real(pair[0]) if pair[1] == 0 else pair[0])


# --------------------------------------------------------------------------------------------------
# sensor_msgs/CompressedImage

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_ihdr(width: int, height: int, bit_depth: int, color_type: int, interlace: int) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace))


def png_bytes(
    width: int, height: int, *, bit_depth: int = 8, color_type: int = 2, interlace: int = 0, pixels: bytes = b""
) -> bytes:
    """A PNG of any colour type, bit depth and interlacing (which cv2.imencode cannot all write).

    Scanlines are filled from ``pixels`` (repeated; zeros if empty), each with a valid filter byte
    (the first byte of its slice, mod 5), so any content decodes.
    """
    bits = _PNG_CHANNELS[color_type] * bit_depth
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    raw = bytearray()
    source = pixels or b"\x00"
    for x0, y0, dx, dy in passes:
        pass_width = (width - x0 + dx - 1) // dx if width > x0 else 0
        pass_height = (height - y0 + dy - 1) // dy if height > y0 else 0
        if pass_width == 0 or pass_height == 0:
            continue
        row_bytes = (pass_width * bits + 7) // 8
        for _ in range(pass_height):
            start = len(raw) % len(source)
            row = (source[start:] + source * (row_bytes // len(source) + 1))[: row_bytes + 1]
            raw += bytes([row[0] % 5]) + row[1:]
    palette = png_chunk(b"PLTE", bytes(range(256)) * 3) if color_type == 3 else b""
    return (
        PNG_SIGNATURE
        + _png_ihdr(width, height, bit_depth, color_type, interlace)
        + palette
        + png_chunk(b"IDAT", zlib.compress(bytes(raw)))
        + png_chunk(b"IEND", b"")
    )


def png_bomb(width: int, height: int, *, color_type: int = 2, complete: bool = True) -> bytes:
    """A valid 8-bit PNG of ``width`` x ``height`` black pixels, made in milliseconds at any size.

    Deflate compresses zeros about 1000:1, so 30000 x 30000 rgb (2.7 GB decoded) is a 2.6 MB file.
    The zlib stream is one fully-flushed segment repeated (each starts with no history, so the
    copies chain), a final block and the Adler-32 of n zero bytes, which is ((n mod 65521) << 16) | 1.
    ``complete=False`` keeps only the first 64 KiB of the stream: the header still declares the size.
    """
    row = 1 + width * _PNG_CHANNELS[color_type]
    total = row * height
    block = max(1, (4 << 20) // row) * row  # ~4 MB of scanlines per segment
    compressor = zlib.compressobj(9)
    first = compressor.compress(bytes(min(block, total))) + compressor.flush(zlib.Z_FULL_FLUSH)
    header, segment = first[:2], first[2:]
    repeats, rest = divmod(total, block) if total > block else (1, 0)
    tail_compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = tail_compressor.compress(bytes(rest)) + tail_compressor.flush()
    adler = ((total % 65521) << 16) | 1
    stream = header + segment * repeats + tail + struct.pack(">I", adler)
    if not complete:
        stream = stream[: 64 * 1024]
    return (
        PNG_SIGNATURE
        + _png_ihdr(width, height, 8, color_type, 0)
        + png_chunk(b"IDAT", stream)
        + png_chunk(b"IEND", b"")
    )


def png_declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of the IHDR that a PNG must open with, or None where ``data`` has none."""
    if data[:8] == PNG_SIGNATURE and len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_segments(data: bytes) -> list[int]:
    """Offsets of the marker segments of a well-formed JPEG (our own seeds) up to the first SOS."""
    offsets, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        offsets.append(pos)
        if data[pos + 1] == 0xDA:
            break
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return offsets


def _jpeg_sof_offset(data: bytes) -> int | None:
    return next((pos for pos in _jpeg_segments(data) if data[pos + 1] in _JPEG_SOF), None)


def _fake_sof(width: int, height: int, marker: int = 0xC0) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">HBHHB", 11, 8, height & 0xFFFF, width & 0xFFFF, 1) + b"\x01\x11\x00"


def _exif_segment(orientation: int) -> bytes:
    """APP1 with a big-endian EXIF block holding only the Orientation tag (0x0112)."""
    ifd = struct.pack(">HHHIHH", 1, 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + b"MM\x00*" + struct.pack(">I", 8) + ifd
    return b"\xff\xe1" + struct.pack(">H", 2 + len(payload)) + payload


@st.composite
def _jpeg_insert(draw) -> bytes:
    """Bytes that may stand between JPEG segments: what libjpeg skips, and what would make it read another size."""
    width, height = draw(_side), draw(_side)
    marker = draw(st.sampled_from([0xE0, 0xE1, 0xE2, 0xED, 0xEE, 0xFE, 0xDD, 0xDC]))  # APPn, COM, DRI, DNL
    return draw(
        st.sampled_from(
            [
                bytes([0xFF, marker]) + struct.pack(">H", 2 + 11) + _fake_sof(width, height),  # a SOF inside a segment
                bytes([0xFF, marker, 0x00, draw(st.integers(0, 1))]),  # a length shorter than itself
                _fake_sof(
                    width, height, draw(st.sampled_from(sorted(_JPEG_SOF)))
                ),  # a frame header before the real one
                b"\xff\xff\xff",  # fill bytes
                b"\x00\x12\xff\x00",  # garbage and a stuffed 0xFF
                b"\xff\xd0\xff\x01",  # RST0 and TEM: no length
                b"\xff\xd8",  # a second SOI
                _exif_segment(draw(st.integers(0, 9))),  # EXIF orientation: 5-8 turn the image by 90 degrees
            ]
        )
    )


@dataclass
class CompressedCase:
    """One fuzzed CompressedImage: data, format string, limit, and how the data was made (for reports)."""

    data: bytes
    format: str = "png"
    max_pixels: int | None = 4096
    recipe: list = field(default_factory=list)
    holder: str = "bytes"
    real: bool = False

    def message(self):
        if self.real:
            from sensor_msgs.msg import CompressedImage

            msg = CompressedImage(format=self.format)
            msg.data = self.data
            return msg
        data = {"bytes": self.data, "array": py_array("B", self.data), "numpy": np.frombuffer(self.data, np.uint8)}
        return SimpleNamespace(format=self.format, data=data.get(self.holder, self.holder))

    def __repr__(self) -> str:
        shown = repr(self.data) if len(self.data) <= 64 else f"<{len(self.data)} bytes, starts {self.data[:24]!r}>"
        return (
            f"CompressedCase(recipe={self.recipe!r}, data={shown}, format={self.format!r}, "
            f"max_pixels={self.max_pixels!r}, holder={self.holder!r}, real={self.real!r})"
        )


@st.composite
def _png_seed(draw) -> tuple[bytes, list]:
    color_type = draw(st.sampled_from(sorted(_PNG_DEPTHS)))
    bit_depth = draw(st.sampled_from(_PNG_DEPTHS[color_type]))
    width, height, interlace = draw(st.integers(1, 20)), draw(st.integers(1, 20)), draw(st.integers(0, 1))
    pixels = draw(st.binary(min_size=1, max_size=64))
    recipe = [("png", width, height, bit_depth, color_type, interlace)]
    return png_bytes(
        width, height, bit_depth=bit_depth, color_type=color_type, interlace=interlace, pixels=pixels
    ), recipe


@st.composite
def _cv2_seed(draw) -> tuple[bytes, list]:
    """A JPEG (baseline, progressive, optimized, subsampled, grey) or an animated PNG written by OpenCV."""
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    channels = draw(st.sampled_from([1, 3]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    if draw(st.integers(0, 5)) == 0:
        frames = [image, 255 - image]
        animation = cv2.Animation()
        animation.frames, animation.durations = frames, [100, 100]
        ok, encoded = cv2.imencodeanimation(".png", animation)
        assert ok
        return encoded.tobytes(), [("apng", width, height, channels)]
    quality = draw(st.integers(1, 100))
    progressive, optimize = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    sampling = draw(st.sampled_from([getattr(cv2, f"IMWRITE_JPEG_SAMPLING_FACTOR_{n}") for n in (444, 422, 420, 411)]))
    params = [
        cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, progressive,
        cv2.IMWRITE_JPEG_OPTIMIZE, optimize, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling,
    ]  # fmt: skip
    ok, encoded = cv2.imencode(".jpg", image, params)
    assert ok
    return encoded.tobytes(), [("jpeg", width, height, channels, quality, progressive, optimize, hex(sampling))]


_side = st.one_of(st.integers(0, 64), st.sampled_from([0, 1, 8192, 8193, 30000, 65535, 65536, 2**31 - 1, U32_MAX]))


@st.composite
def _foreign_header(draw) -> tuple[bytes, list]:
    """Headers of the other formats OpenCV reads, declaring any size, followed by a few bytes."""
    width, height = draw(_side), draw(_side)
    kind = draw(st.sampled_from(["pgm", "ppm", "pfm", "bmp", "gif", "hdr", "tiff", "webp", "sun", "j2k", "avif"]))
    tail = draw(st.binary(max_size=32))
    w16, h16 = width & 0xFFFF, height & 0xFFFF
    header = {
        "pgm": f"P5\n{width} {height}\n255\n".encode(),
        "ppm": f"P6\n{width} {height}\n65535\n".encode(),
        "pfm": f"PF\n{width} {height}\n-1.0\n".encode(),
        "bmp": b"BM" + struct.pack("<IHHIIiiHHIIiiII", 0, 0, 0, 54, 40, width & 0x7FFFFFFF, height & 0x7FFFFFFF, 1, 24, 0, 0, 0, 0, 0, 0),
        "gif": b"GIF89a" + struct.pack("<HHBBB", w16, h16, 0, 0, 0) + b",\x00\x00\x00\x00" + struct.pack("<HH", w16, h16) + b"\x00\x08",
        "hdr": f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {height} +X {width}\n".encode(),
        "tiff": b"II*\x00\x08\x00\x00\x00\x02\x00" + struct.pack("<HHII", 256, 4, 1, width & U32_MAX) + struct.pack("<HHII", 257, 4, 1, height & U32_MAX) + b"\x00\x00\x00\x00",
        "webp": b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8L" + struct.pack("<I", 10) + b"\x2f" + struct.pack("<I", ((w16 - 1) & 0x3FFF) | (((h16 - 1) & 0x3FFF) << 14)),
        "sun": b"\x59\xa6\x6a\x95" + struct.pack(">IIIIIII", width & U32_MAX, height & U32_MAX, 24, 0, 1, 0, 0),
        "j2k": b"\xff\x4f\xff\x51" + struct.pack(">HHIIIIIIIIH", 41, 0, width & U32_MAX, height & U32_MAX, 0, 0, width & U32_MAX, height & U32_MAX, 0, 0, 1),
        "avif": b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
    }[kind]  # fmt: skip
    return header + tail, [(kind, width, height)]


def _png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, payload length) of each chunk of a well-formed PNG (our own seeds)."""
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        chunks.append((bytes(data[pos + 4 : pos + 8]), pos, length))
        pos += 12 + length
    return chunks


def _rewrite_frame(data: bytearray, index: int, geometry: tuple[int, int, int, int]) -> bool:
    """Make an APNG frame control chunk (fcTL) declare width, height, x and y offsets; CRC kept valid."""
    frames = [(pos, length) for kind, pos, length in _png_chunks(bytes(data)) if kind == b"fcTL" and length == 26]
    if not frames or data[:8] != PNG_SIGNATURE:
        return False
    pos, length = frames[index % len(frames)]
    data[pos + 12 : pos + 28] = struct.pack(">IIII", *(value & U32_MAX for value in geometry))
    data[pos + 8 + length : pos + 12 + length] = struct.pack(">I", zlib.crc32(bytes(data[pos + 4 : pos + 8 + length])))
    return True


def _rewrite_size(data: bytearray, width: int, height: int, fix_crc: bool) -> bool:
    """Make the header of our PNG or JPEG seed declare ``width`` x ``height``; False if it has none."""
    if png_declared_size(bytes(data[:24])) is not None:
        data[16:24] = struct.pack(">II", width & U32_MAX, height & U32_MAX)
        if fix_crc and len(data) >= 33:
            data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
        return True
    sof = _jpeg_sof_offset(bytes(data)) if data[:2] == b"\xff\xd8" else None
    if sof is None or sof + 9 > len(data):
        return False
    data[sof + 5 : sof + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
    return True


@st.composite
def _mutated(draw, seeds) -> tuple[bytes, list]:
    """A seed with up to four mutations: header size rewritten, bits flipped, bytes set, cut, inserted, truncated."""
    raw, recipe = draw(seeds)
    data = bytearray(raw)
    recipe = list(recipe)
    for _ in range(draw(st.integers(0, 4))):
        kinds = ["size", "size", "flip", "flip", "set", "truncate", "insert", "delete", "segment", "frame"]
        kind = draw(st.sampled_from(kinds))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "size":
            width, height, fix_crc = draw(_side), draw(_side), draw(st.booleans())
            if _rewrite_size(data, width, height, fix_crc):
                recipe.append(("size", width, height, fix_crc))
        elif kind == "flip":
            bit = draw(st.integers(0, 7))
            data[pos] ^= 1 << bit
            recipe.append(("flip", pos, bit))
        elif kind == "set":
            value = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, 0xD9, 0xDA, 0xC0]) | st.integers(0, 255))
            data[pos] = value
            recipe.append(("set", pos, value))
        elif kind == "truncate":
            del data[pos:]
            recipe.append(("truncate", pos))
        elif kind == "frame":
            index, geometry = draw(st.integers(0, 1)), draw(st.tuples(_side, _side, _side, _side))
            if _rewrite_frame(data, index, geometry):
                recipe.append(("frame", index, geometry))
        elif kind == "segment":
            offsets = _jpeg_segments(bytes(data)) if data[:2] == b"\xff\xd8" else []
            if offsets:
                where, extra = draw(st.sampled_from(offsets)), draw(_jpeg_insert())
                data[where:where] = extra
                recipe.append(("segment", where, extra))
        elif kind == "insert":
            extra = draw(st.binary(min_size=1, max_size=16))
            data[pos:pos] = extra
            recipe.append(("insert", pos, extra))
        else:
            count = draw(st.integers(1, 16))
            del data[pos : pos + count]
            recipe.append(("delete", pos, count))
    return bytes(data), recipe


_FORMATS = st.one_of(
    st.sampled_from(
        [
            "jpeg",
            "png",
            "rgb8; jpeg compressed bgr8",
            "mono8; png compressed ",
            "",
            "tiff",
            "16UC1; compressedDepth png",
        ]
    ),
    st.text(max_size=24),
)


@st.composite
def _compressed_case(draw) -> CompressedCase:
    seeds = st.one_of(_png_seed(), _cv2_seed())
    data, recipe = draw(
        st.one_of(
            seeds,
            _mutated(seeds),
            _mutated(seeds),
            _mutated(seeds),
            _foreign_header(),
            st.binary(max_size=128).map(lambda raw: (raw, [("random",)])),
            st.binary(max_size=64).map(lambda raw: (PNG_SIGNATURE + raw, [("png signature + random",)])),
            st.binary(max_size=64).map(lambda raw: (b"\xff\xd8\xff" + raw, [("jpeg signature + random",)])),
        )
    )
    return CompressedCase(
        data=data,
        format=draw(_FORMATS),
        # Small limits: a rewritten header then crosses them often, and nothing big is ever decoded.
        max_pixels=draw(st.sampled_from([1, 64, 400, 4096])),
        recipe=recipe,
        holder=draw(st.sampled_from(["bytes", "bytes", "array", "numpy"])),
    )


def compressed_cases(real_messages: bool = True) -> st.SearchStrategy[CompressedCase]:
    """The ``compressed`` target's inputs; with ``real_messages``, one in four is a real CompressedImage."""
    cases = _compressed_case()
    if not real_messages:
        return cases
    try:
        import sensor_msgs.msg  # noqa: F401
    except ImportError:
        return cases

    def real(pair):
        case, choice = pair
        case.real = choice == 0
        return case

    return st.tuples(cases, st.integers(0, 3)).map(real)


_COMPRESSED_ERRORS = (
    r"^could not decode .* CompressedImage",
    r"^refusing .* CompressedImage \(\d+ bytes\): .* over the limit of \d+ pixels \(max_pixels\)",
    r"^format .* is a compressedDepth image, which is not supported",
)


def check_compressed(case: CompressedCase) -> None:
    """The ``compressed`` property (module docstring); raises AssertionError with the reason when it fails."""
    msg = case.message()
    limit = case.max_pixels if _accepts_max_pixels(ic.compressed_to_rgb) else None
    kwargs = _limit_kwargs(ic.compressed_to_rgb, limit)
    try:
        bgr, order = ic.compressed_to_rgb(msg, **kwargs)
    except ic.ImageConversionError as err:
        message = str(err)
        assert any(re.search(pattern, message, re.DOTALL) for pattern in _COMPRESSED_ERRORS), message
        declared = png_declared_size(case.data)
        if declared is not None and limit is not None and "compresseddepth" not in case.format.lower():
            width, height = declared
            if width * height > limit and width and height:
                assert re.search(r"over the limit", message), (
                    f"PNG over the limit refused for another reason: {message}"
                )
        return
    except Exception as err:
        raise AssertionError(f"compressed_to_rgb raised {type(err).__name__}: {err}") from err
    assert order == "bgr8", order
    assert isinstance(bgr, np.ndarray) and bgr.dtype == np.uint8, type(bgr)
    assert bgr.ndim == 3 and bgr.shape[2] == 3, bgr.shape
    if limit is not None:
        pixels = bgr.shape[0] * bgr.shape[1]
        assert pixels <= limit, f"decoded {bgr.shape[1]}x{bgr.shape[0]}, over max_pixels {limit}"
    assert "compresseddepth" not in case.format.lower(), "decoded a compressedDepth message"
    declared = png_declared_size(case.data)
    if declared is not None:
        assert (bgr.shape[1], bgr.shape[0]) == declared, f"decoded {bgr.shape[1]}x{bgr.shape[0]}, IHDR says {declared}"
    if hasattr(ic, "compressed_size"):  # the header reader and the decoder agree (EXIF may rotate by 90 degrees)
        _, width, height = ic.compressed_size(case.data)
        assert bgr.shape[:2] in ((height, width), (width, height)), (
            f"decoded {bgr.shape[1]}x{bgr.shape[0]}, header read as {width}x{height}"
        )


# --------------------------------------------------------------------------------------------------
# sensor_msgs/CameraInfo


@dataclass
class CameraInfoCase:
    """One fuzzed camera_info, the mask size it is scaled to and the image size it came with."""

    width: object = 640
    height: object = 480
    binning_x: object = 0
    binning_y: object = 0
    roi: tuple = (0, 0, 0, 0)  # x_offset, y_offset, width, height
    k: object = (500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0)
    p: object = (500.0, 0.0, 320.0, -30.0, 0.0, 500.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    r: object = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    d: object = (0.1, -0.2, 0.0, 0.0, 0.0)
    out: object = (240, 320)  # (height, width) of the mask
    image_size: object = None  # (height, width) of the camera's image, or None
    real: bool = False

    def message(self):
        fields = dict(width=self.width, height=self.height, binning_x=self.binning_x, binning_y=self.binning_y)
        if self.real:
            from sensor_msgs.msg import CameraInfo, RegionOfInterest

            msg = CameraInfo(**fields, distortion_model="plumb_bob")
            msg.roi = RegionOfInterest(
                x_offset=self.roi[0], y_offset=self.roi[1], width=self.roi[2], height=self.roi[3]
            )
            msg.k, msg.p, msg.r, msg.d = list(self.k), list(self.p), list(self.r), list(self.d)
            msg.header.frame_id = "camera"
            return msg
        roi = SimpleNamespace(
            x_offset=self.roi[0], y_offset=self.roi[1], width=self.roi[2], height=self.roi[3], do_rectify=True
        )
        header = SimpleNamespace(frame_id="camera")
        return SimpleNamespace(
            **fields, roi=roi, k=self.k, p=self.p, r=self.r, d=self.d, distortion_model="plumb_bob", header=header
        )


def _numeric_vector(value, size):
    """The float64 values of a vector field, or None where the field is no list of numbers (of ``size``)."""
    try:
        array = np.asarray(value)
    except Exception:
        return None
    if array.ndim != 1 or array.dtype.kind not in "fiu" or (size is not None and array.size != size):
        return None
    return array.astype(np.float64)


def _pair(value) -> tuple[int, int] | None:
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and all(_is_uint(v, 32) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return value
    return None


def camera_info_rule_breaks(case: CameraInfoCase) -> dict[str, str]:
    """The rules ``case`` breaks, each with the pattern its error message must match; empty = valid.

    REP 104's reading of width, height, binning and ROI (``ros/camera_info.py``'s docstring): the
    fields are uint32; the size is not 0; binning (0 = 1) at most the size; a ROI all zeros (the full
    image) or with a width and height, at least a pixel once binned, and either inside the size or,
    binned, equal to it; the image size, where given, one the camera_info can describe; K 9, P 12,
    R 9 and D any number of finite numbers; the mask size positive.
    """
    breaks: dict[str, str] = {}
    if _pair(case.out) is None:
        breaks["mask"] = r"^mask size .* must be positive ints|^mask size .* is not a \(height, width\) pair"
    if case.image_size is not None and _pair(case.image_size) is None:
        breaks["image_size"] = r"^image size .* must be positive ints|^image size .* is not a \(height, width\) pair"
    for name, size in (("K", 9), ("P", 12), ("R", 9), ("D", None)):
        values = _numeric_vector(getattr(case, name.lower()), size)
        if values is None:
            breaks[name] = rf"^camera_info {name} (is .*, not a list of numbers|has \d+ values, expected \d+)$"
        elif not np.isfinite(values).all():
            breaks[name] = rf"^camera_info {name}\[\d+\] is (nan|inf|-inf): {name} must be finite$"
    fields = {"width": case.width, "height": case.height, "binning_x": case.binning_x, "binning_y": case.binning_y}
    fields.update(zip(("roi.x_offset", "roi.y_offset", "roi.width", "roi.height"), case.roi))
    for name, value in fields.items():
        if not (_is_uint(value, 32) and not isinstance(value, bool)):
            breaks[name] = rf"^camera_info {re.escape(name)} .* is not a uint32$"
    # the size rules, each where the fields it reads are of their type and the rules before it hold
    if "width" in breaks or "height" in breaks:
        return breaks
    width, height, image = case.width, case.height, case.image_size
    if width == 0 or height == 0:
        breaks["empty"] = r"^camera_info has no image size: \d+x\d+ \(width x height\)$"
        return breaks
    if "binning_x" in breaks or "binning_y" in breaks:
        return breaks
    bx, by = case.binning_x or 1, case.binning_y or 1
    if bx > width or by > height:
        breaks["binning"] = r"^camera_info binning \d+x\d+ is larger than its size"
        return breaks
    if any(name.startswith("roi.") for name in breaks) or "image_size" in breaks:
        return breaks
    x, y, rw, rh = case.roi
    if (x, y, rw, rh) == (0, 0, 0, 0):
        if image is not None and image not in ((height, width), (height // by, width // bx)):
            breaks["image"] = r"^camera_info describes \d+x\d+ .*, but its image is \d+x\d+$"
    elif rw == 0 or rh == 0:
        breaks["roi_empty"] = r"^camera_info ROI \d+x\d+ at \(\d+, \d+\) is empty"
    elif rh // by == 0 or rw // bx == 0:
        breaks["roi_pixel"] = r"^camera_info ROI \d+x\d+ binned \d+x\d+ is under a pixel$"
    else:
        binned = (rh // by, rw // bx)
        if image is not None and image != binned:
            breaks["image"] = r"^camera_info ROI .* binned .*, but its image is \d+x\d+$"
        elif binned != (height, width) and not (x + rw <= width and y + rh <= height):
            breaks["roi_outside"] = r"^camera_info ROI \d+x\d+ at \(\d+, \d+\) reaches outside its"
    return breaks


def _camera_info_reference(case: CameraInfoCase):
    """(K', P', the magnitude each entry's terms reach) for a valid ``case``: 3x3 / 3x4 matrix
    products (the module uses scalar formulas), from the image size REP 104 says it describes."""
    width, height = case.width, case.height
    bx, by = case.binning_x or 1, case.binning_y or 1
    x, y, rw, rh = case.roi
    if rw and rh:
        base, offset = (rh // by, rw // bx), (x, y)
    else:
        base, offset = (case.image_size or (height, width)), (0, 0)
    out_h, out_w = case.out
    scale = np.diag([out_w / base[1], out_h / base[0], 1.0])
    crop = np.array([[1 / bx, 0, -offset[0] / bx], [0, 1 / by, -offset[1] / by], [0, 0, 1]])
    transform = scale @ crop
    k = np.asarray(case.k, np.float64).reshape(3, 3)
    p = np.asarray(case.p, np.float64).reshape(3, 4)
    with np.errstate(all="ignore"):
        return (transform @ k, transform @ p, np.abs(transform) @ np.abs(k), np.abs(transform) @ np.abs(p))


_OVERFLOW = (
    r"^camera_info scaled from \d+x\d+ to \d+x\d+ \(width x height\) overflows: [KP]\[\d+\] becomes (inf|-inf|nan)$"
)


def check_camera_info(case: CameraInfoCase) -> None:
    """The ``camera_info`` property: a consistent, finite camera_info is scaled exactly as the
    reference does (up to rounding) and the result is finite, has the mask's size, no binning and
    no ROI, with R and D as they were; anything else raises CameraInfoError naming a rule it
    breaks; a result that would overflow raises CameraInfoError saying so; nothing else is raised."""
    from .ros import camera_info as ci

    msg = case.message()
    before = copy.deepcopy(msg)
    breaks = camera_info_rule_breaks(case)
    reference = None if breaks else _camera_info_reference(case)
    if reference is not None:
        k_ref, p_ref, k_mag, p_mag = reference
        huge = max(k_mag.max(), p_mag.max()) > 1e300 or not (np.isfinite(k_ref).all() and np.isfinite(p_ref).all())
        if huge:
            breaks["overflow"] = _OVERFLOW
    try:
        out = ci.scale_camera_info(msg, *case.out, image_size=case.image_size)
    except ci.CameraInfoError as err:
        message = str(err)
        if not breaks:
            raise AssertionError(f"scale_camera_info refused a valid camera_info: {message}") from err
        if not any(re.search(pattern, message) for pattern in breaks.values()):
            raise AssertionError(
                f"scale_camera_info raised an error naming none of the broken rules {sorted(breaks)}: {message}"
            ) from err
        return
    except Exception as err:
        raise AssertionError(f"scale_camera_info raised {type(err).__name__}: {err}") from err
    real_breaks = {name: pattern for name, pattern in breaks.items() if name != "overflow"}
    assert not real_breaks, f"scale_camera_info accepted a camera_info breaking {sorted(real_breaks)}"
    k_out, p_out = np.asarray(out.k, np.float64), np.asarray(out.p, np.float64)
    assert k_out.shape == (9,) and p_out.shape == (12,), (k_out.shape, p_out.shape)
    assert np.isfinite(k_out).all() and np.isfinite(p_out).all(), f"non-finite output K {k_out} P {p_out}"
    assert (out.height, out.width) == case.out, ((out.height, out.width), case.out)
    assert out.binning_x == 0 and out.binning_y == 0, (out.binning_x, out.binning_y)
    roi = out.roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height, bool(roi.do_rectify)) == (0, 0, 0, 0, False)
    assert list(np.asarray(out.r, np.float64)) == list(np.asarray(case.r, np.float64)), "R changed"
    assert list(np.asarray(out.d, np.float64)) == list(np.asarray(case.d, np.float64)), "D changed"
    assert out.header.frame_id == "camera" and out.distortion_model == "plumb_bob"
    assert list(np.asarray(msg.k, np.float64)) == list(np.asarray(before.k, np.float64)), "the input was changed"
    k_ref, p_ref, k_mag, p_mag = reference
    if np.isfinite(k_ref).all() and np.isfinite(p_ref).all():
        for name, got, want, magnitude in (
            ("K", k_out, k_ref.ravel(), k_mag.ravel()),
            ("P", p_out, p_ref.ravel(), p_mag.ravel()),
        ):
            error = np.abs(got - want)
            bound = 1e-12 * magnitude + 1e-300
            assert (error <= bound).all(), f"{name} {got.tolist()} differs from the reference {want.tolist()}"


_finite = st.floats(-1e4, 1e4, allow_nan=False)
_extreme_floats = st.sampled_from(
    [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 1.7976931348623157e308, 5e-324, -0.0, 1e300, 1e-300]
)
_cam_u32 = st.one_of(st.integers(0, 8), st.sampled_from(_U32_EDGES), st.integers(0, U32_MAX))


@st.composite
def _consistent_camera_info(draw) -> CameraInfoCase:
    """A calibrated camera: size, binning, a ROI (none, inside the sensor, or one whose binned size is
    the camera_info's own), K and P of that camera, R and D, a mask size and maybe the image size."""
    width, height = draw(st.integers(1, 4096)), draw(st.integers(1, 4096))
    bx, by = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    bx, by = min(bx, width), min(by, height)
    roi = (0, 0, 0, 0)
    kind = draw(st.sampled_from(["none", "none", "inside", "binned-is-size"]))
    if kind == "inside":
        rw, rh = draw(st.integers(max(1, bx), width)), draw(st.integers(max(1, by), height))
        roi = (draw(st.integers(0, width - rw)), draw(st.integers(0, height - rh)), rw, rh)
    elif kind == "binned-is-size":
        rw, rh = width * (bx or 1) + draw(st.integers(0, max(0, (bx or 1) - 1))), height * (by or 1)
        roi = (draw(st.integers(0, 3000)), draw(st.integers(0, 3000)), rw, rh)
    fx, fy = draw(st.floats(1, 5000)), draw(st.floats(1, 5000))
    cx, cy, skew, tx = draw(_finite), draw(_finite), draw(st.sampled_from([0.0, 0.5])), draw(_finite)
    k = (fx, skew, cx, 0.0, fy, cy, 0.0, 0.0, 1.0)
    p = (fx, skew, cx, tx, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0)
    if draw(st.integers(0, 9)) == 0:  # uncalibrated: zeros (sensor_msgs/CameraInfo: K[0] == 0)
        k, p = (0.0,) * 9, (0.0,) * 12
    out = (draw(st.integers(1, 4096)), draw(st.integers(1, 4096)))
    image = None
    if draw(st.booleans()):
        if roi[2]:
            image = (roi[3] // (by or 1), roi[2] // (bx or 1))
        else:
            image = draw(st.sampled_from([(height, width), (height // (by or 1), width // (bx or 1))]))
    d = tuple(draw(st.lists(_finite, max_size=8)))
    return CameraInfoCase(width, height, bx, by, roi, k, p, CameraInfoCase.r, d, out, image)


def _mutate_vector(draw, values):
    values = list(values) if isinstance(values, tuple) else [1.0] * 9  # replaced by a mutation before
    kind = draw(st.sampled_from(["entry", "entry", "entry", "length", "type"]))
    if kind == "entry" and values:
        values[draw(st.integers(0, len(values) - 1))] = draw(st.one_of(_extreme_floats, _finite))
        return tuple(values)
    if kind == "length":
        return tuple(values[: draw(st.integers(0, len(values)))] + [1.0] * draw(st.integers(0, 3)))
    return draw(st.sampled_from([None, "abcdefghi", [[1.0] * 3] * 3, [1.0] * 8 + ["1"], [True] * 9, 7, [10**400] * 9]))


@st.composite
def _mutated_camera_info(draw) -> CameraInfoCase:
    case = draw(_consistent_camera_info())
    for _ in range(draw(st.integers(1, 3))):
        name = draw(
            st.sampled_from(
                ["width", "height", "binning_x", "binning_y", "roi", "k", "k", "p", "p", "r", "d", "out", "image_size"]
            )
        )
        if name in ("width", "height", "binning_x", "binning_y"):
            value = draw(st.one_of(_cam_u32, _cam_u32, _not_u32, st.just(True)))
        elif name == "roi":
            roi = list(case.roi)
            roi[draw(st.integers(0, 3))] = draw(st.one_of(_cam_u32, _not_u32))
            value = tuple(roi)
        elif name in ("k", "p", "r", "d"):
            value = _mutate_vector(draw, getattr(case, name))
        elif name == "out":
            value = draw(
                st.one_of(st.tuples(_cam_u32, _cam_u32), st.tuples(_not_u32, st.integers(1, 9)), st.just((True, 4)))
            )
        else:
            value = draw(
                st.one_of(
                    st.none(),
                    st.tuples(st.integers(0, 5000), st.integers(0, 5000)),
                    st.sampled_from([(0, 1), (-1, 5), (1.5, 2)]),
                )
            )
        setattr(case, name, value)
    return case


@st.composite
def _random_camera_info(draw) -> CameraInfoCase:
    """Every field on its own, sizes of any uint32, K and P of any floats."""
    floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), _extreme_floats)
    return CameraInfoCase(
        width=draw(_cam_u32), height=draw(_cam_u32), binning_x=draw(_cam_u32), binning_y=draw(_cam_u32),
        roi=draw(st.tuples(_cam_u32, _cam_u32, _cam_u32, _cam_u32)),
        k=tuple(draw(st.lists(floats, min_size=9, max_size=9))), p=tuple(draw(st.lists(floats, min_size=12, max_size=12))),
        d=tuple(draw(st.lists(floats, max_size=5))),
        out=draw(st.tuples(_cam_u32, _cam_u32)),
        image_size=draw(st.one_of(st.none(), st.tuples(_cam_u32, _cam_u32))),
    )  # fmt: skip


def _as_real_camera_info(case: CameraInfoCase) -> CameraInfoCase:
    """A real sensor_msgs/CameraInfo where its fields can hold the case (rclpy checks no field by default)."""
    ints = [case.width, case.height, case.binning_x, case.binning_y, *case.roi]
    vectors = [_numeric_vector(v, None) for v in (case.k, case.p, case.r, case.d)]
    if all(_is_uint(v, 32) and not isinstance(v, bool) for v in ints) and all(v is not None for v in vectors):
        try:
            import sensor_msgs.msg  # noqa: F401
        except ImportError:
            return case
        case.real = True
    return case


def camera_info_cases(real_messages: bool = True) -> st.SearchStrategy[CameraInfoCase]:
    """The ``camera_info`` target's inputs; with ``real_messages``, one in four is a real CameraInfo."""
    cases = st.one_of(_consistent_camera_info(), _mutated_camera_info(), _mutated_camera_info(), _random_camera_info())
    if not real_messages:
        return cases
    return st.tuples(cases, st.integers(0, 3)).map(
        lambda pair: _as_real_camera_info(pair[0]) if pair[1] == 0 else pair[0]
    )


# --------------------------------------------------------------------------------------------------
# rosbag2 recordings

RECORDING_SEEDS = ("sqlite3", "mcap", "mcap-zstd", "sqlite3-message", "mcap-file")
LAYOUT_DAMAGE = ("missing", "directory", "empty", "fifo", "devzero", "loop")
RECORDING_TIMEOUT_S = 10.0  # per case; reading a seed takes about 10 ms
_seed_folder: Path | None = None
_seed_cache: dict[str, tuple[Path, dict]] = {}


def write_recording(
    path: Path,
    storage: str = "sqlite3",
    compression: str = "",
    broken_frame: int | None = None,
    chunk_compressor: tuple | None = None,
) -> None:
    """A small valid drive: a raw rgb8 camera with its camera_info, a PNG camera and a Float32 topic,
    three frames each. ``compression``: ``file`` or ``message`` (rosbag2's zstd modes) or ``storage``
    (zstd MCAP chunks). ``broken_frame``: that raw frame is written as CDR cut in the middle of its
    encoding string (the recording opens; reading stops there). ``chunk_compressor``: (name, function)
    that MCAP chunks are compressed with instead (``bomb_storage``)."""
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, Writer
    from rosbags.typesys import Stores, get_typestore

    from .data.bags import STORAGES

    store = get_typestore(Stores.ROS2_KILTED)
    types = store.types
    writer = Writer(path, version=9, storage_plugin=STORAGES[storage])
    if compression:
        writer.set_compression(CompressionMode[compression.upper()], CompressionFormat.ZSTD)
    topics = {
        "/cam/image_raw": "sensor_msgs/msg/Image",
        "/cam/camera_info": "sensor_msgs/msg/CameraInfo",
        "/cam2/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
        "/speed": "std_msgs/msg/Float32",
    }
    png = png_bytes(3, 2, pixels=bytes(range(18)))
    with writer:
        if chunk_compressor is not None:  # rosbags' McapWriter compresses each chunk with it
            writer.storage.compression, writer.storage.compressor = chunk_compressor
        connections = {topic: writer.add_connection(topic, kind, typestore=store) for topic, kind in topics.items()}
        for index in range(3):
            stamp = types["builtin_interfaces/msg/Time"](sec=1_600_000_000 + index, nanosec=index)
            header = types["std_msgs/msg/Header"](stamp=stamp, frame_id="cam")
            pixels = np.arange(48, dtype=np.uint8) + index
            roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
            messages = {
                "/cam/image_raw": types["sensor_msgs/msg/Image"](
                    header=header, height=4, width=4, encoding="rgb8", is_bigendian=0, step=12, data=pixels
                ),
                "/cam/camera_info": types["sensor_msgs/msg/CameraInfo"](
                    header=header,
                    height=4,
                    width=4,
                    distortion_model="plumb_bob",
                    d=np.zeros(5),
                    k=np.array([5.0, 0, 2, 0, 5, 2, 0, 0, 1]),
                    r=np.eye(3).ravel(),
                    p=np.array([5.0, 0, 2, 0, 0, 5, 2, 0, 0, 0, 1, 0]),
                    binning_x=0,
                    binning_y=0,
                    roi=roi,
                ),  # fmt: skip
                "/cam2/image_raw/compressed": types["sensor_msgs/msg/CompressedImage"](
                    header=header, format="png", data=np.frombuffer(png, np.uint8)
                ),
                "/speed": types["std_msgs/msg/Float32"](data=float(index)),
            }
            for offset, (topic, msg) in enumerate(messages.items()):
                raw = store.serialize_cdr(msg, topics[topic])
                if broken_frame == index and topic == "/cam/image_raw":
                    raw = bytes(raw)[: bytes(raw).index(b"rgb8") + 2]
                writer.write(connections[topic], 1_700_000_000 * 10**9 + index * 100_000_000 + offset, raw)


def recording_seed(name: str) -> tuple[Path, dict]:
    """(folder, {file name: bytes}) of seed recording ``name``, written once per process."""
    global _seed_folder
    if name not in _seed_cache:
        import atexit
        import shutil
        import tempfile

        if _seed_folder is None:
            _seed_folder = Path(tempfile.mkdtemp(prefix="narrow-seg-fuzz-"))
            atexit.register(shutil.rmtree, _seed_folder, True)
        storage, _, compression = name.partition("-")
        compression = {"zstd": "storage"}.get(compression, compression)
        bag = _seed_folder / name
        write_recording(bag, storage, compression)
        _seed_cache[name] = (bag, {p.name: p.read_bytes() for p in sorted(bag.iterdir())})
    return _seed_cache[name]


def _storage_name(files: dict) -> str:
    return next(name for name in files if name != "metadata.yaml")


BOMB_SEEDS = {"message": "sqlite3-message", "chunk": "mcap-zstd", "lz4-chunk": "mcap-zstd", "file": "mcap-file"}
BOMB_SIZES = (64 << 20, 600 << 20)  # over the fuzzing limit below; the larger over the default one too
BOMB_LIMIT = 4 << 20  # MAX_DECOMPRESSED_BYTES while a bomb case runs: a bomb stops there, not at 512 MiB
# What reading any case may allocate (tracemalloc): a bomb's output grows in a buffer and is copied
# once (3x the limit); the seeds are 2-29 KB, so record lengths and sizes beyond that are refused first
RECORDING_MAX_ALLOCATED = 3 * BOMB_LIMIT + (4 << 20)
_bomb_cache: dict[tuple, bytes] = {}


def zstd_bomb(size: int, declare: bool = False) -> bytes:
    """A zstd frame of all-zero RLE blocks: 4 bytes per 128 KiB of the ``size`` it expands to (a
    multiple of 128 KiB); ``declare``: the header states the content size (else it is omitted)."""
    blocks = size >> 17
    header = b"\x28\xb5\x2f\xfd" + (b"\xc0\x38" + struct.pack("<Q", size) if declare else b"\x00\x38")  # 128 KiB window
    block = ((1 << 1) | (1 << 17 << 3)).to_bytes(3, "little") + b"\x00"  # type RLE, 128 KiB of byte 0
    last = ((1 << 1) | (1 << 17 << 3) | 1).to_bytes(3, "little") + b"\x00"
    return header + block * (blocks - 1) + last


def _mcap_declare(data: bytearray, size: int) -> None:
    """Every chunk (record and summary index) made to declare ``size`` uncompressed bytes."""
    pos = 8
    while pos + 9 <= len(data):
        opcode, length = data[pos], struct.unpack_from("<Q", data, pos + 1)[0]
        if opcode == 0x06:
            struct.pack_into("<Q", data, pos + 9 + 16, size)
        elif opcode == 0x08:  # chunk index: uncompressed size is its last field
            struct.pack_into("<Q", data, pos + 9 + length - 8, size)
        pos += 9 + length


def bomb_storage(kind: str, size: int, declare: bool) -> bytes:
    """The storage file of seed ``BOMB_SEEDS[kind]`` with its compressed data replaced by a bomb of
    ``size`` bytes: ``message`` the first message (rosbag2's message mode), ``chunk`` / ``lz4-chunk``
    every MCAP chunk (``declare``: the chunks declare ``size``, else their true small size), ``file``
    the whole file (file mode). ``declare`` also sets the zstd frame's content size."""
    key = (kind, size, declare)
    if key not in _bomb_cache:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="narrow-seg-fuzz-bomb-") as folder:
            _bomb_cache[key] = _build_bomb(Path(folder), kind, size, declare)
    return _bomb_cache[key]


def _build_bomb(folder: Path, kind: str, size: int, declare: bool) -> bytes:
    if kind == "file":
        return zstd_bomb(size, declare)
    if kind == "message":
        import sqlite3

        _, files = recording_seed("sqlite3-message")
        path = folder / _storage_name(files)
        path.write_bytes(files[path.name])
        with sqlite3.connect(path) as db:
            db.execute("UPDATE messages SET data = ? WHERE id = 1", (zstd_bomb(size, declare),))
        db.close()
        return path.read_bytes()
    if kind == "lz4-chunk":
        import lz4.frame

        bomb = lz4.frame.compress(bytes(size))  # lz4 expands 255x at most: 64 MiB from 256 KB
        compressor = ("lz4", lambda _: bomb)
    else:
        compressor = ("zstd", lambda _: zstd_bomb(size, declare))
    write_recording(folder / "bag", "mcap", "storage", chunk_compressor=compressor)
    data = bytearray(next((folder / "bag").glob("*.mcap")).read_bytes())
    if declare:
        _mcap_declare(data, size)
    return bytes(data)


def _mcap_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, byte width) of the length and size fields of an MCAP's records: the record lengths,
    and in chunks the uncompressed size and compressed size (what a reader allocates by)."""
    fields, pos = [], 8
    while pos + 9 <= len(data):
        opcode, length = data[pos], struct.unpack_from("<Q", data, pos + 1)[0]
        fields.append((pos + 1, 8))
        if opcode == 0x06 and pos + 9 + 24 <= len(data):  # Chunk: start, end, uncompressed size, crc, ...
            fields.append((pos + 9 + 16, 8))
        pos += 9 + length
    return fields


_SQLITE_FIELDS = [(16, 2), (18, 1), (19, 1), (20, 1), (28, 4), (32, 4), (36, 4), (44, 4), (52, 4), (56, 4)]
_FIELD_VALUES = st.sampled_from([0, 1, 2, 255, 256, 65535, 2**31 - 1, 2**32 - 1, 2**63 - 1, 2**64 - 1])


def _metadata_paths(node, prefix=()) -> list[tuple]:
    paths = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        paths += _metadata_paths(value, (*prefix, key))
    return paths


_METADATA_VALUES = st.sampled_from(
    [None, -1, 0, 2**64, 1.5, float("nan"), True, "", "x", [], {}, [[[]]], "a" * 5000, "line\nbreak",
     "../../../etc/passwd", "/tmp/elsewhere.db3", "metadata.yaml", ".", "sqlite3", "mcap", "rosbag_v2",
     "zstd", "lz4", "file", "message", "cdr", "json", 9, 10, 1, "9", "sensor_msgs/msg/Image",
     "sensor_msgs/msg/CompressedImage", "std_msgs/msg/String", "sensor_msgs/msg/Nope", "no/type",
     "RIHS01_" + "0" * 64, "- history: 3\n  depth: -1\n"]
)  # fmt: skip


def _metadata_texts(text: str) -> dict[str, str]:
    """Whole metadata.yaml files made from the seed's: a billion-laughs bomb, deep nesting, size."""
    bomb = "  custom_data:\n    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)
    )
    lines = text.splitlines(keepends=True)
    return {
        "alias bomb (10^10 expanded)": lines[0] + bomb + "".join(lines[1:]),
        "recursive alias": text.replace("  relative_file_paths:", "  relative_file_paths: &r\n    - [*r]\n  z:", 1),
        "nested 100000 deep": lines[0] + "  custom_data: " + "[" * 100_000 + "]" * 100_000 + "\n" + "".join(lines[1:]),
        "5 MB": text + "#" + "x" * (5 << 20) + "\n",
        "empty": "",
        "a list": "- 1\n- 2\n",
        "tab indented": text.replace("  ", "\t", 3),
    }  # fmt: skip


@dataclass
class RecordingCase:
    """A seed recording (``RECORDING_SEEDS``) and the damage done to its copy."""

    seed: str
    mutations: list = field(default_factory=list)

    def build(self, folder: Path) -> Path:
        """The damaged recording, as the folder ``folder/bag``."""
        import os

        import yaml

        _, files = recording_seed(self.seed)
        contents = {name: bytearray(data) for name, data in files.items()}
        storage = _storage_name(files)
        layout = []
        for mutation in self.mutations:
            where, kind, *args = mutation
            if where == "layout":
                layout.append(kind)
                continue
            if where == "bomb":
                contents[storage] = bytearray(bomb_storage(kind, *args))
                continue
            if where == "metadata" and kind.startswith("key-"):
                try:  # after byte damage the file may be no YAML any more: then the edit is skipped
                    metadata_doc = yaml.safe_load(bytes(contents["metadata.yaml"]).decode())
                except (UnicodeDecodeError, yaml.YAMLError, RecursionError):  # (the 100000-deep file)
                    continue
                _edit_document(metadata_doc, kind.removeprefix("key-"), *args)
                contents["metadata.yaml"] = bytearray(yaml.safe_dump(metadata_doc, sort_keys=False).encode())
                continue
            if where == "metadata" and kind == "text":
                contents["metadata.yaml"] = bytearray(
                    _metadata_texts(files["metadata.yaml"].decode())[args[0]].encode()
                )
                continue
            _edit_bytes(contents[storage if where == "storage" else "metadata.yaml"], kind, *args)
        bag = folder / "bag"
        bag.mkdir()
        for name, data in contents.items():
            (bag / name).write_bytes(bytes(data))
        for kind in layout:
            target = bag / (storage if kind.startswith("storage") else "metadata.yaml")
            if target.is_dir() and not target.is_symlink():
                continue  # already replaced by a directory
            if target.is_symlink() or target.exists():  # a file, a FIFO (opening one to write would block)
                target.unlink()
            if kind.endswith("-directory"):
                target.mkdir()
            elif kind.endswith("-fifo"):
                os.mkfifo(target)
            elif kind.endswith("-devzero"):
                target.symlink_to("/dev/zero")
            elif kind.endswith("-loop"):
                target.symlink_to(target.name)
            elif kind.endswith("-empty"):
                target.write_bytes(b"")
        return bag

    def __repr__(self) -> str:
        shown = [
            m if not any(isinstance(a, (bytes, str)) and len(a) > 40 for a in m) else (*m[:2], "...")
            for m in self.mutations
        ]
        return f"RecordingCase(seed={self.seed!r}, mutations={shown!r})"


def _edit_bytes(data: bytearray, kind: str, *args) -> None:
    if not data and kind != "insert":
        return
    if kind == "truncate":
        del data[args[0] % len(data) :]
    elif kind == "flip":
        data[args[0] % len(data)] ^= 1 << args[1]
    elif kind == "set":
        data[args[0] % len(data)] = args[1]
    elif kind == "insert":
        pos = args[0] % (len(data) + 1)
        data[pos:pos] = args[1]
    elif kind == "delete":
        pos = args[0] % len(data)
        del data[pos : pos + args[1]]
    elif kind == "zero":
        pos = args[0] % len(data)
        data[pos : pos + args[1]] = bytes(len(data[pos : pos + args[1]]))
    elif kind == "field":  # an integer field (little-endian for MCAP, big-endian for SQLite)
        offset, width, value, order = args
        if offset + width <= len(data):
            data[offset : offset + width] = (value % (1 << (8 * width))).to_bytes(width, order)


def _edit_document(document, kind: str, path: tuple, value=None) -> None:
    """Delete, set or append at ``path`` in the metadata document; a path gone already is skipped."""
    node = document
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    if not isinstance(node, (dict, list)) or not path:
        return
    key = path[-1]
    if isinstance(node, list) and not (isinstance(key, int) and -len(node) <= key < len(node)):
        return
    if isinstance(node, dict) and key not in node:
        return
    if kind == "delete":
        del node[key]
    elif kind == "set":
        node[key] = value
    elif isinstance(node[key], list):  # append: one more entry, a copy of the first
        node[key].append(copy.deepcopy(node[key][0]) if node[key] else value)


@st.composite
def recording_cases(draw) -> RecordingCase:
    """The ``recording`` target's inputs: a seed, then damage to its storage file (bytes truncated,
    flipped, set, inserted, cut or zeroed; MCAP record lengths and chunk sizes, SQLite header fields
    set to extremes), to its metadata.yaml (bytes; keys deleted, set to values of any type or to
    other files, types, storages and compressions; whole files: alias bombs, deep nesting, 5 MB), or
    to its layout (storage or metadata missing, a directory, empty, a FIFO, /dev/zero, a symlink loop);
    or a decompression bomb (``bomb_storage``), alone or with that damage."""
    bomb = draw(st.integers(0, 5)) == 0
    if bomb:
        kind = draw(st.sampled_from(sorted(BOMB_SEEDS)))
        seed = BOMB_SEEDS[kind]
        sizes = BOMB_SIZES[:1] if kind == "lz4-chunk" else BOMB_SIZES  # building lz4's allocates its size
        mutations = [("bomb", kind, draw(st.sampled_from(sizes)), draw(st.booleans()))]
    else:
        seed = draw(st.sampled_from(RECORDING_SEEDS))
        mutations = []
    _, files = recording_seed(seed)
    storage = files[_storage_name(files)]
    document_paths = None
    for _ in range(draw(st.integers(0 if bomb else 1, 1 if bomb else 3))):
        where = draw(st.sampled_from(["storage", "storage", "storage", "metadata", "metadata", "layout"]))
        if where == "layout":
            target = draw(st.sampled_from(["storage", "metadata"]))
            kind = draw(st.sampled_from(LAYOUT_DAMAGE))
            mutations.append(("layout", f"{target}-{kind}"))
            continue
        data = storage if where == "storage" else files["metadata.yaml"]
        choices = ["truncate", "flip", "flip", "set", "insert", "delete", "zero"]
        if where == "storage":
            choices += ["field", "field"]
        else:
            choices += ["key", "key", "key", "text"]
        kind = draw(st.sampled_from(choices))
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            mutations.append((where, kind, pos))
        elif kind == "flip":
            mutations.append((where, kind, pos, draw(st.integers(0, 7))))
        elif kind == "set":
            mutations.append((where, kind, pos, draw(st.integers(0, 255))))
        elif kind == "insert":
            mutations.append((where, kind, pos, draw(st.binary(min_size=1, max_size=16))))
        elif kind in ("delete", "zero"):
            mutations.append((where, kind, pos, draw(st.sampled_from([1, 2, 8, 64, 512, 4096]))))
        elif kind == "field":
            if data[:8] == b"\x89MCAP0\r\n":
                offset, width = draw(st.sampled_from(_mcap_fields(data)))
                order = "little"
            else:
                offset, width = draw(st.sampled_from(_SQLITE_FIELDS))
                order = "big"
            mutations.append((where, kind, offset, width, draw(_FIELD_VALUES), order))
        elif kind == "text":
            mutations.append((where, kind, draw(st.sampled_from(sorted(_metadata_texts(data.decode()))))))
        else:
            if document_paths is None:
                import yaml

                document_paths = _metadata_paths(yaml.safe_load(data.decode()))
            path = draw(st.sampled_from(document_paths))
            edit = draw(st.sampled_from(["key-delete", "key-set", "key-set", "key-set", "key-append"]))
            mutations.append(("metadata", edit, path, draw(_METADATA_VALUES) if edit != "key-delete" else None))
    return RecordingCase(seed, mutations)


@contextmanager
def decompression_limit(limit: int):
    """``data.bags.MAX_DECOMPRESSED_BYTES`` set to ``limit`` for a while."""
    from .data import bags

    previous, bags.MAX_DECOMPRESSED_BYTES = bags.MAX_DECOMPRESSED_BYTES, limit
    try:
        yield
    finally:
        bags.MAX_DECOMPRESSED_BYTES = previous


class _Timeout(BaseException):  # not an Exception: no handler in the code under test catches it
    pass


@contextmanager
def time_limit(seconds: float):
    """Raise _Timeout in the main thread after ``seconds`` (SIGALRM; elsewhere no limit)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _open_fds() -> int:
    import os

    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def read_whole_recording(bag: Path) -> int:
    """What ``narrow-seg infer`` and ``image_player`` do with a recording, without a model: open it,
    read and deserialize every message, find its image topics and storage; the number of messages."""
    from .data import bags

    count = 0
    with bags.open_bag(bag) as reader:
        sum(c.msgcount for c in reader.connections)  # infer's progress bar total
        for _ in bags.read_messages(reader, reader.connections):
            count += 1
        bags.image_connections(reader)
        bags.storage_of(reader.paths[0])
    return count


def check_recording(case: RecordingCase) -> None:
    """The ``recording`` property: reading the damaged recording (``read_whole_recording``) works or
    raises BagError with a one-line message; nothing else is raised, no case takes over
    RECORDING_TIMEOUT_S, no file descriptor stays open, and the memory allocated (tracemalloc) stays
    under RECORDING_MAX_ALLOCATED whatever the record lengths and sizes declare. A bomb is read with
    the decompression limit at ``BOMB_LIMIT``; a bomb alone is refused as one."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="narrow-seg-fuzz-case-"))
    try:
        bag = case.build(folder)
        fds = _open_fds()
        started = time.perf_counter()
        bombs = [m for m in case.mutations if m[0] == "bomb"]
        with decompression_limit(BOMB_LIMIT) if bombs else nullcontext():
            message, peak = _peak_allocation(lambda: _error_text(_read_recording(bag)))
        if isinstance(message, AssertionError):
            raise message
        assert peak <= RECORDING_MAX_ALLOCATED, f"reading allocated {peak} bytes"
        if bombs and len(case.mutations) == 1:
            assert "decompression bomb" in message, f"the bomb was not refused: {message!r}"
        # Python 3.10's sqlite3 keeps a .db3 open after its connection's close() once a statement
        # failed on it (3.11's closes it): a known gap of the Humble environment, docs/reliability.md
        if sys.version_info >= (3, 11) or not case.seed.startswith("sqlite3"):
            assert _open_fds() <= fds, f"{_open_fds() - fds} file descriptor(s) left open"
        assert time.perf_counter() - started < RECORDING_TIMEOUT_S
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _error_text(error: BaseException | None) -> str:
    """The error's message; the error itself is dropped, and with its traceback whatever rosbags had
    open in the frames it went through (a SQLite connection), as when a command exits."""
    return "" if error is None else str(error)


def _read_recording(bag: Path):
    """The BagError reading ``bag`` raised (checked: one line, short), or None; anything else fails."""
    from .data import bags

    try:
        with time_limit(RECORDING_TIMEOUT_S):
            read_whole_recording(bag)
    except _Timeout:
        raise AssertionError(f"reading did not end within {RECORDING_TIMEOUT_S} s") from None
    except bags.BagError as err:
        message = str(err)
        assert "\n" not in message and "\r" not in message, f"BagError message of several lines: {message!r}"
        assert len(message) <= 1000, f"BagError message of {len(message)} characters: {message[:200]!r}..."
        return err
    except Exception as err:
        raise AssertionError(f"reading raised {type(err).__name__}: {err}") from err
    return None


# --------------------------------------------------------------------------------------------------
# YAML configuration: the folder dataset's class table and the label groups

CONFIG_TIMEOUT_S = 2.0
CONFIG_MAX_ALLOCATED = 64 << 20  # bytes a load may allocate (tracemalloc), whatever the file says
CAMVID_NAMES = list(camvid_classes.NAMES)
CAMVID_PALETTE = [list(color) for color in camvid_classes.PALETTE]


@dataclass
class ConfigCase:
    """One YAML file for one loader: ``spec`` (``data.folder.load_spec``), ``groups``
    (``inference.groups.load_groups`` for a CamVid model) or ``params`` (the node's parameter file,
    ``inference.params.read_params_file`` as ``narrow-seg infer --params-file`` reads it); or
    ``cameras``: ``data`` is the ``cameras`` parameter's string (``ros.camera_channel.parse_cameras``);
    ``recipe`` says how it was made."""

    loader: str
    data: bytes
    recipe: list = field(default_factory=list)

    def __repr__(self) -> str:
        shown = repr(self.data) if len(self.data) <= 200 else f"<{len(self.data)} bytes, starts {self.data[:120]!r}>"
        return f"ConfigCase(loader={self.loader!r}, recipe={self.recipe!r}, data={shown})"


_yaml_scalars = st.one_of(
    st.text(max_size=12),
    st.integers(-300, 300),
    st.sampled_from([None, True, False, 1.5, float("nan"), float("inf"), 2**64, -(2**63), "", "x" * 3000, "1", "0x10",
                     "yes", "~", "2024-13-45", "\x00", "\u2028", ".png", "../../etc", "Road", "road", "ROAD"]),
)  # fmt: skip
_yaml_values = st.recursive(
    _yaml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
_colors = st.one_of(
    st.lists(st.integers(0, 255), min_size=3, max_size=3),
    st.lists(st.integers(-5, 300), min_size=0, max_size=5),
    st.lists(_yaml_scalars, max_size=4),
    _yaml_values,
)


@st.composite
def _spec_document(draw) -> dict:
    """A class-table document close to a valid one, each field sometimes replaced by anything."""

    def maybe(valid, other=_yaml_values):
        return draw(st.one_of(valid, valid, valid, other))

    count = draw(st.one_of(st.integers(1, 12), st.sampled_from([0, 255, 256, 300])))
    classes = [
        {"name": maybe(st.sampled_from(CAMVID_NAMES) | st.text(min_size=1, max_size=10)), "color": draw(st.one_of(_colors.filter(lambda c: True), st.just([1, 2, 3])))}
        for _ in range(count)
    ]  # fmt: skip
    document = {
        "classes": maybe(st.just(classes)),
        "ignore_index": maybe(st.sampled_from([255, count, 254, 0, -1, 256]) | st.integers(0, 255)),
        "splits": maybe(
            st.just({"train": {"images": "images/train", "masks": "masks/train"}, "val": {"images": "i", "masks": "m"}})
        ),
    }
    if draw(st.booleans()):
        document["image_suffix"] = maybe(st.sampled_from([".png", ".jpg", ""]))
    if draw(st.booleans()):
        document["mask_suffix"] = maybe(st.sampled_from([".png", ""]))
    for _ in range(draw(st.integers(0, 2))):
        document[draw(st.sampled_from(["colour", "extra", 1, "classes ", None, True]))] = draw(_yaml_values)
    return document


@st.composite
def _groups_document(draw) -> dict:
    def maybe(valid, other=_yaml_values):
        return draw(st.one_of(valid, valid, valid, other))

    names = st.sampled_from(CAMVID_NAMES + ["road", "CAR", "Unknown", ""]) | _yaml_scalars
    groups = [
        {"name": maybe(st.sampled_from(["drivable", "obstacle", "g"])),
         "classes": maybe(st.lists(names, max_size=4, unique_by=str)),
         **({"color": draw(_colors)} if draw(st.booleans()) else {})}
        for _ in range(draw(st.one_of(st.integers(1, 4), st.sampled_from([0, 255, 256, 300]))))
    ]  # fmt: skip
    return {"groups": maybe(st.just(groups))}


@st.composite
def _cameras_strings(draw) -> str:
    """``cameras`` values: comma-separated names with transports, near valid or any text."""
    part = st.sampled_from(["front", "left", "rear/cam", "front", "", " ", "a-b", "x.y", "ns/"]) | st.text(max_size=8)
    transport = st.sampled_from(["", ":raw", ":compressed", ":video", ":", ":RAW", "::", ":x"])
    parts = draw(st.lists(st.tuples(part, transport).map("".join), max_size=6))
    return draw(st.sampled_from([",", ", ", ",,", ";"])).join(parts)


@st.composite
def _params_document(draw) -> dict:
    """A ROS 2 parameter file for seg_node: node-name keys (wildcards, namespaces, nested), each
    with ros__parameters of the node's names or others, any value replaced by any YAML value."""
    from .inference.params import PARAMETERS

    def maybe(valid, other=_yaml_values):
        return draw(st.one_of(valid, valid, valid, other))

    names = st.sampled_from(sorted(PARAMETERS)) | st.text(max_size=12)
    values = st.dictionaries(names, _yaml_values, max_size=5)
    keys = st.sampled_from(["/**", "seg_node", "/ns/seg_node", "/**/seg_node", "ns", "other_node"]) | _yaml_scalars
    document = {}
    for _ in range(draw(st.integers(0, 3))):
        section = {"ros__parameters": maybe(values)}
        document[draw(keys)] = maybe(st.just(section) | st.just({"seg_node": section}))
    return document


def _check_cameras_result(cameras) -> None:
    from .inference.params import TRANSPORTS

    names = [name for name, _ in cameras]
    assert len(set(names)) == len(names), f"a name twice: {_brief(names)}"
    for name, transport in cameras:
        assert re.fullmatch(r"[A-Za-z0-9_/]+", name) and transport in TRANSPORTS, _brief((name, transport))


def _check_params_result(values) -> None:
    assert isinstance(values, dict), _brief(values)
    assert all(isinstance(k, str) for k in values), f"parameter names {_brief(list(values))}"


def _yaml_text(document) -> str:
    import yaml

    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


_VALID_SPEC = "classes:\n  - {name: road, color: [128, 64, 128]}\n  - {name: car, color: [0, 0, 142]}\nsplits:\n  train: {images: i, masks: m}\n"
_VALID_PARAMS = "/**:\n  ros__parameters:\n    model: ndnet45_fcn8_camvid\n    confidence_threshold: 0.5\nseg_node:\n  ros__parameters: {output_size: camera}\n"
_VALID_GROUPS = "groups:\n  - {name: drivable, classes: [Road, Pavement]}\n  - {name: obstacle, classes: [Car], color: [220, 20, 60]}\n"
_VALID = {"spec": _VALID_SPEC, "groups": _VALID_GROUPS, "params": _VALID_PARAMS}


def _laughs(levels: int, width: int = 10) -> str:
    """A flow mapping of anchors l0..l<levels>, each a list of ``width`` aliases of the one before
    (width^levels strings once expanded), to put where a loader does not look."""
    entries = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    entries += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "{" + ", ".join(entries) + "}"


def config_attacks(loader: str) -> dict[str, str]:
    """Whole files: alias bombs where the loader walks the value (the anchors hidden in a key the
    loader ignores), merge-key bombs, recursion, deep nesting, sizes, tags PyYAML's safe loader
    refuses or builds oddly, encodings."""
    valid = _VALID[loader]
    laughs = _laughs(8)
    if loader == "spec":
        first, rest = (
            f"classes:\n  - {{name: road, color: [1, 2, 3], notes: {laughs}}}\n",
            "splits: {t: {images: i, masks: m}}\n",
        )
        bombs = {
            "alias bomb as a class name": first + "  - {name: *l8, color: [4, 5, 6]}\n" + rest,
            "alias bomb as a color": first + "  - {name: car, color: *l8}\n" + rest,
            "alias bomb as a split": first + "splits: {t: {images: *l8, masks: m}}\n",
            "alias bomb beside": f"classes:\n  - {{name: road, color: [1, 2, 3], notes: {_laughs(9)}}}\n" + rest,
        }
    elif loader == "params":
        first = f"/**:\n  ros__parameters:\n    notes: {laughs}\n"
        bombs = {
            "alias bomb as a parameter": first + "    model: *l8\n",
            "alias bomb as a node name": first + "*l8 : {ros__parameters: {model: m}}\n",
            "alias bomb beside": f"/**:\n  ros__parameters: {{model: m}}\nnotes: {_laughs(9)}\n",
        }
    else:
        first = f"groups:\n  - {{name: a, classes: [Road], notes: {laughs}}}\n"
        bombs = {
            "alias bomb as a group's classes": first + "  - {name: g, classes: *l8}\n",
            "alias bomb as a group name": first + "  - {name: *l8, classes: [Car]}\n",
            "alias bomb as a color": first + "  - {name: g, classes: [Car], color: *l8}\n",
            "alias bomb beside": f"groups:\n  - {{name: a, classes: [Road], notes: {_laughs(9)}}}\n",
        }
    merge = (
        "m0: &m0 {"
        + ", ".join(f"k{i}: {i}" for i in range(10))
        + "}\n"
        + "".join(f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}], own{i}: 1}}\n" for i in range(1, 8))
    )
    return {
        **bombs,
        "merge-key bomb": merge + valid,
        "recursive alias": "x: &a [*a]\n" + valid,
        "recursive mapping": "x: &a {y: *a}\n" + valid,
        "nested 100000 deep": "x: " + "[" * 100_000 + "]" * 100_000 + "\n" + valid,
        "nested 100000 deep (block)": "x:\n" + "".join(" " * i + "- \n" for i in range(2000)) + valid,
        "1.5 MB": valid + "#" + "x" * 1_500_000 + "\n",
        "python tag": valid + "x: !!python/object/apply:os.system ['true']\n",
        "binary tag": valid + "x: !!binary '@@@'\n",
        "bad timestamp": valid + "x: 2024-13-45\n",
        "set tag": valid + "x: !!set {a, b}\n",
        "duplicate anchor": "a: &x 1\nb: &x 2\n" + valid,
        "undefined alias": "x: *nowhere\n" + valid,
        "two documents": valid + "---\n" + valid,
        "empty": "",
        "null": "~\n",
        "a list": "- 1\n- 2\n",
        "a scalar": "just text\n",
        "byte order mark": "\ufeff" + valid,
        "tabs": valid.replace("  ", "\t"),
        "NUL": valid + "\x00\n",
        "unhashable key": "? [a, b]\n: 1\n" + valid,
        "complex keys": "{1: a, 2.5: b, null: c, true: d}\n",
    }


@st.composite
def config_cases(draw) -> ConfigCase:
    """The ``config`` target's inputs: documents near a valid class table / groups file with any
    field replaced by any YAML value; whole-file attacks (``config_attacks``); the valid files with
    bytes flipped, set, cut or inserted; random text and bytes."""
    loader = draw(st.sampled_from(["spec", "groups", "params", "cameras"]))
    if loader == "cameras":
        return ConfigCase(loader, draw(_cameras_strings()).encode(), ["cameras"])
    kind = draw(st.sampled_from(["document", "document", "document", "attack", "bytes", "random"]))
    if kind == "document":
        document = draw({"spec": _spec_document, "groups": _groups_document, "params": _params_document}[loader]())
        return ConfigCase(loader, _yaml_text(document).encode(), ["document"])
    if kind == "attack":
        name = draw(st.sampled_from(sorted(config_attacks(loader))))
        return ConfigCase(loader, config_attacks(loader)[name].encode(), [name])
    if kind == "random":
        data = draw(st.one_of(st.text(max_size=80).map(str.encode), st.binary(max_size=80)))
        return ConfigCase(loader, data, ["random"])
    data = bytearray(_VALID[loader].encode())
    recipe = ["valid"]
    for _ in range(draw(st.integers(1, 4))):
        what = draw(st.sampled_from(["flip", "set", "truncate", "insert"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if what == "flip" and data:
            bit = draw(st.integers(0, 7))
            data[pos] ^= 1 << bit
            recipe.append(("flip", pos, bit))
        elif what == "set" and data:
            value = draw(st.sampled_from(list(b"&*[]{}:-!|>'\"#%@`,?\t\n ")) | st.integers(0, 255))
            data[pos] = value
            recipe.append(("set", pos, value))
        elif what == "truncate":
            del data[pos:]
            recipe.append(("truncate", pos))
        else:
            extra = draw(
                st.sampled_from([b"&a ", b"*a", b"<<: ", b"!!str ", b"[", b"{", b"- ", b": ", b"\xff"])
                | st.binary(max_size=6)
            )
            data[pos:pos] = extra
            recipe.append(("insert", pos, extra))
    return ConfigCase(loader, bytes(data), recipe)


def _brief(value, limit: int = 120) -> str:
    """repr of a value an input made, short enough for a failure message (a bomb's repr is not)."""
    shortener = reprlib.Repr()  # (keyword arguments only from Python 3.12)
    shortener.maxlevel, shortener.maxlist, shortener.maxdict, shortener.maxstring, shortener.maxother = 3, 6, 6, 40, 40
    text = shortener.repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _check_spec_result(result) -> None:
    spec, root = result
    table = spec.classes
    assert isinstance(root, Path), _brief(root)
    assert table.names and all(isinstance(n, str) for n in table.names), f"names {_brief(table.names)}"
    assert len(table.palette) == len(table.names), "not one color per class"
    assert all(len(c) == 3 and all(type(v) is int and 0 <= v <= 255 for v in c) for c in table.palette), (
        f"palette {_brief(table.palette)}"
    )
    assert type(table.ignore_index) is int and len(table.names) <= table.ignore_index <= 255, (
        f"ignore_index {_brief(table.ignore_index)}"
    )
    assert isinstance(spec.splits, dict) and all(
        isinstance(name, str) and isinstance(f["images"], str) and isinstance(f["masks"], str)
        for name, f in spec.splits.items()
    ), f"splits {_brief(spec.splits)}"
    assert all(isinstance(s, str) for s in spec.image_suffixes) and isinstance(spec.mask_suffix, str), (
        f"suffixes {_brief(spec.image_suffixes)} {_brief(spec.mask_suffix)}"
    )


def _check_groups_result(groups) -> None:
    assert groups.names and all(isinstance(n, str) for n in groups.names), f"names {_brief(groups.names)}"
    assert groups.palette.shape == (len(groups.names), 3) and groups.palette.dtype == np.uint8, (
        f"palette {_brief(groups.palette.tolist())}"
    )
    assert groups.lookup.shape == (256,) and groups.lookup.dtype == np.uint8
    ids = set(groups.lookup[: len(CAMVID_NAMES)].tolist()) - {255}
    assert ids <= set(range(len(groups.names))), "class ids mapped to groups that do not exist"
    assert len(groups.names) < 255, f"{len(groups.names)} groups: ids from 255 on collide with unlabeled"


def check_config(case: ConfigCase) -> None:
    """The ``config`` property: the loader returns a well-typed result or raises ValueError with a
    one-line message naming the file; nothing else; within CONFIG_TIMEOUT_S and CONFIG_MAX_ALLOCATED
    (traced) whatever the file holds."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="narrow-seg-fuzz-config-"))
    path = folder / "config.yaml"
    path.write_bytes(case.data)
    try:
        if case.loader == "spec":
            from .data.folder import load_spec

            call, check_result = (lambda: load_spec(path)), _check_spec_result
        elif case.loader == "cameras":
            from .ros.camera_channel import parse_cameras

            text = case.data.decode("utf-8", "replace")
            call, check_result = (lambda: parse_cameras(text, "raw")), _check_cameras_result
        elif case.loader == "params":
            from .inference.params import read_params_file

            call, check_result = (lambda: read_params_file(path, "seg_node")), _check_params_result
        else:
            from .inference.groups import load_groups

            call = lambda: load_groups(path, CAMVID_NAMES, np.asarray(CAMVID_PALETTE, np.uint8))  # noqa: E731
            check_result = _check_groups_result
        started = time.perf_counter()
        tracemalloc.start()
        try:
            with time_limit(CONFIG_TIMEOUT_S):
                try:
                    result = call()
                except Exception as err:  # judged below
                    result = err
            peak = tracemalloc.get_traced_memory()[1]
        except _Timeout:
            result, peak = None, 0
        finally:
            tracemalloc.stop()
        seconds = time.perf_counter() - started
        failure = None
        if result is None:
            failure = f"loading did not end within {CONFIG_TIMEOUT_S} s"
        elif peak > CONFIG_MAX_ALLOCATED:
            failure = f"loading allocated {peak >> 20} MB (limit {CONFIG_MAX_ALLOCATED >> 20} MB)"
        elif isinstance(result, ValueError):
            message = str(result)
            if "\n" in message or len(message) > 1000:
                failure = f"error message of {len(message)} characters or several lines: {message[:300]!r}"
            elif str(path) not in message and case.loader != "cameras":  # a string, not a file
                failure = f"error message does not name the file: {message}"
        elif isinstance(result, BaseException):
            failure = f"raised {type(result).__name__}: {result}"
        else:
            try:
                check_result(result)
            except AssertionError as err:
                failure = f"accepted, but {err}"
        if failure is not None:
            raise AssertionError(f"{case.loader}: {failure} ({seconds:.2f} s)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# weights: .pt files (torch.load weights_only) and exported .onnx files

_weights_seeds: dict[str, bytes] = {}
ONNX_INPUT_SIZE = [32, 48]  # the seed .onnx's metadata: a frame of that size runs in milliseconds


def _pt_bytes(obj, **options) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer, **options)
    return buffer.getvalue()


def weights_seed(name: str) -> bytes:
    """Seed files, made once per process: ``vnet`` (a real narrow_seg_ros weights file of a random VNet,
    720 KB), ``small`` (the contract with a two-tensor state dict that fits no network), foreign
    files (``tensor``, ``list``, ``state-dict``, ``checkpoint``, ``legacy`` (pre-zip torch.save),
    ``torchscript``, ``pickled-class``, ``numpy``, ``random``), and ``onnx`` (a one-Conv .onnx with
    the export metadata)."""
    if name in _weights_seeds:
        return _weights_seeds[name]
    import collections
    import io

    import torch

    from .weights import Weights, random_weights

    vnet = random_weights("vnet", ONNX_INPUT_SIZE)
    small = Weights(
        model="ndnet45", class_names=["road", "car"], palette=[[128, 64, 128], [0, 0, 142]], mean=[0.5] * 3,
        std=[0.5] * 3, input_size=[64, 128], state_dict={"x.weight": torch.ones(4, 3), "y.bias": torch.zeros(2)},
        model_options={"head": "fcn8"}, metadata={"note": "seed"},
    )  # fmt: skip
    if name == "torchscript":
        buffer = io.BytesIO()
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buffer)
        data = buffer.getvalue()
    elif name == "onnx":
        data = onnx_model_bytes()
    elif name == "random":
        data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    else:
        objects = {
            "vnet": lambda: vnet.to_dict(),
            "small": lambda: small.to_dict(),
            "tensor": lambda: torch.arange(6.0),
            "list": lambda: [1, 2, 3],
            "state-dict": lambda: collections.OrderedDict(vnet.state_dict),
            "checkpoint": lambda: {"model": vnet.state_dict, "epoch": 3, "optimizer": {"lr": 0.1}},
            "legacy": lambda: small.to_dict(),
            "pickled-class": lambda: {"format": "narrow_seg_ros.weights/1", "model": Path("/tmp")},
            "numpy": lambda: {"format": "narrow_seg_ros.weights/1", "state_dict": np.zeros(3)},
        }
        data = _pt_bytes(objects[name](), **({"_use_new_zipfile_serialization": False} if name == "legacy" else {}))
    _weights_seeds[name] = data
    return data


def onnx_model_bytes(
    classes: int = 11,
    metadata: dict | None = None,
    fixed: tuple | None = None,
    drop_metadata: bool = False,
    raw_metadata: str | None = None,
) -> bytes:
    """A one-Conv .onnx (stride 8, ``classes`` outputs) carrying the export metadata of a CamVid model
    with ``metadata`` merged in; ``fixed``: a fixed (height, width) input instead of free axes."""
    import json

    from onnx import TensorProto, helper, numpy_helper

    height, width = fixed or ("h", "w")
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, height, width])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes, None, None])
    kernel = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((classes, 3, 1, 1)).astype(np.float32), "w"
    )
    conv = helper.make_node("Conv", ["image", "w"], ["logits"], strides=[8, 8], kernel_shape=[1, 1])
    model = helper.make_model(
        helper.make_graph([conv], "tiny", [image], [logits], [kernel]), opset_imports=[helper.make_opsetid("", 18)]
    )
    model.ir_version = 10
    names = (CAMVID_NAMES + [f"class{i}" for i in range(11, 64)])[:classes]
    meta = {
        "format": "narrow_seg_ros.export/1", "model": "tiny", "model_options": {}, "class_names": names,
        "palette": (CAMVID_PALETTE * 6)[:classes], "mean": [0.5] * 3, "std": [0.5] * 3,
        "input_size": ONNX_INPUT_SIZE, "output_stride": 8, "input_multiple": 8, "align_corners": False,
        "input_format": "float32_nchw_normalized", "channel_multiple": 1, "metadata": {},
        "weights_file": "tiny.pt", "weights_sha256": "0" * 64,
    }  # fmt: skip
    meta.update(metadata or {})
    if not drop_metadata:
        model.metadata_props.add(
            key="narrow_seg_ros", value=raw_metadata if raw_metadata is not None else json.dumps(meta)
        )
    return model.SerializeToString()


def _zip_regions(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of the parts of a torch zip that are not tensor data: the pickle and small
    records with their local headers, the tensors' headers, the central directory; a flip there
    breaks structure rather than a value."""
    import io
    import zipfile

    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile:
        return [(0, len(data))]
    regions = []
    for info in infos:
        header_end = info.header_offset + 30 + len(info.filename) + 64  # torch pads the extra field to 64
        is_tensor = info.filename.split("/")[-2:-1] == ["data"]
        regions.append((info.header_offset, header_end + (0 if is_tensor else info.compress_size)))
    directory = max(i.header_offset + 30 + len(i.filename) + 64 + i.compress_size for i in infos)
    regions.append((min(directory, len(data) - 1), len(data)))
    return regions


@dataclass
class WeightsCase:
    """One fuzzed weights file: ``kind`` pt or onnx, its bytes and how they were made."""

    kind: str
    data: bytes
    recipe: list = field(default_factory=list)

    def __repr__(self) -> str:
        return f"WeightsCase(kind={self.kind!r}, recipe={self.recipe!r}, data=<{len(self.data)} bytes>)"


_PT_SEEDS = (
    "vnet",
    "small",
    "small",
    "tensor",
    "list",
    "state-dict",
    "checkpoint",
    "legacy",
    "torchscript",
    "pickled-class",
    "numpy",
    "random",
    "onnx",
)
_hostile_field_values = st.sampled_from(
    [None, 0, -1, 1.5, float("nan"), float("inf"), True, "", "x", "vnet", [], {}, [0, 0], [8193, 8193], [10**6, 10**6],
     [64, 128], [1, 2, 3], [[1, 2, 3]], [[300, 0, 0]] * 11, [0.5, 0.5, 0.0], [0.5, "a", 0.5], ["a"] * 300, [1, 2],
     {"head": "fcn8"}, {"nonsense": 1}, {1: 2}, "narrow_seg_ros.weights/1"]
)  # fmt: skip


@st.composite
def _pt_case(draw) -> WeightsCase:
    import torch

    seed = draw(st.sampled_from(_PT_SEEDS))
    if seed in ("small", "vnet") and draw(st.integers(0, 3)) == 0:  # the contract's fields replaced
        import io

        document = torch.load(io.BytesIO(weights_seed(seed)), weights_only=True)
        recipe = [seed]
        for _ in range(draw(st.integers(1, 3))):
            key = draw(
                st.sampled_from(
                    [
                        "model",
                        "model_options",
                        "class_names",
                        "palette",
                        "mean",
                        "std",
                        "input_size",
                        "state_dict",
                        "metadata",
                        "format",
                    ]
                )
            )
            if draw(st.integers(0, 5)) == 0:
                document.pop(key, None)
                recipe.append(("delete", key))
            else:
                value = draw(_hostile_field_values)
                document[key] = value
                recipe.append(("set", key, value))
        return WeightsCase("pt", _pt_bytes(document), recipe)
    data = bytearray(weights_seed(seed))
    regions = _zip_regions(bytes(data))
    recipe = [seed]
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        if draw(st.booleans()):
            start, end = draw(st.sampled_from(regions))
            pos = draw(st.integers(min(start, len(data) - 1), max(min(start, len(data) - 1), min(end, len(data)) - 1)))
        else:
            pos = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "flip", "set", "truncate", "insert", "delete"]))
        if kind == "flip":
            bit = draw(st.integers(0, 7))
            data[pos] ^= 1 << bit
            recipe.append(("flip", pos, bit))
        elif kind == "set":
            value = draw(st.integers(0, 255))
            data[pos] = value
            recipe.append(("set", pos, value))
        elif kind == "truncate":
            del data[pos:]
            recipe.append(("truncate", pos))
        elif kind == "insert":
            extra = draw(st.binary(min_size=1, max_size=8))
            data[pos:pos] = extra
            recipe.append(("insert", pos, extra))
        else:
            count = draw(st.integers(1, 64))
            del data[pos : pos + count]
            recipe.append(("delete", pos, count))
    return WeightsCase("pt", bytes(data), recipe)


_metadata_lies = st.sampled_from(
    [("class_names", CAMVID_NAMES[:5]), ("class_names", CAMVID_NAMES + ["x"] * 8), ("class_names", None), ("class_names", [1, 2]),
     ("class_names", "Road"), ("palette", [[1, 2, 3]]), ("palette", [[300, 0, 0]] * 11), ("palette", "red"),
     ("input_size", [0, 48]), ("input_size", [-8, 48]), ("input_size", [10**6, 10**6]), ("input_size", "32x48"),
     ("input_size", [32]), ("input_size", [True, 48]), ("input_size", [32.5, 48]), ("input_multiple", 0),
     ("input_multiple", -8), ("input_multiple", "8"), ("output_stride", 0), ("output_stride", None), ("mean", "abc"),
     ("mean", [0.5, 0.5]), ("std", [0, 0, 0]), ("std", [float("nan")] * 3), ("align_corners", "no"), ("format", "other/1"),
     ("model", None), ("input_format", "uint8_nhwc")]
)  # fmt: skip


@st.composite
def _onnx_case(draw) -> WeightsCase:
    classes = draw(st.sampled_from([11, 11, 11, 5, 19]))
    lies = draw(st.lists(_metadata_lies, max_size=2))
    dropped = draw(
        st.lists(
            st.sampled_from(
                [
                    "class_names",
                    "palette",
                    "input_size",
                    "input_multiple",
                    "output_stride",
                    "mean",
                    "std",
                    "align_corners",
                ]
            ),
            max_size=1,
        )
    )
    fixed = draw(st.sampled_from([None, None, None, (32, 48), (40, 48), (64, 96)]))
    special = draw(st.sampled_from([None] * 8 + ["no metadata", "not json", "json list", "json number"]))
    meta = dict(lies)
    if classes != 11 and not any(key in ("class_names", "palette") for key, _ in lies):
        meta.update(class_names=CAMVID_NAMES, palette=CAMVID_PALETTE)  # the metadata says 11, the graph has other
    raw = {"not json": "{class_names: [Road]", "json list": "[1, 2]", "json number": "11"}.get(special)
    data = onnx_model_bytes(classes, meta, fixed, drop_metadata=special == "no metadata", raw_metadata=raw)
    if dropped:
        import json

        import onnx

        model = onnx.load_from_string(data)
        for prop in model.metadata_props:
            try:
                document = json.loads(prop.value)
            except ValueError:  # the "not json" metadata
                continue
            if isinstance(document, dict):
                document.pop(dropped[0], None)
                prop.value = json.dumps(document)
        data = model.SerializeToString()
    recipe = [("classes", classes), ("metadata", lies), ("dropped", dropped), ("fixed", fixed), ("special", special)]
    bytes_data = bytearray(data)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        if not bytes_data:
            break
        pos = draw(st.integers(0, len(bytes_data) - 1))
        kind = draw(st.sampled_from(["flip", "flip", "set", "truncate"]))
        if kind == "flip":
            bit = draw(st.integers(0, 7))
            bytes_data[pos] ^= 1 << bit
            recipe.append(("flip", pos, bit))
        elif kind == "set":
            value = draw(st.integers(0, 255))
            bytes_data[pos] = value
            recipe.append(("set", pos, value))
        else:
            del bytes_data[pos:]
            recipe.append(("truncate", pos))
    return WeightsCase("onnx", bytes(bytes_data), recipe)


def weights_cases() -> st.SearchStrategy[WeightsCase]:
    """The ``weights`` target's inputs: .pt files (seeds of ``weights_seed``, truncated, flipped and
    cut with a bias to the zip's structure, or the contract's fields replaced by hostile values)
    and .onnx files (metadata that lies about classes, palette, input size, strides; missing or
    not JSON; a graph of 5 or 19 classes or a fixed input; then bits flipped or truncated)."""
    return st.one_of(_pt_case(), _pt_case(), _onnx_case())


_WEIGHTS_ERRORS = (
    r"^weights file not found: ",
    r"^cannot read weights file .* \(damaged, truncated or not a torch\.save file\): \w+",
    r"^.* is not a narrow_seg_ros weights file \(expected format ",
    r"^weights file .* lacks ",
    r"^weights file .*: ",
)


def _check_pt(path: Path) -> None:
    from .weights import load_weights

    try:
        weights = load_weights(path)
    except ValueError as err:
        message = str(err)
        assert "\n" not in message and len(message) <= 1000, (
            f"load_weights: message of several lines or {len(message)} characters: {message[:300]!r}"
        )
        assert str(path) in message, f"load_weights: the message does not name the file: {message}"
        return
    except Exception as err:
        raise AssertionError(f"load_weights raised {type(err).__name__}: {err}") from err
    try:
        weights.build_model()
    except ValueError as err:
        assert "\n" not in str(err), f"build_model: message of several lines: {str(err)[:300]!r}"
    except Exception as err:
        raise AssertionError(f"build_model of loaded weights raised {type(err).__name__}: {err}") from err


def _check_onnx(path: Path) -> None:
    from .inference.onnx_metadata import read_onnx_metadata

    try:
        metadata = read_onnx_metadata(path)
    except ValueError as err:
        assert str(path) in str(err) and "\n" not in str(err), (
            f"read_onnx_metadata: message does not name the file or has several lines: {str(err)[:300]!r}"
        )
        return
    except Exception as err:
        raise AssertionError(f"read_onnx_metadata raised {type(err).__name__}: {err}") from err
    assert isinstance(metadata, dict), f"read_onnx_metadata returned a {type(metadata).__name__}"
    from .inference.engine import Segmenter

    try:
        engine = Segmenter.from_weights(path, backend="onnxruntime", device="cpu", threads=1, warmup=0)
    except ValueError as err:
        assert path.name in str(err) and "\n" not in str(err), (
            f"from_weights: message does not name the file or has several lines: {str(err)[:300]!r}"
        )
        return
    except Exception as err:
        raise AssertionError(f"from_weights raised {type(err).__name__}: {' '.join(str(err).split())[:300]}") from err
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.get_outputs()  # a flipped byte can leave a graph without outputs, or of other ranks
    shape = outputs[0].shape if outputs else []  # (batch, classes, h, w) as declared
    channels = shape[1] if len(shape) >= 2 and isinstance(shape[1], int) else len(engine.class_names)
    assert len(engine.class_names) == channels, (
        f"loaded: metadata names {len(engine.class_names)} classes, the graph outputs {channels}"
    )
    assert engine.palette.shape == (channels, 3), f"loaded: palette of {engine.palette.shape[0]} colors for {channels}"
    try:
        result = engine.segment(np.zeros((12, 20, 3), np.uint8), "rgb8", color=True, confidence=True)
    except Exception as err:
        raise AssertionError(
            f"loaded, then a frame failed: {type(err).__name__}: {' '.join(str(err).split())[:300]}"
        ) from err
    assert result.mask.shape == (12, 20)


def check_weights(case: WeightsCase) -> None:
    """The ``weights`` property. A .pt: ``load_weights`` returns Weights whose fields have the types
    and ranges an engine uses, or raises ValueError naming the file in one line; ``build_model`` of
    a loaded one gives the network or ValueError; nothing else. An .onnx: ``read_onnx_metadata`` gives
    a dict or ValueError naming the file; ``Segmenter.from_weights`` refuses with ValueError or gives
    an engine whose class names and palette match the graph's outputs and that segments a frame."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="narrow-seg-fuzz-weights-"))
    path = folder / f"weights.{case.kind}"
    path.write_bytes(case.data)
    try:
        with time_limit(30.0):
            (_check_pt if case.kind == "pt" else _check_onnx)(path)
    except _Timeout:
        raise AssertionError("loading did not end within 30 s") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# H.264 / H.265 packets (foxglove CompressedVideo): the decoder the node and ``narrow-seg infer`` use

VIDEO_SIZES = {"h264": ((32, 24), (48, 32)), "h265": ((32, 32), (64, 48))}  # (width, height)
VIDEO_FRAMES, VIDEO_GOP = 8, 4  # two keyframes, each followed by three P frames
VIDEO_TIMEOUT_S = 10.0
# sizes an SPS is rewritten to declare: over MAX_PIXELS (FFmpeg takes up to 16384 x 16384), at it, 4K
_SPS_SIZES = ((16384, 16384), (8192, 8208), (4096, 4096), (4096, 2160), (1024, 1024), (64, 64))
# reference frame counts an SPS is rewritten to declare: FFmpeg takes up to 16 (H.265: 15 + 1)
_SPS_REFERENCES = (0, 1, 4, 15, 16, 17, 255, 2**31)
_SPS_TYPE = {"h264": 7, "h265": 33}
# NAL unit headers random data is put behind: keyframes and parameter sets, which a decoder waiting
# for a keyframe does not skip
_NAL_HEADERS = {
    "h264": (b"\x65", b"\x67", b"\x68", b"\x06"),
    "h265": (b"\x26\x01", b"\x28\x01", b"\x40\x01", b"\x42\x01"),
}
_OTHER_FORMATS = ("vp9", "", "H264 ", "mjpeg", "hevc")
_video_cache: dict[tuple, tuple[bytes, ...]] = {}


def _video_frame(index: int, height: int, width: int) -> np.ndarray:
    """A moving gradient: consecutive frames differ, so P frames carry data."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 4 + index * 8) % 256, (y * 4) % 256, ((x + y + index * 3) * 2) % 256], -1).astype(np.uint8)


def video_seed(fmt: str, size: tuple[int, int]) -> tuple[bytes, ...]:
    """A clip's access units (``VIDEO_FRAMES``, a keyframe every ``VIDEO_GOP``), encoded once per process."""
    key = (fmt, size)
    if key not in _video_cache:
        from .video import VideoEncoder

        width, height = size
        encoder = VideoEncoder(width, height, fmt, gop=VIDEO_GOP)
        _video_cache[key] = tuple(encoder.encode(_video_frame(i, height, width))[0][0] for i in range(VIDEO_FRAMES))
    return _video_cache[key]


def _ue(value: int) -> str:
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def _escape(rbsp: bytes) -> bytes:
    """RBSP bytes with emulation prevention bytes inserted (00 00 0x, x <= 3 -> 00 00 03 0x)."""
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def rewrite_sps_size(packet: bytes, fmt: str, width: int, height: int) -> bytes:
    """``packet`` with its SPS declaring ``width`` x ``height`` (H.264: in macroblocks, progressive)."""
    fields = (width, height) if fmt == "h265" else (-(-width // 16) - 1, -(-height // 16) - 1)
    return _rewrite_sps(packet, fmt, "size_bits", fields)


def rewrite_sps_references(packet: bytes, fmt: str, references: int) -> bytes:
    """``packet`` with its SPS declaring ``references`` reference frames (H.264 max_num_ref_frames;
    H.265 sps_max_dec_pic_buffering_minus1 of the highest sub-layer)."""
    return _rewrite_sps(packet, fmt, "references_bits", (references,))


def _rewrite_sps(packet: bytes, fmt: str, span: str, values: tuple) -> bytes:
    """``packet`` with the exp-Golomb fields at bit span ``span`` of its SPS (``h264_sps``,
    ``h265_sps``) replaced by ``values``."""
    from .video import VideoError, _Bits, h264_sps, h265_sps, nal_units

    units = []
    for unit in nal_units(packet):
        if (unit[0] >> 1 & 0x3F if fmt == "h265" else unit[0] & 0x1F) == _SPS_TYPE[fmt]:
            header = 2 if fmt == "h265" else 1
            try:
                start, end = (h265_sps if fmt == "h265" else h264_sps)(unit)[span]
            except VideoError:  # an SPS damaged by an earlier mutation: left as it is
                units.append(unit)
                continue
            bits = "".join(f"{b:08b}" for b in _Bits(unit, header).data)
            bits = bits[:start] + "".join(_ue(v) for v in values) + bits[end:]
            bits += "0" * (-len(bits) % 8)
            unit = unit[:header] + _escape(int(bits, 2).to_bytes(len(bits) // 8, "big"))
        units.append(unit)
    return b"".join(b"\x00\x00\x00\x01" + unit for unit in units)


@dataclass
class VideoCase:
    """Packets (access unit, format) fed in order to one decoder; the last ``tail`` are an intact clip
    of ``tail_size`` starting at a keyframe."""

    packets: list
    tail: int
    tail_size: tuple[int, int]
    max_pixels: int = _DEFAULT_LIMIT or 0
    recipe: list = field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"VideoCase(recipe={self.recipe!r}, max_pixels={self.max_pixels}, tail={self.tail}, "
            f"packets=[{', '.join(f'{fmt}:{len(data)}B' for data, fmt in self.packets)}])"
        )


def _video_mutation(draw, packets: list, fmt: str, other: tuple[int, int]) -> tuple:
    """One mutation of ``packets`` (a list of [data, fmt]), done in place; the recipe entry."""
    kind = draw(st.sampled_from(["random", "truncate", "flip", "flip", "drop", "duplicate", "swap", "resolution",
                                 "sps-size", "sps-references", "format"]))  # fmt: skip
    n = len(packets)
    i = draw(st.integers(0, max(n - 1, 0)))
    if kind == "random" or not packets:
        data = draw(st.sampled_from((b"",) + _NAL_HEADERS[fmt])) + draw(st.binary(max_size=300))
        data = draw(st.sampled_from([b"\x00\x00\x00\x01", b"\x00\x00\x01", b""])) + data
        packets.insert(i, [data, fmt])
        return ("random", i, len(data))
    data = packets[i][0]
    if kind == "truncate":
        cut = draw(st.integers(0, max(len(data) - 1, 0)))
        packets[i][0] = data[:cut]
        return (kind, i, cut)
    if kind == "flip" and data:
        pos = draw(st.one_of(st.integers(0, min(len(data), 48) - 1), st.integers(0, len(data) - 1)))
        bit = draw(st.integers(0, 7))
        packets[i][0] = data[:pos] + bytes([data[pos] ^ (1 << bit)]) + data[pos + 1 :]
        return (kind, i, pos, bit)
    if kind == "drop":
        del packets[i]
        return (kind, i)
    if kind == "duplicate":
        packets.insert(i, list(packets[i]))
        return (kind, i)
    if kind == "swap":
        j = draw(st.integers(0, n - 1))
        packets[i], packets[j] = packets[j], packets[i]
        return (kind, i, j)
    if kind == "resolution":
        packets[i:i] = [[p, fmt] for p in video_seed(fmt, other)]
        return (kind, i, other)
    if kind == "sps-size":
        with_sps = [k for k, (d, f) in enumerate(packets) if f == fmt and _has_sps(d, fmt)]
        if with_sps:
            k = draw(st.sampled_from(with_sps))
            width, height = draw(st.sampled_from(_SPS_SIZES))
            packets[k][0] = rewrite_sps_size(packets[k][0], fmt, width, height)
            return (kind, k, width, height)
    if kind == "sps-references":
        with_sps = [k for k, (d, f) in enumerate(packets) if f == fmt and _has_sps(d, fmt)]
        if with_sps:
            k = draw(st.sampled_from(with_sps))
            references = draw(st.sampled_from(_SPS_REFERENCES))
            packets[k][0] = rewrite_sps_references(packets[k][0], fmt, references)
            return (kind, k, references)
    other_format = draw(st.sampled_from(_OTHER_FORMATS + (("h264" if fmt == "h265" else "h265"),)))
    packets[i][1] = other_format
    return ("format", i, other_format)


def _has_sps(data: bytes, fmt: str) -> bool:
    from .video import nal_units

    shift, mask = (1, 0x3F) if fmt == "h265" else (0, 0x1F)
    return any(unit[0] >> shift & mask == _SPS_TYPE[fmt] for unit in nal_units(data))


@st.composite
def video_cases(draw) -> VideoCase:
    """The ``video`` target's inputs: a self-encoded clip (H.264 or H.265, two tiny sizes, keyframe +
    P frames), then up to four mutations (``_video_mutation``): random packets (some behind a
    keyframe's or a parameter set's NAL header), packets truncated, bit-flipped (biased to the
    headers), dropped, duplicated, swapped, a clip of the other size inserted (resolution change),
    an SPS declaring up to 16384 x 16384 or up to 2^31 reference frames, a packet's format string
    changed; then the intact clip
    again. The limit: the default, 1 MP, the clip's size or one under the other size."""
    fmt = draw(st.sampled_from(sorted(VIDEO_SIZES)))
    size, other = draw(st.permutations(VIDEO_SIZES[fmt]))
    packets = [[p, fmt] for p in video_seed(fmt, size)]
    recipe = [(fmt, size)]
    for _ in range(draw(st.integers(0, 4))):
        recipe.append(_video_mutation(draw, packets, fmt, other))
    tail_size = draw(st.sampled_from([size, other]))
    packets += [[p, fmt] for p in video_seed(fmt, tail_size)]
    limits = [_DEFAULT_LIMIT or 0] * 3 + [1 << 20] * 2 + [size[0] * size[1], other[0] * other[1] - 1]
    max_pixels = draw(st.sampled_from(limits))
    return VideoCase([tuple(p) for p in packets], VIDEO_FRAMES, tail_size, max_pixels, recipe)


_VIDEO_ERRORS = (r"^cannot decode (h264|h265|hevc) packet: ", r"^video format .* is not h264 or h265$",
                 r"^(h264|h265|hevc) frame of \d+x\d+ is over max_image_pixels=\d+$")  # fmt: skip


def _decode_checked(decoder, data: bytes, fmt: str) -> list:
    """The frames of one packet; a VideoError is checked (one line, a known form) and gives none."""
    from .video import VideoError

    try:
        return decoder.decode(data, fmt)
    except VideoError as err:
        message = str(err)
        assert "\n" not in message and len(message) <= 1000, f"VideoError of several lines or long: {message[:300]!r}"
        assert any(re.search(p, message) for p in _VIDEO_ERRORS), f"VideoError of no known form: {message}"
        return []
    except Exception as err:
        raise AssertionError(f"decode raised {type(err).__name__}: {err}") from err


def _max_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def video_memory(max_pixels: int) -> int:
    """Bytes a case may raise the process's peak RSS by: 64 MiB, frames at the limit as FFmpeg holds
    them (1.5 bytes a pixel; the current one and up to 16 references an SPS may ask for, or the
    decoder's budget where that is less) and one as RGB (3). Without the SPS check, FFmpeg allocated
    up to 16384 x 16384: 400 MB a frame."""
    from .video import VideoDecoder

    pixels = max_pixels or _DEFAULT_LIMIT or 0
    return (64 << 20) + min(26 * pixels, VideoDecoder(max_pixels).max_decoder_bytes) + 3 * pixels


def check_video(case: VideoCase) -> None:
    """The ``video`` property: ``VideoDecoder.decode`` (as the node's decoder thread and ``narrow-seg
    infer`` call it) returns frames or raises VideoError of a known one-line form, nothing else; no
    frame is larger than ``max_pixels`` and each converts to RGB; the intact clip at the end decodes
    whole (every frame, of its size) where it fits the limit; a case takes under VIDEO_TIMEOUT_S and
    raises the peak RSS by less than ``video_memory``."""
    from .video import VideoDecoder, to_rgb

    decoder = VideoDecoder(case.max_pixels)
    rss, tail_frames = _max_rss(), []
    start = len(case.packets) - case.tail
    try:
        with time_limit(VIDEO_TIMEOUT_S):
            for n, (data, fmt) in enumerate(case.packets):
                for frame in _decode_checked(decoder, data, fmt):
                    size = (frame.width, frame.height)
                    assert not case.max_pixels or size[0] * size[1] <= case.max_pixels, f"a {size} frame"
                    assert to_rgb(frame).shape == (size[1], size[0], 3)
                    if n >= start:
                        tail_frames.append(size)
    except _Timeout:
        raise AssertionError(f"decoding did not end within {VIDEO_TIMEOUT_S} s") from None
    assert _max_rss() - rss < video_memory(case.max_pixels), f"peak RSS rose by {(_max_rss() - rss) >> 20} MiB"
    width, height = case.tail_size
    if not case.max_pixels or width * height <= case.max_pixels:
        assert tail_frames == [case.tail_size] * case.tail, f"the intact clip at the end gave {tail_frames}"


# --------------------------------------------------------------------------------------------------
# campaigns

TARGETS = {
    "image": (image_cases, check_image),
    "compressed": (compressed_cases, check_compressed),
    "camera_info": (camera_info_cases, check_camera_info),
    "recording": (recording_cases, check_recording),
    "config": (config_cases, check_config),
    "weights": (weights_cases, check_weights),
    "video": (video_cases, check_video),
}


class PendingFix(AssertionError):
    """A failure whose fix belongs to a file outside this fuzzing work (``where``; docs/reliability.md,
    "Pending fixes"): a check raises it to have campaigns count the failure apart, by kind, rather
    than shrink it; a strict xfail in test_fuzz.py then holds its minimal case. None is raised
    while nothing is pending."""

    def __init__(self, where: str, message: str):
        super().__init__(f"pending fix in {where}: {message}")
        self.where = where


@dataclass
class CampaignResult:
    target: str
    cases: int  # property calls, shrinking included
    failures: list[str]  # one entry per distinct failure: the error and hypothesis' falsifying example
    seconds: float
    seed: int | None
    pending: dict = field(default_factory=dict)  # (fix location, kind) -> [cases, first example]


def _describe(err: BaseException) -> str:
    notes = "\n".join(getattr(err, "__notes__", []))
    return f"{type(err).__name__}: {err}\n{notes}".strip()


def run_campaign(
    target: str, cases: int, *, derandomize: bool = False, seed_value: int | None = None
) -> CampaignResult:
    """Run ``target``'s property on ``cases`` generated inputs; failures are collected, not raised."""
    strategy, check = TARGETS[target]
    tried = 0
    pending: dict[tuple[str, str], list] = {}

    def prop(case) -> None:
        nonlocal tried
        tried += 1
        try:
            check(case)
        except PendingFix as err:  # known, fixed elsewhere: counted by kind, not shrunk
            kind = re.sub(r"\d+", "N", str(err).partition(": ")[2])[:70]
            entry = pending.setdefault((err.where, kind), [0, f"{err}\ninput: {case!r}"])
            entry[0] += 1
        except Exception as err:  # hypothesis shows mapped inputs as "f(<...>)": add the input itself
            err.__notes__ = [*getattr(err, "__notes__", []), f"input: {case!r}"]
            raise

    test = settings(
        max_examples=cases,
        deadline=None,
        derandomize=derandomize,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=True,
    )(given(strategy())(prop))
    if seed_value is not None and not derandomize:
        test = seed(seed_value)(test)
    failures: list[str] = []
    start = time.perf_counter()
    try:
        test()
    except Exception as err:  # one failure, or an ExceptionGroup of distinct ones
        failures = [_describe(e) for e in getattr(err, "exceptions", [err])]
    return CampaignResult(target, tried, failures, time.perf_counter() - start, seed_value, pending)
