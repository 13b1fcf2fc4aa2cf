"""Property-based fuzzing of the message → frame decoders in ``narrow_seg_ros.ros.image_conversion``.

Two targets, each a hypothesis strategy of hostile messages and a property checked on every one:

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

``test/test_fuzz.py`` runs both with a small derandomized budget (CI); ``narrow-seg fuzz`` runs long,
exploring campaigns. Needs ``hypothesis``, a test dependency (requirements.lock).
"""

from __future__ import annotations

import inspect
import re
import struct
import time
import tracemalloc
import zlib
from array import array as py_array
from dataclasses import dataclass, field
from types import SimpleNamespace

import cv2
import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

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
# campaigns

TARGETS = {
    "image": (image_cases, check_image),
    "compressed": (compressed_cases, check_compressed),
}


@dataclass
class CampaignResult:
    target: str
    cases: int  # property calls, shrinking included
    failures: list[str]  # one entry per distinct failure: the error and hypothesis' falsifying example
    seconds: float
    seed: int | None


def _describe(err: BaseException) -> str:
    notes = "\n".join(getattr(err, "__notes__", []))
    return f"{type(err).__name__}: {err}\n{notes}".strip()


def run_campaign(
    target: str, cases: int, *, derandomize: bool = False, seed_value: int | None = None
) -> CampaignResult:
    """Run ``target``'s property on ``cases`` generated inputs; failures are collected, not raised."""
    strategy, check = TARGETS[target]
    tried = 0

    def prop(case) -> None:
        nonlocal tried
        tried += 1
        try:
            check(case)
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
    return CampaignResult(target, tried, failures, time.perf_counter() - start, seed_value)
