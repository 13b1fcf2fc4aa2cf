"""Recorded drives: ``narrow-seg infer`` on rosbag2 recordings (sqlite3 and MCAP) and
``image_player`` playing one over real DDS.

The recordings are written here with rosbags: a raw bgr8 camera and a PNG-compressed one of another
size, each with its camera_info, plus a topic of another type. ``infer`` runs in-process.
"""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHIPPED_ONNX, make_weights, node_backend, open_gate, run_cli_without_ros, start, stop, torch
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from narrow_seg_ros.cli.main import main as narrow_seg
from narrow_seg_ros.data.bags import LABEL_INFO, STORAGES, open_bag, output_typestore, read_messages
from narrow_seg_ros.ros.image_conversion import compressed_fields, image_fields, image_to_numpy

sys.path.insert(0, str(Path(__file__).parent / "ros_helpers"))
from camera_publisher import make_frame  # noqa: E402

FRONT, SIDE, SPEED = "/cam_front/image_raw", "/cam_side/image_raw/compressed", "/speed"
SIZES = {FRONT: (48, 64), SIDE: (32, 40)}  # (H, W)
FRAMES = 3
START_NS = 1_700_000_000 * 10**9
STORE = get_typestore(Stores.ROS2_KILTED)
T = STORE.types


def _header(index: int, frame_id: str):
    # the stamps differ from the log times, as a camera's do from the recorder's clock
    stamp = T["builtin_interfaces/msg/Time"](sec=1_600_000_000 + index, nanosec=1000 * index + 1)
    return T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def _camera_info(header, height: int, width: int):
    fields = dict(height=height, width=width, distortion_model="plumb_bob", d=np.zeros(5), binning_x=0, binning_y=0)
    k = np.array([50.0, 0, width / 2, 0, 50.0, height / 2, 0, 0, 1])
    p = np.array([50.0, 0, width / 2, 0, 0, 50.0, height / 2, 0, 0, 0, 1, 0])
    roi = T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return T["sensor_msgs/msg/CameraInfo"](header=header, k=k, r=np.eye(3).ravel(), p=p, roi=roi, **fields)


def _camera_messages(index: int):
    """(topic, msgtype, message, log-time offset ns, bgr frame or None) of frame ``index``."""
    front = cv2.cvtColor(make_frame(index, *SIZES[FRONT]), cv2.COLOR_RGB2BGR)
    side = cv2.cvtColor(make_frame(100 + index, *SIZES[SIDE]), cv2.COLOR_RGB2BGR)
    fmt, png = compressed_fields(side, "bgr8", "png")
    h_front, h_side = _header(index, "front_optical"), _header(index, "side_optical")
    return [
        ("/cam_front/camera_info", "sensor_msgs/msg/CameraInfo", _camera_info(h_front, *SIZES[FRONT]), 0, None),
        (FRONT, "sensor_msgs/msg/Image", T["sensor_msgs/msg/Image"](header=h_front, **image_fields(front, "bgr8")._asdict()), 1, front),
        ("/cam_side/camera_info", "sensor_msgs/msg/CameraInfo", _camera_info(h_side, *SIZES[SIDE]), 2, None),
        (SIDE, "sensor_msgs/msg/CompressedImage", T["sensor_msgs/msg/CompressedImage"](header=h_side, format=fmt, data=png), 5_000_000, side),
        (SPEED, "std_msgs/msg/Float32", T["std_msgs/msg/Float32"](data=3.5), 6_000_000, None),
    ]  # fmt: skip


def record(path: Path, storage: str, broken_last_frame: bool = False) -> list[tuple]:
    """Writes the test drive (frames 0.6 s apart); returns its camera frames as
    (topic, log time, header, bgr frame)."""
    frames = []
    with Writer(path, version=9, storage_plugin=STORAGES[storage]) as writer:
        connections = {}
        for index in range(FRAMES):
            for topic, msgtype, msg, offset, frame in _camera_messages(index):
                if broken_last_frame and index == FRAMES - 1 and topic == FRONT:
                    msg.data = msg.data[:100]  # shorter than height x step
                if topic not in connections:
                    connections[topic] = writer.add_connection(topic, msgtype, typestore=STORE)
                log_time = START_NS + index * 600_000_000 + offset
                writer.write(connections[topic], log_time, STORE.serialize_cdr(msg, msgtype))
                if frame is not None:
                    frames.append((topic, log_time, msg.header, frame))
    return frames


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A small random .pt (64x128 keeps the recordings' inference quick) where torch imports; the
    shipped .onnx where it does not (the torch-free deployment runs .onnx, at that graph's size)."""
    if torch is None:
        return SHIPPED_ONNX
    return make_weights(tmp_path_factory.mktemp("weights") / "ndnet45_64x128.pt", input_size=(64, 128))


@pytest.fixture(scope="module")
def drives(tmp_path_factory):
    """{storage: (recording, its camera frames)} for both storage formats."""
    paths = {storage: tmp_path_factory.mktemp(storage) / "drive" for storage in STORAGES}
    return {storage: (path, record(path, storage)) for storage, path in paths.items()}


def infer(weights, source: Path, output: Path, *options: str) -> int:
    args = ["infer", "--weights", str(weights), "--input", str(source), "--output", str(output)]
    return narrow_seg([*args, "--backend", node_backend(weights), "--device", "cpu", *options])


def read_back(path: Path) -> dict[str, list[tuple]]:
    """{topic: [(log time, message), ...]} of a recording."""
    topics: dict[str, list[tuple]] = {}
    with open_bag(path) as reader:
        for connection, log_time, msg in read_messages(reader, reader.connections):
            topics.setdefault(connection.topic, []).append((log_time, msg))
    return topics


def same_header(a, b) -> bool:
    return (a.stamp.sec, a.stamp.nanosec, a.frame_id) == (b.stamp.sec, b.stamp.nanosec, b.frame_id)


@pytest.mark.parametrize("storage", list(STORAGES))
def test_infer_writes_each_cameras_outputs_with_the_source_headers(weights, drives, tmp_path, storage):
    from narrow_seg_ros.inference.engine import Segmenter

    source, frames = drives[storage]
    output = tmp_path / "masks"
    flags = ("--color", "--confidence", "--mask-png", "--label-info", "--camera-info")
    assert infer(weights, source, output, *flags) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks"]  # no partial folder left
    topics = read_back(output)
    outputs = ("mask", "mask/compressed", "color_mask", "confidence", "camera_info", "label_info")
    assert set(topics) == {f"/{cam}/seg_node/{name}" for cam in ("cam_front", "cam_side") for name in outputs}
    engine = Segmenter.from_weights(weights, backend=node_backend(weights), device="cpu", warmup=0)  # infer's
    for topic in SIZES:
        ns = topic.removesuffix("/compressed").rsplit("/", 1)[0] + "/seg_node"
        sent = [f for f in frames if f[0] == topic]
        for name in ("mask", "mask/compressed", "color_mask", "confidence", "camera_info"):
            written = topics[f"{ns}/{name}"]
            assert [t for t, _ in written] == [t for _, t, _, _ in sent], name  # log times: the source's
            assert all(same_header(msg.header, f[2]) for (_, msg), f in zip(written, sent, strict=True)), name
        for (_, msg), (_, _, _, bgr) in zip(topics[f"{ns}/mask"], sent, strict=True):
            mask = image_to_numpy(msg)
            assert mask.shape == SIZES[topic] and msg.encoding == "mono8"
            np.testing.assert_array_equal(mask, engine.segment(bgr, "bgr8").mask)
        for (_, png), (_, msg) in zip(topics[f"{ns}/mask/compressed"], topics[f"{ns}/mask"], strict=True):
            np.testing.assert_array_equal(cv2.imdecode(png.data, cv2.IMREAD_UNCHANGED), image_to_numpy(msg))
        color, confidence, info = (topics[f"{ns}/{n}"][0][1] for n in ("color_mask", "confidence", "camera_info"))
        assert (color.encoding, confidence.encoding) == ("rgb8", "mono8")
        assert image_to_numpy(color).shape == (*SIZES[topic], 3) and (info.height, info.width) == SIZES[topic]
    for camera in ("cam_front", "cam_side"):  # re-sent once a second of the drive: frames at 0 and 1.2 s
        labels = topics[f"/{camera}/seg_node/label_info"]
        assert len(labels) == 2
        assert [c.class_name for c in labels[0][1].class_map] == list(engine.class_names)


def refused(capsys, code: int, message: str, folder: Path) -> None:
    """A clear one-line error, a non-zero exit and nothing written beside ``folder``'s contents."""
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not [p.name for p in folder.iterdir() if ".partial-" in p.name]


def test_infer_output_options_and_overwrite(weights, drives, tmp_path, capsys):
    source, _ = drives["sqlite3"]
    output = tmp_path / "masks"
    assert infer(weights, source, output, "--topics", FRONT, "--storage", "mcap", "--output-namespace", "seg") == 0
    assert list(read_back(output)) == ["/cam_front/seg/mask"]
    refused(capsys, infer(weights, source, output), "exists: pass --overwrite", tmp_path)
    refused(
        capsys,
        infer(weights, source, tmp_path / "x", "--output-namespace", "/seg"),
        "would both write to /seg",
        tmp_path,
    )
    assert infer(weights, source, output, "--topics", SIDE, "--overwrite", "--output-namespace", "/seg") == 0
    assert list(read_back(output)) == ["/seg/mask"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks"]


def _truncated(source: Path, folder: Path) -> Path:
    bag = folder / "truncated"
    shutil.copytree(source, bag)
    (storage,) = [p for p in bag.iterdir() if p.suffix in (".db3", ".mcap")]
    storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 2])
    return bag


def _broken_midway(source: Path, folder: Path) -> Path:
    """Readable, but its last front frame is malformed: found after outputs were written."""
    bag = folder / "broken"
    record(bag, "mcap" if any(source.glob("*.mcap")) else "sqlite3", broken_last_frame=True)
    return bag


BAD_INPUTS = {
    "missing-topic": (lambda src, tmp: src, ["--topics", "/cam_rear/image_raw"], "topic /cam_rear/image_raw is not in"),
    "wrong-type": (lambda src, tmp: src, ["--topics", SPEED], "is std_msgs/msg/Float32, not sensor_msgs/msg/Image"),
    "truncated": (_truncated, [], "damaged or truncated"),
    "malformed-frame": (_broken_midway, [], "data has 100 bytes"),
    "storage-file-alone": (
        lambda src, tmp: shutil.copy(next(src.glob("drive.*")), tmp),
        [],
        "no metadata.yaml beside it",
    ),
    "not-a-recording": (lambda src, tmp: Path(__file__), ["--topics", FRONT], "is not a rosbag2 recording"),
}


@pytest.mark.parametrize("storage", list(STORAGES))
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_infer_refuses_bad_recordings_and_leaves_nothing(weights, drives, tmp_path, capsys, case, storage):
    make, options, message = BAD_INPUTS[case]
    source = Path(make(drives[storage][0], tmp_path))
    before = sorted(tmp_path.iterdir())
    refused(capsys, infer(weights, source, tmp_path / "out", *options), message, tmp_path)
    assert sorted(tmp_path.iterdir()) == before  # no output, no partial folder


def test_infer_on_a_recording_where_ros_is_absent(weights, drives, tmp_path):
    """As on a pip-only machine: rclpy and every ROS message package unimportable."""
    args = ["infer", "--weights", str(weights), "--input", str(drives["mcap"][0]), "--output", str(tmp_path / "out")]
    args += ["--backend", node_backend(weights), "--label-info", "--camera-info", "--mask-png"]
    proc = run_cli_without_ros(*args, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "/cam_side/seg_node/label_info" in read_back(tmp_path / "out")


def test_vision_msgs_definition_hashes_as_the_installed_package():
    """The LabelInfo written without vision_msgs is the type ROS tools know (same RIHS01 hash)."""
    packages = pytest.importorskip("ament_index_python.packages")
    try:
        share = Path(packages.get_package_share_directory("vision_msgs"))
    except (packages.PackageNotFoundError, OSError) as exc:  # OSError: no AMENT_PREFIX_PATH at all
        pytest.skip(f"vision_msgs is not installed (scripts/setup.sh builds it from ../shared/ros2_src): {exc}")
    hashes = json.loads((share / "msg" / "LabelInfo.json").read_text())["type_hashes"]
    installed = next(h["hash_string"] for h in hashes if h["type_name"] == LABEL_INFO)
    assert output_typestore().hash_rihs01(LABEL_INFO) == installed


# --------------------------------------------------------------------------------------------------
# image_player on a recording, over DDS


def start_player(bag: Path, *params: str, remap: tuple[str, ...] = ()) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "narrow_seg_ros.ros.image_player", "--ros-args", "-p", f"source:={bag}"]
    cmd += [arg for p in params for arg in ("-p", p)] + [arg for r in remap for arg in ("-r", r)]
    return start(cmd)


def receive(ros, player, topics: dict, count: int, timeout: float = 60.0) -> dict[str, list[tuple]]:
    """{topic: [(receipt time, message)]} until ``count`` per topic and the player's exit."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    got = {topic: [] for topic in topics}
    subs = [
        ros.create_subscription(kind, t, lambda m, t=t: got[t].append((time.monotonic(), m)), qos)
        for t, kind in topics.items()
    ]
    subs.append(open_gate(ros, subs))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (
            player.poll() is not None and all(len(v) >= count for v in got.values())
        ):
            rclpy.spin_once(ros, timeout_sec=0.05)
        assert player.wait(timeout=10) == 0, stop(player)
    finally:
        for sub in subs:
            ros.destroy_subscription(sub)
        stop(player)
    assert {t: len(v) for t, v in got.items()} == {t: count for t in topics}
    return got


def test_player_plays_a_recording_as_recorded(ros, drives):
    """Each camera topic under its own name, the recorded messages unchanged, at the recorded spacing."""
    from sensor_msgs.msg import CompressedImage, Image

    bag, frames = drives["mcap"]
    player = start_player(bag, "wait_for_subscribers:=3", "reliable:=true", "loop:=false")  # 2 + the gate
    got = receive(ros, player, {FRONT: Image, SIDE: CompressedImage}, FRAMES)
    for topic in (FRONT, SIDE):
        sent = [f for f in frames if f[0] == topic]
        assert all(same_header(m.header, f[2]) for (_, m), f in zip(got[topic], sent, strict=True))
    for (_, msg), (_, _, _, bgr) in zip(got[FRONT], [f for f in frames if f[0] == FRONT], strict=True):
        np.testing.assert_array_equal(image_to_numpy(msg), bgr)
    spacing = got[FRONT][-1][0] - got[FRONT][0][0]
    assert spacing >= 1.0, f"frames recorded 1.2 s apart arrived {spacing:.2f} s apart"


def test_player_restamps_remaps_and_paces_one_topic(ros, drives):
    from sensor_msgs.msg import Image

    bag, _ = drives["sqlite3"]
    params = ("wait_for_subscribers:=2", "reliable:=true", "loop:=false", "restamp:=true")  # 1 + the gate
    params += ("recorded_timing:=false", "rate:=20.0", f"topics:={FRONT}")
    player = start_player(bag, *params, remap=(f"{FRONT}:=/replay/image",))
    got = receive(ros, player, {"/replay/image": Image}, FRAMES)
    assert ros.count_publishers(SIDE) == 0
    for _, msg in got["/replay/image"]:
        assert msg.header.frame_id == "front_optical" and msg.header.stamp.sec > 1_700_000_000  # now, not 2020


def test_player_names_a_topic_of_another_type(drives):
    proc = subprocess.run(
        [sys.executable, "-m", "narrow_seg_ros.ros.image_player", "--ros-args", "-p", f"source:={drives['mcap'][0]}",
         "-p", f"topics:={SPEED}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and f"topic {SPEED} is std_msgs/msg/Float32" in proc.stderr, proc.stderr


def test_demo_plays_a_recording_through_seg_node(ros, drives, weights, tmp_path):
    """narrow-seg demo --source <recording> --topic <compressed camera>: the player plays that
    topic as seg_node's compressed input, restamped; masks come back at the camera's size."""
    bag, _ = drives["mcap"]
    cmd = [sys.executable, "-m", "narrow_seg_ros.cli.main", "demo", "--source", str(bag), "--topic", SIDE,
           "--weights", str(weights), "--backend", node_backend(weights), "--frames", "6", "--rate", "4",
           "--out", str(tmp_path), "--save", "2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "achieved FPS" in proc.stdout
    masks = sorted(tmp_path.glob("mask_*.png"))
    assert len(masks) == 2 and cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED).shape == SIZES[SIDE]


# --------------------------------------------------------------------------------------------------
# Decompression bombs: rosbags inflated zstd messages, MCAP chunks and file-mode storage files with
# no limit (a 64 MiB bomb of 2 KB allocated 141 MiB; 512 KB would have made 16 GiB)

BOMBS = {  # (kind, expands to, declared): message of the error
    "message": (("message", 64 << 20, False), "a zstd-compressed message expands to more than 4194304 bytes"),
    "message declaring its size": (("message", 64 << 20, True), "expands to more than 4194304 bytes"),
    "zstd chunk declaring less": (("chunk", 600 << 20, False), "a zstd MCAP chunk expands to more than the 4023 bytes"),
    "zstd chunk declaring 600 MiB": (("chunk", 600 << 20, True), "declares 629145600 uncompressed bytes, over the"),
    "lz4 chunk declaring less": (("lz4-chunk", 64 << 20, False), "an lz4 MCAP chunk expands to more than the"),
    "file": (("file", 64 << 20, False), r"mcap-file\.mcap\.zstd expands to more than 4194304 bytes"),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_decompression_bombs_are_refused_within_the_limit(tmp_path, monkeypatch, name):
    """Each mode's bomb is a BagError naming it, before more than the limit (lowered here to 4 MiB)
    is allocated; the decompressed output grows in a buffer and is copied once, hence 3x."""
    pytest.importorskip("hypothesis")  # narrow_seg_ros.fuzz builds the bombs
    import tracemalloc

    from narrow_seg_ros.data import bags
    from narrow_seg_ros.fuzz import BOMB_SEEDS, RecordingCase, read_whole_recording

    (kind, size, declare), message = BOMBS[name]
    bag = RecordingCase(BOMB_SEEDS[kind], [("bomb", kind, size, declare)]).build(tmp_path)
    monkeypatch.setattr(bags, "MAX_DECOMPRESSED_BYTES", 4 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(bags.BagError, match=rf"^cannot read recording \S+: .*{message}.*decompression bomb\?\)$"):
            read_whole_recording(bag)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * (4 << 20) + (4 << 20), peak


def test_a_chunk_declaring_more_than_the_default_limit_is_refused_before_it_is_inflated(tmp_path):
    pytest.importorskip("hypothesis")
    import tracemalloc

    from narrow_seg_ros.data.bags import MAX_DECOMPRESSED_BYTES, BagError
    from narrow_seg_ros.fuzz import RecordingCase, read_whole_recording

    assert MAX_DECOMPRESSED_BYTES == 8 * 8192 * 8192
    bag = RecordingCase("mcap-zstd", [("bomb", "chunk", 600 << 20, True)]).build(tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(BagError, match=r"over the limit of 536870912 \(MAX_DECOMPRESSED_BYTES"):
            read_whole_recording(bag)
        assert tracemalloc.get_traced_memory()[1] < 4 << 20
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("seed", ["sqlite3-message", "mcap-zstd", "mcap-file"])
def test_compressed_recordings_within_the_limit_read_whole(monkeypatch, seed):
    """The bound refuses nothing a real recording holds: every compression mode reads whole with the
    limit at 64 KiB (the seed's messages are under 1 KB, its chunk 4 KB)."""
    pytest.importorskip("hypothesis")
    from narrow_seg_ros.data import bags
    from narrow_seg_ros.fuzz import read_whole_recording, recording_seed

    monkeypatch.setattr(bags, "MAX_DECOMPRESSED_BYTES", 64 << 10)
    assert read_whole_recording(recording_seed(seed)[0]) == 12


def test_mcap_record_lengths_past_the_file_s_end_are_refused_before_they_are_read(tmp_path):
    """rosbags reads a record (or chunk) of the length it declares with one read(), which allocated
    that length before finding the file shorter: 2 GiB for an 8 KB file. Every length field of the
    seed's records, set past the file's end, is now refused first (or skipped over unread), and
    reading allocates under 4 MiB whatever it declares."""
    pytest.importorskip("hypothesis")
    from narrow_seg_ros.data.bags import BagError
    from narrow_seg_ros.fuzz import (
        RecordingCase,
        _mcap_fields,
        _peak_allocation,
        _storage_name,
        read_whole_recording,
        recording_seed,
    )

    _, files = recording_seed("mcap")
    refused = 0
    for offset, width in _mcap_fields(files[_storage_name(files)]):
        for length in (28_500_000, 2**31 - 1, 2**64 - 1):
            folder = tmp_path / f"{offset}-{length}"
            folder.mkdir()
            bag = RecordingCase("mcap", [("storage", "field", offset, width, length, "little")]).build(folder)
            result, peak = _peak_allocation(lambda bag=bag: read_whole_recording(bag))
            assert peak < 4 << 20, (offset, length, peak)
            if isinstance(result, BagError) and "bytes, but the file has" in str(result):
                assert re.search(rf"^cannot read recording \S+ \(damaged or truncated\?\): a record at byte "
                                 rf"\d+ declares {length} bytes, but the file has \d+ left$", str(result))  # fmt: skip
                refused += 1
            else:
                assert isinstance(result, (int, BagError)), result
    assert refused >= 4 * 3  # the header, a schema, a channel and the statistics at least


def test_an_lz4_chunk_declaring_much_is_not_allocated_before_it_is_inflated(tmp_path):
    """lz4's decompressor allocates the output it is allowed before inflating: an lz4 chunk of 4 KB
    declaring 500 MiB (under MAX_DECOMPRESSED_BYTES) had 500 MiB allocated. It is inflated in steps."""
    pytest.importorskip("hypothesis")
    import lz4.frame

    from narrow_seg_ros.data.bags import BagError
    from narrow_seg_ros.fuzz import _mcap_declare, _peak_allocation, read_whole_recording, write_recording

    write_recording(tmp_path / "bag", "mcap", "storage", chunk_compressor=("lz4", lz4.frame.compress))
    storage = next((tmp_path / "bag").glob("*.mcap"))
    data = bytearray(storage.read_bytes())
    _mcap_declare(data, 500 << 20)
    storage.write_bytes(bytes(data))
    result, peak = _peak_allocation(lambda: read_whole_recording(tmp_path / "bag"))
    assert isinstance(result, BagError) and "Chunk size mismatch: expected 524288000 bytes" in str(result), result
    assert peak < 4 << 20, peak
