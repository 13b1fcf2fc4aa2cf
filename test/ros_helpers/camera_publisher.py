"""A camera stand-in for the node tests: publishes deterministic frames, some of them malformed.

Frame i is ``make_frame(i, h, w)``; its header.frame_id is ``cam_<i>`` so the test can rebuild
exactly what was sent. ``--malformed-every K`` replaces every K-th frame with a broken message
(cycling through wrong step, short data, unknown encoding, 0×0, corrupt jpeg).
"""

import argparse
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from narrow_seg_ros.ros.image_conversion import numpy_to_compressed, numpy_to_image


def make_frame(index: int, height: int, width: int) -> np.ndarray:
    """A smooth, structured uint8 RGB frame (regions and gradients, like a scene)."""
    rng = np.random.default_rng(index)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    import cv2

    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def malformed(kind: int, header, width: int, height: int, compressed: bool):
    """Raw topic: wrong step, short data, unknown encoding, 0×0 in turn. Compressed: corrupt data."""
    if compressed:
        return CompressedImage(header=header, format="jpeg", data=b"\xff\xd8 this is not a jpeg")
    kind %= 4
    if kind == 0:  # step smaller than a row
        msg = Image(header=header, height=height, width=width, encoding="bgr8", step=width * 3 - 3)
        msg.data = bytes(height * (width * 3 - 3))
    elif kind == 1:  # data shorter than height × step
        msg = Image(header=header, height=height, width=width, encoding="bgr8", step=width * 3)
        msg.data = bytes(100)
    elif kind == 2:
        msg = Image(header=header, height=4, width=4, encoding="quantum32", step=16)
        msg.data = bytes(64)
    else:
        msg = Image(header=header, height=0, width=0, encoding="bgr8", step=0)
    return msg


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--encoding", default="bgr8", choices=("bgr8", "rgb8"))
    p.add_argument("--reliable", action="store_true")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--rate", type=float, default=5.0)
    p.add_argument("--malformed-every", type=int, default=0)
    p.add_argument("--compressed", action="store_true", help="publish image/compressed (jpeg) instead")
    p.add_argument("--wait-subscribers", type=float, default=60.0)
    p.add_argument("--min-subscribers", type=int, default=1, help="wait until this many subscriptions match")
    args = p.parse_args()

    rclpy.init()
    node = rclpy.create_node("test_camera")
    qos = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=5,
        reliability=ReliabilityPolicy.RELIABLE if args.reliable else ReliabilityPolicy.BEST_EFFORT,
    )
    topic, kind = ("image/compressed", CompressedImage) if args.compressed else ("image", Image)
    pub = node.create_publisher(kind, topic, qos)
    deadline = time.monotonic() + args.wait_subscribers
    while pub.get_subscription_count() < args.min_subscribers and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    time.sleep(0.5)
    bad = 0
    for i in range(args.count):
        header = Image().header
        header.stamp = node.get_clock().now().to_msg()
        header.frame_id = f"cam_{i}"
        if args.malformed_every and i % args.malformed_every == args.malformed_every - 1:
            pub.publish(malformed(bad, header, args.width, args.height, args.compressed))
            bad += 1
        else:
            rgb = make_frame(i, args.height, args.width)
            if args.compressed:
                pub.publish(numpy_to_compressed(rgb[..., ::-1].copy(), "bgr8", "png", header=header))
            else:
                frame = rgb if args.encoding == "rgb8" else np.ascontiguousarray(rgb[..., ::-1])
                pub.publish(numpy_to_image(frame, args.encoding, header))
        rclpy.spin_once(node, timeout_sec=0)
        time.sleep(1.0 / args.rate)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
