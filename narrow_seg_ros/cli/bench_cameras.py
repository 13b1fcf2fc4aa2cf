"""``narrow-seg bench-cameras``: N cameras through one multi-camera seg_node against N
single-camera seg_nodes, on the same machine.

This process plays N cameras (``cam<k>/image``, sensor-data QoS as a camera driver publishes, each
at ``--rate``) and subscribes every camera's mask. Per layout and N it reports the aggregate masks
per second, per-camera publish → mask latency (p50, p99), the node processes' CPU (percent of one
core, from /proc over the measured window) and their summed resident memory at the end.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..resources import DEFAULT_MODEL, SHIPPED_MODELS
from ..sizes import parse_hw
from .common import int_at_least, print_json, print_table, status_mb, street_frames

LAYOUTS = ("multi", "single")


def add_parser(sub) -> None:
    p = sub.add_parser("bench-cameras", help="N cameras: one multi-camera seg_node vs N single-camera nodes")
    p.add_argument("--weights", default="", help="weights (default: shipped weights of --model)")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=tuple(SHIPPED_MODELS))
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--cameras", type=int_at_least(1), nargs="+", default=[1, 2, 4], help="camera counts to run")
    p.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    p.add_argument("--size", type=parse_hw, default=(1024, 2048), help="camera frame HxW")
    p.add_argument("--rate", type=float, default=10.0, help="frames per second of each camera")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds played before measuring")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds measured")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


@dataclass
class _Camera:
    name: str
    publisher: object
    sent: dict = field(default_factory=dict)  # frame_id → publish time
    latencies_ms: list = field(default_factory=list)
    received: int = 0


def run(args) -> int:
    import rclpy

    from ..resources import shipped_weights
    from ..ros.runtime import keep_dds_on_this_host

    keep_dds_on_this_host()
    weights = args.weights or str(shipped_weights(args.model))
    frames = [np.ascontiguousarray(f[..., ::-1]) for f in street_frames(args.size, 4)]  # bgr8, as cameras send
    rclpy.init()
    rows = []
    try:
        for n in args.cameras:
            for layout in args.layouts:
                rows.append(_measure(args, weights, frames, layout, n))
                print(f"{layout} N={n}: {rows[-1]['masks_per_s']} masks/s", flush=True)
    finally:
        rclpy.try_shutdown()
    if args.json:
        print_json(rows)
    else:
        columns = [("layout", "layout"), ("cameras", "N"), ("masks_per_s", "masks/s"),
                   ("latency_ms_p50", "p50 ms"), ("latency_ms_p99", "p99 ms"),
                   ("cpu_percent", "CPU %"), ("rss_mb", "RSS MB")]  # fmt: skip
        print_table(rows, columns)
    return 0


def _node_commands(layout: str, n: int, weights: str, args) -> list[list[str]]:
    from ..ros.runtime import seg_node_command

    common = (f"weights:={weights}", f"backend:={args.backend}", f"device:={args.device}",
              "publish_color:=false", "publish_overlay:=false", "log_period:=0.0")  # fmt: skip
    names = [f"cam{k}" for k in range(n)]
    if layout == "multi":
        return [seg_node_command(*common, f"cameras:={','.join(names)}")]
    # a single-camera node per camera, in the camera's namespace: cam<k>/image in, cam<k>/seg_node/mask out
    return [[*seg_node_command(*common), "-r", f"__ns:=/{name}"] for name in names]


def _mask_topic(layout: str, name: str) -> str:
    return f"/seg_node/{name}/mask" if layout == "multi" else f"/{name}/seg_node/mask"


def _measure(args, weights: str, frames: list, layout: str, n: int) -> dict:
    import rclpy

    from ..ros.processes import NodeProcesses

    node = rclpy.create_node(f"bench_cameras_{layout}_{n}")
    try:
        with NodeProcesses() as procs:
            for cmd in _node_commands(layout, n, weights, args):
                procs.start(cmd)
            cameras = _cameras(node, layout, n)
            # subscribed once listened to
            procs.wait_until(lambda: all(c.publisher.get_subscription_count() for c in cameras), node, 180,
                             "seg_node subscribing every camera")  # fmt: skip
            _play(node, cameras, frames, args.rate, args.warmup)
            for camera in cameras:
                camera.latencies_ms.clear()
                camera.received = 0
            cpu_start = _cpu_seconds(procs.pids)
            started = time.monotonic()
            _play(node, cameras, frames, args.rate, args.seconds)
            elapsed = time.monotonic() - started
            cpu = (_cpu_seconds(procs.pids) - cpu_start) / elapsed
            rss_mb = sum(status_mb(pid=pid) for pid in procs.pids)
    finally:
        node.destroy_node()
    latencies = [x for c in cameras for x in c.latencies_ms]
    per_camera = [round(c.received / elapsed, 2) for c in cameras]
    return {
        "layout": layout,
        "cameras": n,
        "size": f"{args.size[0]}x{args.size[1]}",
        "rate_hz": args.rate,
        "masks_per_s": round(sum(per_camera), 2),
        "masks_per_s_per_camera": per_camera,
        "latency_ms_p50": round(float(np.median(latencies)), 1) if latencies else None,
        "latency_ms_p99": round(float(np.percentile(latencies, 99)), 1) if latencies else None,
        "cpu_percent": round(100 * cpu, 1),
        "rss_mb": round(rss_mb, 1),
    }


def _cameras(node, layout: str, n: int) -> list[_Camera]:
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    cameras = []
    for k in range(n):
        name = f"cam{k}"
        camera = _Camera(name, node.create_publisher(Image, f"/{name}/image", qos_profile_sensor_data))

        def arrived(msg, camera=camera):
            sent = camera.sent.pop(msg.header.frame_id, None)
            if sent is not None:
                camera.latencies_ms.append((time.perf_counter() - sent) * 1e3)
                camera.received += 1

        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(Image, _mask_topic(layout, name), arrived, qos)
        cameras.append(camera)
    return cameras


def _play(node, cameras: list[_Camera], frames: list, rate: float, seconds: float) -> None:
    """Every camera publishes at ``rate`` (staggered across the period) for ``seconds``."""
    import rclpy

    from ..ros.image_conversion import numpy_to_image

    messages = [numpy_to_image(f, "bgr8") for f in frames]
    period, start = 1.0 / rate, time.monotonic()
    due = [start + k * period / len(cameras) for k in range(len(cameras))]
    count = 0
    while time.monotonic() - start < seconds:
        for k, camera in enumerate(cameras):
            if time.monotonic() >= due[k]:
                due[k] += period
                msg = messages[count % len(messages)]
                msg.header.frame_id = f"{camera.name}_{count}"
                msg.header.stamp = node.get_clock().now().to_msg()
                camera.sent[msg.header.frame_id] = time.perf_counter()
                camera.publisher.publish(msg)
                count += 1
        rclpy.spin_once(node, timeout_sec=0.002)
    drain = time.monotonic() + 2.0  # masks still on their way
    while time.monotonic() < drain:
        rclpy.spin_once(node, timeout_sec=0.01)


def _cpu_seconds(pids) -> float:
    """user + system CPU seconds of the node processes (and their threads) so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks
