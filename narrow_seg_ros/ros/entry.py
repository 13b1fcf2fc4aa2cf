"""Console entry points of the nodes (``seg_node``, ``seg_lifecycle_node``, ``image_player``).

A Ctrl-C while a node's modules still load (rclpy, OpenCV, onnxruntime: the first half second or
so) would print a KeyboardInterrupt traceback from deep inside an import, or be swallowed there and
leave the node starting up (``sigint``). Here a Ctrl-C at any moment before the node serves exits
quietly with status 0; from then on the node's own handling takes over (``runtime.run_node``).
``python -m narrow_seg_ros.ros.entry seg_node --ros-args ...`` does the same.
"""

import importlib
import sys

from . import sigint


def _run(module: str) -> int:
    sigint.install()
    try:
        main = importlib.import_module(module).main
        return 0 if sigint.received() else main()
    except Exception:
        # an import that a SIGINT broke can fail with an unrelated error (numpy: ImportError)
        if sigint.received():
            return 0
        raise
    except KeyboardInterrupt:
        return 0


def seg_node() -> int:
    return _run("narrow_seg_ros.ros.seg_node")


def seg_lifecycle_node() -> int:
    """seg_node as a managed (lifecycle) node: ``narrow_seg_ros.ros.managed``."""
    return _run("narrow_seg_ros.ros.managed")


def image_player() -> int:
    return _run("narrow_seg_ros.ros.image_player")


if __name__ == "__main__":
    name = sys.argv.pop(1)
    commands = {"seg_node": seg_node, "seg_lifecycle_node": seg_lifecycle_node, "image_player": image_player}
    sys.exit(commands[name]())
