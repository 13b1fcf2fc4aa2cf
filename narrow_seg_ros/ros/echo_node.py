"""The transport floor under ``seg_node``, for ``narrow-seg bench-node``: a node that answers every
Image on ``image`` at once with a ready-made mono8 mask of the frame's size on ``~/mask``, under the
frame's header, through the paths ``seg_node`` uses (a thread that pulls the frame from a raw
subscription's reader, pulled.py; the frame read in place; the mask published as its CDR; the
process's frame memory kept in the heap). What its round trip costs is what DDS, rclpy's take and
the subscriber's executor cost with no work at all; ``seg_node``'s overhead above it is the node's
own (its worker's wait, conversion, the hand-over between its stages, building the outputs).

``python -m narrow_seg_ros.ros.echo_node --ros-args -r __ns:=NAMESPACE`` (bench-node puts it in
``/bench_floor``, apart from seg_node's ``image``); benchmark tooling, not a node to deploy."""

from __future__ import annotations

import sys
import threading

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from .image_cdr import image_cdr, read_image
from .pulled import FrameSignal, subscribe, take
from .runtime import run_node


def bench_qos() -> QoSProfile:
    """The QoS of bench-node's camera and subscriber, and of the echo node that answers them."""
    return QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)


class EchoNode(Node):
    def __init__(self) -> None:
        super().__init__("bench_echo")
        qos = bench_qos()
        self.pub = self.create_publisher(Image, "~/mask", qos)
        self.masks: dict[tuple[int, int], np.ndarray] = {}
        self.sub = subscribe(self, Image, "image", qos)
        self.signal = FrameSignal(self.context)
        self.running = True
        self.puller = threading.Thread(target=self._pull, name="bench_echo_pull", daemon=True)
        self.puller.start()

    def _pull(self) -> None:
        while self.running and self.context.ok():
            if (taken := take(self.sub)) is None:
                self.signal.wait([self.sub])
                continue
            try:
                self.answer(taken[0])
            except Exception:
                if self.context.ok():
                    raise  # else shutting down: the publisher went with the context

    def destroy_node(self):
        self.running = False
        self.signal.wake()
        self.puller.join(timeout=5)
        return super().destroy_node()

    def answer(self, data: bytes) -> None:
        frame = read_image(data)
        size = (frame.height, frame.width)
        mask = self.masks.get(size)
        if mask is None:
            mask = self.masks[size] = np.zeros(size, np.uint8)
        self.pub.publish(image_cdr(mask, "mono8", frame.header))


def main(args=None) -> int:
    return run_node(EchoNode, "bench_echo", args)


if __name__ == "__main__":
    sys.exit(main())
