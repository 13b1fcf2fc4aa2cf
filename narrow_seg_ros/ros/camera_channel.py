"""One camera of ``seg_node``: its topics, its newest-frame slot, its counters.

A single-camera node has one channel with the node's own topic names (``image`` in, ``~/mask``
out); a multi-camera node has one per camera, ``<camera>/image`` in and ``~/<camera>/mask`` out,
each camera's outputs published exactly as the single-camera node publishes its own.
"""

from __future__ import annotations

import re
import time
from collections import deque

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from .camera_info import scale_camera_info
from .image_conversion import (
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
    numpy_to_compressed,
    numpy_to_image,
)

try:  # on any ROS install; the pip-only set-up lacks it and publishes the JSON form alone
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError:
    LabelInfo = VisionClass = None

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*")
TRANSPORTS = ("raw", "compressed")
LATCHED = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)


def parse_cameras(value, compressed_default: bool) -> list[tuple[str, bool]]:
    """The ``cameras`` parameter → [(name, compressed)]; [] for the single-camera node.

    A list of names or one comma-separated string; ``name:compressed`` or ``name:raw`` picks that
    camera's transport, otherwise ``use_compressed`` does. ValueError names the bad entry."""
    entries = [e.strip() for e in value.split(",")] if isinstance(value, str) else [str(e).strip() for e in value]
    entries = [e for e in entries if e]
    cameras = []
    for entry in entries:
        name, _, transport = entry.partition(":")
        if not _NAME.fullmatch(name):
            raise ValueError(f"cameras: {name!r} is not a topic namespace (letters, digits, _ and /)")
        if transport and transport not in TRANSPORTS:
            raise ValueError(f"cameras: {entry!r}: the transport after ':' must be raw or compressed")
        cameras.append((name, transport == "compressed" if transport else compressed_default))
    names = [n for n, _ in cameras]
    if len(set(names)) != len(names):
        raise ValueError(f"cameras: a camera is named twice in {', '.join(names)}")
    return cameras


class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window_s: float = 5.0):
        self.window_s, self.stamps = window_s, deque()

    def tick(self, now: float) -> None:
        self.stamps.append(now)

    def rate(self, now: float) -> float:
        while self.stamps and now - self.stamps[0] > self.window_s:
            self.stamps.popleft()
        if len(self.stamps) < 2:
            return 0.0
        return (len(self.stamps) - 1) / max(1e-9, self.stamps[-1] - self.stamps[0])


class CameraChannel:
    """Topics, the newest unprocessed frame and the health counters of one camera."""

    def __init__(self, node, name: str, compressed: bool, image_qos: QoSProfile):
        self.node, self.name, self.image_qos = node, name, image_qos
        inputs, outputs = (f"{name}/", f"~/{name}/") if name else ("", "~/")
        self.pub_mask = node.create_publisher(Image, outputs + "mask", 1)
        self.pub_mask_png = node.create_publisher(CompressedImage, outputs + "mask/compressed", 1)
        self.pub_color = node.create_publisher(Image, outputs + "color_mask", 1)
        self.pub_overlay = node.create_publisher(Image, outputs + "overlay", 1)
        self.pub_confidence = node.create_publisher(Image, outputs + "confidence", 1)
        self.pub_camera_info = node.create_publisher(CameraInfo, outputs + "camera_info", 1)
        self.pub_label_json = node.create_publisher(String, outputs + "label_info_json", LATCHED)
        self.pub_label_info = None
        if LabelInfo is not None:
            self.pub_label_info = node.create_publisher(LabelInfo, outputs + "label_info", LATCHED)
        self.image_type, topic = (CompressedImage, "image/compressed") if compressed else (Image, "image")
        self.image_topic = node.resolve_topic_name(inputs + topic)
        # image_transport's convention: camera_info beside the (resolved, remapped) image topic
        base = self.image_topic.removesuffix("/compressed")
        self.info_topic = f"{base.rsplit('/', 1)[0]}/camera_info"
        self.reference_topic = node.resolve_topic_name(inputs + "reference/camera_info")
        self.sub = self.sub_info = None
        self.camera_info = self.reference_info = self.last_header = None
        self.pending = None  # (message, monotonic receive time); guarded by the node's lock
        self.stats = {"received": 0, "processed": 0, "dropped": 0, "invalid": 0, "failed": 0}
        self.reset_window()

    # ------------------------------------------------------------------ subscriptions
    def outputs(self) -> tuple:
        return (self.pub_mask, self.pub_mask_png, self.pub_color, self.pub_overlay, self.pub_confidence,
                self.pub_camera_info)  # fmt: skip

    def listened(self) -> bool:
        return any(p.get_subscription_count() > 0 for p in self.outputs())

    def update_subscription(self, on_image) -> None:
        """Subscribe the camera only while some output has a subscriber (as image_proc does): a
        6 MB frame nobody needs is not even deserialised."""
        wanted = self.listened()
        if wanted and self.sub is None:
            node, qos, on_raw = self.node, self.image_qos, lambda m: on_image(self, m)
            # serialized: only the frame the worker takes is deserialised, not the ones the newest
            # frame replaces (at 4 cameras x 10 Hz x 6 MB that work held the interpreter lock)
            self.sub = node.create_subscription(self.image_type, self.image_topic, on_raw, qos, raw=True)
            self.sub_info = node.create_subscription(CameraInfo, self.info_topic, self._on_camera_info, qos)
        elif not wanted and self.sub is not None:
            self.node.destroy_subscription(self.sub)
            self.node.destroy_subscription(self.sub_info)
            self.sub = self.sub_info = None
            self.reset_window()

    def subscribe_reference(self, qos) -> None:
        self.node.create_subscription(CameraInfo, self.reference_topic, self._on_reference_info, qos)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg

    def _on_reference_info(self, msg: CameraInfo) -> None:
        self.reference_info = msg

    # ------------------------------------------------------------------ outputs
    def wants(self, params: dict) -> dict:
        """Which outputs have a subscriber (and, for the optional ones, are switched on)."""

        def wanted(publisher, flag=None) -> bool:
            return (flag is None or params[flag]) and publisher.get_subscription_count() > 0

        return {
            "mask": wanted(self.pub_mask),
            "png": wanted(self.pub_mask_png),
            "camera_info": wanted(self.pub_camera_info),
            "color": wanted(self.pub_color, "publish_color"),
            "overlay": wanted(self.pub_overlay, "publish_overlay"),
            "confidence": wanted(self.pub_confidence, "publish_confidence"),
        }

    def publish_labels(self, names: list[str], threshold: float, json_text: str | None = None) -> None:
        """LabelInfo stamped with this camera's latest frame (or unstamped before the first); the
        JSON form once, when given."""
        if json_text is not None:
            self.pub_label_json.publish(String(data=json_text))
        if self.pub_label_info is None:
            return
        msg = LabelInfo(threshold=threshold)
        if self.last_header is not None:
            msg.header = self.last_header
        msg.class_map = [VisionClass(class_id=i, class_name=name) for i, name in enumerate(names)]
        self.pub_label_info.publish(msg)

    def publish(self, header, mask, result, wants: dict) -> None:
        """One frame's outputs, every one with the camera's header."""
        self.last_header = header
        if wants["mask"]:
            self.pub_mask.publish(numpy_to_image(mask, "mono8", header))
        if wants["png"]:  # lossless: a class mask must never go through JPEG
            self.pub_mask_png.publish(numpy_to_compressed(mask, "mono8", "png", header))
        if wants["camera_info"] and self.camera_info is not None:
            self.pub_camera_info.publish(scale_camera_info(self.camera_info, *mask.shape, header))
        if wants["color"]:
            self.pub_color.publish(numpy_to_image(result.color, "rgb8", header))
        if wants["overlay"]:
            self.pub_overlay.publish(numpy_to_image(result.overlay, "rgb8", header))
        if wants["confidence"]:
            self.pub_confidence.publish(numpy_to_image(result.confidence, "mono8", header))

    # ------------------------------------------------------------------ health
    def reset_window(self) -> None:
        """Rates and latencies describe recent work: an idle camera reports none."""
        self.in_rate, self.out_rate, self.error_rate = RateMeter(), RateMeter(), RateMeter()
        self.latency_ms, self.engine_ms = deque(maxlen=100), deque(maxlen=100)

    def done(self, received: float, engine_ms: float) -> None:
        now = time.monotonic()
        self.stats["processed"] += 1
        self.out_rate.tick(now)
        self.latency_ms.append((now - received) * 1e3)
        self.engine_ms.append(engine_ms)

    def health(self) -> dict:
        now = time.monotonic()
        mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
        return {
            "input_rate_hz": round(self.in_rate.rate(now), 2),
            "processed_rate_hz": round(self.out_rate.rate(now), 2),
            "error_rate_hz": round(self.error_rate.rate(now), 2),
            "latency_ms": round(mean(self.latency_ms), 1),
            "engine_ms": round(mean(self.engine_ms), 1),
            **self.stats,
        }


def decode(msg, max_pixels: int):
    """(rgb or bgr uint8 image, encoding) of an Image or CompressedImage message; a frame over
    ``max_pixels`` is refused before anything is decoded or allocated."""
    if isinstance(msg, CompressedImage):
        return compressed_to_rgb(msg, max_pixels=max_pixels)
    return image_to_rgb(msg, max_pixels=max_pixels)


def deserialize(camera: CameraChannel, data: bytes):
    """The camera's image message from its serialized form; ImageConversionError if it is not one."""
    try:
        return deserialize_message(data, camera.image_type)
    except Exception as exc:  # rclpy raises a bare RuntimeError/TypeError for bad CDR
        raise ImageConversionError(f"cannot deserialize a {camera.image_type.__name__} message: {exc}") from exc
