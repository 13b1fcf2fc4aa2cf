"""``image_player``: publishes a folder of images or a video file as a camera would.

Used by ``demo:=true`` (the shipped synthetic street sequence) and by users without a camera.
Publishes ``image`` (sensor_msgs/Image, bgr8 or rgb8) and, with ``publish_compressed``,
``image/compressed`` (jpeg), stamped with the current time and ``frame_id``, at ``rate`` Hz.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from .image_conversion import numpy_to_compressed, numpy_to_image
from .runtime import run_node

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff"}


def list_frames(source: Path) -> list[Path]:
    """Image files under ``source`` (recursively, sorted: a Cityscapes split plays city by city)."""
    frames = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and "gtFine" not in p.parts)
    if not frames:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {source}")
    return frames


class FrameSource:
    """Frames from a folder (preloaded: steady rate) or a video file (read as played), as bgr8."""

    def __init__(self, source: str, loop: bool, max_preload: int = 300):
        path = Path(source)
        self.loop = loop
        self.video = None
        self.index = 0
        if path.is_dir():
            files = list_frames(path)[:max_preload]
            self.frames = [cv2.imread(str(f), cv2.IMREAD_COLOR) for f in files]
            if any(f is None for f in self.frames):
                raise ValueError(f"could not read every image under {path}")
        elif path.is_file():
            self.video = cv2.VideoCapture(str(path))
            if not self.video.isOpened():
                raise ValueError(f"cannot open video {path}")
            self.frames = []
        else:
            raise ValueError(f"source {source!r} is neither a folder of images nor a video file")

    def next(self):
        """The next bgr8 frame, or None when the source is exhausted (and not looping)."""
        if self.video is not None:
            ok, frame = self.video.read()
            if not ok and self.loop:
                self.video.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = self.video.read()
            return frame if ok else None
        if self.index >= len(self.frames):
            if not self.loop:
                return None
            self.index = 0
        frame = self.frames[self.index]
        self.index += 1
        return frame


class ImagePlayer(Node):
    def __init__(self, **kwargs):
        super().__init__("image_player", **kwargs)
        rate_range = FloatingPointRange(from_value=0.1, to_value=1000.0, step=0.0)
        self.declare_parameter("source", "", ParameterDescriptor(description="image folder or video; empty = demo"))
        self.declare_parameter(
            "rate", 10.0, ParameterDescriptor(description="frames per second", floating_point_range=[rate_range])
        )
        self.declare_parameter("loop", True, ParameterDescriptor(description="restart at the end"))
        self.declare_parameter("frame_id", "camera", ParameterDescriptor(description="header.frame_id"))
        self.declare_parameter("encoding", "bgr8", ParameterDescriptor(description="bgr8 or rgb8"))
        self.declare_parameter("publish_compressed", False, ParameterDescriptor(description="also jpeg"))
        self.declare_parameter("reliable", False, ParameterDescriptor(description="reliable instead of best effort"))
        self.declare_parameter("max_frames", 0, ParameterDescriptor(description="stop after N frames; 0 = never"))
        self.declare_parameter(
            "wait_for_subscribers",
            0,
            ParameterDescriptor(description="publish nothing until N subscriptions match (as ros2 topic pub -w N)"),
        )
        names = ("source", "rate", "loop", "frame_id", "encoding", "publish_compressed", "reliable", "max_frames")
        p = {n: self.get_parameter(n).value for n in (*names, "wait_for_subscribers")}
        if p["encoding"] not in ("bgr8", "rgb8"):
            raise ValueError(f"parameter encoding={p['encoding']!r} is not bgr8 or rgb8")
        if p["wait_for_subscribers"] < 0:
            raise ValueError(f"parameter wait_for_subscribers={p['wait_for_subscribers']} is negative")
        source = p["source"] or str(default_demo_source())
        self.frames = FrameSource(source, p["loop"])
        self.params = p
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=5,
            reliability=ReliabilityPolicy.RELIABLE if p["reliable"] else ReliabilityPolicy.BEST_EFFORT,
        )
        self.pub = self.create_publisher(Image, "image", qos)
        self.pub_compressed = (
            self.create_publisher(CompressedImage, "image/compressed", qos) if p["publish_compressed"] else None
        )
        self.published = 0
        self.timer = self.create_timer(1.0 / p["rate"], self._tick)
        self.get_logger().info(f"playing {source} at {p['rate']} Hz as {p['encoding']} on {self.pub.topic_name}")

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
            self.get_logger().info(f"done after {self.published} frames")
            self.timer.cancel()
            raise SystemExit(0)
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


def default_demo_source() -> Path:
    from ..resources import share_file

    return share_file("demo", "leftImg8bit")


def main(args=None) -> int:
    return run_node(ImagePlayer, "image_player", args)


if __name__ == "__main__":
    sys.exit(main())
