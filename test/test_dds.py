"""DDS as the package sets it up: camera-sized best-effort frames arrive between two processes with
the project's profile, whichever Fast DDS the ROS distro ships (Fast DDS 2 on Humble and Jazzy
reads the profile from another variable than Fast DDS 3 on Kilted, and ignored ours silently)."""

import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from narrow_seg_ros.dds import fastdds_majors, localhost_env  # noqa: E402

FRAMES = 12
_PUBLISHER = """
import sys, time
import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from narrow_seg_ros.ros.image_conversion import numpy_to_image

height, width, frames = map(int, sys.argv[1:4])
rclpy.init()
node = rclpy.create_node("dds_test_camera")
pub = node.create_publisher(Image, "/dds_test/image", qos_profile_sensor_data)
while pub.get_subscription_count() == 0:
    rclpy.spin_once(node, timeout_sec=0.1)
time.sleep(1.0)  # the subscriber's side of the match too
message = numpy_to_image(np.zeros((height, width, 3), np.uint8), "bgr8")
for _ in range(frames):
    pub.publish(message)
    time.sleep(0.1)  # a 10 Hz camera
time.sleep(1.0)
"""


def test_the_profile_reaches_the_fast_dds_found():
    """Fast DDS 2 reads FASTRTPS_DEFAULT_PROFILES_FILE, 3 FASTDDS_DEFAULT_PROFILES_FILE (the old
    name there only earns a deprecation warning per participant)."""
    env, majors = localhost_env(), fastdds_majors()
    assert majors, "no Fast DDS library found where rmw_fastrtps would load it"
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"]
    assert ("FASTRTPS_DEFAULT_PROFILES_FILE" in env) == (majors != {3})


@pytest.mark.parametrize("height, width", [(480, 640), (1024, 2048)])
def test_camera_sized_best_effort_frames_arrive(ros, height, width):
    """Over 512 KB, Fast DDS 2's default shared-memory segment: without the profile 0-1 of 12
    frames arrived with Jazzy's wheels."""
    received = []
    sub = ros.create_subscription(Image, "/dds_test/image", received.append, qos_profile_sensor_data)
    publisher = subprocess.Popen([sys.executable, "-c", _PUBLISHER, str(height), str(width), str(FRAMES)])
    try:
        deadline = time.monotonic() + 60
        while publisher.poll() is None and time.monotonic() < deadline:
            rclpy.spin_once(ros, timeout_sec=0.05)
        for _ in range(20):
            rclpy.spin_once(ros, timeout_sec=0.05)
    finally:
        publisher.kill()
        ros.destroy_subscription(sub)
    assert publisher.returncode == 0
    assert len(received) >= FRAMES - 1, f"{len(received)} of {FRAMES} best-effort {width}x{height} frames arrived"
    assert (received[0].height, received[0].width) == (height, width)
