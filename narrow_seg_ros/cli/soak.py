"""``narrow-seg soak``: seg_node fed a camera stream for minutes; memory and frame counts over time.

Starts ``seg_node`` as a separate process and publishes frames (best effort, as a camera) at
``--rate`` Hz for ``--minutes``, with a subscriber on ``~/mask`` so the node works. Every ``--period``
seconds (a minute by default) it prints the node's resident memory (``/proc/PID/status``), frames
published, masks received and the node's own dropped / invalid / failed counts from
``/diagnostics``; at the end, the RSS growth from the first row (start-up and warm-up done) to
the last. A leak shows as steady growth.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..resources import DEFAULT_MODEL, SHIPPED_MODELS
from ..sizes import parse_hw
from .common import positive_float, status_mb, street_frames


def add_parser(sub) -> None:
    p = sub.add_parser("soak", help="seg_node under a camera stream for N minutes: RSS and frame counts")
    p.add_argument("--weights", default="", help="weights (default: shipped weights of --model)")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=tuple(SHIPPED_MODELS))
    p.add_argument("--size", type=parse_hw, default=(1024, 2048), help="camera frame HxW")
    p.add_argument("--rate", type=float, default=30.0, help="camera frames per second")
    p.add_argument("--minutes", type=positive_float, default=10.0, help="how long to feed the node (fractions too)")
    p.add_argument("--period", type=positive_float, default=60.0, help="seconds between table rows")
    p.set_defaults(func=run)


def run(args) -> int:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from ..resources import shipped_weights
    from ..ros.image_conversion import numpy_to_image
    from ..ros.processes import NodeProcesses
    from ..ros.runtime import keep_dds_on_this_host, seg_node_command

    keep_dds_on_this_host()
    weights = args.weights or str(shipped_weights(args.model))
    messages = [numpy_to_image(np.ascontiguousarray(f[..., ::-1]), "bgr8") for f in street_frames(args.size, 4)]
    cmd = seg_node_command(f"weights:={weights}", "publish_color:=false", "publish_overlay:=false", "log_period:=0.0")
    rclpy.init()
    node = rclpy.create_node("soak_camera")
    pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
    counts = {"published": 0, "masks": 0}
    health: dict = {}
    node.create_subscription(Image, "/seg_node/mask", lambda m: counts.__setitem__("masks", counts["masks"] + 1), 10)

    def on_diagnostics(msg):
        for status in msg.status:
            if status.name.endswith("segmentation"):
                health.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    rows = []
    try:
        with NodeProcesses() as procs:
            node_proc = procs.start(cmd)
            procs.wait_until(lambda: pub.get_subscription_count() > 0, node, 180, "seg_node subscribing")
            print(f"soak: {args.size[0]}x{args.size[1]} bgr8 at {args.rate} Hz for {args.minutes} min, {weights}")
            print("second  rss_mb  published  masks  dropped  invalid  failed")
            for row in _soak(node, pub, messages, counts, health, procs, node_proc, args):
                rows.append(row)
                print("  ".join(f"{row[k]:>{len(k)}.0f}" if k == "rss_mb" else f"{row[k]:>{len(k)}}" for k in row))
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    growth = rows[-1]["rss_mb"] - rows[0]["rss_mb"]
    print(f"RSS growth from second {rows[0]['second']} to second {rows[-1]['second']}: {growth:+.1f} MB")
    return 0


def _soak(node, pub, messages, counts, health, procs, node_proc, args):
    """Publish at ``args.rate`` for ``args.minutes``; a row of counters every ``args.period`` s."""
    import rclpy

    start = next_frame = time.monotonic()
    rows_due = max(1, math.ceil(60 * args.minutes / args.period - 1e-9))
    for row_index in range(1, rows_due + 1):
        second = min(row_index * args.period, 60 * args.minutes)
        while time.monotonic() < start + second:
            if time.monotonic() >= next_frame:
                msg = messages[counts["published"] % len(messages)]
                msg.header.stamp = node.get_clock().now().to_msg()
                pub.publish(msg)
                counts["published"] += 1
                next_frame += 1.0 / args.rate
            rclpy.spin_once(node, timeout_sec=max(0.0, min(0.005, next_frame - time.monotonic())))
        procs.check_running()  # a node that died mid-soak is the finding, not a row of zeros
        row = {"second": round(second), "rss_mb": status_mb(pid=node_proc.pid), **counts}
        row.update({k: int(health.get(k, -1)) for k in ("dropped", "invalid", "failed")})
        yield row
