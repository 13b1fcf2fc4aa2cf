"""``narrow-seg bench-node``: the node's end-to-end latency against the engine's own time.

Starts ``seg_node`` as a separate process and publishes frames one at a time from this process
(each only after the previous frame's outputs came back, so nothing queues or drops), measuring
publish → output-received latency with only the outputs of one ``--outputs`` set subscribed. Each
frame then goes through the engine in this process, with the node idle, for the engine's own time
on that frame: the per-frame difference is what ROS costs (receiving, converting, building and
publishing the outputs, transport both ways), and pairing frame by frame keeps the other load on
a shared machine out of it. Each frame also makes a round trip through an echo node
(``ros.echo_node``: a ready-made mask at once, no work): the transport floor, what DDS and the
executors cost alone; the overhead above it is the node's own. Frames are serialized before the
clock starts, as a camera driver does its own serialization; outputs are timed on arrival, before
anything reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from ..resources import DEFAULT_MODEL, SHIPPED_MODELS
from ..sizes import parse_hw
from .common import int_at_least, print_json, print_table, street_frames

FRAMES = 4
WARMUP = 3
ECHO_NAMESPACE = "/bench_floor"  # the echo node's topics, apart from seg_node's
# --outputs name → (the node's topic, compressed or not, the engine options that output needs)
OUTPUTS = {
    "mask": ("mask", False, {}),
    "mask_png": ("mask/compressed", True, {}),
    "color": ("color_mask", False, {"color": True}),
    "overlay": ("overlay", False, {"overlay": True}),
    "confidence": ("confidence", False, {"confidence": True}),
}


def output_set(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"outputs {text!r}: choose from {', '.join(OUTPUTS)} (comma-separated)")
    return names


def output_size(text: str) -> str:
    """An output_size the engine in this process can apply too (reference follows a topic)."""
    from ..inference.rules import parse_output_size

    if parse_output_size(text) == "reference":
        raise argparse.ArgumentTypeError(
            "output_size reference follows a camera_info topic: use camera, network or WxH"
        )
    return text


def add_parser(sub) -> None:
    p = sub.add_parser("bench-node", help="seg_node publish→output latency vs the engine alone")
    p.add_argument("--weights", default="", help="weights (default: shipped weights of --model)")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        choices=tuple(SHIPPED_MODELS),
        help="shipped model (default: the node's own default)",
    )
    p.add_argument("--backend", default="auto")
    p.add_argument("--size", type=parse_hw, nargs="+", default=[(1024, 2048)], help="camera frame HxW, one row each")
    p.add_argument("--outputs", type=output_set, nargs="+", default=[("mask",)],
                   help=f"sets of outputs subscribed together, one row each: comma-separated of {', '.join(OUTPUTS)}")  # fmt: skip
    p.add_argument(
        "--output-size", type=output_size, default="camera", help="the node's output_size: camera, network or WxH"
    )
    p.add_argument("--frames", type=int_at_least(1), default=30)
    p.add_argument("--encoding", default="bgr8", choices=("bgr8", "rgb8"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    import rclpy

    from ..inference.engine import Segmenter
    from ..resources import shipped_weights
    from ..ros.processes import NodeProcesses
    from ..ros.runtime import keep_dds_on_this_host, reuse_frame_memory, seg_node_command

    keep_dds_on_this_host()
    reuse_frame_memory()  # this process takes the outputs as the node takes frames
    weights = args.weights or str(shipped_weights(args.model))
    cmd = seg_node_command(f"weights:={weights}", f"backend:={args.backend}", "qos_reliability:=reliable",
                           "publish_color:=true", "publish_overlay:=true", "publish_confidence:=true",
                           "log_period:=0.0", f"output_size:={args.output_size}")  # fmt: skip
    engine = Segmenter.from_weights(weights, backend=args.backend)
    echo_cmd = [sys.executable, "-m", "narrow_seg_ros.ros.echo_node", "--ros-args", "-r", f"__ns:={ECHO_NAMESPACE}"]
    rclpy.init()
    rows = []
    try:
        with NodeProcesses() as procs:
            procs.start(cmd)
            procs.start(echo_cmd, name="echo_node")
            node = rclpy.create_node("bench_node_client")
            client = _Client(node, procs)
            echo = _Client(node, procs, f"{ECHO_NAMESPACE}/image", f"{ECHO_NAMESPACE}/bench_echo")
            echo.subscribe(("mask",))
            for size in args.size:
                frames = [np.ascontiguousarray(f[..., ::-1]) if args.encoding == "bgr8" else f
                          for f in street_frames(size, FRAMES)]  # fmt: skip
                for outputs in args.outputs:
                    rows.append(_measure(client, echo, engine, frames, outputs, args))
    finally:
        rclpy.try_shutdown()
    _report(rows, args.json)
    return 0


class _Client:
    """The camera and the output subscriber: publishes serialized frames, stamps outputs on arrival."""

    def __init__(self, node, procs, image_topic: str = "image", node_topics: str = "/seg_node"):
        from sensor_msgs.msg import Image

        from ..ros.echo_node import bench_qos

        self.node, self.procs, self.node_topics = node, procs, node_topics
        self.qos = bench_qos()
        self.pub = node.create_publisher(Image, image_topic, self.qos)
        self.subscriptions: list = []
        self.arrivals: dict[tuple[str, str], float] = {}
        self.count = 0

    def subscribe(self, outputs: tuple[str, ...]) -> None:
        """Only ``outputs`` subscribed (the node computes nothing else), each stamped on arrival."""
        from sensor_msgs.msg import CompressedImage, Image

        from ..ros.image_cdr import read_header

        old, self.subscriptions = self.subscriptions, []
        for name in outputs:
            topic, compressed, _ = OUTPUTS[name]

            def arrived(data, name=name):
                now = time.perf_counter()
                self.arrivals.setdefault((name, read_header(data).frame_id), now)

            kind = CompressedImage if compressed else Image
            self.subscriptions.append(self.node.create_subscription(kind, f"{self.node_topics}/{topic}", arrived, self.qos, raw=True))  # fmt: skip
        for subscription in old:
            self.node.destroy_subscription(subscription)
        self._wait_for_node()

    def _wait_for_node(self, timeout: float = 180) -> None:
        def matched() -> bool:
            return self.pub.get_subscription_count() > 0 and all(s.get_publisher_count() for s in self.subscriptions)

        self.procs.wait_until(matched, self.node, timeout, f"{self.node_topics} matching the benchmark's topics")
        time.sleep(1.0)  # the node's own view of the new subscriptions

    def round_trip(self, frame: np.ndarray, encoding: str, outputs: tuple[str, ...]) -> float:
        """Publish one frame; ms until every output of it arrived."""
        import rclpy
        from std_msgs.msg import Header

        from ..ros.image_cdr import image_cdr

        self.count += 1
        frame_id = f"f{self.count}"
        data = image_cdr(frame, encoding, Header(stamp=self.node.get_clock().now().to_msg(), frame_id=frame_id))
        sent = time.perf_counter()
        self.pub.publish(data)
        until = time.monotonic() + 30
        while not all((o, frame_id) in self.arrivals for o in outputs):
            if time.monotonic() > until:
                raise ValueError(f"no {', '.join(outputs)} for frame {frame_id} within 30 s")
            rclpy.spin_once(self.node, timeout_sec=0.01)
        return (max(self.arrivals.pop((o, frame_id)) for o in outputs) - sent) * 1e3


def _measure(client: _Client, echo: _Client, engine, frames: list, outputs: tuple[str, ...], args) -> dict:
    from ..inference.rules import parse_output_size

    client.subscribe(outputs)
    options = {k: v for name in outputs for k, v in OUTPUTS[name][2].items()}
    options["output_size"] = parse_output_size(args.output_size)
    latencies, engine_ms, floor = [], [], []
    for i in range(WARMUP + args.frames):
        frame = frames[i % FRAMES]
        latency = client.round_trip(frame, args.encoding, outputs)
        echoed = echo.round_trip(frame, args.encoding, ("mask",))
        if i >= WARMUP:
            latencies.append(latency)
            floor.append(echoed)
            engine_ms.append(engine.segment(frame, args.encoding, **options).timings["total_ms"])
    overhead = np.subtract(latencies, engine_ms)
    p50 = lambda xs: round(float(np.median(xs)), 2)  # noqa: E731
    p99 = lambda xs: round(float(np.percentile(xs, 99)), 2)  # noqa: E731
    return {
        "size": f"{frames[0].shape[0]}x{frames[0].shape[1]}",
        "outputs": ",".join(outputs),
        "output_size": args.output_size,
        "backend": engine.describe(),
        "frames": args.frames,
        "node_latency_ms_p50": p50(latencies),
        "node_latency_ms_p99": p99(latencies),
        "engine_ms_p50": p50(engine_ms),
        "ros_overhead_ms_p50": p50(overhead),
        "ros_overhead_ms_p99": p99(overhead),
        "transport_floor_ms_p50": p50(floor),
        "transport_floor_ms_p99": p99(floor),
        "node_own_ms_p50": p50(overhead - np.asarray(floor)),
    }


def _report(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print_json(rows)
        return
    print(json.dumps(rows, indent=2))
    columns = [("size", "size"), ("outputs", "outputs"), ("output_size", "output_size"), ("node_latency_ms_p50", "publish→out p50 ms"),
               ("node_latency_ms_p99", "p99 ms"), ("engine_ms_p50", "engine p50 ms"),
               ("ros_overhead_ms_p50", "ROS adds p50 ms"), ("ros_overhead_ms_p99", "ROS adds p99 ms"),
               ("transport_floor_ms_p50", "floor p50 ms"), ("node_own_ms_p50", "node's own p50 ms")]  # fmt: skip
    print_table(rows, columns)
