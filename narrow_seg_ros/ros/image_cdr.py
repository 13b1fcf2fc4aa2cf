"""``sensor_msgs/Image`` and ``CompressedImage`` straight to and from their serialized form (CDR).

The node's frames are megabytes: through rclpy's message classes a received frame is copied from
the serialized bytes into an ``array.array``, and every published output is copied from numpy into
an ``array.array``, again into the C message and again into the CDR buffer. Here a received Image
is read in place (its pixels stay a view of the received bytes) and an output is built as its CDR
bytes, which ``Publisher.publish`` takes as they are: one allocation and one copy of the pixels.

The layout is XCDR1 little endian, as rmw_fastrtps writes it: a 4-byte encapsulation header
(``00 01 00 00``), then the fields in order, each aligned to its size from the end of that header;
a string is a uint32 length counting its NUL, the bytes and the NUL; a ``uint8[]`` a uint32 count
and the bytes. Anything else (big-endian or XCDR2 data from another DDS) goes through rclpy's
deserializer, which reads every encapsulation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .image_conversion import ImageConversionError, compressed_fields, image_fields

_CDR_LE = b"\x00\x01\x00\x00"
_ENCAPSULATION = 4  # bytes before the first field; alignment counts from its end


@dataclass
class ImageView:
    """A received ``sensor_msgs/Image`` whose ``data`` is a view of the serialized bytes (read-only):
    the fields ``image_conversion.image_to_numpy`` and ``image_to_rgb`` read, and the header."""

    header: object  # std_msgs/msg/Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


# ------------------------------------------------------------------------------------ writing
def _padding(length: int) -> bytes:
    return b"\x00" * (-(length - _ENCAPSULATION) % 4)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<I", len(raw) + 1) + raw + b"\x00"


def _prefix(header, *fields: bytes) -> bytearray:
    """Encapsulation, header, then ``fields`` (already serialized), each string field 4-aligned."""
    out = bytearray(_CDR_LE)
    stamp = header.stamp if header is not None else None
    out += struct.pack("<iI", stamp.sec, stamp.nanosec) if stamp is not None else bytes(8)
    out += _string(header.frame_id if header is not None else "")
    for field in fields:
        out += _padding(len(out)) + field
    return out


def image_cdr(array: np.ndarray, encoding: str, header=None) -> bytes:
    """The serialized ``sensor_msgs/Image`` that ``numpy_to_image(array, encoding, header)`` would
    serialize to: rclpy's ``Publisher.publish`` takes it as is."""
    fields = image_fields(array, encoding)
    prefix = _prefix(header, struct.pack("<II", fields.height, fields.width), _string(fields.encoding))
    prefix += struct.pack("<B", fields.is_bigendian)
    prefix += _padding(len(prefix)) + struct.pack("<II", fields.step, fields.data.nbytes)
    return b"".join((prefix, fields.data))  # one allocation, one copy of the pixels


def compressed_cdr(
    array: np.ndarray, encoding: str, fmt: str = "jpeg", header=None, *, jpeg_quality: int = 90
) -> bytes:
    """The serialized ``sensor_msgs/CompressedImage`` that ``numpy_to_compressed`` would give."""
    form, data = compressed_fields(array, encoding, fmt, jpeg_quality=jpeg_quality)
    prefix = _prefix(header, _string(form))
    prefix += _padding(len(prefix)) + struct.pack("<I", data.nbytes)
    return b"".join((prefix, data))


# ------------------------------------------------------------------------------------ reading
def is_little_endian_cdr(data) -> bool:
    return bytes(memoryview(data)[:4]) == _CDR_LE


def read_image(data) -> ImageView:
    """A serialized little-endian ``sensor_msgs/Image`` read in place (see ``is_little_endian_cdr``);
    ImageConversionError where the bytes are not one."""
    buffer = memoryview(data).cast("B")
    try:
        reader = _Reader(buffer)
        header = reader.header()
        height, width = reader.uint32(), reader.uint32()
        encoding = reader.string()
        is_bigendian = reader.uint8()
        step = reader.uint32()
        pixels = reader.bytes_sequence()
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise ImageConversionError(f"cannot deserialize an Image message ({buffer.nbytes} bytes): {exc}") from None
    return ImageView(header, height, width, encoding, is_bigendian, step, pixels)


def read_header(data):
    """The std_msgs/Header that a serialized little-endian Image or CompressedImage starts with."""
    try:
        return _Reader(memoryview(data).cast("B")).header()
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise ImageConversionError(f"cannot read the header of a serialized image: {exc}") from None


class _Reader:
    """Sequential XCDR1 little-endian reads with bounds checks (struct.error or ValueError past the end)."""

    def __init__(self, buffer: memoryview):
        self.buffer, self.pos = buffer, _ENCAPSULATION

    def _align(self, size: int) -> None:
        self.pos += -(self.pos - _ENCAPSULATION) % size

    def uint8(self) -> int:
        (value,) = struct.unpack_from("<B", self.buffer, self.pos)
        self.pos += 1
        return value

    def uint32(self, signed: bool = False) -> int:
        self._align(4)
        (value,) = struct.unpack_from("<i" if signed else "<I", self.buffer, self.pos)
        self.pos += 4
        return value

    def bytes_sequence(self) -> memoryview:
        count = self.uint32()
        if self.pos + count > self.buffer.nbytes:
            raise ValueError(f"a sequence of {count} bytes at offset {self.pos} runs past the end")
        self.pos += count
        return self.buffer[self.pos - count : self.pos]

    def string(self) -> str:
        raw = self.bytes_sequence()
        if raw.nbytes == 0 or raw[-1] != 0:
            raise ValueError(f"a string at offset {self.pos - raw.nbytes} lacks its terminating NUL")
        return bytes(raw[:-1]).decode()

    def header(self):
        from builtin_interfaces.msg import Time
        from std_msgs.msg import Header

        sec, nanosec = self.uint32(signed=True), self.uint32()
        return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=self.string())
