"""seg_lifecycle_node (seg_node as a managed node) over real middleware, driven as a lifecycle
manager (or ``ros2 lifecycle set``) drives it: lifecycle_msgs ChangeState/GetState on
/seg_node/change_state and /seg_node/get_state, the node in its own process, this test publishing
the camera and listening to the masks.
"""

import os
import re
import signal
import subprocess
import time

import pytest
from conftest import REPO, start, stop

rclpy = pytest.importorskip("rclpy")
lifecycle_msgs = pytest.importorskip("lifecycle_msgs")
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from test_launch import ROS2, finish, launch  # noqa: E402
from test_node import Collector  # noqa: E402

from narrow_seg_ros.ros.image_conversion import numpy_to_image  # noqa: E402
from narrow_seg_ros.ros.runtime import seg_node_command  # noqa: E402

ONNX = REPO / "models" / "ndnet45_fcn8_camvid.onnx"


def command(*params, executable="seg_lifecycle_node"):
    cmd = seg_node_command(f"weights:={ONNX}", "backend:=onnxruntime", "threads:=1", *params)
    cmd[cmd.index("seg_node")] = executable
    return cmd


def start_managed(*params):
    return start(command(*params))


class Lifecycle:
    """What a lifecycle manager does with /seg_node: get its state, ask for a transition."""

    def __init__(self, ros, proc, node="/seg_node"):
        self.ros, self.proc = ros, proc
        self.change = ros.create_client(ChangeState, f"{node}/change_state")
        self.get = ros.create_client(GetState, f"{node}/get_state")
        deadline = time.monotonic() + 60
        while not (self.change.service_is_ready() and self.get.service_is_ready()):
            assert proc.poll() is None, f"seg_lifecycle_node exited early:\n{proc.stdout.read()}"
            assert time.monotonic() < deadline, "the lifecycle services never appeared"
            rclpy.spin_once(ros, timeout_sec=0.2)

    def _call(self, client, request, timeout=120, resend=None):
        """The response; with ``resend`` (s), the request is sent again while none came: the client
        sees the service once its requests reach it, which can be before the node's responses
        reach the client, and a response written then is lost (safe for get_state only)."""
        deadline = time.monotonic() + timeout
        while True:
            future = client.call_async(request)
            wait = min(resend or timeout, deadline - time.monotonic())
            rclpy.spin_until_future_complete(self.ros, future, timeout_sec=max(wait, 0.0))
            if future.done() or time.monotonic() >= deadline:
                break
        assert future.done(), f"no answer from {client.srv_name}"
        return future.result()

    def state(self) -> str:
        return self._call(self.get, GetState.Request(), resend=5.0).current_state.label

    def set(self, transition_id: int) -> bool:
        return self._call(self.change, ChangeState.Request(transition=Transition(id=transition_id))).success

    def close(self):
        self.ros.destroy_client(self.change)
        self.ros.destroy_client(self.get)


def kill_launch(proc) -> None:
    """A failed launch test: the launch and every node it started end with it (left running, they
    would publish into the next tests of this process, which share its ROS domain)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def spin_for(ros, seconds, publish=None):
    """Spin ``seconds``, publishing a frame every 0.2 s when ``publish`` is given."""
    deadline, next_frame = time.monotonic() + seconds, 0.0
    while time.monotonic() < deadline:
        if publish is not None and time.monotonic() >= next_frame:
            publish()
            next_frame = time.monotonic() + 0.2
        rclpy.spin_once(ros, timeout_sec=0.05)


def wait(ros, condition, timeout, what, publish=None):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        spin_for(ros, 0.2, publish)


def rss_mb(pid: int) -> float:
    text = open(f"/proc/{pid}/status").read()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024


class Camera:
    def __init__(self, ros):
        import numpy as np

        self.pub = ros.create_publisher(Image, "/image", QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
        self.frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
        self.sent = 0

    def __call__(self):
        msg = numpy_to_image(self.frame, "rgb8")
        msg.header.frame_id = f"frame_{self.sent}"
        self.pub.publish(msg)
        self.sent += 1


def test_transitions_gate_the_model_topics_and_camera(ros):
    proc = start_managed()
    masks = Collector(ros, ["/seg_node/mask"], reliable=False)
    camera = Camera(ros)
    node = None
    try:
        node = Lifecycle(ros, proc)
        # unconfigured: no model, no topics, no camera
        assert node.state() == "unconfigured"
        spin_for(ros, 1.0, camera)
        assert ros.count_publishers("/seg_node/mask") == 0
        assert ros.count_subscribers("/image") == 0
        rss_unconfigured = rss_mb(proc.pid)

        # configure: model loaded, publishers there; inactive publishes nothing, subscribes nothing
        assert node.set(Transition.TRANSITION_CONFIGURE)
        assert node.state() == "inactive"
        wait(ros, lambda: ros.count_publishers("/seg_node/mask") == 1, 20, "no mask publisher once configured")
        spin_for(ros, 2.0, camera)  # the mask has a subscriber: an active node would subscribe now
        assert ros.count_subscribers("/image") == 0
        assert masks.msgs["/seg_node/mask"] == []

        # activate: the camera subscribed (an output has a subscriber), masks for frames
        assert node.set(Transition.TRANSITION_ACTIVATE)
        assert node.state() == "active"
        wait(ros, lambda: ros.count_subscribers("/image") == 1, 20, "camera not subscribed once active")
        wait(ros, lambda: len(masks.msgs["/seg_node/mask"]) >= 3, 60, "no masks once active", camera)
        mask = masks.msgs["/seg_node/mask"][-1]
        assert (mask.height, mask.width, mask.encoding) == (240, 320, "mono8")
        assert mask.header.frame_id.startswith("frame_")

        # deactivate: camera unsubscribed, no inference, no masks
        assert node.set(Transition.TRANSITION_DEACTIVATE)
        assert node.state() == "inactive"
        wait(ros, lambda: ros.count_subscribers("/image") == 0, 20, "camera still subscribed once inactive")
        spin_for(ros, 0.5)  # masks already on their way
        masks.msgs["/seg_node/mask"].clear()
        spin_for(ros, 2.0, camera)
        assert masks.msgs["/seg_node/mask"] == []
        assert ros.count_subscribers("/image") == 0
        rss_loaded = rss_mb(proc.pid)

        # cleanup: the model freed, topics gone: unconfigured again
        assert node.set(Transition.TRANSITION_CLEANUP)
        assert node.state() == "unconfigured"
        wait(ros, lambda: ros.count_publishers("/seg_node/mask") == 0, 20, "mask publisher left after cleanup")
        rss_cleaned = rss_mb(proc.pid)

        # and round again, as a manager restarting the stack does
        assert node.set(Transition.TRANSITION_CONFIGURE)
        assert node.set(Transition.TRANSITION_ACTIVATE)
        wait(ros, lambda: len(masks.msgs["/seg_node/mask"]) >= 1, 60, "no masks after re-activation", camera)

        # shutdown from active: finalized, the process still answers (as rclcpp nodes do)
        assert node.set(Transition.TRANSITION_ACTIVE_SHUTDOWN)
        assert node.state() == "finalized"
        wait(ros, lambda: ros.count_subscribers("/image") == 0, 20, "camera still subscribed after shutdown")
        assert proc.poll() is None
    finally:
        if node is not None:
            node.close()
        masks.close()
        ros.destroy_publisher(camera.pub)
        log = stop(proc)
    assert "model released" in log and "still referenced" not in log, log
    assert "Traceback" not in log, log
    print(f"RSS MB: unconfigured {rss_unconfigured:.0f}, loaded {rss_loaded:.0f}, cleaned up {rss_cleaned:.0f}")
    assert rss_cleaned < rss_loaded, (rss_unconfigured, rss_loaded, rss_cleaned)


def test_bad_configuration_fails_the_transition_and_the_node_stays_up(ros):
    bad = "weights:=/nonexistent.pt"
    plain = subprocess.run(command(bad, executable="seg_node"), capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2
    reason = re.search(r"FATAL: bad configuration: (.*)", plain.stderr).group(1).strip()

    proc = start_managed(bad)
    node = None
    try:
        node = Lifecycle(ros, proc)
        assert node.state() == "unconfigured"
        assert not node.set(Transition.TRANSITION_CONFIGURE)
        assert node.state() == "unconfigured"
        spin_for(ros, 1.0)
        assert proc.poll() is None, "the node died on a bad configuration"
        assert ros.count_publishers("/seg_node/mask") == 0
        assert not node.set(Transition.TRANSITION_ACTIVATE)  # not a transition of unconfigured
        assert node.set(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        assert node.state() == "finalized"
    finally:
        if node is not None:
            node.close()
        log = stop(proc)
    assert f"bad configuration: {reason}" in log, (reason, log)
    assert "Traceback" not in log, log


@pytest.mark.skipif(ROS2 is None, reason="the ros2 command (ros2cli, launch_ros) is not installed")
def test_launch_managed_autostart_runs_the_demo(ros, colcon_install):
    """managed:=true autostart:=true demo:=true: launch_ros lifecycle events configure and activate
    seg_lifecycle_node; masks flow; Ctrl-C stops the launch cleanly."""
    proc = launch(colcon_install, "managed:=true", "autostart:=true", "demo:=true", "demo_rate:=4")
    masks = Collector(ros, ["/seg_node/mask"], reliable=False)
    try:
        done = masks.spin_until(lambda: len(masks.msgs["/seg_node/mask"]) >= 2 or proc.poll() is not None, 240)
        assert done and proc.poll() is None, stop(proc)
        node = Lifecycle(ros, proc)
        assert node.state() == "active"
        node.close()
    except BaseException:
        kill_launch(proc)
        raise
    finally:
        masks.close()
    os.killpg(proc.pid, signal.SIGINT)
    code, log = finish(proc, 60)
    assert code == 0, log
    assert "seg_lifecycle_node" in log and "Traceback" not in log, log


@pytest.mark.skipif(ROS2 is None, reason="the ros2 command (ros2cli, launch_ros) is not installed")
def test_launch_managed_waits_for_a_lifecycle_manager(ros, colcon_install):
    """managed:=true without autostart: the node waits, unconfigured, publishing nothing, until a
    manager (here this test) configures and activates it."""
    proc = launch(colcon_install, "managed:=true", "demo:=true", "demo_rate:=4")
    masks = Collector(ros, ["/seg_node/mask"], reliable=False)
    node = None
    try:
        node = Lifecycle(ros, proc)
        spin_for(ros, 3.0)
        assert node.state() == "unconfigured"
        assert ros.count_publishers("/seg_node/mask") == 0 and masks.msgs["/seg_node/mask"] == []
        assert node.set(Transition.TRANSITION_CONFIGURE) and node.set(Transition.TRANSITION_ACTIVATE)
        assert masks.spin_until(lambda: len(masks.msgs["/seg_node/mask"]) >= 2, 120), stop(proc)
    except BaseException:
        kill_launch(proc)
        raise
    finally:
        if node is not None:
            node.close()
        masks.close()
    os.killpg(proc.pid, signal.SIGINT)
    code, log = finish(proc, 60)
    assert code == 0, log
