"""Process entry shared by the package's executables: start, spin, shut down cleanly."""

from __future__ import annotations

import os
import signal
import sys

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

from . import sigint


def run_node(factory, name: str, args=None, config_errors: tuple = (ValueError,), usage=None) -> int:
    """Build the node with ``factory()``; bad configuration → one line on stderr and exit code 2.
    ``usage`` = (description, {parameter: (default, description)}): printed for ``-h``/``--help``."""
    argv = sys.argv[1:] if args is None else list(args)
    own = argv[: argv.index("--ros-args")] if "--ros-args" in argv else argv
    if usage is not None and ({"-h", "--help"} & set(own)):
        print_usage(name, *usage)
        return 0
    reuse_frame_memory()
    sigint.install()
    rclpy.init(args=args)
    try:
        node = factory()
    except (*config_errors, ParameterException) as exc:
        print(f"[{name}] FATAL: bad configuration: {exc}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):  # Ctrl-C while loading the model
        rclpy.try_shutdown()
        return 0
    except _rclpy.RCLError:  # Ctrl-C between rclpy.init and the node: its context is already down
        if rclpy.ok():
            raise
        return 0
    try:
        if not sigint.received():  # a Ctrl-C can be swallowed while the node loads (see sigint)
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException, SystemExit):
        pass
    except _rclpy.RCLError:
        # A signal's shutdown can land between two waits of the executor; rclpy then fails to build
        # the next wait set ("context is not valid") instead of raising ExternalShutdownException.
        if rclpy.ok():
            raise
    finally:
        # a terminal's Ctrl-C reaches the whole process group, and ros2 launch sends its own SIGINT
        # too: a second one must not interrupt the shutdown that the first one started
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def print_usage(name: str, description: str, parameters: dict) -> None:
    print(f"usage: ros2 run narrow_seg_ros {name} [--ros-args -p NAME:=VALUE ... -r FROM:=TO ...]\n")
    print((description or "").strip() + "\n\nparameters (default):")
    width = max(len(n) for n in parameters)
    for pname, (default, text) in parameters.items():
        print(f"  {pname:<{width}}  {text} ({default!r})")


def keep_dds_on_this_host() -> None:
    """For commands that start their own nodes (demo, bench-node): DDS discovery on this host and
    the project's Fast DDS profile (loopback UDP + shared memory), unless the caller chose others.
    Set before ``rclpy.init`` and inherited by the node processes. With Fast DDS's default
    transports the demo's node received 5 of 20 best-effort frames here, with this profile 20."""
    from ..dds import localhost_env

    for name, value in localhost_env().items():
        os.environ.setdefault(name, value)


def seg_node_command(*overrides: str, params_file: str | None = None) -> list[str]:
    """argv that starts ``seg_node`` in its own process with ``config/seg.yaml`` (or ``params_file``)
    and ``name:=value`` overrides; empty values are left out, since ``-p name:=`` does not parse."""
    from ..resources import share_file

    cmd = [
        sys.executable,
        "-m",
        "narrow_seg_ros.ros.entry",
        "seg_node",
        "--ros-args",
        "--params-file",
        params_file or str(share_file("config", "seg.yaml")),
    ]
    for item in overrides:
        if not item.endswith(":="):
            cmd += ["-p", item]
    return cmd


def reuse_frame_memory() -> None:
    """Keep freed frame-sized buffers in the heap for the next frame (glibc only; elsewhere a no-op).

    A frame's buffers (the serialized message rclpy takes, the outputs) are megabytes: glibc serves
    them with fresh mmap()s and returns them on free, so every frame page-faults its buffers in
    again. rclpy's take of a 6 MB frame (1024x2048 bgr8) cost 6-7 ms that way, 1.5-2.5 ms once the
    heap keeps them (docs/benchmarks.md), for the resident memory of a few frames. Buffers up to
    32 MB (glibc's largest threshold) come from the heap, and freed heap is returned to the system
    beyond 128 MB."""
    libc = _glibc()
    if libc is None:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    libc.mallopt(m_mmap_threshold, 32 << 20)
    libc.mallopt(m_trim_threshold, 128 << 20)


def return_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere a no-op):
    after a model is unloaded (a lifecycle cleanup), which the thresholds above would otherwise keep
    resident as free heap for frames that are no longer coming."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _glibc():
    """The process's C library where it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: libc's
        libc.mallopt, libc.malloc_trim  # noqa: B018 (AttributeError where they are absent)
    except (OSError, AttributeError):
        return None
    return libc
