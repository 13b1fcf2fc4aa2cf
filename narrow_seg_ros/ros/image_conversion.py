"""Conversion between ``sensor_msgs`` images and numpy arrays: the project's own cv_bridge.

cv_bridge is not installable next to numpy 2 from PyPI, and the node needs only a small part of it,
so this module re-implements that part with cv_bridge's encoding names and semantics
(``sensor_msgs/image_encodings.hpp``):

* ``image_to_numpy(msg)``: zero-copy view of ``msg.data`` (HxW or HxWxC), honouring ``step`` and
  ``is_bigendian``.
* ``image_to_rgb(msg, want)``: an HxWx3 uint8 array for the inference engine plus its channel order
  (``"rgb8"`` or ``"bgr8"``); rgb8/bgr8 come back as the zero-copy view, other encodings are
  converted once.
* ``compressed_to_rgb(msg)``: decodes a ``CompressedImage`` (PNG or JPEG) to bgr8, after reading the
  size its header declares and refusing it beyond ``max_pixels``.
* ``numpy_to_image`` / ``numpy_to_compressed``: the reverse, for the node's outputs, test publishers
  and the demo player; ``image_fields`` / ``compressed_fields`` are their message-free halves.

Nothing here needs ROS: the readers take any object with the message's fields (rclpy's classes or
rosbags' dataclasses, as ``narrow-seg infer`` reads them from a recording without ROS), and only the
two ``numpy_to_*`` builders import ``sensor_msgs``, when called.

Every malformed input raises ``ImageConversionError`` naming the field, the expected and the actual
value, and every image larger than ``MAX_PIXELS`` (the ``max_pixels`` argument) is refused before
anything is allocated for it; ``narrow_seg_ros.fuzz`` checks both on hostile messages. Arrays
returned without conversion alias the message's buffer: they may be read-only (bytes) or
non-contiguous (row padding, dropped alpha), and writing to a writable one changes the message.
"""

from __future__ import annotations

import re
import zlib
from array import array as py_array
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np

if TYPE_CHECKING:
    from sensor_msgs.msg import CompressedImage, Image

__all__ = [
    "MAX_PIXELS",
    "RGB_SOURCE_ENCODINGS",
    "ImageConversionError",
    "ImageFields",
    "compressed_fields",
    "compressed_size",
    "compressed_to_rgb",
    "image_fields",
    "image_to_numpy",
    "image_to_rgb",
    "numpy_to_compressed",
    "numpy_to_image",
]


class ImageConversionError(ValueError):
    """An image message or array that cannot be converted; the message says which field and why."""


#: Largest image the readers accept, in pixels (width x height), raw and compressed alike: 8192 x 8192
#: (67 MP, twice an 8K frame). One bgr8 frame at the limit is 201 MB, and decoding a PNG or JPEG at
#: the limit peaks at about 390 MB above the process's baseline (measured); the node holds the frame
#: and its camera-size outputs besides the model, and on an 8 GB Jetson the GPU shares that memory.
#: Without a limit, a 2.6 MB PNG or a 631-byte JPEG declaring 30000 x 30000 decoded to 2.7 GB
#: (5.2 GB peak RSS). ``max_pixels=None`` lifts it (OpenCV's own 2^30-pixel cap remains).
MAX_PIXELS = 8192 * 8192


class _Layout(NamedTuple):
    channels: int
    dtype: np.dtype  # byte order left unspecified: the message's is_bigendian decides it


_U8 = np.dtype(np.uint8)
_U16 = np.dtype(np.uint16)

_NAMED_LAYOUTS: dict[str, _Layout] = {
    "rgb8": _Layout(3, _U8),
    "bgr8": _Layout(3, _U8),
    "rgba8": _Layout(4, _U8),
    "bgra8": _Layout(4, _U8),
    "rgb16": _Layout(3, _U16),
    "bgr16": _Layout(3, _U16),
    "rgba16": _Layout(4, _U16),
    "bgra16": _Layout(4, _U16),
    "mono8": _Layout(1, _U8),
    "mono16": _Layout(1, _U16),
    # Packed 4:2:2, two bytes per pixel (cv_bridge treats these as 8UC2).
    "yuv422": _Layout(2, _U8),
    "uyvy": _Layout(2, _U8),
    "yuv422_yuy2": _Layout(2, _U8),
    "yuyv": _Layout(2, _U8),
    **{
        f"bayer_{pattern}{bits}": _Layout(1, _U8 if bits == 8 else _U16)
        for pattern in ("rggb", "bggr", "gbrg", "grbg")
        for bits in (8, 16)
    },
}

# OpenCV's generic type names ("8UC3", "32FC1", ...), as cv_bridge accepts them.
_GENERIC_ENCODING = re.compile(r"(8U|8S|16U|16S|32S|32F|64F)C([1-9][0-9]*)")
_GENERIC_DTYPES = {
    "8U": np.dtype(np.uint8),
    "8S": np.dtype(np.int8),
    "16U": np.dtype(np.uint16),
    "16S": np.dtype(np.int16),
    "32S": np.dtype(np.int32),
    "32F": np.dtype(np.float32),
    "64F": np.dtype(np.float64),
}

# ROS "yuv422" is UYVY byte order and "yuv422_yuy2" is YUYV (image_encodings.hpp); "uyvy"/"yuyv" are
# the newer aliases.
_YUV422_CODES = {
    "yuv422": {"rgb8": cv2.COLOR_YUV2RGB_UYVY, "bgr8": cv2.COLOR_YUV2BGR_UYVY},
    "uyvy": {"rgb8": cv2.COLOR_YUV2RGB_UYVY, "bgr8": cv2.COLOR_YUV2BGR_UYVY},
    "yuv422_yuy2": {"rgb8": cv2.COLOR_YUV2RGB_YUY2, "bgr8": cv2.COLOR_YUV2BGR_YUY2},
    "yuyv": {"rgb8": cv2.COLOR_YUV2RGB_YUY2, "bgr8": cv2.COLOR_YUV2BGR_YUY2},
}

# ROS names a Bayer pattern by its top-left 2x2 cell; OpenCV's legacy names use the second row's
# 2nd and 3rd pixels, so ROS rggb is OpenCV "BG" (OpenCV 5 adds COLOR_BayerRGGB2RGB == BayerBG2RGB).
# The legacy names exist in OpenCV 4 and 5; the mapping is checked on flat colour patches in the tests.
_BAYER_CODES = {
    "rggb": {"rgb8": cv2.COLOR_BayerBG2RGB, "bgr8": cv2.COLOR_BayerBG2BGR},
    "bggr": {"rgb8": cv2.COLOR_BayerRG2RGB, "bgr8": cv2.COLOR_BayerRG2BGR},
    "gbrg": {"rgb8": cv2.COLOR_BayerGR2RGB, "bgr8": cv2.COLOR_BayerGR2BGR},
    "grbg": {"rgb8": cv2.COLOR_BayerGB2RGB, "bgr8": cv2.COLOR_BayerGB2BGR},
}

_ENGINE_ORDERS = ("rgb8", "bgr8")

#: Encodings ``image_to_rgb`` accepts.
RGB_SOURCE_ENCODINGS = frozenset(
    {"rgb8", "bgr8", "rgba8", "bgra8", "rgb16", "bgr16", "rgba16", "bgra16", "mono8", "mono16", "8UC1", "8UC3", "8UC4"}
    | set(_YUV422_CODES)
    | {name for name in _NAMED_LAYOUTS if name.startswith("bayer_")}
)


def _layout(encoding: str) -> _Layout:
    layout = _NAMED_LAYOUTS.get(encoding)
    if layout is not None:
        return layout
    generic = _GENERIC_ENCODING.fullmatch(encoding)
    if generic is not None:
        return _Layout(int(generic.group(2)), _GENERIC_DTYPES[generic.group(1)])
    raise ImageConversionError(f"unknown encoding {encoding!r}")


def _byte_view(data, what: str) -> memoryview:
    """``data`` as a flat byte memoryview (rclpy stores uint8[] as ``array.array('B')``; bytes also work)."""
    try:
        return memoryview(data).cast("B")
    except TypeError as err:
        raise ImageConversionError(
            f"{what} is a {type(data).__name__}, expected a contiguous bytes-like buffer (bytes, array.array('B'))"
        ) from err


def _to_8bit(pixels: np.ndarray) -> np.ndarray:
    # cv_bridge's 16 -> 8 bit rule: keep the high byte (value / 256).
    return (pixels >> 8).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Image -> numpy


def _over_limit(width: int, height: int, max_pixels: int | None) -> str | None:
    """None, or how ``width`` x ``height`` exceeds ``max_pixels``."""
    if max_pixels is None or width * height <= max_pixels:
        return None
    return f"{width}x{height} (width x height), {width * height} pixels, over the limit of {max_pixels} pixels (max_pixels)"


def _check_limit_argument(max_pixels: int | None) -> None:
    if max_pixels is not None and (not isinstance(max_pixels, int) or max_pixels < 1):
        raise ValueError(f"max_pixels must be a positive int or None, got {max_pixels!r}")


def _uint_field(msg, name: str, bits: int) -> int:
    # rclpy's classes enforce the field types; rosbags' dataclasses and hand-made stand-ins do not.
    value = getattr(msg, name)
    if isinstance(value, (int, np.integer)) and 0 <= value < 1 << bits:
        return int(value)
    raise ImageConversionError(f"{name} {value!r} is not a uint{bits}")


def image_to_numpy(msg: Image, *, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Zero-copy view of ``msg.data``: HxW for one channel, HxWxC otherwise, dtype from the encoding.

    Row padding (``step`` > row size) is skipped through the row stride, and 16-bit and wider data
    keep the message's byte order in the dtype (``>u2`` when ``is_bigendian``), so nothing is copied.
    Images of more than ``max_pixels`` pixels are refused (``MAX_PIXELS``; None: no limit).
    """
    _check_limit_argument(max_pixels)
    height, width, step = (_uint_field(msg, name, 32) for name in ("height", "width", "step"))
    is_bigendian = _uint_field(msg, "is_bigendian", 8)
    encoding = msg.encoding
    if not isinstance(encoding, str):
        raise ImageConversionError(f"encoding is a {type(encoding).__name__}, expected a str")
    over = _over_limit(width, height, max_pixels)
    if over:
        raise ImageConversionError(f"image {over} for {encoding}")
    layout = _layout(encoding)
    if height == 0 or width == 0:
        raise ImageConversionError(f"empty image {width}x{height} (width x height) for {encoding}")
    itemsize = layout.dtype.itemsize
    if itemsize == 1 and is_bigendian:
        raise ImageConversionError(f"is_bigendian set for 8-bit encoding {encoding}")
    if encoding in _YUV422_CODES and width % 2:
        raise ImageConversionError(f"width {width} is odd; {encoding} packs pixel pairs, so width must be even")

    row_bytes = width * layout.channels * itemsize
    if step < row_bytes:
        row_formula = "width*channels" if itemsize == 1 else f"width*channels*{itemsize} bytes"
        raise ImageConversionError(f"step {step} < {row_formula} {row_bytes} for {encoding}")
    buffer = _byte_view(msg.data, "data")
    needed = height * step
    if buffer.nbytes < needed:
        raise ImageConversionError(
            f"data has {buffer.nbytes} bytes, expected at least {needed} (height {height} × step {step}) for {encoding}"
        )

    dtype = layout.dtype.newbyteorder(">" if is_bigendian else "<") if itemsize > 1 else layout.dtype
    if layout.channels == 1:
        shape, strides = (height, width), (step, itemsize)
    else:
        shape, strides = (height, width, layout.channels), (step, layout.channels * itemsize, itemsize)
    # np.ndarray over the buffer (unlike as_strided) bounds-checks the strides and keeps the buffer alive.
    return np.ndarray(shape, dtype=dtype, buffer=buffer, strides=strides)


def image_to_rgb(msg: Image, want: str = "rgb8", *, max_pixels: int | None = MAX_PIXELS) -> tuple[np.ndarray, str]:
    """An HxWx3 uint8 array for the engine and its channel order, ``"rgb8"`` or ``"bgr8"``.

    rgb8 and bgr8 come back as the zero-copy view in their own order (the engine swaps channels
    itself); rgba8/bgra8 as a strided view without alpha. Only encodings that need a conversion
    (mono, 16-bit, yuv422, bayer) produce a new array, in the ``want`` order. Generic ``8UC3``/``8UC4``
    carry no channel order and, as in cv_bridge, are taken to already be in ``want`` order.
    Images of more than ``max_pixels`` pixels are refused, as by ``image_to_numpy``.
    """
    if want not in _ENGINE_ORDERS:
        raise ImageConversionError(f"want must be 'rgb8' or 'bgr8', got {want!r}")
    pixels = image_to_numpy(msg, max_pixels=max_pixels)
    encoding = msg.encoding
    try:
        if encoding in ("rgb8", "bgr8"):
            return pixels, encoding
        if encoding in ("rgba8", "bgra8"):
            return pixels[..., :3], encoding[:3] + "8"
        if encoding in ("rgb16", "bgr16", "rgba16", "bgra16"):
            return _to_8bit(pixels[..., :3]), encoding[:3] + "8"
        if encoding == "8UC3":
            return pixels, want
        if encoding == "8UC4":
            return pixels[..., :3], want
        if encoding in ("mono8", "8UC1"):
            return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB), want
        if encoding == "mono16":
            return cv2.cvtColor(_to_8bit(pixels), cv2.COLOR_GRAY2RGB), want
        if encoding in _YUV422_CODES:
            return cv2.cvtColor(pixels, _YUV422_CODES[encoding][want]), want
        if encoding.startswith("bayer_"):
            mosaic = pixels if pixels.dtype.itemsize == 1 else _to_8bit(pixels)
            return cv2.cvtColor(mosaic, _BAYER_CODES[encoding[6:10]][want]), want
    except cv2.error as err:
        raise ImageConversionError(
            f"OpenCV could not convert {encoding} {msg.width}x{msg.height} to {want}: {err}"
        ) from err
    raise ImageConversionError(
        f"cannot convert {encoding} to {want}: not a colour, mono, yuv422 or bayer encoding "
        f"(supported: {', '.join(sorted(RGB_SOURCE_ENCODINGS))})"
    )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"  # SOI and the first byte of the next marker, as OpenCV sniffs it
# A marker: 0xFF (after any 0xFF fill bytes) and a byte other than 0x00 (a stuffed 0xFF in entropy
# coded data) or 0xFF. libjpeg skips any other bytes between segments, so the scan does too.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xff]")
# Frame headers (SOF0-3, 5-7, 9-11, 13-15); 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RST0-7, TEM: no length field
# Camera JPEGs have a dozen segments before the frame header (APPn, DQT, DHT, COM; an ICC profile
# adds one per 64 KB). Without a cap, 10 MB of 2-byte TEM markers kept the scan busy for 1.4 s.
_JPEG_MAX_SEGMENTS = 1000
# A camera's PNG has IHDR, a few ancillary chunks, IDATs of 8 KB (libpng's) or more, and IEND.
_PNG_MAX_CHUNKS = 1000


def _png_size(data: memoryview) -> tuple[int, int]:
    # The IHDR chunk must come first: length (4 bytes), "IHDR", width, height (big-endian uint32).
    # libpng checks the chunk's length and CRC; the declared size is refused before it gets that far.
    if data.nbytes < 24 or data[12:16] != b"IHDR":
        raise ValueError("PNG data does not start with an IHDR chunk")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _check_png_chunks(data: memoryview) -> None:
    """ValueError unless the chunks from the signature to IEND are whole, with chunk types of letters
    and CRCs that match: libpng prints a line to stderr for each PNG it finds broken (OpenCV's log
    aside, which the node silences), so a truncated or damaged one is refused here first. One step
    per chunk (encoders write 8 KB IDATs) and zlib's CRC-32 over the bytes; the steps are capped, as
    10 MB of empty chunks took the walk 0.8 s (and libpng 2.2 s, with a warning line per chunk)."""
    pos, end = 8, data.nbytes
    for _ in range(_PNG_MAX_CHUNKS + end // 1024):
        if end - pos < 12:
            raise ValueError(f"PNG data ends at byte {end} without its IEND chunk (truncated?)")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, stop = bytes(data[pos + 4 : pos + 8]), pos + 8 + length
        if not kind.isalpha():
            raise ValueError(f"PNG chunk at byte {pos} has the type {kind!r}, not four letters (damaged?)")
        if stop + 4 > end:
            raise ValueError(
                f"PNG chunk {kind.decode()} at byte {pos} ({length} bytes) runs past the data's end (truncated?)"
            )
        if zlib.crc32(data[pos + 4 : stop]) != int.from_bytes(data[stop : stop + 4], "big"):
            raise ValueError(f"PNG chunk {kind.decode()} at byte {pos} fails its CRC check (damaged?)")
        if kind == b"IEND":
            return
        pos = stop + 4
    raise ValueError(f"PNG data has over {_PNG_MAX_CHUNKS} chunks and one per KB before its IEND chunk")


def _jpeg_size(data: memoryview) -> tuple[int, int]:
    # Walk the segments from SOI to the frame header (SOFn) the way libjpeg's jpeg_read_header does,
    # so the size read here is the one the decoder will allocate for.
    pos = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        match = _JPEG_MARKER.search(data, pos)
        if match is None:
            raise ValueError("JPEG data ends before its frame header (SOF marker)")
        marker, pos = data[match.end() - 1], match.end()
        if marker in _JPEG_SOF:
            if data.nbytes < pos + 7:
                raise ValueError("JPEG frame header (SOF marker) is truncated")
            return int.from_bytes(data[pos + 5 : pos + 7], "big"), int.from_bytes(data[pos + 3 : pos + 5], "big")
        if marker in (0xD8, 0xD9, 0xDA):
            name = {0xD8: "a second SOI", 0xD9: "EOI", 0xDA: "SOS"}[marker]
            raise ValueError(f"JPEG data has {name} marker before its frame header (SOF marker)")
        if marker in _JPEG_STANDALONE:
            continue
        if data.nbytes < pos + 2:
            raise ValueError("JPEG data ends inside a marker segment")
        pos += max(int.from_bytes(data[pos : pos + 2], "big"), 2)  # the length counts itself
    raise ValueError(f"JPEG data has over {_JPEG_MAX_SEGMENTS} markers before its frame header (SOF marker)")


def compressed_size(data) -> tuple[str, int, int]:
    """(codec, width, height) a ``CompressedImage``'s data declares in its header, read without decoding.

    Only PNG and JPEG are read (what compressed_image_transport's "png" and "jpeg" formats hold);
    other data raises ``ValueError``, as does a header that is missing or cut short.
    """
    buffer = memoryview(data).cast("B")
    if buffer[:8] == _PNG_SIGNATURE:
        return ("PNG", *_png_size(buffer))
    if buffer[:3] == _JPEG_SIGNATURE:
        return ("JPEG", *_jpeg_size(buffer))
    raise ValueError(f"not PNG or JPEG data (starts with {bytes(buffer[:8]).hex(' ')}); only PNG and JPEG are decoded")


def compressed_to_rgb(msg: CompressedImage, *, max_pixels: int | None = MAX_PIXELS) -> tuple[np.ndarray, str]:
    """Decode a ``CompressedImage`` to an HxWx3 uint8 array, always ``"bgr8"`` (OpenCV's order).

    The codec is sniffed from the data, so ``format`` may be "jpeg", "png" or image_transport's
    "rgb8; jpeg compressed bgr8" style; only compressedDepth (a depth-specific header) is refused.
    PNG and JPEG are decoded, other formats refused (each codec OpenCV carries is attack surface,
    and their headers are not read here). The size the header declares is read first and, beyond
    ``max_pixels`` (``MAX_PIXELS``; None: OpenCV's own limit of 2^30), refused before decoding, so a
    small file declaring a huge image (a decompression bomb) costs nothing.
    """
    _check_limit_argument(max_pixels)
    fmt = msg.format
    if not isinstance(fmt, str):
        raise ImageConversionError(f"format is a {type(fmt).__name__}, expected a str")
    if "compresseddepth" in fmt.lower():
        raise ImageConversionError(f"format {fmt!r} is a compressedDepth image, which is not supported")
    buffer = _byte_view(msg.data, "CompressedImage data")
    if buffer.nbytes == 0:
        raise ImageConversionError(f"could not decode {fmt!r} CompressedImage: data is empty (0 bytes)")
    try:
        codec, width, height = compressed_size(buffer)
    except ValueError as err:
        raise ImageConversionError(f"could not decode {fmt!r} CompressedImage ({buffer.nbytes} bytes): {err}") from None
    if width == 0 or height == 0:
        raise ImageConversionError(
            f"could not decode {fmt!r} CompressedImage ({buffer.nbytes} bytes): {codec} header declares an empty "
            f"image {width}x{height} (width x height)"
        )
    over = _over_limit(width, height, max_pixels)
    if over:
        raise ImageConversionError(
            f"refusing {fmt!r} CompressedImage ({buffer.nbytes} bytes): {codec} header declares {over}"
        )
    if codec == "PNG":
        try:
            _check_png_chunks(buffer)
        except ValueError as err:
            raise ImageConversionError(
                f"could not decode {fmt!r} CompressedImage ({buffer.nbytes} bytes): {err}"
            ) from None
    try:
        bgr = cv2.imdecode(np.frombuffer(buffer, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as err:
        raise ImageConversionError(f"could not decode {fmt!r} CompressedImage ({buffer.nbytes} bytes): {err}") from err
    if bgr is None:
        raise ImageConversionError(
            f"could not decode {fmt!r} CompressedImage ({buffer.nbytes} bytes): not a valid image in a format OpenCV reads"
        )
    return bgr, "bgr8"


# --------------------------------------------------------------------------------------------------
# numpy -> Image


def _checked_pixels(array: np.ndarray, encoding: str) -> tuple[np.ndarray, _Layout]:
    """``array`` validated against ``encoding``, as a C-contiguous little-endian array (copied only if needed)."""
    layout = _layout(encoding)
    if not isinstance(array, np.ndarray):
        raise ImageConversionError(f"expected a numpy array for {encoding}, got {type(array).__name__}")
    if layout.channels == 1 and array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    expected_shape = "(height, width)" if layout.channels == 1 else f"(height, width, {layout.channels})"
    if array.ndim != (2 if layout.channels == 1 else 3) or (layout.channels > 1 and array.shape[2] != layout.channels):
        raise ImageConversionError(f"{encoding} needs an array of shape {expected_shape}, got {array.shape}")
    if array.dtype.kind != layout.dtype.kind or array.dtype.itemsize != layout.dtype.itemsize:
        raise ImageConversionError(f"{encoding} needs dtype {layout.dtype.name}, got {array.dtype}")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ImageConversionError(f"empty image {width}x{height} (width x height) for {encoding}")
    if encoding in _YUV422_CODES and width % 2:
        raise ImageConversionError(f"width {width} is odd; {encoding} packs pixel pairs, so width must be even")
    # Messages are written little-endian (is_bigendian = 0); a no-op on little-endian hosts.
    return np.ascontiguousarray(array, dtype=layout.dtype.newbyteorder("<")), layout


def _byte_array(contiguous: np.ndarray) -> py_array:
    # array('B').frombytes copies once straight from the numpy buffer. Assigning bytes to msg.data
    # makes rclpy copy again into an array('B') (and, with ROS_PYTHON_CHECK_FIELDS=1, walk every byte).
    data = py_array("B")
    data.frombytes(contiguous.reshape(-1).view(np.uint8))  # frombytes rejects buffers with format '<H' etc.
    return data


class ImageFields(NamedTuple):
    """The fields of a ``sensor_msgs/Image`` for an array; ``data`` is its bytes as a flat uint8 array."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray


def image_fields(array: np.ndarray, encoding: str) -> ImageFields:
    """``array`` (HxW or HxWxC, dtype matching ``encoding``) as Image fields, little-endian, no padding."""
    pixels, layout = _checked_pixels(array, encoding)
    height, width = pixels.shape[:2]
    step = width * layout.channels * layout.dtype.itemsize
    return ImageFields(height, width, encoding, 0, step, pixels.reshape(-1).view(np.uint8))


def numpy_to_image(array: np.ndarray, encoding: str, header=None) -> Image:
    """A ``sensor_msgs/Image`` holding a copy of ``array`` (HxW or HxWxC, dtype matching ``encoding``)."""
    from sensor_msgs.msg import Image

    fields = image_fields(array, encoding)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height = fields.height
    msg.width = fields.width
    msg.encoding = fields.encoding
    msg.is_bigendian = fields.is_bigendian
    msg.step = fields.step
    msg.data = _byte_array(fields.data)
    return msg


_COMPRESSIBLE = {
    "jpeg": {"rgb8", "bgr8", "mono8"},
    "png": {"rgb8", "bgr8", "mono8", "mono16"},
}


def compressed_fields(
    array: np.ndarray, encoding: str, fmt: str = "jpeg", *, jpeg_quality: int = 90
) -> tuple[str, np.ndarray]:
    """(``format``, encoded bytes as a flat uint8 array) of a jpeg or png ``CompressedImage`` of ``array``.

    Colour images are stored as bgr8 whatever their input order, as compressed_image_transport does,
    so ``format`` reads e.g. "rgb8; jpeg compressed bgr8".
    """
    codec = {"jpg": "jpeg"}.get(fmt.lower(), fmt.lower())
    if codec not in _COMPRESSIBLE:
        raise ImageConversionError(f"fmt must be 'jpeg' or 'png', got {fmt!r}")
    if encoding not in _COMPRESSIBLE[codec]:
        raise ImageConversionError(
            f"cannot compress {encoding} as {codec}: supported encodings are {', '.join(sorted(_COMPRESSIBLE[codec]))}"
        )
    pixels, _ = _checked_pixels(array, encoding)
    if encoding == "rgb8":
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if codec == "jpeg" else []
    ok, encoded = cv2.imencode(".jpg" if codec == "jpeg" else ".png", pixels, params)
    if not ok:
        raise ImageConversionError(f"OpenCV could not encode {encoding} {pixels.shape} as {codec}")
    # compressed_image_transport names the stored order of colour images only ("mono8; png compressed ")
    stored = "bgr8" if encoding in ("rgb8", "bgr8") else ""
    return f"{encoding}; {codec} compressed {stored}", encoded.reshape(-1)


def numpy_to_compressed(
    array: np.ndarray, encoding: str, fmt: str = "jpeg", header=None, *, jpeg_quality: int = 90
) -> CompressedImage:
    """A ``sensor_msgs/CompressedImage`` (jpeg or png) of ``array``; see ``compressed_fields``."""
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format, data = compressed_fields(array, encoding, fmt, jpeg_quality=jpeg_quality)
    msg.data = _byte_array(data)
    return msg
