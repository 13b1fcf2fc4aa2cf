"""Console entry points of the nodes (``seg_node``, ``seg_lifecycle_node``, ``image_player``).

A Ctrl-C while a node's modules still load (rclpy, OpenCV, onnxruntime: the first half second or
so) would print a KeyboardInterrupt traceback from deep inside an import. Here SIGINT exits
quietly until the node module is loaded; from then on the node's own handling takes over
(``runtime.run_node``). ``python -m narrow_seg_ros.ros.entry seg_node --ros-args ...`` does the same.
"""

import signal
import sys

from ..exceptions import found_in_chain


def _load(module: str):
    previous = signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    try:
        return __import__(f"narrow_seg_ros.ros.{module}", fromlist=["main"]).main
    except ImportError as exc:
        if _interrupted(exc):  # the SIGINT landed inside a C extension's initialisation (rclpy's)
            sys.exit(0)
        raise
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted(exc: BaseException) -> bool:
    """Whether the exception was caused, anywhere down its chain, by the SystemExit above."""
    return found_in_chain(exc, SystemExit) is not None


def seg_node() -> int:
    return _load("seg_node")()


def seg_lifecycle_node() -> int:
    """seg_node as a managed (lifecycle) node: ``narrow_seg_ros.ros.managed``."""
    return _load("managed")()


def image_player() -> int:
    return _load("image_player")()


if __name__ == "__main__":
    name = sys.argv.pop(1)
    commands = {"seg_node": seg_node, "seg_lifecycle_node": seg_lifecycle_node, "image_player": image_player}
    sys.exit(commands[name]())
