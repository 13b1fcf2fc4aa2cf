"""``narrow-seg bench-node``: the node's end-to-end latency against the engine's own time.

Starts ``seg_node`` as a separate process, publishes frames one at a time from this process
(each only after the previous mask came back, so nothing queues or drops) and measures publish →
mask-received latency. The same frames then go through the engine in this process, alone on the
machine, for the engine's own time. The difference is what ROS costs: message conversion,
serialisation and transport both ways.
"""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np

from ..resources import DEMO_MODEL, SHIPPED_MODELS
from ..sizes import parse_hw
from .common import int_at_least, print_json, street_frames

FRAMES = 4


def add_parser(sub) -> None:
    p = sub.add_parser("bench-node", help="seg_node publish→mask latency vs the engine alone")
    p.add_argument("--weights", default="", help="weights (default: shipped weights of --model)")
    p.add_argument("--model", default=DEMO_MODEL, choices=tuple(SHIPPED_MODELS))
    p.add_argument("--backend", default="auto")
    p.add_argument("--size", type=parse_hw, default=(1024, 2048), help="camera frame HxW")
    p.add_argument("--frames", type=int_at_least(1), default=30)
    p.add_argument("--encoding", default="bgr8", choices=("bgr8", "rgb8"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from ..inference.engine import Segmenter
    from ..resources import shipped_weights
    from ..ros.image_conversion import numpy_to_image
    from ..ros.runtime import keep_dds_on_this_host, seg_node_command

    keep_dds_on_this_host()
    weights = args.weights or str(shipped_weights(args.model))
    frames = [
        np.ascontiguousarray(f[..., ::-1]) if args.encoding == "bgr8" else f for f in street_frames(args.size, FRAMES)
    ]
    cmd = seg_node_command(
        f"weights:={weights}",
        f"backend:={args.backend}",
        "qos_reliability:=reliable",
        "publish_color:=false",
        "publish_overlay:=false",
    )
    node_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rclpy.init()
    node = rclpy.create_node("bench_node_client")
    qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(Image, "image", qos)
    arrivals: dict[str, float] = {}
    node.create_subscription(
        Image, "/seg_node/mask", lambda m: arrivals.setdefault(m.header.frame_id, time.perf_counter()), qos
    )
    latencies = []
    try:
        deadline = time.monotonic() + 180
        while pub.get_subscription_count() == 0 or node.count_publishers("/seg_node/mask") == 0:
            if node_proc.poll() is not None or time.monotonic() > deadline:
                raise ValueError(f"seg_node did not start:\n{node_proc.stderr.read()[-2000:]}")
            rclpy.spin_once(node, timeout_sec=0.2)
        time.sleep(1.0)
        for i in range(args.frames + 3):  # the first 3 are warm-up
            msg = numpy_to_image(frames[i % FRAMES], args.encoding)
            msg.header.frame_id = f"f{i}"
            msg.header.stamp = node.get_clock().now().to_msg()
            sent = time.perf_counter()
            pub.publish(msg)
            until = time.monotonic() + 30
            while msg.header.frame_id not in arrivals and time.monotonic() < until:
                rclpy.spin_once(node, timeout_sec=0.01)
            if msg.header.frame_id not in arrivals:
                raise ValueError(f"no mask for frame {i} within 30 s")
            if i >= 3:
                latencies.append((arrivals[msg.header.frame_id] - sent) * 1e3)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        node_proc.terminate()
        node_proc.wait(timeout=15)

    engine = Segmenter.from_weights(weights, backend=args.backend)
    engine_ms = []
    for i in range(args.frames):
        engine_ms.append(engine.segment(frames[i % FRAMES], args.encoding).timings["total_ms"])
    row = {
        "size": f"{args.size[0]}x{args.size[1]}",
        "backend": engine.describe(),
        "frames": args.frames,
        "node_latency_ms_p50": round(float(np.median(latencies)), 2),
        "node_latency_ms_p99": round(float(np.percentile(latencies, 99)), 2),
        "engine_ms_p50": round(float(np.median(engine_ms)), 2),
    }
    row["ros_overhead_ms_p50"] = round(row["node_latency_ms_p50"] - row["engine_ms_p50"], 2)
    if args.json:
        print_json(row)
    else:
        print(json.dumps(row, indent=2))
        print(
            f"publish → mask {row['node_latency_ms_p50']:.1f} ms (p99 {row['node_latency_ms_p99']:.1f}) vs engine "
            f"{row['engine_ms_p50']:.1f} ms: ROS adds {row['ros_overhead_ms_p50']:.1f} ms"
        )
    return 0
