"""One configuration, one mask: seg_node, ``narrow-seg infer --params-file`` (on a folder and on a
recording) and ``Segmenter`` with the same parameter file give the same bytes; the parameter-file
reader merges sections as rclpy does; the option tables and size parsers are single.

The shipped ``ndnet45_fcn8_camvid.onnx`` (CamVid classes, no torch needed) runs with the CamVid
label groups, a margin confidence threshold, keep_aspect at an input size of the file's and a fixed
WxH output size, so every rule changes the mask.
"""

import argparse
import json
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import REPO, run_cli, start, stop

from narrow_seg_ros.inference.params import (
    PARAMETERS,
    ROS_OWN,
    build_rules,
    build_segmenter,
    read_params_file,
    resolve,
)
from narrow_seg_ros.inference.rules import UNLABELED, parse_output_size
from narrow_seg_ros.sizes import SizeError, parse_hw, parse_wh

GROUPS = REPO / "config" / "groups_camvid_nav2.yaml"
FRAME_HW = (144, 256)
OUTPUT_HW = (120, 160)  # output_size: 160x120, width first as ROS writes sizes
THRESHOLD = 0.25
CAMERA = "/cam/image_raw"


def params_yaml() -> str:
    """A parameter file as a deployment writes one: wildcard section, then the node's own."""
    return f"""
/**:
  ros__parameters:
    model: ndnet45_fcn8_camvid
    backend: onnxruntime
    device: cpu
    input_width: 256
    input_height: 192
    qos_reliability: reliable
    publish_color: false
    confidence_threshold: 0.9   # replaced by seg_node's own section below
seg_node:
  ros__parameters:
    resize_mode: keep_aspect
    output_size: {OUTPUT_HW[1]}x{OUTPUT_HW[0]}
    confidence_rule: margin
    confidence_threshold: {THRESHOLD}
    label_groups: {GROUPS}
    overlay_alpha: 0.3
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(parameter file, frame folder, {name: bgr frame}, recording) for every test here."""
    root = tmp_path_factory.mktemp("one_truth")
    params = root / "seg.yaml"
    params.write_text(params_yaml())
    folder = root / "frames"
    folder.mkdir()
    sources = sorted((REPO / "demo").rglob("*.jpg"))[:3]
    frames = {}
    for i, source in enumerate(sources):
        frame = cv2.resize(cv2.imread(str(source)), FRAME_HW[::-1], interpolation=cv2.INTER_AREA)
        frames[f"f{i}"] = frame
        cv2.imwrite(str(folder / f"f{i}.png"), frame)  # lossless: the node gets these very bytes
    return params, folder, frames, record(root / "drive", frames)


def record(path: Path, frames: dict) -> Path:
    """An MCAP recording of the frames as bgr8 Images on CAMERA, frame_id = the frame's name."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    from narrow_seg_ros.data.bags import STORAGES
    from narrow_seg_ros.ros.image_conversion import image_fields

    store = get_typestore(Stores.ROS2_KILTED)
    types = store.types
    with Writer(path, version=9, storage_plugin=STORAGES["mcap"]) as writer:
        connection = writer.add_connection(CAMERA, "sensor_msgs/msg/Image", typestore=store)
        for i, (name, frame) in enumerate(frames.items()):
            stamp = types["builtin_interfaces/msg/Time"](sec=1_700_000_000 + i, nanosec=0)
            header = types["std_msgs/msg/Header"](stamp=stamp, frame_id=name)
            msg = types["sensor_msgs/msg/Image"](header=header, **image_fields(frame, "bgr8")._asdict())
            writer.write(connection, (1_700_000_000 + i) * 10**9, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    return path


@pytest.fixture(scope="module")
def offline(setup, tmp_path_factory):
    """What ``narrow-seg infer --params-file`` writes: ({name: mask}, {name: overlay rgb}) for the
    folder, ({frame_id: mask}, last label_info) for the recording."""
    from narrow_seg_ros.data.bags import open_bag, read_messages
    from narrow_seg_ros.ros.image_conversion import image_to_numpy

    params, folder, frames, bag = setup
    out = tmp_path_factory.mktemp("infer")
    common = ("--params-file", str(params), "--model", "ndnet45_fcn8_camvid")
    proc = run_cli("infer", "--input", str(folder), "--output", str(out / "folder"), "--overlay", *common)
    assert proc.returncode == 0, proc.stderr
    masks = {n: cv2.imread(str(out / "folder" / f"{n}_mask.png"), cv2.IMREAD_UNCHANGED) for n in frames}
    overlays = {n: cv2.imread(str(out / "folder" / f"{n}_overlay.png"))[..., ::-1] for n in frames}
    proc = run_cli("infer", "--input", str(bag), "--output", str(out / "bag"), "--label-info", *common)
    assert proc.returncode == 0, proc.stderr
    bag_masks, labels = {}, None
    with open_bag(out / "bag") as reader:
        for connection, _, msg in read_messages(reader, reader.connections):
            if connection.topic == "/cam/seg_node/mask":
                bag_masks[msg.header.frame_id] = image_to_numpy(msg)
            elif connection.topic == "/cam/seg_node/label_info":
                labels = msg
    return masks, overlays, bag_masks, labels


# ------------------------------------------------------------------------------------------------
# the node and infer, over DDS


def test_node_and_infer_publish_the_same_masks(ros, setup, offline):
    """seg_node started with the parameter file, fed the folder's frames over DDS one at a time:
    ~/mask and ~/overlay are byte for byte what infer wrote for the folder and the recording, and
    ~/label_info_json names infer's labels."""
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from narrow_seg_ros.ros.image_conversion import image_to_numpy, numpy_to_image
    from narrow_seg_ros.ros.runtime import seg_node_command

    params, _, frames, _ = setup
    masks, overlays, bag_masks, labels = offline
    node = rclpy_popen(seg_node_command(params_file=str(params)))
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    got = {"mask": {}, "overlay": {}, "labels": []}
    subs = [
        ros.create_subscription(Image, "/seg_node/mask", lambda m: got["mask"].__setitem__(m.header.frame_id, m), reliable),
        ros.create_subscription(Image, "/seg_node/overlay", lambda m: got["overlay"].__setitem__(m.header.frame_id, m), reliable),
        ros.create_subscription(String, "/seg_node/label_info_json", lambda m: got["labels"].append(m.data), latched),
    ]  # fmt: skip
    pub = ros.create_publisher(Image, "/image", reliable)
    try:
        deadline = time.monotonic() + 120
        while pub.get_subscription_count() == 0 or subs[0].get_publisher_count() == 0:
            assert node.poll() is None and time.monotonic() < deadline, stop(node)
            rclpy.spin_once(ros, timeout_sec=0.1)
        for name, frame in frames.items():  # one frame in flight: none replaced by a newer one
            msg = numpy_to_image(frame, "bgr8")
            msg.header.frame_id = name
            sent = 0.0
            while name not in got["mask"] or name not in got["overlay"]:
                assert node.poll() is None and time.monotonic() < deadline, stop(node)
                if time.monotonic() - sent > 10:  # again, should discovery have lost the first one
                    pub.publish(msg)
                    sent = time.monotonic()
                rclpy.spin_once(ros, timeout_sec=0.1)
        while not got["labels"] and time.monotonic() < deadline:
            rclpy.spin_once(ros, timeout_sec=0.1)
    finally:
        for sub in subs:
            ros.destroy_subscription(sub)
        ros.destroy_publisher(pub)
        log = stop(node)
    assert "ndnet45_fcn8_camvid.onnx" in log and "Traceback" not in log, log
    for name in frames:
        mask = image_to_numpy(got["mask"][name])
        assert mask.shape == OUTPUT_HW
        assert mask.tobytes() == masks[name].tobytes() == bag_masks[name].tobytes(), name
        assert image_to_numpy(got["overlay"][name]).tobytes() == overlays[name].tobytes(), name
    published = json.loads(got["labels"][-1])
    assert [c["name"] for c in published["classes"]] == ["drivable", "walkable", "obstacle"]
    assert published["ignore_id"] == UNLABELED
    assert [c.class_name for c in labels.class_map] == ["drivable", "walkable", "obstacle"]
    assert labels.threshold == pytest.approx(THRESHOLD)


def rclpy_popen(cmd):

    return start(cmd)


# ------------------------------------------------------------------------------------------------
# Segmenter alone


def test_segmenter_alone_gives_the_same_bytes(setup, offline):
    """The Python API with the same parameter file: infer's masks; and those are the plain class
    mask with the rules applied by hand (threshold on the margin, then the groups file's lookup)."""
    params_file, _, frames, _ = setup
    masks = offline[0]
    params = resolve(read_params_file(params_file))
    engine = build_segmenter(params, warmup=0)
    rules = build_rules(params, engine)
    lookup = groups_lookup(engine.class_names)
    for name, frame in frames.items():
        result = engine.segment_batch([rules.request(frame, "bgr8")])[0]
        assert result.mask.tobytes() == masks[name].tobytes(), name
        plain = engine.segment(frame, "bgr8", OUTPUT_HW, confidence=True, confidence_rule="margin")
        by_hand = lookup[np.where(plain.confidence < round(THRESHOLD * 255), UNLABELED, plain.mask)]
        assert result.mask.tobytes() == by_hand.tobytes(), name
        # the rules are in play: some pixels fall below the threshold, and several groups remain
        below = plain.confidence < round(THRESHOLD * 255)
        assert below.any() and not below.all() and len(set(np.unique(result.mask)) - {UNLABELED}) >= 2


def groups_lookup(class_names) -> np.ndarray:
    """The groups file read by hand: class id → group id, unlabeled elsewhere."""
    index = {n.lower(): i for i, n in enumerate(class_names)}
    lookup = np.full(256, UNLABELED, np.uint8)
    for group_id, group in enumerate(yaml.safe_load(GROUPS.read_text())["groups"]):
        lookup[[index[c.lower()] for c in group["classes"]]] = group_id
    return lookup


# ------------------------------------------------------------------------------------------------
# the parameter file and the flags

MERGE = """
seg_node:
  ros__parameters: {b: 3, c: 3}
/seg_node:
  ros__parameters: {d: 4}
/**:
  ros__parameters: {a: 1, b: 2}
/*/seg_node:
  ros__parameters: {e: 5}
/**/seg_node:
  ros__parameters: {f: 6, nested: {g: 7}}
front:
  seg_node:
    ros__parameters: {h: 8}
/other_node:
  ros__parameters: {a: 0}
"""


@pytest.mark.parametrize("namespace", ["", "front", "a/b"])
def test_params_file_merges_as_rclpy_does(tmp_path, namespace):
    """rclpy's own reading of the file (every override, for seg_node in the namespace) is the
    reader's: later sections win in file order, wildcards match as ROS matches them."""
    rclpy = pytest.importorskip("rclpy")
    path = tmp_path / "merge.yaml"
    path.write_text(MERGE)
    context = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(path)], context=context)
    try:
        node = rclpy.create_node(
            "seg_node", namespace=namespace, context=context, automatically_declare_parameters_from_overrides=True
        )
        by_ros = {n: p.value for n, p in node.get_parameters_by_prefix("").items() if n not in ROS_OWN}
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert read_params_file(path, f"/{namespace}/seg_node".replace("//", "/")) == by_ros


def test_a_bare_node_name_takes_the_one_namespace_the_file_names(tmp_path):
    path = tmp_path / "ns.yaml"
    path.write_text("/**:\n  ros__parameters: {a: 1}\n/front/seg_node:\n  ros__parameters: {a: 2}\n")
    assert read_params_file(path) == {"a": 2}
    path.write_text(path.read_text() + "/rear/seg_node:\n  ros__parameters: {a: 3}\n")
    with pytest.raises(ValueError, match="several seg_node nodes"):
        read_params_file(path)
    assert read_params_file(path, "/rear/seg_node") == {"a": 3}


@pytest.mark.parametrize(
    "text, message",
    [
        ("/**:\n  ros__parameters: {confidence_treshold: 0.5}\n", "unknown parameter 'confidence_treshold': did you mean confidence_threshold?"),
        ("/**:\n  ros__parameters: {confidence_threshold: 1}\n", "confidence_threshold=1 is an integer, not a float"),
        ("/**:\n  ros__parameters: {confidence_threshold: 1.5}\n", "confidence_threshold=1.5 is outside [0.0, 1.0]"),
        ("/**:\n  ros__parameters: {backend: tensorrt}\n", "backend='tensorrt' is not one of auto, torch, onnxruntime"),
        ("/**:\n  ros__parameters: {output_size: 480x}\n", "output_size='480x': use camera, network, reference or WxH"),
        ("/**:\n  ros__parameters: {output_size: reference}\n", "output_size=reference follows seg_node's"),
        ("/**:\n  ros__parameters: {device: gpu}\n", "device='gpu': use auto, cpu, cuda or cuda:N"),
        ("/**:\n  ros__parameters: {input_width: 320}\n", "set both input_width and input_height"),
        ("ros__parameters: {a: 1}\n", "must map names to values and sit under a node name"),
        ("/**: {a: 1}\n", "expected node names with ros__parameters under /**/a"),
        ("/other:\n  ros__parameters: {a: 1}\n", "has no ros__parameters for /seg_node"),
        ("/**: [\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_bad_parameter_files_fail_in_one_line(tmp_path, capsys, text, message):
    from narrow_seg_ros.cli.main import main

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code = main(["infer", "--input", str(tmp_path), "--output", str(tmp_path / "out"), "--params-file", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_flags_override_the_file(setup):
    """A flag beats the file; --model also replaces the file's weights; defaults are the node's."""
    from narrow_seg_ros.cli.infer import configuration
    from narrow_seg_ros.cli.main import build_parser

    params_file = setup[0]
    base = ["infer", "--input", ".", "--output", "out", "--params-file", str(params_file)]
    params = configuration(build_parser().parse_args(base))
    assert (params["output_size"], params["confidence_threshold"], params["resize_mode"]) == (
        "160x120",
        THRESHOLD,
        "keep_aspect",
    )
    assert params["log_period"] == PARAMETERS["log_period"].default
    flags = ["--output-size", "network", "--confidence-threshold", "0", "--alpha", "0.7", "--input-width", "320"]
    flags += ["--input-height", "240", "--model", "vnet_camvid"]
    params = configuration(build_parser().parse_args(base + flags))
    assert (params["output_size"], params["confidence_threshold"], params["overlay_alpha"]) == ("network", 0.0, 0.7)
    assert (params["input_width"], params["input_height"], params["model"]) == (320, 240, "vnet_camvid")
    weights_file = setup[0].parent / "w.yaml"
    weights_file.write_text("/**:\n  ros__parameters: {weights: /models/mine.onnx}\n")
    with_weights = ["infer", "--input", ".", "--output", "out", "--params-file", str(weights_file)]
    assert configuration(build_parser().parse_args(with_weights))["weights"] == "/models/mine.onnx"
    assert configuration(build_parser().parse_args([*with_weights, "--model", "vnet_camvid"]))["weights"] == ""


def test_the_node_s_own_file_reads_as_its_defaults():
    """config/seg.yaml sets seg_node's parameters to their declared defaults."""
    values = read_params_file(REPO / "config" / "seg.yaml")
    assert values == {name: PARAMETERS[name].default for name in values} and resolve(values)


# ------------------------------------------------------------------------------------------------
# one parser per size order, one table of option names


def test_size_parsers_say_their_order():
    assert parse_hw("1024x2048") == (1024, 2048)
    assert parse_wh("640x480") == (480, 640) == parse_output_size("640x480")
    for parse, order in ((parse_hw, "HxW (height x width"), (parse_wh, "WxH (width x height")):
        with pytest.raises(SizeError, match=order.replace("(", r"\(")):
            parse("big")
        with pytest.raises(ValueError, match="positive"):
            parse("0x10")
    assert issubclass(SizeError, argparse.ArgumentTypeError)  # argparse prints its message as it is


def test_option_names_live_in_one_table():
    """The engine, backends and post-processing read the table's lists; the mask's unlabeled
    value is one constant for the rules, the groups and the training data."""
    from narrow_seg_ros.inference import backends, groups, postprocess, rules

    assert postprocess.CONFIDENCE_RULES is PARAMETERS["confidence_rule"].choices
    assert not hasattr(backends, "BACKENDS")
    assert PARAMETERS["provider"].choices == ("auto", *backends.PROVIDERS)
    assert groups.UNLABELED is rules.UNLABELED == 255
    labels = pytest.importorskip("narrow_seg_ros.data.labels", reason="cityscapesscripts (training tools) absent")
    assert labels.IGNORE_INDEX is UNLABELED


def _names_in(text: str) -> list[str]:
    """The shipped-model-like names a line mentions, in order."""
    return re.findall(r"\b(?:ndnet|vnet)\w*_(?:camvid|synth)\b", text)


def _line(path: Path, marker: str) -> str:
    return next(line for line in path.read_text().splitlines() if marker in line)


def test_the_shipped_model_list_is_read_or_checked_everywhere():
    """``resources.SHIPPED_MODELS`` is the list: the CLI's ``--model`` choices and the node's
    parameter read it; the launch argument, config/seg.yaml, docs/node.md, the model cards and the
    README's table (the models that ship as ``.onnx`` too) are checked against it here."""
    from narrow_seg_ros.resources import SHIPPED_MODELS, SHIPPED_ONNX

    shipped = list(SHIPPED_MODELS)
    assert list(PARAMETERS["model"].choices) == shipped
    assert _names_in(_line(REPO / "launch" / "seg.launch.py", "shipped model:")) == shipped
    assert _names_in(_line(REPO / "config" / "seg.yaml", "model:")) == ["ndnet45_fcn8_camvid", *shipped]
    assert _names_in(_line(REPO / "docs" / "node.md", "| `model` |")) == ["ndnet45_fcn8_camvid", *shipped]
    cards = REPO / "models" / "README.md"
    headings = [line for line in cards.read_text().splitlines() if line.startswith("## ")]
    assert sorted({n for h in headings for n in _names_in(h)}) == sorted(shipped)
    rows = (REPO / "README.md").read_text().splitlines()
    assert [n for row in rows if row.startswith("| `") for n in _names_in(row.split("|")[1])] == list(SHIPPED_ONNX)
