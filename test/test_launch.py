"""`ros2 launch narrow_seg_ros seg.launch.py` as ROS users run it: the real ros2 launch (launch,
launch_ros and ros2cli built from ../shared/ros2_src by scripts/setup.sh) on a colcon overlay of
this package. The happy path (demo in a namespace with a remapped image, Ctrl-C) and every bad
configuration: the launch must stop as a whole with a non-zero exit and say why."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import VENV_BIN, start, stop
from test_node import Collector

ROS2 = shutil.which("ros2", path=str(VENV_BIN)) or shutil.which("ros2")
pytestmark = pytest.mark.skipif(
    ROS2 is None,
    reason="the ros2 command (ros2cli, launch_ros) is not installed: scripts/setup.sh builds it from "
    "../shared/ros2_src, absent here; a ROS 2 install has it",
)


def launch(colcon_install, *arguments):
    prefix = colcon_install / "narrow_seg_ros"
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"

    def prepend(path, variable):  # what `source install/local_setup.bash` does
        return os.pathsep.join(filter(None, [str(path), os.environ.get(variable)]))

    env = {
        **os.environ,
        "AMENT_PREFIX_PATH": prepend(prefix, "AMENT_PREFIX_PATH"),
        "PYTHONPATH": prepend(site, "PYTHONPATH"),
        "PATH": prepend(VENV_BIN, "PATH"),
    }
    return start([ROS2, "launch", "narrow_seg_ros", "seg.launch.py", *arguments], env=env, start_new_session=True)


def finish(proc, timeout):
    """The launch's exit code and output; killed (and failed) if it does not stop by itself."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"ros2 launch did not exit within {timeout} s:\n{proc.stdout.read()}")
    return proc.returncode, proc.stdout.read()


@pytest.mark.parametrize("demo", ["true", "false"])
def test_launch_stops_with_an_error_when_seg_node_fails_at_start(ros, colcon_install, demo):
    proc = launch(colcon_install, "weights:=/nonexistent.pt", f"demo:={demo}")
    code, log = finish(proc, 180)
    assert code != 0, log
    assert "FATAL: bad configuration: weights file not found: /nonexistent.pt" in log
    assert "seg_node exited with code 2" in log


def test_missing_params_file_is_an_error(ros, colcon_install):
    proc = launch(colcon_install, "params_file:=/nonexistent.yaml")
    code, log = finish(proc, 120)
    assert code != 0 and "params_file /nonexistent.yaml does not exist" in log, log
    assert "process started" not in log  # nothing ran on default parameters


def test_launch_runs_the_demo_and_stops_cleanly_on_ctrl_c(ros, colcon_install, tmp_path):
    """demo:=true in a namespace with a remapped image topic, an integer demo_rate and a user's
    parameter file (its output_size reaches the node); masks reach a separate subscriber; SIGINT to
    the launch (Ctrl-C) exits 0 without a traceback."""
    params = tmp_path / "my_seg.yaml"
    params.write_text("/**:\n  ros__parameters:\n    output_size: 320x240\n    publish_overlay: false\n")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("rviz2")
        rviz = "false"  # do not open a window on a desktop install
    except (PackageNotFoundError, OSError):
        rviz = "true"  # rviz2 missing: a warning, the rest keeps running
    arguments = ["demo:=true", "demo_rate:=4", "namespace:=robot1", "image:=/cam/image_raw", f"rviz:={rviz}"]
    arguments.append(f"params_file:={params}")
    proc = launch(colcon_install, *arguments)
    masks = Collector(ros, ["/robot1/seg_node/mask"], reliable=False)
    try:
        done = masks.spin_until(lambda: len(masks.msgs["/robot1/seg_node/mask"]) >= 3 or proc.poll() is not None, 240)
        assert done and proc.poll() is None, stop(proc)
    finally:
        masks.close()
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    code, log = finish(proc, 60)
    assert code == 0, log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
    assert all((m.encoding, m.width, m.height) == ("mono8", 320, 240) for m in masks.msgs["/robot1/seg_node/mask"])
    assert "input 1024x2048" in log  # demo:=true runs the synthetic model (DEMO_MODEL), not the 540x720 default
    if rviz == "true":
        assert "rviz2 is not installed" in log


def test_launch_runs_the_demo_as_several_cameras(ros, colcon_install):
    """cameras:=[front, 'rear:raw'] (a YAML list) with demo:=true: one seg_node, one player per camera under the
    camera's namespace (camera_topic names the image under it), masks for each camera."""
    arguments = [
        "demo:=true",
        "demo_rate:=4",
        "namespace:=robot1",
        "cameras:=[front, 'rear:raw']",
        "camera_topic:=image_raw",
    ]
    proc = launch(colcon_install, *arguments)
    topics = ["/robot1/seg_node/front/mask", "/robot1/seg_node/rear/mask"]
    masks = Collector(ros, topics, reliable=False)
    try:
        done = masks.spin_until(lambda: all(len(masks.msgs[t]) >= 2 for t in topics) or proc.poll() is not None, 240)
        assert done and proc.poll() is None, stop(proc)
    finally:
        masks.close()
    os.killpg(proc.pid, signal.SIGINT)
    code, log = finish(proc, 60)
    assert code == 0, log
    assert log.count("process started") == 3, log  # seg_node and two players
    for camera in ("front", "rear"):
        assert f"/robot1/{camera}/image_raw" in log  # the node's ready line names each camera's topic
