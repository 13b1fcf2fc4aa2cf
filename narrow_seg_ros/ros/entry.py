"""Console entry points of the nodes (``seg_node``, ``image_player``).

A Ctrl-C while a node's modules still load (rclpy, OpenCV, onnxruntime: the first half second or
so) would print a KeyboardInterrupt traceback from deep inside an import. Here SIGINT exits
quietly until the node module is loaded; from then on the node's own handling takes over
(``runtime.run_node``). ``python -m narrow_seg_ros.ros.entry seg_node --ros-args ...`` does the same.
"""

import signal
import sys


def _load(module: str):
    previous = signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    try:
        return __import__(f"narrow_seg_ros.ros.{module}", fromlist=["main"]).main
    finally:
        signal.signal(signal.SIGINT, previous)


def seg_node() -> int:
    return _load("seg_node")()


def image_player() -> int:
    return _load("image_player")()


if __name__ == "__main__":
    name = sys.argv.pop(1)
    sys.exit({"seg_node": seg_node, "image_player": image_player}[name]())
