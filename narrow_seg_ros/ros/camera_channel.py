"""One camera of ``seg_node``: its topics, its newest frame, its counters.

A single-camera node has one channel with the node's own topic names (``image`` in, ``~/mask``
out); a multi-camera node has one per camera, ``<camera>/image`` in and ``~/<camera>/mask`` out,
each camera's outputs published exactly as the single-camera node publishes its own.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String

from ..inference.params import TRANSPORTS
from .camera_info import CameraInfoError, scale_camera_info
from .image_cdr import compressed_cdr, image_cdr, is_little_endian_cdr, read_image
from .image_conversion import ImageConversionError, compressed_to_rgb, image_to_rgb
from .pulled import Arrivals, IncompatibleQoS, received_at, subscribe, take

try:  # on any ROS install; the pip-only set-up lacks it and publishes the JSON form alone
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError:
    LabelInfo = VisionClass = None

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*")
# the topic beside ``image`` per transport: image_transport's names (``video`` is the
# foxglove_compressed_video_transport plugin's ``foxglove``, foxglove_msgs/CompressedVideo)
TOPICS = {"raw": "image", "compressed": "image/compressed", "video": "image/foxglove"}
# packets a camera's decoder may fall behind (1 s at 30 Hz) before it skips to the next keyframe
VIDEO_BACKLOG = 30
LATCHED = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)


def transport_of(value) -> str:
    """A transport name from a name or ``use_compressed``'s bool."""
    if isinstance(value, bool):
        return "compressed" if value else "raw"
    return value


def default_transport(params: dict) -> str:
    """The transport of cameras that name none: ``transport`` where the node has that parameter and
    it is set, else ``use_compressed``'s."""
    transport = params.get("transport") or ""
    return transport if transport else transport_of(bool(params.get("use_compressed", False)))


def video_support_problem() -> str | None:
    """Why this machine cannot take a ``video`` camera (foxglove_msgs or PyAV missing), else None."""
    missing = []
    try:
        from foxglove_msgs.msg import CompressedVideo  # noqa: F401
    except ImportError:
        missing.append("foxglove_msgs")
    try:
        import av  # noqa: F401
    except ImportError:
        missing.append("PyAV (pip: av)")
    if missing:
        return (f"the video transport (foxglove_msgs/msg/CompressedVideo, H.264/H.265) needs {' and '.join(missing)}, "
                "not installed here (ROS: apt install ros-$ROS_DISTRO-foxglove-msgs)")  # fmt: skip
    return None


def parse_cameras(value, compressed_default) -> list[tuple[str, str]]:
    """The ``cameras`` parameter → [(name, transport)]; [] for the single-camera node.

    A list of names or one comma-separated string; ``name:compressed``, ``name:raw`` or
    ``name:video`` picks that camera's transport, otherwise ``compressed_default`` does (a transport
    name, or ``use_compressed``'s bool). ValueError names the bad entry, and says when a video
    camera cannot be served here."""
    entries = [e.strip() for e in value.split(",")] if isinstance(value, str) else [str(e).strip() for e in value]
    entries = [e for e in entries if e]
    default = transport_of(compressed_default)
    if default not in TRANSPORTS:
        raise ValueError(f"transport={default!r} is not one of {', '.join(TRANSPORTS)}")
    cameras = []
    for entry in entries:
        name, _, transport = entry.partition(":")
        if not _NAME.fullmatch(name):
            raise ValueError(f"cameras: {name!r} is not a topic namespace (letters, digits, _ and /)")
        if transport and transport not in TRANSPORTS:
            raise ValueError(
                f"cameras: {entry!r}: the transport after ':' must be raw or compressed (images) or video (H.264/H.265)"
            )
        cameras.append((name, transport or default))
    names = [n for n, _ in cameras]
    if len(set(names)) != len(names):
        raise ValueError(f"cameras: a camera is named twice in {', '.join(names)}")
    videos = [n for n, t in cameras if t == "video"] or ([] if cameras or default != "video" else ["the camera"])
    if videos and (problem := video_support_problem()):
        raise ValueError(f"{', '.join(videos)}: {problem}")
    return cameras


class RateMeter:
    """Events per second over a sliding window: the events after its first tick, over the time
    since it. A tick may stand for several events (frames counted when one is taken)."""

    def __init__(self, window_s: float = 5.0):
        self.window_s, self.ticks = window_s, deque()  # (monotonic time, events)
        self.lock = threading.Lock()  # the worker and a decoder tick while the executor reads

    def tick(self, now: float, count: int = 1) -> None:
        with self.lock:
            self.ticks.append((now, count))

    def rate(self, now: float) -> float:
        with self.lock:
            while self.ticks and now - self.ticks[0][0] > self.window_s:
                self.ticks.popleft()
            ticks = list(self.ticks)
        span = ticks[-1][0] - ticks[0][0] if len(ticks) > 1 else 0.0
        return sum(count for _, count in ticks[1:]) / span if span > 0 else 0.0


class CameraChannel:
    """Topics, the newest unprocessed frame and the health counters of one camera.

    A raw or compressed camera's frames are pulled (pulled.py): the worker takes the newest from
    the subscription's reader when it is free. A video camera's packets all go to its decoder
    thread, which leaves each decoded frame in the camera's slot, the newest replacing the last."""

    def __init__(self, node, name: str, compressed, image_qos: QoSProfile, wake):
        """``compressed``: the transport (raw, compressed, video), or use_compressed's bool;
        ``wake``: tells the worker waiting for frames that there is something new to look at."""
        self.node, self.name, self.image_qos, self.wake = node, name, image_qos, wake
        self.transport = transport_of(compressed)
        self.pulled = self.transport != "video"
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
        self.image_type = {"raw": Image, "compressed": CompressedImage}.get(self.transport)
        if self.transport == "video":
            from foxglove_msgs.msg import CompressedVideo  # parse_cameras checked it is there

            self.image_type = CompressedVideo
        self.image_topic = node.resolve_topic_name(inputs + TOPICS[self.transport])
        # image_transport's convention: camera_info beside the (resolved, remapped) image topic
        base = self.image_topic.removesuffix("/compressed").removesuffix("/foxglove")
        self.info_topic = f"{base.rsplit('/', 1)[0]}/camera_info"
        self.reference_topic = node.resolve_topic_name(inputs + "reference/camera_info")
        self.sub = self.sub_info = None
        self.camera_info = self.reference_info = self.last_header = None
        self.pending = None  # a video camera's newest decoded frame: (VideoFrame, monotonic receive time)
        self.lock = threading.Lock()  # the slot and the counters: the worker, the publisher and a decoder update them
        self._arrivals, self._qos_watch = Arrivals(), None
        # invalid_camera_info: frames published without their camera_info, which could not be scaled
        self.stats = {"received": 0, "processed": 0, "dropped": 0, "invalid": 0, "failed": 0, "invalid_camera_info": 0}
        self.video = None  # the VideoStream of a video camera, while subscribed
        if self.transport == "video":
            self.stats.update({"video_skipped": 0, "video_lost": 0, "decode_ms": 0.0})
        self.reset_window()

    # ------------------------------------------------------------------ subscriptions
    def outputs(self) -> tuple:
        return (self.pub_mask, self.pub_mask_png, self.pub_color, self.pub_overlay, self.pub_confidence,
                self.pub_camera_info)  # fmt: skip

    def listened(self) -> bool:
        return any(p.get_subscription_count() > 0 for p in self.outputs())

    def update_subscription(self) -> None:
        """Subscribe the camera only while some output has a subscriber (as image_proc does): a
        6 MB frame nobody needs is not even received. Names a camera it cannot hear in the log."""
        wanted = self.listened()
        if wanted and self.sub is None:
            self.sub = self._subscribe_images()
            self.sub_info = self.node.create_subscription(
                CameraInfo, self.info_topic, self._on_camera_info, self.image_qos
            )
            self.wake()  # the worker waits on the new subscription too
        elif not wanted and self.sub is not None:
            self.unsubscribe()
        if self._qos_watch is not None and (policy := self._qos_watch.policy()):
            # rclpy's own warning, which a pulled subscription's missing event handler would have logged
            self.node.get_logger().warning(
                f"New publisher discovered on topic '{self.image_topic}', offering incompatible QoS. "
                f"No messages will be received from it. Last incompatible policy: {policy}"
            )

    def unsubscribe(self) -> None:
        """The camera's subscriptions and video decoder gone, its waiting frame dropped."""
        if self._qos_watch is not None:
            self._qos_watch.destroy()
            self._qos_watch = None
        if self.sub is not None:
            self.node.destroy_subscription(self.sub)
            self.node.destroy_subscription(self.sub_info)
            self.sub = self.sub_info = None
        self.close()
        self.pending = None
        self.reset_window()
        self.wake()  # the worker stops waiting on the subscription

    def _subscribe_images(self):
        """Serialized messages: only the frame the worker takes is deserialised. A video camera's
        packets all go to its decoder thread; the other cameras' frames wait in the reader, the
        newest alone (KEEP_LAST 1: the node runs only the newest), until the worker pulls one."""
        if self.transport == "video":
            self.close()  # a decoder left from before a lifecycle stop
            self.video = VideoStream(self, self._deliver)
            return self.node.create_subscription(
                self.image_type, self.image_topic, self.video.put, self.image_qos, raw=True
            )
        self._arrivals = Arrivals()
        qos = self.image_qos
        newest = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=1, reliability=qos.reliability, durability=qos.durability
        )
        sub = subscribe(self.node, self.image_type, self.image_topic, newest)
        self._qos_watch = IncompatibleQoS(sub)
        return sub

    def take(self) -> tuple | None:
        """The camera's newest frame not taken yet, as (serialized message or decoded video frame,
        monotonic time it arrived), or None. Counts the frames that arrived meanwhile."""
        if not self.pulled:
            with self.lock:
                slot, self.pending = self.pending, None
            return slot
        sub = self.sub
        taken = take(sub) if sub is not None else None
        if taken is None:
            return None
        data, info = taken
        arrived = self._arrivals.count(info, sub.get_publisher_count())
        with self.lock:
            self.stats["received"] += arrived
            self.stats["dropped"] += arrived - 1  # replaced in the reader (or lost on the way)
        self.in_rate.tick(time.monotonic(), arrived)
        return data, received_at(info)

    def _deliver(self, frame) -> None:
        """A video frame from the decoder thread into the camera's slot."""
        now = time.monotonic()
        self.in_rate.tick(now)
        with self.lock:
            self.stats["received"] += 1
            if self.pending is not None:
                self.stats["dropped"] += 1  # the worker is busy: keep only the newest frame
            self.pending = (frame, now)
        self.wake()

    def close(self) -> None:
        """Stops the video decoder thread, if any."""
        if self.video is not None:
            self.video.stop()
            self.video = None

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

    def publish(self, header, mask, result, wants: dict, image_size=None) -> CameraInfoError | None:
        """One frame's outputs, every one with the camera's header; images go out as their CDR bytes
        (image_cdr.py: one copy of the pixels, where a message takes three). Returns the
        CameraInfoError of a camera_info that cannot be scaled (that output skipped), else None."""
        self.last_header = header
        if wants["mask"]:
            self.pub_mask.publish(image_cdr(mask, "mono8", header))
        if wants["png"]:  # lossless: a class mask must never go through JPEG
            self.pub_mask_png.publish(compressed_cdr(mask, "mono8", "png", header))
        refused = None  # a camera_info scale_camera_info refuses: skipped, the other outputs go out
        if wants["camera_info"] and self.camera_info is not None:
            try:  # image_size: (H, W) of the camera's frame, which tells how a binned camera_info reads
                self.pub_camera_info.publish(scale_camera_info(self.camera_info, *mask.shape, header, image_size))
            except CameraInfoError as exc:
                refused = exc
        if wants["color"]:
            self.pub_color.publish(image_cdr(result.color, "rgb8", header))
        if wants["overlay"]:
            self.pub_overlay.publish(image_cdr(result.overlay, "rgb8", header))
        if wants["confidence"]:
            self.pub_confidence.publish(image_cdr(result.confidence, "mono8", header))
        return refused

    # ------------------------------------------------------------------ health
    def reset_window(self) -> None:
        """Rates and latencies describe recent work: an idle camera reports none."""
        self.in_rate, self.out_rate, self.error_rate = RateMeter(), RateMeter(), RateMeter()
        self.latency_ms, self.engine_ms = deque(maxlen=100), deque(maxlen=100)

    def count(self, counter: str) -> None:
        with self.lock:
            self.stats[counter] += 1

    def done(self, received: float, engine_ms: float) -> None:
        now = time.monotonic()
        self.count("processed")
        self.out_rate.tick(now)
        self.latency_ms.append((now - received) * 1e3)
        self.engine_ms.append(engine_ms)

    def health(self) -> dict:
        now = time.monotonic()
        mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
        with self.lock:
            stats = dict(self.stats)
        return {
            "input_rate_hz": round(self.in_rate.rate(now), 2),
            "processed_rate_hz": round(self.out_rate.rate(now), 2),
            "error_rate_hz": round(self.error_rate.rate(now), 2),
            "latency_ms": round(mean(self.latency_ms), 1),
            "engine_ms": round(mean(self.engine_ms), 1),
            **stats,
        }


@dataclass
class VideoFrame:
    """A frame a camera's video decoder made, standing for an image message in the node's
    newest-frame slot: the header is the CompressedVideo's timestamp and frame_id; the pixels stay
    in FFmpeg's frame until the worker takes it (only the newest is converted to RGB)."""

    header: Header
    frame: object  # av.VideoFrame


@dataclass
class VideoFailure:
    """A packet the decoder refused, standing in the slot so that the node counts it as invalid."""

    error: str


class VideoStream:
    """One video camera's decoder thread: the subscription callback only queues the serialized
    packet, so one camera's decoding never holds up another's callbacks; every packet is decoded,
    in order, and each decoded frame is handed to the node (which keeps only the newest). A decoder
    falling ``VIDEO_BACKLOG`` packets behind drops them and restarts at the next keyframe."""

    def __init__(self, camera: CameraChannel, deliver):
        from ..video import VideoDecoder

        self.camera, self.deliver = camera, deliver
        max_pixels = int(getattr(camera.node, "params", {}).get("max_image_pixels", 0) or 0)
        logger, prefix = camera.node.get_logger(), f"{camera.name}: " if camera.name else ""
        self.decoder = VideoDecoder(max_pixels, log=lambda text: logger.info(f"{prefix}{camera.image_topic}: {text}"))
        self.queue: queue.Queue = queue.Queue(maxsize=VIDEO_BACKLOG)
        self.decode_ms = deque(maxlen=100)
        self.running = True
        self.thread = threading.Thread(target=self._run, name=f"video_{camera.name or 'camera'}", daemon=True)
        self.thread.start()

    def put(self, data: bytes) -> None:
        if not self.running:
            return
        try:
            self.queue.put_nowait(data)
        except queue.Full:  # the decoder cannot keep up: its backlog is dropped, it resumes at a keyframe
            dropped = 0
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                dropped += item[1] if isinstance(item, tuple) else 1
            self.queue.put_nowait(("behind", dropped))
            self.queue.put_nowait(data)

    def stop(self) -> None:
        """Ends the thread: packets still queued are dropped, a frame being decoded is not delivered."""
        self.running = False
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        self.queue.put(None)
        self.thread.join(timeout=5)

    def _run(self) -> None:
        from ..video import VideoError

        while (data := self.queue.get()) is not None and self.running:
            if isinstance(data, tuple):  # the callback dropped the backlog: resume at a keyframe
                self.decoder.skipped += data[1]
                self.decoder.lose(f"decoder {VIDEO_BACKLOG} packets behind, {data[1]} dropped")
                continue
            start = time.perf_counter()
            try:
                msg = deserialize_message(data, self.camera.image_type)
                frames = self.decoder.decode(msg.data, msg.format)
            except VideoError as exc:
                self.deliver(VideoFailure(str(exc)))
                continue
            except Exception as exc:  # bad CDR
                self.deliver(VideoFailure(f"cannot read a CompressedVideo message: {type(exc).__name__}: {exc}"))
                continue
            finally:
                self._count(start)
            for frame in frames if self.running else ():
                self.deliver(VideoFrame(Header(stamp=msg.timestamp, frame_id=msg.frame_id), frame))

    def _count(self, start: float) -> None:
        self.decode_ms.append((time.perf_counter() - start) * 1e3)
        stats = self.camera.stats
        stats["video_skipped"], stats["video_lost"] = self.decoder.skipped, self.decoder.lost
        stats["decode_ms"] = round(sum(self.decode_ms) / len(self.decode_ms), 2)


def decode(msg, max_pixels: int):
    """(rgb or bgr uint8 image, encoding) of an Image or CompressedImage message, or of a decoded
    video frame; a frame over ``max_pixels`` is refused before anything is decoded or allocated."""
    if isinstance(msg, VideoFrame):
        from ..video import to_rgb

        return to_rgb(msg.frame), "rgb8"
    if isinstance(msg, CompressedImage):
        return compressed_to_rgb(msg, max_pixels=max_pixels)
    return image_to_rgb(msg, max_pixels=max_pixels)


def deserialize(camera: CameraChannel, data):
    """The camera's image message from its serialized form (a video camera's slot holds decoded
    frames already); a raw Image as an ``image_cdr.ImageView`` over the received bytes.
    ImageConversionError if it is not one."""
    if isinstance(data, VideoFrame):
        return data
    if isinstance(data, VideoFailure):
        raise ImageConversionError(data.error)
    if camera.image_type is Image and is_little_endian_cdr(data):
        return read_image(data)  # the pixels stay in the received bytes
    try:
        return deserialize_message(data, camera.image_type)
    except Exception as exc:  # rclpy raises a bare RuntimeError/TypeError for bad CDR
        raise ImageConversionError(f"cannot deserialize a {camera.image_type.__name__} message: {exc}") from exc
