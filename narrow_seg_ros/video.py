"""H.264 / H.265 camera streams: decode and encode with PyAV (``av`` on PyPI bundles FFmpeg).

A camera that sends compressed video (``foxglove_msgs/msg/CompressedVideo``: Annex B, one access
unit per message, ``format`` ``h264`` or ``h265``) cannot be read frame by frame as JPEG can: every
packet depends on the ones before it, back to the last keyframe. :class:`VideoDecoder` holds that
state for one camera:

- it starts at the first keyframe (an IDR picture for H.264, an IRAP picture for H.265, found by
  the NAL unit types): the packets before it are counted in ``skipped`` and dropped;
- a packet FFmpeg refuses (damaged) raises :class:`VideoError`; a missing H.264 packet is found by
  the gap it leaves in ``frame_num`` (FFmpeg would otherwise conceal it and hand out smeared
  frames); either way the decoder drops everything up to the next keyframe and starts there;
- an empty packet is skipped (counted in ``skipped``): given to FFmpeg it would end the stream;
- a keyframe whose SPS differs from the last keyframe's starts a fresh FFmpeg decoder (a damaged
  SPS could leave FFmpeg holding every later frame back; a new resolution needs one anyway);
- a stream whose sequence parameter set (SPS) declares a picture larger than ``max_pixels``
  (``MAX_PIXELS`` unless given; 0: no limit) is refused before FFmpeg sees it (FFmpeg would allocate
  the declared size, up to 16384 x 16384, for a packet of a few bytes), and a frame larger than
  that before it is converted; so is one whose SPS has FFmpeg keep more than ``MAX_DECODER_BYTES``
  of pictures (its reference frames, at the coded size: a cropping window does not shrink them).

Frames come back as ``av.VideoFrame``: converting one to RGB (:func:`to_rgb`) is left to whoever
uses it, so that a consumer keeping only the newest frame converts only that one.

:class:`VideoEncoder` makes such a stream (x264 / x265, no B-frames, SPS/PPS repeated at every
keyframe, so a receiver can join at any keyframe): the demo player and the tests use it.

Importing this module needs ``av``; :func:`available` says whether it can be imported.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from fractions import Fraction

from .ros.image_conversion import MAX_PIXELS

#: Most bytes the pictures an SPS has FFmpeg keep may take (``declared_decoder_bytes``), with the
#: default ``max_pixels``: 12 x ``MAX_PIXELS`` = 768 MiB. An SPS may ask for 16 reference frames,
#: which at the pixel limit is 1.7 GB in 8-bit 4:2:0 (more in 10 bits or 4:4:4); 768 MiB holds 8
#: such pictures, and the largest DPB a level allows at 8K in 10 bits (6 x 8192 x 4320 x 3 bytes,
#: 637 MB) or at 4K (16 pictures, 398 MB in 10 bits). A larger ``max_pixels`` raises it in proportion.
MAX_DECODER_BYTES = 12 * MAX_PIXELS

FORMATS = {"h264": "h264", "h265": "hevc", "hevc": "hevc"}  # CompressedVideo.format -> FFmpeg decoder
ENCODERS = {"h264": "libx264", "h265": "libx265"}


class VideoError(ValueError):
    """A packet that cannot be decoded (damaged, wrong format, too large): the stream restarts at
    the next keyframe."""


def available() -> bool:
    """Whether PyAV can be imported (without importing it)."""
    return importlib.util.find_spec("av") is not None


# --------------------------------------------------------------------------------------------------
# Annex B bitstream: just enough to find keyframes and H.264 frame_num gaps


def nal_units(data: bytes) -> Iterator[bytes]:
    """The NAL units of an Annex B byte stream (start codes 00 00 01 / 00 00 00 01 removed)."""
    data = bytes(data)
    starts, i = [], data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    for n, start in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(data)
        unit = data[start:end]
        unit = unit.rstrip(b"\x00") if n + 1 < len(starts) else unit  # a 4-byte start code's leading 0
        if unit:
            yield unit


def nal_type(unit: bytes, codec: str) -> int:
    return (unit[0] >> 1) & 0x3F if codec == "hevc" else unit[0] & 0x1F


def is_keyframe(data: bytes, fmt: str) -> bool:
    """Whether the access unit holds a picture a decoder can start at: H.264 IDR (type 5), H.265
    IRAP (BLA, IDR, CRA: types 16-23)."""
    codec = FORMATS.get(fmt, fmt)
    for unit in nal_units(data):
        kind = nal_type(unit, codec)
        if (codec == "hevc" and 16 <= kind <= 23) or (codec == "h264" and kind == 5):
            return True
    return False


class _Bits:
    """An RBSP bit reader (emulation prevention bytes removed)."""

    def __init__(self, unit: bytes, skip_bytes: int, max_bytes: int = 4096):
        rbsp = bytearray()
        zeros = 0
        # the headers read here are at a NAL unit's start: the rest (a slice's data) is not scanned
        for b in unit[skip_bytes : skip_bytes + max_bytes]:
            if zeros >= 2 and b == 3:
                zeros = 0
                continue
            rbsp.append(b)
            zeros = zeros + 1 if b == 0 else 0
        self.data, self.pos = bytes(rbsp), 0

    def bit(self) -> int:
        if self.pos >= 8 * len(self.data):
            raise VideoError("truncated NAL unit header")
        b = (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return b

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise VideoError("bad exp-Golomb code in a NAL unit header")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def _skip_scaling_lists(r: _Bits, count: int) -> None:
    for i in range(count):
        if r.bit():
            last = following = 8
            for _ in range(16 if i < 6 else 64):
                if following:
                    following = (last + r.se() + 256) % 256
                last = following or last


def h264_sps(unit: bytes) -> dict:
    """The fields of an H.264 SPS NAL unit read here: frame_num bits, separate_colour_plane_flag,
    the width and height (cropped), the bytes of the pictures its decoder keeps (``decoder_bytes``:
    max_num_ref_frames and the current one), and the RBSP bit spans of the coded size's fields
    (``size_bits``) and of max_num_ref_frames (``references_bits``)."""
    r = _Bits(unit, 1)
    profile = r.bits(8)
    r.bits(16)  # constraint flags, level
    r.ue()  # seq_parameter_set_id
    separate, chroma, depths = False, 1, (8, 8)
    if profile in _HIGH_PROFILES:
        chroma = r.ue()
        if chroma == 3:
            separate = bool(r.bit())
        depths = (r.ue() + 8, r.ue() + 8)
        r.bit()  # qpprime_y_zero_transform_bypass_flag
        if r.bit():  # seq_scaling_matrix_present_flag
            _skip_scaling_lists(r, 12 if chroma == 3 else 8)
    frame_num_bits = r.ue() + 4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.bit(), r.se(), r.se()
        for _ in range(r.ue()):  # offsets for reference frames: each reads bits, bounded by the unit
            r.se()
    references_bits = r.pos
    references = r.ue()  # max_num_ref_frames
    references_bits = (references_bits, r.pos)
    r.bit()  # gaps_in_frame_num_value_allowed_flag
    start = r.pos
    width_mbs, height_units = r.ue() + 1, r.ue() + 1
    end = r.pos
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()  # mb_adaptive_frame_field_flag
    r.bit()  # direct_8x8_inference_flag
    unit_x, unit_y = (1, 1) if separate or chroma in (0, 3) else (2, 2 if chroma == 1 else 1)
    coded = (16 * width_mbs, 16 * height_units * (2 - frame_mbs_only))
    width, height = _cropped(r, *coded, unit_x, unit_y * (2 - frame_mbs_only))
    return {"frame_num_bits": frame_num_bits, "separate": separate, "width": width, "height": height,
            "size_bits": (start, end), "references_bits": references_bits,
            "decoder_bytes": (references + 1) * _frame_bytes(*coded, chroma, *depths)}  # fmt: skip


def _cropped(r: _Bits, width: int, height: int, unit_x: int, unit_y: int) -> tuple[int, int]:
    """The picture's size after the cropping window (H.264 frame_cropping, H.265 conformance window)
    that follows in ``r``; the coded size where there is none, or one larger than the picture
    (FFmpeg then ignores it)."""
    if not r.bit():
        return width, height
    left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
    crop_x, crop_y = (left + right) * unit_x, (top + bottom) * unit_y
    return (width - crop_x, height - crop_y) if crop_x < width and crop_y < height else (width, height)


def _frame_bytes(width: int, height: int, chroma: int, luma_depth: int, chroma_depth: int) -> int:
    """Bytes of one picture as FFmpeg holds it (samples over 8 bits in 2 bytes), by chroma_format_idc:
    monochrome, 4:2:0, 4:2:2, 4:4:4 (a damaged value counts as 4:4:4)."""
    chroma_samples = (0, width * height // 2, width * height)[chroma] if chroma < 3 else 2 * width * height
    return width * height * -(-luma_depth // 8) + chroma_samples * -(-chroma_depth // 8)


def h265_sps(unit: bytes) -> dict:
    """The width and height (cropped) of an H.265 SPS NAL unit, the RBSP bit span (``size_bits``)
    of the coded size's fields, and the bytes of the pictures its decoder keeps (``decoder_bytes``:
    sps_max_dec_pic_buffering of the highest sub-layer, the current picture included; its field's
    bit span ``references_bits``)."""
    r = _Bits(unit, 2)
    r.bits(4)  # sps_video_parameter_set_id
    sub_layers = r.bits(3)  # sps_max_sub_layers_minus1
    r.bit()
    r.bits(88), r.bits(8)  # profile_tier_level: the general profile and level
    present = [(r.bit(), r.bit()) for _ in range(sub_layers)]
    if sub_layers:
        r.bits(2 * (8 - sub_layers))
    for profile, level in present:
        r.bits(88 * profile + 8 * level)
    r.ue()  # sps_seq_parameter_set_id
    planes = chroma = r.ue()
    if chroma == 3:
        chroma = 0 if r.bit() else 3  # separate_colour_plane_flag: each plane coded as monochrome
    start = r.pos
    coded = r.ue(), r.ue()
    end = r.pos
    width, height = _cropped(r, *coded, 2 if chroma in (1, 2) else 1, 2 if chroma == 1 else 1)
    depths = r.ue() + 8, r.ue() + 8
    r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    ordering_per_sub_layer = r.bit()  # sps_sub_layer_ordering_info_present_flag
    for _ in range(sub_layers + 1 if ordering_per_sub_layer else 1):  # the last is the highest sub-layer's
        references_bits = r.pos
        pictures = r.ue() + 1  # sps_max_dec_pic_buffering_minus1
        references_bits = (references_bits, r.pos)
        r.ue(), r.ue()  # sps_max_num_reorder_pics, sps_max_latency_increase_plus1
    return {"width": width, "height": height, "size_bits": (start, end), "references_bits": references_bits,
            "decoder_bytes": pictures * _frame_bytes(*coded, planes, *depths)}  # fmt: skip


def sps_units(data: bytes, codec: str) -> tuple[bytes, ...]:
    """The SPS NAL units of an access unit."""
    return tuple(unit for unit in nal_units(data) if nal_type(unit, codec) == (33 if codec == "hevc" else 7))


def declared_size(data: bytes, codec: str) -> tuple[int, int] | None:
    """(width, height) the largest SPS in an access unit declares, None without one; VideoError for
    an SPS too short to hold it."""
    fields = [h265_sps(unit) if codec == "hevc" else h264_sps(unit) for unit in sps_units(data, codec)]
    return max(((f["width"], f["height"]) for f in fields), key=lambda size: size[0] * size[1], default=None)


def declared_decoder_bytes(data: bytes, codec: str) -> int:
    """Bytes of the pictures the largest SPS in an access unit has FFmpeg keep (its reference frames
    and the one being decoded, at the coded size, bit depth and chroma format); 0 without an SPS."""
    fields = [h265_sps(unit) if codec == "hevc" else h264_sps(unit) for unit in sps_units(data, codec)]
    return max((f["decoder_bytes"] for f in fields), default=0)


class _FrameNumTracker:
    """Finds a missing H.264 access unit by the gap it leaves in frame_num (H.264 7.4.3: without
    gaps_in_frame_num_allowed, every picture after a reference picture has its frame_num + 1)."""

    def __init__(self):
        self.bits = self.separate = None
        self.previous_ref = None  # frame_num of the last reference picture

    def reset(self) -> None:
        self.previous_ref = None

    def check(self, data: bytes) -> bool:
        """False when a picture before this one is missing."""
        for unit in nal_units(data):
            kind = unit[0] & 0x1F
            if kind == 7:
                sps = h264_sps(unit)
                self.bits, self.separate = sps["frame_num_bits"], sps["separate"]
            elif kind in (1, 5) and self.bits is not None:
                r = _Bits(unit, 1, 64)
                r.ue(), r.ue(), r.ue()  # first_mb_in_slice, slice_type, pic_parameter_set_id
                if self.separate:
                    r.bits(2)
                frame_num = r.bits(self.bits)
                reference = (unit[0] >> 5) & 3 != 0
                expected = None if self.previous_ref is None else (self.previous_ref + 1) % (1 << self.bits)
                ok = kind == 5 or expected is None or frame_num in (expected, self.previous_ref)
                if kind == 5 or (ok and reference):
                    self.previous_ref = frame_num if reference else self.previous_ref
                return ok  # the first slice of the access unit decides
        return True


# --------------------------------------------------------------------------------------------------
# Decoding


class VideoDecoder:
    """One camera's H.264 / H.265 decoder: packets in, ``av.VideoFrame`` out, starting and
    restarting at keyframes. ``log`` receives one line when the stream starts and when it is lost
    and found again. Not thread-safe: one decoder per camera, fed from one thread."""

    def __init__(self, max_pixels: int = MAX_PIXELS, log: Callable[[str], None] | None = None, threads: int = 1):
        self.max_pixels, self.log, self.threads = max_pixels, log or (lambda _: None), threads
        # the budget scales with a limit raised over the default (MAX_DECODER_BYTES' docstring)
        self.max_decoder_bytes = MAX_DECODER_BYTES * max(max_pixels, MAX_PIXELS) // MAX_PIXELS
        self.fmt = self.codec = None
        self.context = None
        self.waiting = True  # for a keyframe
        self.started = False
        self.skipped = 0  # packets dropped while waiting for a keyframe (before the first, after a loss)
        self.lost = 0  # losses: a damaged or missing packet
        self.decoded = 0
        self._skipped_since = 0
        self._frame_num = _FrameNumTracker()
        self._sps = None

    def _open(self, fmt: str) -> None:
        import av

        codec = FORMATS.get(fmt)
        if codec is None:
            raise VideoError(f"video format {fmt!r} is not h264 or h265")
        self.context = av.CodecContext.create(codec, "r")
        # one thread: frame threading would hold back thread_count - 1 frames (latency); slices
        # are decoded in parallel where the stream has several
        self.context.thread_type = "SLICE"
        self.context.thread_count = self.threads
        self.fmt, self.codec = fmt, codec
        self._frame_num = _FrameNumTracker()
        self._sps = None  # the SPS units of the stream's last keyframe

    def lose(self, why: str) -> None:
        """Drop the decoder's state; wait for the next keyframe."""
        self.lost += 1
        self.waiting, self.context, self._skipped_since = True, None, 0
        self._frame_num.reset()
        self.log(f"{why}: dropping packets until the next keyframe")

    def _check_size(self, data: bytes) -> None:
        """VideoError for an SPS declaring more than ``max_pixels``, or pictures to keep over the
        decoder's memory budget, before FFmpeg allocates them."""
        if not self.max_pixels:
            return
        size = declared_size(data, self.codec)
        if size and size[0] * size[1] > self.max_pixels:
            raise VideoError(f"its SPS declares {size[0]}x{size[1]}, over max_image_pixels={self.max_pixels}")
        needed, budget = declared_decoder_bytes(data, self.codec), self.max_decoder_bytes
        if needed > budget:
            raise VideoError(f"its SPS has the decoder keep {needed} bytes of pictures (reference frames and "
                             f"the current one), over the budget of {budget} (MAX_DECODER_BYTES)")  # fmt: skip

    def _restart_on_new_sps(self, data: bytes) -> None:
        """A keyframe whose SPS differs from the last keyframe's starts a fresh FFmpeg decoder: a
        damaged SPS (a bit flipped in its reorder depth) left FFmpeg holding every later frame back,
        and the intact keyframes after it could not undo that. Streams repeat an unchanged SPS."""
        sps = sps_units(data, self.codec)
        if sps and sps != self._sps and is_keyframe(data, self.codec):
            if self._sps is not None:
                self._open(self.fmt)
            self._sps = sps

    def decode(self, data: bytes, fmt: str) -> list:
        """The frames one access unit gives (usually one; none while waiting for a keyframe).
        VideoError for a packet that cannot be decoded (the decoder then waits for a keyframe)."""
        import av

        fmt = (fmt or "").strip().lower()
        if fmt != self.fmt or self.context is None:
            if self.fmt is not None and fmt != self.fmt and self.context is not None:
                self.lose(f"format changed from {self.fmt} to {fmt}")
            self._open(fmt)
        data = bytes(data)
        if not data:  # FFmpeg takes an empty packet for the end of the stream and refuses all after it
            self.skipped += 1
            return []
        if self.waiting:
            if not is_keyframe(data, self.codec):
                self.skipped += 1
                self._skipped_since += 1
                return []
            self.waiting = False
            what = "started" if not self.started else "resumed"
            self.log(f"{self.fmt} stream {what} at a keyframe ({self._skipped_since} packets before it dropped)")
            self.started, self._skipped_since = True, 0
        try:
            self._check_size(data)
            self._restart_on_new_sps(data)
            intact = self._frame_num.check(data) if self.codec == "h264" else True
        except VideoError as exc:
            self.lose(f"damaged packet ({exc})")
            raise VideoError(f"cannot decode {self.fmt} packet: {exc}") from exc
        if not intact:
            self.lose("a packet is missing (H.264 frame_num gap)")
            self.skipped += 1
            self._skipped_since += 1
            return []
        try:
            frames = self.context.decode(av.Packet(data))
        except (av.FFmpegError, ValueError) as exc:
            self.lose(f"damaged packet ({type(exc).__name__}: {exc})")
            raise VideoError(f"cannot decode {self.fmt} packet: {exc}") from exc
        for frame in frames:
            if self.max_pixels and frame.width * frame.height > self.max_pixels:
                self.lose(f"frame of {frame.width}x{frame.height}")
                raise VideoError(
                    f"{self.fmt} frame of {frame.width}x{frame.height} is over max_image_pixels={self.max_pixels}"
                )
        self.decoded += len(frames)
        return list(frames)


def to_rgb(frame):
    """An ``av.VideoFrame`` as an (H, W, 3) uint8 RGB array."""
    return frame.to_ndarray(format="rgb24")


def decode_packets(packets, fmt: str, max_pixels: int = MAX_PIXELS) -> list:
    """Every frame of a list of access units, as RGB arrays; VideoError on a damaged one."""
    decoder = VideoDecoder(max_pixels)
    return [to_rgb(f) for data in packets for f in decoder.decode(data, fmt)]


# --------------------------------------------------------------------------------------------------
# Encoding


class VideoEncoder:
    """RGB or BGR frames in, Annex B access units out (one per frame, no B-frames, no delay), with
    a keyframe (and the parameter sets) every ``gop`` frames."""

    def __init__(self, width: int, height: int, fmt: str = "h264", rate: float = 10.0, gop: int = 10,
                 encoding: str = "rgb8", crf: int = 23):  # fmt: skip
        import av

        if fmt not in ENCODERS:
            raise ValueError(f"video format {fmt!r} is not h264 or h265")
        if encoding not in ("rgb8", "bgr8"):
            raise ValueError(f"encoding {encoding!r} is not rgb8 or bgr8")
        if width % 2 or height % 2:
            raise ValueError(f"{width}x{height}: H.264/H.265 in 4:2:0 need an even width and height")
        self.fmt, self.encoding = fmt, encoding
        self.context = av.CodecContext.create(ENCODERS[fmt], "w")
        self.context.width, self.context.height, self.context.pix_fmt = width, height, "yuv420p"
        rate = Fraction(rate).limit_denominator(1000)
        self.context.framerate, self.context.time_base = rate, 1 / rate
        self.context.gop_size, self.context.max_b_frames = gop, 0
        common = f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1"
        params = {"libx264": f"{common}:crf={crf}", "libx265": f"{common}:crf={crf}:log-level=error"}
        self.context.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            ("x264-params" if fmt == "h264" else "x265-params"): params[ENCODERS[fmt]],
        }
        self.count = 0

    def encode(self, image) -> list[tuple[bytes, bool]]:
        """(access unit, keyframe) for one frame; with zero latency, exactly one."""
        import av

        frame = av.VideoFrame.from_ndarray(image, format="rgb24" if self.encoding == "rgb8" else "bgr24")
        frame.pts = self.count
        self.count += 1
        return [(bytes(p), bool(p.is_keyframe)) for p in self.context.encode(frame)]

    def flush(self) -> list[tuple[bytes, bool]]:
        return [(bytes(p), bool(p.is_keyframe)) for p in self.context.encode(None)]
