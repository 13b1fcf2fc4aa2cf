"""``image_player``: publishes a folder of images, a video file or a recording as a camera would.

Used by ``demo:=true`` (the shipped synthetic street sequence) and by users without a camera.

A folder or video: publishes ``image`` (sensor_msgs/Image, bgr8 or rgb8) and, with
``publish_compressed``, ``image/compressed`` (jpeg), stamped with the current time and
``frame_id``, at ``rate`` Hz. With ``transport`` ``video`` it encodes them as H.264 (or H.265:
``video_format``) instead and publishes ``image/foxglove`` (foxglove_msgs/CompressedVideo, one
access unit per message, a keyframe every ``gop`` frames), as a car's video camera would.

A rosbag2 recording (sqlite3 or MCAP): publishes each of its Image and CompressedImage topics (or
``topics``) under its recorded name (remap it as any topic: ``-r /cam_front/image_raw:=image``),
the recorded messages unchanged, as ``ros2 bag play`` does: same header, stamps of the drive
(``restamp`` sets header.stamp to the current time instead); at the recorded spacing, or one
message every 1/``rate`` s with ``recorded_timing`` false. CompressedVideo topics are played
too (``restamp`` sets their ``timestamp``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image

from ..data.bags import BAG_SUFFIXES, COMPRESSED, IMAGE, VIDEO, BagError, CameraPlayback, find_bag
from ..data.frames import FrameSource
from .image_conversion import numpy_to_compressed, numpy_to_image
from .runtime import run_node

ACK_TIMEOUT_S = 10.0  # longest wait at the end for reliable subscribers to confirm the last messages

# name: (default, description, extra descriptor fields)
PARAMETERS = {
    "source": ("", "image folder or video; empty = the shipped demo sequence", {}),
    "rate": (
        10.0,
        "frames per second",
        {"floating_point_range": [FloatingPointRange(from_value=0.1, to_value=1000.0, step=0.0)]},
    ),
    "loop": (True, "restart at the end", {}),
    "frame_id": ("camera", "header.frame_id", {}),
    "encoding": ("bgr8", "bgr8 or rgb8", {}),
    "publish_compressed": (False, "also publish image/compressed (jpeg)", {}),
    "transport": ("raw", "raw: image (and image/compressed); video: image/foxglove, H.264/H.265 CompressedVideo", {}),
    "video_format": ("h264", "transport video: h264 or h265", {}),
    "gop": (10, "transport video: a keyframe every N frames", {}),
    "reliable": (False, "reliable instead of best effort", {}),
    "max_frames": (0, "stop after N frames; 0 = never", {}),
    "wait_for_subscribers": (
        0,
        "publish nothing until N subscriptions match (as ros2 topic pub -w N; a recording: on its topics together)",
        {},
    ),
    "topics": ("", "recording: comma-separated image topics to play; empty = every Image/CompressedImage topic", {}),
    "recorded_timing": (
        True,
        "recording: the recorded spacing (as ros2 bag play); false = one message per 1/rate s",
        {},
    ),
    "restamp": (False, "recording: header.stamp = now (frame_id kept); false = the recorded header", {}),
}


class ImagePlayer(Node):
    def __init__(self, **kwargs):
        super().__init__("image_player", **kwargs)
        for name, (default, description, extra) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description, **extra))
        p = {n: self.get_parameter(n).value for n in PARAMETERS}
        if p["encoding"] not in ("bgr8", "rgb8"):
            raise ValueError(f"parameter encoding={p['encoding']!r} is not bgr8 or rgb8")
        if p["transport"] not in ("raw", "video"):
            raise ValueError(f"parameter transport={p['transport']!r} is not raw or video")
        if p["video_format"] not in ("h264", "h265"):
            raise ValueError(f"parameter video_format={p['video_format']!r} is not h264 or h265")
        if p["gop"] < 1:
            raise ValueError(f"parameter gop={p['gop']} is not a positive number of frames")
        if p["wait_for_subscribers"] < 0:
            raise ValueError(f"parameter wait_for_subscribers={p['wait_for_subscribers']} is negative")
        source = p["source"] or str(default_demo_source())
        self.params = p
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=5,
            reliability=ReliabilityPolicy.RELIABLE if p["reliable"] else ReliabilityPolicy.BEST_EFFORT,
        )
        self.published = 0
        if find_bag(Path(source)) is not None or Path(source).suffix in BAG_SUFFIXES:
            self._start_recording(source, qos)
            return
        self.frames = FrameSource(source, p["loop"])
        self.encoder = None  # transport video: made at the first frame, which gives the size
        if p["transport"] == "video":
            self.video_type = _video_type()
            self.pub, self.pub_compressed = self.create_publisher(self.video_type, "image/foxglove", qos), None
            what = f"{p['video_format']} (a keyframe every {p['gop']} frames)"
        else:
            self.pub = self.create_publisher(Image, "image", qos)
            self.pub_compressed = (
                self.create_publisher(CompressedImage, "image/compressed", qos) if p["publish_compressed"] else None
            )
            what = p["encoding"]
        self.timer = self.create_timer(1.0 / p["rate"], self._tick)
        self.get_logger().info(f"playing {source} at {p['rate']} Hz as {what} on {self.pub.topic_name}")

    def _tick(self) -> None:
        # Discovery can take seconds on a loaded host: frames published before the subscriber
        # matched are lost, so a recording or benchmark run waits for it. Checked until the first
        # frame only; a subscriber leaving later does not pause playback.
        if self.published == 0 and self.pub.get_subscription_count() < self.params["wait_for_subscribers"]:
            self.get_logger().info(
                f"waiting for {self.params['wait_for_subscribers']} subscriber(s) on {self.pub.topic_name}",
                throttle_duration_sec=5.0,
            )
            return
        frame = self.frames.next()
        limit = self.params["max_frames"]
        if frame is None or (limit and self.published >= limit):
            self._finish(f"done after {self.published} frames", [self.pub, self.pub_compressed])
        if self.params["transport"] == "video":
            self._publish_video(frame)
            return
        if self.params["encoding"] == "rgb8":
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        msg = numpy_to_image(frame, self.params["encoding"])
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.params["frame_id"]
        self.pub.publish(msg)
        if self.pub_compressed is not None:
            bgr = frame if self.params["encoding"] == "bgr8" else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            self.pub_compressed.publish(numpy_to_compressed(bgr, "bgr8", "jpeg", header=msg.header))
        self.published += 1

    def _publish_video(self, bgr) -> None:
        """One frame as one H.264/H.265 access unit (an even size: a 4:2:0 stream needs one)."""
        from ..video import VideoEncoder

        h, w = bgr.shape[:2]
        bgr = bgr[: h - h % 2, : w - w % 2]
        if self.encoder is None:
            p = self.params
            self.encoder = VideoEncoder(bgr.shape[1], bgr.shape[0], p["video_format"], p["rate"], p["gop"], "bgr8")
        for data, _ in self.encoder.encode(bgr):
            msg = self.video_type(frame_id=self.params["frame_id"], format=self.params["video_format"])
            msg.timestamp = self.get_clock().now().to_msg()
            msg.data = data
            self.pub.publish(msg)
        self.published += 1

    # ----------------------------------------------------------------------------------------------
    # Recordings

    def _start_recording(self, source: str, qos: QoSProfile) -> None:
        topics = [t.strip() for t in self.params["topics"].split(",") if t.strip()]
        try:
            self.recording = CameraPlayback(source, topics, self.params["loop"])
        except BagError as exc:  # run_node reports a ValueError as bad configuration
            raise ValueError(f"parameter source={source!r}: {exc}") from exc
        kinds = {IMAGE: Image, COMPRESSED: CompressedImage}
        if VIDEO in self.recording.types.values():
            kinds[VIDEO] = _video_type()
        self.pubs = {t: (self.create_publisher(kinds[m], t, qos), kinds[m]) for t, m in self.recording.types.items()}
        self._next = None  # the message read but not yet due
        self._lap_start = None  # (monotonic ns, log time ns) of the lap's first message
        self.timer = self.create_timer(
            0.01 if self.params["recorded_timing"] else 1.0 / self.params["rate"], self._tick_recording
        )
        timing = "at the recorded timing" if self.params["recorded_timing"] else f"at {self.params['rate']} Hz"
        names = ", ".join(f"{pub.topic_name} ({kind.__name__})" for pub, kind in self.pubs.values())
        self.get_logger().info(f"playing recording {source} {timing}: {names}")

    def _tick_recording(self) -> None:
        matched = sum(pub.get_subscription_count() for pub, _ in self.pubs.values())
        if self.published == 0 and matched < self.params["wait_for_subscribers"]:
            self.get_logger().info(
                f"waiting for {self.params['wait_for_subscribers']} subscriber(s) on {', '.join(self.pubs)}",
                throttle_duration_sec=5.0,
            )
            return
        limit = self.params["max_frames"]
        while True:
            item = self._next or self.recording.next()
            if item is None or (limit and self.published >= limit):
                self._finish(f"done after {self.published} messages", [pub for pub, _ in self.pubs.values()])
            wait_ns = self._wait_ns(item)
            if wait_ns > 0:  # sleep in the timer until the message is due
                self._next = item
                self.timer.timer_period_ns = wait_ns
                self.timer.reset()
                return
            self._next = None
            self._publish_recorded(*item[:3])
            if not self.params["recorded_timing"]:
                return  # one message per tick of the rate

    def _wait_ns(self, item) -> int:
        """Nanoseconds until ``item`` is due at the recorded spacing; 0 when it is or timing is fixed."""
        if not self.params["recorded_timing"]:
            return 0
        _, log_time, _, restarted = item
        now = time.monotonic_ns()
        if self._lap_start is None or restarted:
            self._lap_start = (now, log_time)
        start, first = self._lap_start
        return max(0, start + (log_time - first) - now)

    def _publish_recorded(self, topic: str, log_time: int, raw: bytes) -> None:
        pub, kind = self.pubs[topic]
        if self.params["restamp"]:
            msg = deserialize_message(raw, kind)
            stamped = msg if hasattr(msg, "timestamp") else msg.header  # CompressedVideo has no header
            setattr(stamped, "timestamp" if stamped is msg else "stamp", self.get_clock().now().to_msg())
            pub.publish(msg)
        else:  # the recorded bytes as they are, as ros2 bag play publishes them
            pub.publish(raw)
        self.published += 1

    def _finish(self, message: str, publishers: list) -> None:
        """Stop playing and exit once reliable subscribers hold every message: a writer destroyed
        with unacknowledged samples loses them, so the last frames of a busy host never arrived."""
        self.timer.cancel()
        for pub in filter(None, publishers):
            if not pub.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S)):
                self.get_logger().warning(
                    f"{pub.topic_name}: not every subscriber acknowledged within {ACK_TIMEOUT_S} s"
                )
        self.get_logger().info(message)
        raise SystemExit(0)

    def destroy_node(self):
        if getattr(self, "recording", None) is not None:
            self.recording.close()
        return super().destroy_node()


def _video_type():
    """foxglove_msgs' CompressedVideo, or ValueError (bad configuration: exit 2) naming what is missing."""
    from .camera_channel import video_support_problem

    problem = video_support_problem()
    if problem:
        raise ValueError(problem)
    from foxglove_msgs.msg import CompressedVideo

    return CompressedVideo


def default_demo_source() -> Path:
    from ..resources import share_file

    return share_file("demo", "leftImg8bit")


def main(args=None) -> int:
    usage = {name: (default, description) for name, (default, description, _) in PARAMETERS.items()}
    return run_node(ImagePlayer, "image_player", args, usage=(__doc__, usage))


if __name__ == "__main__":
    sys.exit(main())
