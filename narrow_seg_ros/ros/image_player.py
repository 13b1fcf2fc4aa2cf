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

from ..data.frames import FrameSource
from .image_conversion import numpy_to_compressed, numpy_to_image
from .runtime import run_node

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
    "reliable": (False, "reliable instead of best effort", {}),
    "max_frames": (0, "stop after N frames; 0 = never", {}),
    "wait_for_subscribers": (0, "publish nothing until N subscriptions match (as ros2 topic pub -w N)", {}),
}


class ImagePlayer(Node):
    def __init__(self, **kwargs):
        super().__init__("image_player", **kwargs)
        for name, (default, description, extra) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description, **extra))
        p = {n: self.get_parameter(n).value for n in PARAMETERS}
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
    usage = {name: (default, description) for name, (default, description, _) in PARAMETERS.items()}
    return run_node(ImagePlayer, "image_player", args, usage=(__doc__, usage))


if __name__ == "__main__":
    sys.exit(main())
