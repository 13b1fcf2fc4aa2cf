"""``narrow-seg bench-startup``: seg_node's start-up (process start → first mask) and memory, the
torch path (``.pt`` weights) against the torch-free one (the same model's shipped ``.onnx``, in a
process where torch cannot be imported), alternating runs of the same frames."""

from __future__ import annotations

import sys
import time

from ..resources import DEFAULT_MODEL, SHIPPED_ONNX, TRAINING_MODULES
from ..sizes import parse_hw
from .common import int_at_least, print_json, print_table, status_mb, street_frames

# seg_node in a process where the training tools (torch first) cannot be imported
_TORCH_FREE = (
    f"import sys\nfor name in {TRAINING_MODULES!r}:\n    sys.modules[name] = None\n"
    "from narrow_seg_ros.ros.entry import seg_node\nsys.argv[1:] = sys.argv[2:]\nsys.exit(seg_node())\n"
)


def add_parser(sub) -> None:
    p = sub.add_parser("bench-startup", help="seg_node start-up time and memory: .pt with torch vs .onnx without")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=SHIPPED_ONNX)
    p.add_argument("--size", type=parse_hw, default=(720, 1280), help="camera frame HxW")
    p.add_argument("--runs", type=int_at_least(1), default=3, help="runs of each path, alternating")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..resources import share_file
    from ..ros.image_conversion import numpy_to_image
    from ..ros.runtime import keep_dds_on_this_host

    keep_dds_on_this_host()
    frame = numpy_to_image(street_frames(args.size, 1)[0][..., ::-1].copy(), "bgr8")
    paths = {"torch (.pt)": share_file("models", f"{args.model}.pt"), "torch-free (.onnx)": None}
    rows = []
    for _ in range(args.runs):
        for label, weights in paths.items():
            rows.append({"path": label, **_start_once(weights, frame)})
    if args.json:
        print_json(rows)
    else:
        print(
            f"seg_node, {args.model}, onnxruntime CPU, one {args.size[0]}x{args.size[1]} bgr8 frame until the first mask"
        )
        print_table(rows, [("path", "path"), ("first_mask_s", "start → first mask s"), ("rss_mb", "RSS MB"),
                           ("peak_rss_mb", "peak RSS MB")])  # fmt: skip
    return 0


def _start_once(weights, frame) -> dict:
    """One seg_node start: seconds from the process start to the first mask, and its RSS then."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from ..ros.processes import NodeExited, NodeProcesses
    from ..ros.runtime import seg_node_command

    params = ["backend:=onnxruntime", "qos_reliability:=reliable", "publish_color:=false", "publish_overlay:=false"]
    if weights is not None:
        params.append(f"weights:={weights}")
    argv = seg_node_command(*params)
    if weights is None:
        argv = [sys.executable, "-c", _TORCH_FREE, *argv[3:]]
    rclpy.init()
    node = rclpy.create_node("bench_startup_camera")
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(Image, "image", qos)
    masks = []
    node.create_subscription(Image, "/seg_node/mask", masks.append, qos)
    try:
        with NodeProcesses() as procs:
            start = time.monotonic()
            proc = procs.start(argv)
            next_publish = 0.0
            while not masks:
                procs.check_running()
                if time.monotonic() - start > 300:
                    raise NodeExited("seg_node gave no mask within 300 s")
                if pub.get_subscription_count() and time.monotonic() >= next_publish:
                    pub.publish(frame)  # again every 0.2 s until the node, still loading, takes one
                    next_publish = time.monotonic() + 0.2
                rclpy.spin_once(node, timeout_sec=0.01)
            first_mask_s = time.monotonic() - start
            return {
                "first_mask_s": round(first_mask_s, 2),
                "rss_mb": round(status_mb(pid=proc.pid), 1),
                "peak_rss_mb": round(status_mb("VmHWM", pid=proc.pid), 1),
            }
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
