"""``narrow-seg demo``: the whole pipeline with no camera, as ``seg.launch.py demo:=true`` runs it.

Starts ``image_player`` (the shipped synthetic street sequence, or ``--source``) and ``seg_node``
(``config/seg.yaml``) as separate processes talking over real DDS, records the masks it gets
back, writes overlays to ``--out`` and prints the achieved FPS and latency. (The launch file does
the same with launch_ros; this command needs only rclpy, so it also runs where launch is not
installed.)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..resources import DEMO_MODEL, SHIPPED_MODELS
from .common import int_at_least

NODE_STARTUP_TIMEOUT_S = 180


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="player → seg_node → recorder over ROS 2, prints FPS")
    p.add_argument("--frames", type=int_at_least(1), default=60, help="frames to play (default 60)")
    p.add_argument("--rate", type=float, default=10.0, help="player rate in Hz")
    p.add_argument(
        "--source", default="", help="image folder, video or rosbag2 recording (default: the shipped demo sequence)"
    )
    p.add_argument("--topic", default="", help="recording: the image topic to play (default: its first)")
    p.add_argument("--weights", default="", help="weights file (default: shipped weights of --model)")
    p.add_argument("--model", default=DEMO_MODEL, choices=tuple(SHIPPED_MODELS))
    p.add_argument("--backend", default="auto")
    p.add_argument("--out", default="runs/demo", help="where overlays and masks are written")
    p.add_argument("--save", type=int_at_least(0), default=10, help="how many frames to save (overlay + mask PNGs)")
    p.set_defaults(func=run)


def run(args) -> int:
    import cv2
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from ..ros.image_conversion import image_to_numpy
    from ..ros.processes import NodeExited, NodeProcesses
    from ..ros.runtime import keep_dds_on_this_host, seg_node_command

    keep_dds_on_this_host()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recording, compressed = _recording_arguments(args.source, args.topic)
    node_cmd = seg_node_command(
        f"model:={args.model}",
        f"backend:={args.backend}",
        "log_period:=5.0",
        f"weights:={args.weights}",
        f"use_compressed:={str(compressed).lower()}",
    )
    player_cmd = [sys.executable, "-m", "narrow_seg_ros.ros.entry", "image_player", "--ros-args"]
    player_cmd += ["-p", f"rate:={args.rate}", "-p", f"max_frames:={args.frames}", "-p", "loop:=true"]
    player_cmd += ["-p", "reliable:=true", "-p", "wait_for_subscribers:=1"]  # however slow discovery is
    player_cmd += ["-p", f"source:={args.source}"] if args.source else []
    player_cmd += recording

    rclpy.init()
    recorder = Node("demo_recorder")
    received: list[tuple[float, float]] = []  # (arrival, header stamp) per mask

    def on_mask(msg):
        now = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        index = len(received)
        received.append((now, stamp))
        if index < args.save:
            cv2.imwrite(str(out / f"mask_{index:04d}.png"), image_to_numpy(msg))

    def on_overlay(msg):
        index = len(received) - 1
        if 0 <= index < args.save:
            cv2.imwrite(str(out / f"overlay_{index:04d}.png"), cv2.cvtColor(image_to_numpy(msg), cv2.COLOR_RGB2BGR))

    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    recorder.create_subscription(Image, "/seg_node/mask", on_mask, qos)
    recorder.create_subscription(Image, "/seg_node/overlay", on_overlay, qos)
    try:
        with NodeProcesses() as procs:
            node = procs.start(node_cmd, show_output=True)
            # play only once the node listens, so no frame is played into the void
            procs.wait_until(lambda: recorder.count_publishers("/seg_node/mask") > 0, recorder,
                             NODE_STARTUP_TIMEOUT_S, "seg_node coming up", procs=[node])  # fmt: skip
            print(f"seg_node is up; playing {args.frames} frames at {args.rate} Hz")
            player = procs.start(player_cmd, show_output=True)
            t_end = time.monotonic() + args.frames / args.rate + 30
            while time.monotonic() < t_end and len(received) < args.frames:
                rclpy.spin_once(recorder, timeout_sec=0.1)
                if player.poll() is not None and time.monotonic() > t_end - 25:
                    break
            for _ in range(20):  # drain what is still in flight
                rclpy.spin_once(recorder, timeout_sec=0.05)
    except NodeExited as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        recorder.destroy_node()
        rclpy.try_shutdown()

    return _report(received, args, out)


def _report(received: list[tuple[float, float]], args, out: Path) -> int:
    """FPS and latency from the (arrival, header stamp) of every mask."""
    if len(received) < 2:
        print(f"received {len(received)} masks: the pipeline did not run", file=sys.stderr)
        return 1
    span = received[-1][0] - received[0][0]
    fps = (len(received) - 1) / span if span > 0 else float("nan")
    latency = sorted(1e3 * (arrival - stamp) for arrival, stamp in received)
    print(f"masks received: {len(received)} of {args.frames} frames played at {args.rate} Hz")
    print(f"achieved FPS: {fps:.2f}  (median publish→mask latency {latency[len(latency) // 2]:.0f} ms)")
    print(f"overlays and masks written to {out}/")
    return 0


def _recording_arguments(source: str, topic: str) -> tuple[list[str], bool]:
    """For a recording: image_player arguments that play ``topic`` (default: its first image topic)
    as seg_node's input, restamped (the latency is measured from header stamps), and whether it is
    compressed. Nothing for a folder or video."""
    from ..data.bags import COMPRESSED, find_bag, image_connections, open_bag

    if not source or find_bag(Path(source)) is None:
        if topic:
            raise ValueError("--topic applies to a recording only")
        return [], False
    with open_bag(Path(source)) as reader:
        connection = image_connections(reader, [topic] if topic else [])[0]
    compressed = connection.msgtype == COMPRESSED
    target = "image/compressed" if compressed else "image"
    args = ["-p", f"topics:={connection.topic}", "-p", "restamp:=true", "-r", f"{connection.topic}:={target}"]
    return args, compressed
