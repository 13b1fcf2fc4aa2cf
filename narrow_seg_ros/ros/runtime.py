"""Process entry shared by the package's executables: start, spin, shut down cleanly."""

from __future__ import annotations

import sys

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException


def run_node(factory, name: str, args=None, config_errors: tuple = (ValueError,)) -> int:
    """Build the node with ``factory()``; bad configuration → one line on stderr and exit code 2."""
    rclpy.init(args=args)
    try:
        node = factory()
    except (*config_errors, ParameterException) as exc:
        print(f"[{name}] FATAL: bad configuration: {exc}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException, SystemExit):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def seg_node_command(*overrides: str, params_file: str | None = None) -> list[str]:
    """argv that starts ``seg_node`` in its own process with ``config/seg.yaml`` (or ``params_file``)
    and ``name:=value`` overrides; empty values are left out, since ``-p name:=`` does not parse."""
    from ..resources import share_file

    cmd = [
        sys.executable,
        "-m",
        "narrow_seg_ros.ros.seg_node",
        "--ros-args",
        "--params-file",
        params_file or str(share_file("config", "seg.yaml")),
    ]
    for item in overrides:
        if not item.endswith(":="):
            cmd += ["-p", item]
    return cmd
