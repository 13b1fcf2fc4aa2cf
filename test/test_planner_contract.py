"""What planners consume: vision_msgs/LabelInfo, camera_info for the masks, output geometry, the
lossless PNG mask, the confidence rule and label groups. The Nav2 test subscribes exactly as Nav2's
semantic_segmentation_layer does, over real DDS kept on this host."""

import importlib.util

import cv2
import numpy as np
import pytest
from conftest import node_backend, start, stop, weights_contract

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField  # noqa: E402

from narrow_seg_ros.inference.groups import load_groups  # noqa: E402
from narrow_seg_ros.inference.postprocess import logits_to_confidence, reference_confidence  # noqa: E402
from narrow_seg_ros.ros.camera_info import parse_output_size, scale_camera_info  # noqa: E402
from narrow_seg_ros.ros.image_conversion import image_to_numpy, numpy_to_compressed, numpy_to_image  # noqa: E402
from narrow_seg_ros.ros.processes import spin_until  # noqa: E402
from narrow_seg_ros.ros.runtime import seg_node_command  # noqa: E402

try:
    from vision_msgs.msg import LabelInfo
except ImportError:
    LabelInfo = None
NEEDS_VISION_MSGS = pytest.mark.skipif(
    LabelInfo is None,
    reason="vision_msgs is not importable: scripts/setup.sh builds it from ../shared/ros2_src, absent here",
)
NEEDS_TORCH = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="the confidence rule's reference (postprocess.reference_confidence) is computed with torch, "
    "absent in the torch-free environments",
)


def camera_info(width, height, fx=500.0, cx=None, cy=None, frame="cam"):
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.header.frame_id = frame
    cx = width / 2 if cx is None else cx
    cy = height / 2 if cy is None else cy
    info.k = [fx, 0.0, cx, 0.0, fx, cy, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, -0.06 * fx, 0.0, fx, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.d = [0.1, -0.2, 0.0, 0.0, 0.0]
    return info


def test_camera_info_scaled_as_image_proc_resize_does():
    """640x480 camera → 320x240 mask: fx, cx, fy, cy and Tx halve; D and R stay."""
    info = camera_info(640, 480, fx=500.0, cx=320.5, cy=240.25)
    out = scale_camera_info(info, 240, 320)
    assert (out.width, out.height) == (320, 240)
    assert list(out.k) == pytest.approx([250.0, 0, 160.25, 0, 250.0, 120.125, 0, 0, 1])
    assert list(out.p) == pytest.approx([250.0, 0, 160.25, -15.0, 0, 250.0, 120.125, 0, 0, 0, 1, 0])
    assert list(out.d) == list(info.d) and list(out.r) == list(info.r)
    # non-uniform: 640x480 → 1024x512 (x × 1.6, y × 16/15)
    wide = scale_camera_info(info, 512, 1024)
    assert wide.k[0] == pytest.approx(800.0) and wide.k[4] == pytest.approx(500.0 * 512 / 480)


def test_camera_info_with_binning_and_roi_describes_the_image_itself():
    """REP 104: K is the full sensor's; a 2x-binned 320x240 image of a 640x480 ROI at (100, 50)
    has fx/2 and cx = (cx - 100) / 2. Scaled to 160x120 that halves again; no binning, no ROI left."""
    info = camera_info(320, 240, fx=800.0, cx=420.0, cy=290.0)
    info.binning_x = info.binning_y = 2
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 100, 50, 640, 480
    out = scale_camera_info(info, 120, 160)
    assert out.k[0] == pytest.approx(200.0) and out.k[2] == pytest.approx(80.0) and out.k[5] == pytest.approx(60.0)
    assert (out.binning_x, out.binning_y, out.roi.width, out.roi.x_offset) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "value, parsed",
    [("camera", "camera"), ("network", "network"), ("reference", "reference"), ("640x480", (480, 640))],
)
def test_output_size_values(value, parsed):
    assert parse_output_size(value) == parsed


@pytest.mark.parametrize("value", ["640", "0x480", "big", "640x480x3"])
def test_output_size_refuses_bad_values(value):
    with pytest.raises(ValueError, match="output_size"):
        parse_output_size(value)


def test_png_mask_round_trip_is_lossless():
    mask = np.random.default_rng(0).integers(0, 11, (37, 53), dtype=np.uint8)
    mask[0, :5] = 255
    msg = numpy_to_compressed(mask, "mono8", "png")
    assert msg.format == "mono8; png compressed "  # as compressed_image_transport writes it
    decoded = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint8 and decoded.tobytes() == mask.tobytes()


@NEEDS_TORCH
def test_margin_confidence_rule():
    """margin = top-1 minus top-2 probability; the fast path matches the definition."""
    rng = np.random.default_rng(1)
    low = rng.normal(size=(4, 5, 6)).astype(np.float32) * 2
    for rule in ("max", "margin"):
        ref = reference_confidence(low, (40, 48), False, rule)
        assert np.abs(logits_to_confidence(low, (40, 48), False, grid_stride=1, rule=rule).astype(int) - ref).max() <= 1
    two = np.zeros((3, 1, 1), np.float32)
    two[:, 0, 0] = np.log([0.6, 0.3, 0.1])  # softmax probabilities 0.6, 0.3, 0.1
    assert abs(int(reference_confidence(two, (1, 1), False, "margin")[0, 0]) - 255 * 0.3) <= 0.5
    assert abs(int(reference_confidence(two, (1, 1), False, "max")[0, 0]) - 255 * 0.6) <= 0.5


def test_unknown_confidence_rule_is_refused():
    """Apart from the torch reference above, so that the torch-free environments check it too."""
    low = np.random.default_rng(1).normal(size=(4, 5, 6)).astype(np.float32)
    with pytest.raises(ValueError, match="confidence rule"):
        logits_to_confidence(low, (4, 4), False, rule="entropy")


def test_label_groups(tmp_path):
    names = ["Sky", "Building", "Road", "Car"]
    palette = [[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4]]
    path = tmp_path / "g.yaml"
    path.write_text("groups:\n  - {name: drivable, classes: [road]}\n  - {name: obstacle, classes: [Car, Building]}\n")
    groups = load_groups(path, names, palette)
    assert groups.names == ["drivable", "obstacle"] and groups.palette.tolist() == [[3, 3, 3], [4, 4, 4]]
    assert groups.apply(np.array([[0, 1, 2, 3, 255]], np.uint8)).tolist() == [[255, 1, 0, 1, 255]]
    path.write_text("groups:\n  - {name: a, classes: [Road]}\n  - {name: b, classes: [Road]}\n")
    with pytest.raises(ValueError, match="in more than one group"):
        load_groups(path, names, palette)
    path.write_text("groups:\n  - {name: a, classes: [Lane]}\n")
    with pytest.raises(ValueError, match="names classes the model lacks: \\['Lane'\\]"):
        load_groups(path, names, palette)


# ------------------------------------------------------------------------------------------------
# over DDS


# the cameras over DDS: a 320x240 color camera and a 160x120 depth one, frames of at most 230 KB.
# Jazzy's Fast DDS (2.14) delivered at most half of the best-effort 640x480 rgb8 frames (900 KB)
# sent to seg_node on a loaded host, with the project's profile, shared memory alone or Fast DDS's
# defaults; Kilted's delivered all of them, and Jazzy's all of the 320x240 ones.
COLOR, DEPTH = (320, 240), (160, 120)  # (width, height)

# a planner's groups, by the names of the random weights' Cityscapes classes and of the shipped
# .onnx's CamVid classes (CamVid's sidewalk is Pavement)
DRIVABLE, OBSTACLE = ("road", "sidewalk", "pavement"), ("car",)


def named(class_names, wanted) -> list[str]:
    """The weights' class names (in their case) that are among ``wanted``; at least one."""
    found = [name for name in class_names if name.lower() in wanted]
    assert found, f"the weights name none of {wanted}: {class_names}"
    return found


def organized_cloud(header, width, height):
    """An organized PointCloud2 (x, y, z float32) at the depth camera's resolution."""
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate("xyz")]
    cloud = PointCloud2(header=header, height=height, width=width, fields=fields, is_bigendian=False)
    cloud.point_step, cloud.row_step, cloud.is_dense = 12, 12 * width, True
    cloud.data = np.ones((height, width, 3), np.float32).tobytes()
    return cloud


def play(ros, pub, count, width, height, masks, alongside=None, frame_id="color"):
    """Publish ``count`` structured rgb8 frames on ``pub``, each with a fresh stamp, the next once
    ``masks`` (the test's received masks) holds the answer to this one, or after 10 s (a frame lost
    on the best-effort sensor QoS): the node is never handed a frame while busy, so none is
    replaced. ``alongside(header)`` publishes what goes with a frame (camera_info, a cloud) just
    before it."""
    for i in range(count):
        header = Image().header
        header.stamp = ros.get_clock().now().to_msg()
        header.frame_id = frame_id
        if alongside is not None:
            alongside(header)
        small = np.random.default_rng(i).integers(0, 256, (6, 8, 3), dtype=np.uint8)
        pub.publish(numpy_to_image(cv2.resize(small, (width, height)), "rgb8", header))
        spin_until(ros, lambda i=i: len(masks) > i, 10.0)


def start_seg_node(weights, *params):

    cmd = seg_node_command(f"weights:={weights}", f"backend:={node_backend(weights)}", *params)
    cmd += ["-r", "reference/camera_info:=/depth/camera_info", "-r", "image:=/color/image_raw"]
    return start(cmd)


@NEEDS_VISION_MSGS
def test_nav2_semantic_segmentation_layer_contract(ros, node_weights, tmp_path):
    """Subscribed as the Nav2 layer subscribes: mask and confidence with SensorDataQoS, labels
    reliable + transient local depth 5 (subscribed late: the layer buffers nothing before them),
    an organized PointCloud2 from a 160x120 depth camera while the color camera is 320x240; with
    output_size=reference every mask, confidence and cloud of a stamp match in size, the labels are
    the weights' class names, ~/camera_info describes the mask, ~/mask/compressed is the mask."""
    node = start_seg_node(node_weights, "output_size:=reference", "publish_confidence:=true", "label_info_period:=0.5")
    color_pub = ros.create_publisher(Image, "/color/image_raw", qos_profile_sensor_data)
    color_info_pub = ros.create_publisher(CameraInfo, "/color/camera_info", qos_profile_sensor_data)
    depth_info_pub = ros.create_publisher(CameraInfo, "/depth/camera_info", qos_profile_sensor_data)
    cloud_pub = ros.create_publisher(PointCloud2, "/depth/points", qos_profile_sensor_data)
    got = {"mask": {}, "confidence": {}, "cloud": {}, "info": {}, "png": {}, "labels": []}

    def keep(kind):
        return lambda m: got[kind].__setitem__((m.header.stamp.sec, m.header.stamp.nanosec), m)

    subs = [
        ros.create_subscription(Image, "/seg_node/mask", keep("mask"), qos_profile_sensor_data),
        ros.create_subscription(Image, "/seg_node/confidence", keep("confidence"), qos_profile_sensor_data),
        ros.create_subscription(PointCloud2, "/depth/points", keep("cloud"), qos_profile_sensor_data),
        ros.create_subscription(CameraInfo, "/seg_node/camera_info", keep("info"), 10),
        ros.create_subscription(CompressedImage, "/seg_node/mask/compressed", keep("png"), 10),
    ]
    try:
        assert spin_until(ros, lambda: color_pub.get_subscription_count() > 0 or node.poll() is not None, 120), (
            "seg_node did not subscribe"
        )
        assert node.poll() is None, stop(node)

        def depth_camera(header):
            color_info_pub.publish(camera_info(*COLOR, fx=300.0))
            depth_info_pub.publish(camera_info(*DEPTH, fx=150.0, frame="depth"))
            cloud_pub.publish(organized_cloud(header, *DEPTH))

        play(ros, color_pub, 8, *COLOR, got["mask"], depth_camera)
        spin_until(ros, lambda: len(got["mask"]) >= 4 and len(got["png"]) >= 4, 30)
        # the layer's labels subscription, made late, as a planner started after the node would
        labels_qos = QoSProfile(
            depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        subs.append(ros.create_subscription(LabelInfo, "/seg_node/label_info", got["labels"].append, labels_qos))
        assert spin_until(ros, lambda: got["labels"], 20), "no LabelInfo reached a late subscriber"
    finally:
        log = stop(node)
        for sub in subs:
            ros.destroy_subscription(sub)
    assert "Traceback" not in log, log
    paired = [s for s in got["mask"] if s in got["confidence"] and s in got["cloud"]]
    assert len(paired) >= 3, ({k: len(v) for k, v in got.items()}, log)
    for stamp in paired:  # an exact-stamp synchroniser (the layer's on humble) pairs these
        mask, conf, cloud = got["mask"][stamp], got["confidence"][stamp], got["cloud"][stamp]
        assert (mask.width, mask.height) == (conf.width, conf.height) == (cloud.width, cloud.height) == DEPTH
        assert mask.encoding == conf.encoding == "mono8"
    names, _ = weights_contract(node_weights)
    label_names = [c.class_name for c in got["labels"][-1].class_map]
    assert label_names == names and [c.class_id for c in got["labels"][-1].class_map] == list(range(len(names)))
    for info in got["info"].values():
        assert (info.width, info.height) == DEPTH and info.k[0] == pytest.approx(150.0)
        assert info.header.frame_id == "color"  # the mask's header: the color camera's frame
    png_stamps = [s for s in got["png"] if s in got["mask"]]
    assert png_stamps and got["info"]
    for stamp in png_stamps:
        decoded = cv2.imdecode(np.frombuffer(bytes(got["png"][stamp].data), np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded.tobytes() == image_to_numpy(got["mask"][stamp]).tobytes()


@NEEDS_VISION_MSGS
def test_label_groups_and_threshold_reach_label_info(ros, node_weights, tmp_path):
    """With label_groups the mask and LabelInfo carry the groups; LabelInfo's threshold is the
    confidence threshold the mask applies."""
    names, _ = weights_contract(node_weights)
    drivable, obstacle = ", ".join(named(names, DRIVABLE)), ", ".join(named(names, OBSTACLE))
    groups = tmp_path / "groups.yaml"
    groups.write_text(
        f"groups:\n  - {{name: drivable, classes: [{drivable}]}}\n  - {{name: obstacle, classes: [{obstacle}]}}\n"
    )
    node = start_seg_node(node_weights, f"label_groups:={groups}", "confidence_threshold:=0.2", "output_size:=160x120")
    labels, masks = [], []
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    subs = [
        ros.create_subscription(LabelInfo, "/seg_node/label_info", labels.append, qos),
        ros.create_subscription(Image, "/seg_node/mask", masks.append, 10),
    ]
    pub = ros.create_publisher(Image, "/color/image_raw", qos_profile_sensor_data)
    try:
        assert spin_until(ros, lambda: pub.get_subscription_count() > 0 or node.poll() is not None, 120)
        play(ros, pub, 4, *COLOR, masks)
        spin_until(ros, lambda: labels and len(masks) >= 2, 30)
    finally:
        log = stop(node)
        for sub in subs:
            ros.destroy_subscription(sub)
    assert labels and masks, log
    assert [c.class_name for c in labels[-1].class_map] == ["drivable", "obstacle"]
    assert labels[-1].threshold == pytest.approx(0.2)
    for msg in masks:
        values = set(np.unique(image_to_numpy(msg)).tolist())
        assert (msg.width, msg.height) == (160, 120) and values <= {0, 1, 255}


def test_network_output_size_applies_to_every_output(ros, node_weights):
    """output_size=network: mask, PNG mask, confidence, color, overlay and camera_info all at the
    network's input size (the weights' input_size), whatever the camera's (COLOR)."""
    _, (height, width) = weights_contract(node_weights)
    assert (width, height) != COLOR, "a network size equal to the camera's would prove nothing"
    node = start_seg_node(node_weights, "output_size:=network", "publish_confidence:=true")
    topics = {"mask": Image, "confidence": Image, "color_mask": Image, "overlay": Image, "camera_info": CameraInfo}
    got = {name: [] for name in [*topics, "mask/compressed"]}
    subs = [ros.create_subscription(kind, f"/seg_node/{name}", got[name].append, 10) for name, kind in topics.items()]
    subs.append(
        ros.create_subscription(CompressedImage, "/seg_node/mask/compressed", got["mask/compressed"].append, 10)
    )
    pub = ros.create_publisher(Image, "/color/image_raw", qos_profile_sensor_data)
    info_pub = ros.create_publisher(CameraInfo, "/color/camera_info", qos_profile_sensor_data)
    try:
        assert spin_until(ros, lambda: pub.get_subscription_count() > 0 or node.poll() is not None, 120)
        play(ros, pub, 4, *COLOR, got["mask"], lambda header: info_pub.publish(camera_info(*COLOR, fx=300.0)))
        spin_until(ros, lambda: all(got.values()), 30)
    finally:
        log = stop(node)
        for sub in subs:
            ros.destroy_subscription(sub)
    assert all(got.values()), ({k: len(v) for k, v in got.items()}, log)
    for name in topics:
        assert all((m.width, m.height) == (width, height) for m in got[name]), name
    assert got["camera_info"][-1].k[0] == pytest.approx(300.0 * width / COLOR[0])
    decoded = cv2.imdecode(np.frombuffer(bytes(got["mask/compressed"][-1].data), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (height, width)
