"""The deployment without torch: the shipped .onnx run by onnxruntime in the node, `narrow-seg
infer` and the Python API, in processes where torch and every training tool cannot be imported
(as on a Jetson with only onnxruntime-gpu). The masks are those of today's .pt path."""

import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from conftest import REPO, start, stop

from narrow_seg_ros.resources import SHIPPED_ONNX, TRAINING_MODULES

# a process where the training tools are absent: importing any of them raises ImportError
BLOCK = f"import sys\nfor name in {TRAINING_MODULES!r}:\n    sys.modules[name] = None\n"
SIZE = (120, 160)


def make_frame(index: int, height: int, width: int) -> np.ndarray:
    """A smooth structured uint8 frame (regions and gradients, like a scene)."""
    small = np.random.default_rng(index).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def without_torch(code: str) -> list[str]:
    return [sys.executable, "-c", BLOCK + code]


def cli_without_torch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    code = "from narrow_seg_ros.cli.main import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([*without_torch(code), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def onnx_engine(model="ndnet45_fcn8_camvid"):
    from narrow_seg_ros.inference.engine import Segmenter

    return Segmenter.from_weights(REPO / "models" / f"{model}.onnx", warmup=0)


@pytest.mark.parametrize("model", SHIPPED_ONNX)
def test_shipped_onnx_gives_the_pt_masks(model):
    """The shipped .onnx (dynamic size and batch) and today's .pt path (onnxruntime on the engine's
    own export) give the same masks and confidences, also at an input size of the user's and for
    a batch of two cameras."""
    pytest.importorskip("torch", reason="the .pt side of the comparison needs torch (this environment is torch-free)")
    from narrow_seg_ros.inference.engine import Segmenter
    from narrow_seg_ros.inference.requests import Request

    frames = [make_frame(i, *SIZE)[..., ::-1].copy() for i in range(2)]  # rgb
    for size in (None, (96, 128)):
        pt = Segmenter.from_weights(REPO / "models" / f"{model}.pt", backend="onnxruntime", input_size=size, warmup=0)
        onnx = Segmenter.from_weights(REPO / "models" / f"{model}.onnx", input_size=size, warmup=0)
        for frame in frames:
            a, b = (e.segment(frame, "rgb8", confidence=True) for e in (pt, onnx))
            assert np.array_equal(a.mask, b.mask) and np.array_equal(a.confidence, b.confidence)
        batch = onnx.segment_batch([Request(image=f, encoding="rgb8") for f in frames])
        assert all(np.array_equal(r.mask, pt.segment(f, "rgb8").mask) for r, f in zip(batch, frames))


def test_onnx_metadata_is_a_whole_deployment_artifact():
    from narrow_seg_ros.inference.onnx_metadata import read_onnx_metadata

    meta = read_onnx_metadata(REPO / "models" / "ndnet45_fcn8_camvid.onnx")
    assert meta["model"] == "ndnet45" and meta["model_options"] == {"head": "fcn8"}
    assert len(meta["class_names"]) == len(meta["palette"]) == 11
    assert meta["input_size"] == [540, 720] and meta["input_multiple"] == 32 and meta["output_stride"] == 8
    assert meta["mean"] and meta["std"] and meta["weights_file"] == "ndnet45_fcn8_camvid.pt"
    import hashlib

    assert (
        meta["weights_sha256"] == hashlib.sha256((REPO / "models" / "ndnet45_fcn8_camvid.pt").read_bytes()).hexdigest()
    )


def test_help_and_training_commands_without_torch(tmp_path):
    proc = cli_without_torch("--help")
    assert proc.returncode == 0 and "infer" in proc.stdout, proc.stderr
    proc = cli_without_torch("train", "--config", "config/train_ndnet45_fcn8_camvid.yaml", "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "this needs torch, which is not installed" in proc.stderr and "narrow_seg_ros[train]" in proc.stderr
    proc = cli_without_torch("infer", "--model", "ndnet45_synth", "--input", str(tmp_path), "--output", str(tmp_path))
    assert proc.returncode == 2 and "ships as .pt only, which needs torch" in proc.stderr, proc.stderr


def test_infer_without_torch_writes_the_onnx_masks(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = {f"f{i}": make_frame(i, *SIZE) for i in range(2)}  # bgr
    for name, frame in frames.items():
        cv2.imwrite(str(folder / f"{name}.png"), frame)
    proc = cli_without_torch("infer", "--input", str(folder), "--output", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    engine = onnx_engine()
    for name, frame in frames.items():
        written = cv2.imread(str(tmp_path / "out" / f"{name}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(written, engine.segment(frame, "bgr8").mask), name


def test_seg_node_without_torch_serves_the_onnx_masks(ros):
    """seg_node with its default model and no torch: the shipped .onnx, masks byte for byte those
    of the engine on the same file."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from narrow_seg_ros.ros.image_conversion import image_to_numpy, numpy_to_image
    from narrow_seg_ros.ros.runtime import seg_node_command

    argv = seg_node_command("backend:=auto")[3:]  # after `python -m narrow_seg_ros.ros.entry`
    code = "from narrow_seg_ros.ros.entry import seg_node\nsys.argv[1:] = sys.argv[2:]\nsys.exit(seg_node())\n"
    node = start([*without_torch(code), *argv])
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    masks = []
    sub = ros.create_subscription(Image, "/seg_node/mask", masks.append, qos)
    pub = ros.create_publisher(Image, "/image", qos)
    try:
        deadline = time.monotonic() + 120
        while pub.get_subscription_count() == 0 or sub.get_publisher_count() == 0:
            assert node.poll() is None and time.monotonic() < deadline, stop(node)
            rclpy.spin_once(ros, timeout_sec=0.1)
        frames = [make_frame(i, *SIZE) for i in range(3)]
        for i, frame in enumerate(frames):
            msg = numpy_to_image(frame, "bgr8")
            msg.header.frame_id = f"frame_{i}"
            pub.publish(msg)
            count = len(masks)
            while len(masks) == count:  # one frame in flight: none replaced by the newest-frame rule
                assert node.poll() is None and time.monotonic() < deadline, stop(node)
                rclpy.spin_once(ros, timeout_sec=0.1)
    finally:
        ros.destroy_subscription(sub)
        ros.destroy_publisher(pub)
        log = stop(node)
    assert "ndnet45_fcn8_camvid.onnx" in log and "Traceback" not in log, log
    engine = onnx_engine()
    for msg in masks:
        frame = frames[int(msg.header.frame_id.split("_")[1])]
        assert np.array_equal(image_to_numpy(msg), engine.segment(frame, "bgr8").mask)
