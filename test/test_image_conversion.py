"""narrow_seg_ros.ros.image_conversion on real sensor_msgs objects (no middleware needed)."""

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from narrow_seg_ros.ros.image_cdr import compressed_cdr, image_cdr, is_little_endian_cdr, read_header, read_image
from narrow_seg_ros.ros.image_conversion import (
    RGB_SOURCE_ENCODINGS,
    ImageConversionError,
    compressed_to_rgb,
    image_to_numpy,
    image_to_rgb,
    numpy_to_compressed,
    numpy_to_image,
)

RNG = np.random.default_rng(0)

# encoding -> (channels, dtype) for the round-trip test; covers every named encoding plus generic ones.
LAYOUTS = {
    "rgb8": (3, np.uint8),
    "bgr8": (3, np.uint8),
    "rgba8": (4, np.uint8),
    "bgra8": (4, np.uint8),
    "rgb16": (3, np.uint16),
    "bgr16": (3, np.uint16),
    "rgba16": (4, np.uint16),
    "bgra16": (4, np.uint16),
    "mono8": (1, np.uint8),
    "mono16": (1, np.uint16),
    "yuv422": (2, np.uint8),
    "yuv422_yuy2": (2, np.uint8),
    "uyvy": (2, np.uint8),
    "yuyv": (2, np.uint8),
    **{f"bayer_{p}8": (1, np.uint8) for p in ("rggb", "bggr", "gbrg", "grbg")},
    **{f"bayer_{p}16": (1, np.uint16) for p in ("rggb", "bggr", "gbrg", "grbg")},
    "8UC1": (1, np.uint8),
    "8UC3": (3, np.uint8),
    "8UC4": (4, np.uint8),
    "16UC1": (1, np.uint16),
    "16SC1": (1, np.int16),
    "32FC1": (1, np.float32),
    "64FC2": (2, np.float64),
}

RED, GREEN, BLUE = (210, 25, 35), (30, 200, 45), (20, 40, 215)


def random_pixels(channels, dtype, height=6, width=8):
    shape = (height, width) if channels == 1 else (height, width, channels)
    if np.issubdtype(dtype, np.floating):
        return RNG.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def raw_image(encoding, height, width, step, data, is_bigendian=0):
    msg = Image(height=height, width=width, encoding=encoding, step=step, is_bigendian=is_bigendian)
    msg.data = data
    return msg


def padded_image(pixels, encoding, pad_bytes):
    """A message holding ``pixels`` with ``pad_bytes`` of 0xEE after every row."""
    rows = np.ascontiguousarray(pixels).view(np.uint8).reshape(pixels.shape[0], -1)
    padding = np.full((rows.shape[0], pad_bytes), 0xEE, np.uint8)
    padded = np.concatenate([rows, padding], axis=1)
    return raw_image(encoding, pixels.shape[0], pixels.shape[1], padded.shape[1], padded.tobytes())


def flat(color, height=8, width=8):
    return np.broadcast_to(np.array(color, np.uint8), (height, width, 3)).copy()


def shares_buffer(array, msg):
    return np.shares_memory(array, np.frombuffer(msg.data, np.uint8))


# ---------------------------------------------------------------------------------------------------
# round trips and layout


@pytest.mark.parametrize("encoding", sorted(LAYOUTS))
def test_round_trip_every_encoding(encoding):
    channels, dtype = LAYOUTS[encoding]
    pixels = random_pixels(channels, dtype)
    msg = numpy_to_image(pixels, encoding)
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (6, 8, encoding, 0)
    assert msg.step == 8 * channels * np.dtype(dtype).itemsize
    assert len(msg.data) == msg.step * msg.height
    back = image_to_numpy(msg)
    assert back.shape == pixels.shape
    assert back.dtype.kind == np.dtype(dtype).kind and back.dtype.itemsize == np.dtype(dtype).itemsize
    np.testing.assert_array_equal(back, pixels)
    assert shares_buffer(back, msg)


def test_every_rgb_source_encoding_converts():
    for encoding in RGB_SOURCE_ENCODINGS:
        channels, dtype = LAYOUTS[encoding]
        rgb, order = image_to_rgb(numpy_to_image(random_pixels(channels, dtype), encoding))
        assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8 and order in ("rgb8", "bgr8"), encoding


@pytest.mark.parametrize("encoding", ["rgb8", "mono8", "mono16", "yuv422", "bgra8", "32FC1"])
def test_row_padding_is_skipped(encoding):
    channels, dtype = LAYOUTS[encoding]
    pixels = random_pixels(channels, dtype, height=5, width=6)
    msg = padded_image(pixels, encoding, pad_bytes=12)
    view = image_to_numpy(msg)
    np.testing.assert_array_equal(view, pixels)
    assert shares_buffer(view, msg)
    assert view.strides[0] == msg.step


@pytest.mark.parametrize("encoding", ["mono8", "yuv422", "bayer_rggb8", "rgba8"])
def test_conversions_accept_padded_rows(encoding):
    channels, dtype = LAYOUTS[encoding]
    pixels = random_pixels(channels, dtype, height=4, width=6)
    padded, _ = image_to_rgb(padded_image(pixels, encoding, pad_bytes=10))
    dense, _ = image_to_rgb(numpy_to_image(pixels, encoding))
    np.testing.assert_array_equal(padded, dense)


def test_trailing_bytes_after_last_row_are_ignored():
    pixels = random_pixels(3, np.uint8)
    msg = raw_image("rgb8", 6, 8, 24, pixels.tobytes() + b"\x01\x02\x03")
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
@pytest.mark.parametrize("as_bytes", [False, True], ids=["array.array", "bytes"])
def test_rgb_and_bgr_are_zero_copy_in_their_own_order(encoding, as_bytes):
    pixels = random_pixels(3, np.uint8)
    msg = numpy_to_image(pixels, encoding)
    if as_bytes:
        msg._data = pixels.tobytes()  # rclpy's setter would turn bytes into array('B')
    out, order = image_to_rgb(msg, want="bgr8" if encoding == "rgb8" else "rgb8")
    assert order == encoding
    assert shares_buffer(out, msg)
    np.testing.assert_array_equal(out, pixels)
    assert out.flags.writeable != as_bytes  # bytes are immutable, so the view is read-only


def test_received_message_stays_zero_copy():
    """Data as rclpy hands it to a subscriber (deserialized), not as we built it."""
    from rclpy.serialization import deserialize_message, serialize_message

    pixels = random_pixels(3, np.uint8, height=16, width=32)
    received = deserialize_message(serialize_message(numpy_to_image(pixels, "rgb8")), Image)
    out, order = image_to_rgb(received)
    assert order == "rgb8" and shares_buffer(out, received)
    np.testing.assert_array_equal(out, pixels)


# ---------------------------------------------------------------------------------------------------
# colour conversions


@pytest.mark.parametrize("encoding", ["rgba8", "bgra8", "8UC4"])
def test_alpha_is_dropped_without_copy(encoding):
    pixels = random_pixels(4, np.uint8)
    msg = numpy_to_image(pixels, encoding)
    out, order = image_to_rgb(msg, want="bgr8")
    assert order == {"rgba8": "rgb8", "bgra8": "bgr8", "8UC4": "bgr8"}[encoding]
    np.testing.assert_array_equal(out, pixels[..., :3])
    assert shares_buffer(out, msg)


def test_8uc3_is_taken_in_the_wanted_order():
    pixels = random_pixels(3, np.uint8)
    for want in ("rgb8", "bgr8"):
        out, order = image_to_rgb(numpy_to_image(pixels, "8UC3"), want=want)
        assert order == want
        np.testing.assert_array_equal(out, pixels)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_replicated_to_three_channels(encoding):
    gray = random_pixels(1, np.uint8)
    out, order = image_to_rgb(numpy_to_image(gray, encoding), want="bgr8")
    assert order == "bgr8" and out.shape == (6, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_mono16_keeps_the_high_byte(byteorder):
    gray = np.array([[0, 255, 256, 4095], [32768, 65280, 65535, 1000]], dtype=np.uint16)
    msg = raw_image("mono16", 2, 4, 8, gray.astype(byteorder + "u2").tobytes(), is_bigendian=int(byteorder == ">"))
    out, _ = image_to_rgb(msg)
    np.testing.assert_array_equal(out[..., 0], gray >> 8)
    np.testing.assert_array_equal(out[..., 2], gray >> 8)


def test_rgb16_is_scaled_to_8_bit():
    pixels = random_pixels(4, np.uint16)
    out, order = image_to_rgb(numpy_to_image(pixels, "bgra16"))
    assert order == "bgr8" and out.dtype == np.uint8
    np.testing.assert_array_equal(out, pixels[..., :3] >> 8)


def yuv422_bytes(color, height, width, order):
    """Flat colour packed as UYVY or YUYV with BT.601 limited-range coefficients."""
    r, g, b = (c / 255.0 for c in color)
    y = round(16 + 65.481 * r + 128.553 * g + 24.966 * b)
    u = round(128 - 37.797 * r - 74.203 * g + 112.0 * b)
    v = round(128 + 112.0 * r - 93.786 * g - 18.214 * b)
    pair = [u, y, v, y] if order == "uyvy" else [y, u, y, v]
    return bytes(pair * (height * width // 2))


@pytest.mark.parametrize(
    "encoding,order", [("yuv422", "uyvy"), ("yuv422_yuy2", "yuyv"), ("uyvy", "uyvy"), ("yuyv", "yuyv")]
)
@pytest.mark.parametrize("color", [RED, GREEN, BLUE, (128, 128, 128)])
def test_yuv422_flat_patches(encoding, order, color):
    msg = raw_image(encoding, 4, 6, 12, yuv422_bytes(color, 4, 6, order))
    rgb, rgb_order = image_to_rgb(msg, want="rgb8")
    bgr, bgr_order = image_to_rgb(msg, want="bgr8")
    assert (rgb_order, bgr_order) == ("rgb8", "bgr8")
    assert np.abs(rgb.astype(int) - color).max() <= 3
    assert np.abs(bgr.astype(int) - color[::-1]).max() <= 3


def bayer_mosaic(rgb, pattern):
    """Sample ``rgb`` through a Bayer filter named the ROS way (top-left 2x2 cell, row-major)."""
    mosaic = np.empty(rgb.shape[:2], rgb.dtype)
    for index, channel in enumerate(pattern):
        dy, dx = divmod(index, 2)
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, "rgb".index(channel)]
    return mosaic


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("color", [RED, GREEN, BLUE], ids=["red", "green", "blue"])
def test_bayer_demosaics_flat_patches_to_the_right_colour(pattern, color):
    mosaic = bayer_mosaic(flat(color, 12, 12), pattern)
    for want, expected in (("rgb8", color), ("bgr8", color[::-1])):
        out, order = image_to_rgb(numpy_to_image(mosaic, f"bayer_{pattern}8"), want=want)
        assert order == want
        # Interior only: the borders depend on OpenCV's border extrapolation.
        assert np.abs(out[2:-2, 2:-2].astype(int) - expected).max() <= 2, (pattern, want)
    mosaic16 = mosaic.astype(np.uint16) * 257
    out16, _ = image_to_rgb(numpy_to_image(mosaic16, f"bayer_{pattern}16"))
    assert np.abs(out16[2:-2, 2:-2].astype(int) - color).max() <= 2


@pytest.mark.parametrize("encoding,dtype", [("mono16", np.uint16), ("16SC1", np.int16), ("32FC1", np.float32)])
def test_multibyte_big_and_little_endian(encoding, dtype):
    native = random_pixels(1, dtype, height=3, width=5)
    for byteorder, flag in (("<", 0), (">", 1)):
        data = native.astype(np.dtype(dtype).newbyteorder(byteorder)).tobytes()
        msg = raw_image(encoding, 3, 5, 5 * np.dtype(dtype).itemsize, data, is_bigendian=flag)
        view = image_to_numpy(msg)
        np.testing.assert_array_equal(view, native)
        assert shares_buffer(view, msg)


def test_big_endian_array_is_written_little_endian():
    pixels = random_pixels(1, np.uint16).astype(">u2")
    msg = numpy_to_image(pixels, "mono16")
    assert msg.is_bigendian == 0
    assert bytes(msg.data) == pixels.astype("<u2").tobytes()


def test_header_is_kept():
    header = Header(frame_id="camera_front")
    header.stamp.sec = 42
    assert numpy_to_image(random_pixels(1, np.uint8), "mono8", header=header).header.frame_id == "camera_front"
    compressed = numpy_to_compressed(random_pixels(3, np.uint8), "rgb8", "png", header=header)
    assert compressed.header.stamp.sec == 42


# ---------------------------------------------------------------------------------------------------
# malformed messages


@pytest.mark.parametrize(
    "fields,message",
    [
        (dict(encoding="rgb8", height=1024, width=1024, step=3000), r"step 3000 < width\*channels 3072 for rgb8"),
        (dict(encoding="mono16", height=2, width=4, step=6), r"step 6 < width\*channels\*2 bytes 8 for mono16"),
        (
            dict(encoding="rgb8", height=1024, width=2048, step=6144, data=bytes(100)),
            r"data has 100 bytes, expected at least 6291456 \(height 1024 × step 6144\)",
        ),
        (dict(encoding="foo", height=2, width=2, step=6), r"unknown encoding 'foo'"),
        (dict(encoding="", height=2, width=2, step=6), r"unknown encoding ''"),
        (dict(encoding="rgb8", height=0, width=0, step=0), r"empty image 0x0"),
        (dict(encoding="mono8", height=4, width=0, step=0), r"empty image 0x4"),
        (dict(encoding="rgb8", height=2, width=2, step=6, is_bigendian=1), r"is_bigendian set for 8-bit"),
        (dict(encoding="yuv422", height=2, width=5, step=10), r"width 5 is odd"),
        (dict(encoding="yuv422_yuy2", height=2, width=3, step=6), r"width 3 is odd"),
    ],
)
def test_malformed_messages_raise_specific_errors(fields, message):
    data = fields.pop("data", None)
    msg = Image(**fields)
    msg.data = bytes(fields["height"] * fields["step"]) if data is None else data
    with pytest.raises(ImageConversionError, match=message):
        image_to_numpy(msg)
    with pytest.raises(ImageConversionError, match=message):
        image_to_rgb(msg)


def test_channel_mismatch_between_step_and_encoding():
    # A bgra8 frame labelled rgb8 whose step is that of a mono image.
    msg = raw_image("bgra8", 2, 4, 4, bytes(8))
    with pytest.raises(ImageConversionError, match=r"step 4 < width\*channels 16 for bgra8"):
        image_to_numpy(msg)


def test_non_buffer_data_raises():
    msg = Image(encoding="mono8", height=1, width=2, step=2)
    msg._data = [1, 2]  # bypasses rclpy's setter, which would have made an array.array
    with pytest.raises(ImageConversionError, match=r"data is a list, expected a contiguous bytes-like buffer"):
        image_to_numpy(msg)


def test_image_to_rgb_rejects_bad_want_and_non_colour_encodings():
    msg = numpy_to_image(random_pixels(3, np.uint8), "rgb8")
    with pytest.raises(ImageConversionError, match=r"want must be 'rgb8' or 'bgr8', got 'rgba8'"):
        image_to_rgb(msg, want="rgba8")
    with pytest.raises(ImageConversionError, match=r"cannot convert 32FC1 to rgb8"):
        image_to_rgb(numpy_to_image(random_pixels(1, np.float32), "32FC1"))


@pytest.mark.parametrize(
    "array,encoding,message",
    [
        (np.zeros((4, 4, 3), np.uint16), "rgb8", r"rgb8 needs dtype uint8, got uint16"),
        (np.zeros((4, 4), np.uint8), "mono16", r"mono16 needs dtype uint16, got uint8"),
        (np.zeros((4, 4, 4), np.uint8), "rgb8", r"rgb8 needs an array of shape \(height, width, 3\), got \(4, 4, 4\)"),
        (np.zeros((4, 4, 3), np.uint8), "mono8", r"mono8 needs an array of shape \(height, width\), got \(4, 4, 3\)"),
        (np.zeros((4, 4), np.uint8), "bgr8", r"bgr8 needs an array of shape \(height, width, 3\), got \(4, 4\)"),
        (np.zeros((0, 0, 3), np.uint8), "rgb8", r"empty image 0x0"),
        (np.zeros((2, 3, 2), np.uint8), "yuv422", r"width 3 is odd"),
        (np.zeros((2, 2), np.uint8), "bar", r"unknown encoding 'bar'"),
        ([[1, 2]], "mono8", r"expected a numpy array for mono8, got list"),
    ],
)
def test_numpy_to_image_validates_the_array(array, encoding, message):
    with pytest.raises(ImageConversionError, match=message):
        numpy_to_image(array, encoding)


def test_numpy_to_image_accepts_single_channel_last_axis_and_strided_input():
    gray = random_pixels(1, np.uint8)
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(gray[..., None], "mono8")), gray)
    rgba = random_pixels(4, np.uint8)
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(rgba[:, ::-1, :3], "rgb8")), rgba[:, ::-1, :3])


# ---------------------------------------------------------------------------------------------------
# compressed images


def smooth_rgb(height=32, width=48):
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 5, yy * 7, 255 - xx * 5], axis=-1).astype(np.uint8)


def test_png_round_trip_is_exact():
    rgb = smooth_rgb()
    msg = numpy_to_compressed(rgb, "rgb8", fmt="png")
    assert msg.format == "rgb8; png compressed bgr8"
    bgr, order = compressed_to_rgb(msg)
    assert order == "bgr8"
    np.testing.assert_array_equal(bgr, rgb[..., ::-1])
    bgr_again, _ = compressed_to_rgb(numpy_to_compressed(bgr, "bgr8", fmt="png"))
    np.testing.assert_array_equal(bgr_again, bgr)


def test_mono_png_decodes_to_three_equal_channels():
    gray = random_pixels(1, np.uint8)
    bgr, _ = compressed_to_rgb(numpy_to_compressed(gray, "mono8", fmt="png"))
    np.testing.assert_array_equal(bgr, np.repeat(gray[..., None], 3, axis=2))


def test_jpeg_round_trip_is_close():
    rgb = smooth_rgb()
    msg = numpy_to_compressed(rgb, "rgb8", fmt="jpg", jpeg_quality=95)
    assert msg.format == "rgb8; jpeg compressed bgr8"
    bgr, order = compressed_to_rgb(msg)
    assert order == "bgr8" and bgr.shape == rgb.shape
    assert np.abs(bgr[..., ::-1].astype(int) - rgb).mean() < 3


@pytest.mark.parametrize("fmt", ["jpeg", "png", "bgr8; jpeg compressed bgr8", ""])
def test_format_string_does_not_matter_for_decoding(fmt):
    msg = numpy_to_compressed(smooth_rgb(), "bgr8", fmt="png")
    msg.format = fmt
    bgr, _ = compressed_to_rgb(msg)
    np.testing.assert_array_equal(bgr, smooth_rgb())


@pytest.mark.parametrize(
    "data,fmt,message",
    [
        (b"", "jpeg", r"could not decode 'jpeg' CompressedImage: data is empty \(0 bytes\)"),
        (b"\xff\xd8\xff\xe0 not really a jpeg", "jpeg", r"could not decode 'jpeg' CompressedImage \(22 bytes\)"),
        (bytes(64), "png", r"could not decode 'png' CompressedImage \(64 bytes\)"),
        (b"\x00" * 16, "16UC1; compressedDepth png", r"compressedDepth image, which is not supported"),
    ],
)
def test_corrupt_or_empty_compressed_data_raises(data, fmt, message):
    msg = CompressedImage(format=fmt)
    msg.data = data
    with pytest.raises(ImageConversionError, match=message):
        compressed_to_rgb(msg)


def test_truncated_jpeg_raises():
    msg = numpy_to_compressed(smooth_rgb(), "rgb8")
    msg.data = msg.data[:40]
    with pytest.raises(ImageConversionError, match=r"could not decode .* \(40 bytes\)"):
        compressed_to_rgb(msg)


def test_numpy_to_compressed_validates_format_and_encoding():
    with pytest.raises(ImageConversionError, match=r"fmt must be 'jpeg' or 'png', got 'tiff'"):
        numpy_to_compressed(smooth_rgb(), "rgb8", fmt="tiff")
    with pytest.raises(ImageConversionError, match=r"cannot compress mono16 as jpeg"):
        numpy_to_compressed(np.zeros((4, 4), np.uint16), "mono16", fmt="jpeg")
    with pytest.raises(ImageConversionError, match=r"rgb8 needs dtype uint8, got float32"):
        numpy_to_compressed(np.zeros((4, 4, 3), np.float32), "rgb8")


# ---------------------------------------------------------------------------------------------------
# serialized form (image_cdr): what the node publishes and reads in place

CDR_ENCODINGS = {"mono8": (1, np.uint8), "rgb8": (3, np.uint8), "bgra8": (4, np.uint8), "mono16": (1, np.uint16),
                 "yuv422": (2, np.uint8), "32FC1": (1, np.float32)}  # fmt: skip
# every frame_id length mod 4 (and none): the fields after it move through every alignment
FRAME_IDS = ["", "a", "ab", "abc", "abcd", "camera_front_optical_frame"]


def stamped(frame_id: str) -> Header:
    return Header(stamp=Time(sec=1_700_000_123, nanosec=987_654_321), frame_id=frame_id)


@pytest.mark.parametrize("frame_id", FRAME_IDS)
@pytest.mark.parametrize("encoding", sorted(CDR_ENCODINGS))
def test_image_cdr_deserializes_to_the_message_path(encoding, frame_id):
    channels, dtype = CDR_ENCODINGS[encoding]
    pixels = random_pixels(channels, dtype, height=5, width=6)
    built = deserialize_message(image_cdr(pixels, encoding, stamped(frame_id)), Image)
    assert built == numpy_to_image(pixels, encoding, stamped(frame_id))


@pytest.mark.parametrize("frame_id", FRAME_IDS)
def test_compressed_cdr_deserializes_to_the_message_path(frame_id):
    mask = RNG.integers(0, 12, (7, 9), dtype=np.uint8)
    built = deserialize_message(compressed_cdr(mask, "mono8", "png", stamped(frame_id)), CompressedImage)
    assert built == numpy_to_compressed(mask, "mono8", "png", stamped(frame_id))


@pytest.mark.parametrize("frame_id", FRAME_IDS)
@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "mono8", "bayer_rggb8", "mono16"])
def test_read_image_gives_the_deserialized_message_in_place(encoding, frame_id):
    channels, dtype = LAYOUTS[encoding]
    data = serialize_message(numpy_to_image(random_pixels(channels, dtype), encoding, stamped(frame_id)))
    view, msg = read_image(data), deserialize_message(data, Image)
    assert (view.header, view.height, view.width, view.encoding, view.is_bigendian, view.step) == (
        msg.header, msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step)  # fmt: skip
    assert bytes(view.data) == bytes(msg.data)
    # the engine gets the same pixels (hence the same masks), without a copy for rgb8/bgr8
    (ours, our_order), (theirs, their_order) = image_to_rgb(view), image_to_rgb(msg)
    assert our_order == their_order and ours.tobytes() == theirs.tobytes()
    if encoding in ("rgb8", "bgr8"):
        assert np.shares_memory(ours, np.frombuffer(data, np.uint8))
    assert read_header(data) == msg.header


def test_read_image_refuses_bytes_that_are_not_an_image():
    data = serialize_message(numpy_to_image(random_pixels(3, np.uint8), "rgb8", stamped("cam")))
    for broken in (data[:30], data[:-1], b"\x00\x01\x00\x00" + bytes(8) + b"\xff\xff\xff\x7f"):
        with pytest.raises(ImageConversionError, match="cannot deserialize an Image message"):
            read_image(broken)
    no_nul = bytearray(data)
    no_nul[19] = ord("x")  # frame_id "cam" (length at byte 12, text at 16) loses its NUL
    with pytest.raises(ImageConversionError, match="lacks its terminating NUL"):
        read_image(bytes(no_nul))
    assert not is_little_endian_cdr(b"\x00\x00\x00\x00" + data[4:])  # big endian: rclpy's deserializer reads it


def test_masks_are_the_same_through_the_serialized_path(tmp_path):
    """The node's masks from a frame read in place equal those from rclpy's message of that frame
    (the shipped .onnx on onnxruntime: no torch needed, so the torch-free environments run it too)."""
    from conftest import REPO

    from narrow_seg_ros.inference.engine import Segmenter

    onnx = REPO / "models" / "ndnet45_fcn8_camvid.onnx"
    engine = Segmenter.from_weights(onnx, backend="onnxruntime", device="cpu", input_size=(64, 128), warmup=0)
    frame = RNG.integers(0, 256, (96, 160, 3), dtype=np.uint8)
    data = serialize_message(numpy_to_image(frame, "bgr8", stamped("cam")))
    ours = engine.segment(*image_to_rgb(read_image(data)), confidence=True)
    theirs = engine.segment(*image_to_rgb(deserialize_message(data, Image)), confidence=True)
    assert ours.mask.tobytes() == theirs.mask.tobytes()
    assert ours.confidence.tobytes() == theirs.confidence.tobytes()
