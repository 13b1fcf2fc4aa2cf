"""One seg_node serving several cameras over real DDS: each camera's masks under its own namespace,
with its header and size, equal to the single-camera engine's; a camera going silent stalls no
other; per-camera diagnostics."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import node_backend, start, stop

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "ros_helpers"))
from camera_publisher import make_frame  # noqa: E402

from narrow_seg_ros.ros.image_conversion import image_to_numpy, numpy_to_compressed, numpy_to_image  # noqa: E402
from narrow_seg_ros.ros.runtime import seg_node_command  # noqa: E402

# name: (height, width, transport, rate Hz, frames): rear sends three frames, then goes silent
CAMERAS = {
    "front": (240, 320, "bgr8", 8.0, 40),
    "left": (120, 200, "rgb8", 4.0, 20),
    "rear": (180, 240, "png", 4.0, 3),
}
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


class Camera:
    """A test camera publishing make_frame(offset + i) as frame_id '<name>_<i>'."""

    def __init__(self, ros, name, height, width, transport, rate, frames, offset):
        self.name, self.size, self.transport, self.period, self.frames = (
            name,
            (height, width),
            transport,
            1 / rate,
            frames,
        )
        self.offset, self.sent, self.next_at = offset, {}, 0.0
        kind, topic = (
            (CompressedImage, f"/{name}/image/compressed") if transport == "png" else (Image, f"/{name}/image")
        )
        self.pub = ros.create_publisher(kind, topic, RELIABLE)
        self.masks = []
        ros.create_subscription(Image, f"/seg_node/{name}/mask", self.masks.append, RELIABLE)

    def frame(self, i):
        return make_frame(self.offset + i, *self.size)

    def tick(self, ros, now):
        i = len(self.sent)
        if i >= self.frames or now < self.next_at:
            return
        self.next_at = now + self.period
        header = Image().header
        header.stamp, header.frame_id = ros.get_clock().now().to_msg(), f"{self.name}_{i}"
        rgb = self.frame(i)
        if self.transport == "png":
            msg = numpy_to_compressed(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", "png", header=header)
        else:
            msg = numpy_to_image(
                rgb if self.transport == "rgb8" else np.ascontiguousarray(rgb[..., ::-1]), self.transport, header
            )
        self.pub.publish(msg)
        self.sent[header.frame_id] = (time.monotonic(), header)


def spin_for(ros, seconds, cameras=()):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for camera in cameras:
            camera.tick(ros, time.monotonic())
        rclpy.spin_once(ros, timeout_sec=0.01)


def test_one_node_serves_three_cameras(ros, node_weights):
    from narrow_seg_ros.inference.engine import Segmenter

    backend = node_backend(node_weights)
    cmd = seg_node_command(
        f"weights:={node_weights}", f"backend:={backend}", "qos_reliability:=reliable",
        "cameras:=front,left,rear:compressed", "diagnostics_period:=0.5",
    )  # fmt: skip
    node = start(cmd)
    diagnostics = []
    ros.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    cameras = [Camera(ros, name, *spec, offset=100 * k) for k, (name, spec) in enumerate(CAMERAS.items())]
    try:
        deadline = time.monotonic() + 120
        while not all(c.pub.get_subscription_count() for c in cameras):  # subscribed once listened to
            assert node.poll() is None, f"seg_node exited:\n{node.stdout.read()}"
            assert time.monotonic() < deadline, "seg_node did not subscribe every camera"
            rclpy.spin_once(ros, timeout_sec=0.2)
        spin_for(ros, 6.0, cameras)
        spin_for(ros, 3.0)
    finally:
        log = stop(node)
    engine = Segmenter.from_weights(node_weights, backend=backend, device="cpu", warmup=0)  # the node's backend
    rear_silent_at = max(t for t, _ in cameras[2].sent.values())
    for camera in cameras:
        assert camera.masks, f"{camera.name}: no masks\n{log}"
        for msg in camera.masks:
            assert (msg.height, msg.width, msg.encoding) == (*camera.size, "mono8"), camera.name
            sent_at, header = camera.sent[msg.header.frame_id]
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (header.stamp.sec, header.stamp.nanosec)
        for msg in camera.masks[:3]:  # batched with the other cameras, as the engine gives it alone
            reference = engine.segment(camera.frame(int(msg.header.frame_id.split("_")[1])), "rgb8").mask
            assert (image_to_numpy(msg) == reference).mean() >= 0.9999, camera.name
    assert len(cameras[2].masks) == 3, "every frame of the slow camera was served"
    for camera in cameras[:2]:  # the others kept going after rear went silent
        later = [m for m in camera.masks if camera.sent[m.header.frame_id][0] > rear_silent_at + 1.0]
        assert len(later) >= 3, f"{camera.name} stalled after rear went silent"
    statuses = {s.name: {kv.key: kv.value for kv in s.values} for s in diagnostics[-1].status}
    assert set(statuses) == {f"/seg_node: {name}" for name in CAMERAS}
    for name, (_, _, _, _, frames) in CAMERAS.items():
        assert int(statuses[f"/seg_node: {name}"]["received"]) == frames
        assert int(statuses[f"/seg_node: {name}"]["processed"]) >= 1
    assert "Traceback" not in log
