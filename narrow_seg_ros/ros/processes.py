"""Node processes that a command starts for one job (demo, soak, benchmarks, tests): seg_node and
players, started, waited for until ready, and stopped however the job ends."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable

STOP_TIMEOUT_S = 15.0  # SIGTERM, then SIGKILL: a node under load has needed seconds to shut down
OUTPUT_TAIL_CHARS = 2000


class NodeExited(RuntimeError):
    """A process the job needs exited (with its output's tail), or never became ready."""


def stop_process(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM (the node's clean shutdown), SIGKILL if it is still there after ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class NodeProcesses:
    """``with NodeProcesses() as procs: node = procs.start(argv)`` ... every process started is
    stopped on leaving, in reverse order (players before the node they feed). Output goes to a
    temporary file, never a pipe: a pipe nobody reads fills up and blocks a node that logs."""

    def __init__(self) -> None:
        self._started: list[tuple[str, subprocess.Popen, object]] = []

    def __enter__(self) -> NodeProcesses:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, argv: list[str], name: str | None = None, show_output: bool = False) -> subprocess.Popen:
        """Start ``argv``; its output is kept for errors, or shown on this terminal (``show_output``)."""
        log = None if show_output else tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT if log else None, text=True)
        self._started.append((name or _name_of(argv), proc, log))
        return proc

    @property
    def pids(self) -> list[int]:
        return [proc.pid for _, proc, _ in self._started]

    def output(self, proc: subprocess.Popen) -> str:
        """The last characters a started process wrote (empty where it wrote to the terminal)."""
        for _, started, log in self._started:
            if started is proc and log is not None:
                log.flush()
                log.seek(0)
                return log.read()[-OUTPUT_TAIL_CHARS:]
        return ""

    def check_running(self, procs: Iterable[subprocess.Popen] | None = None) -> None:
        """NodeExited for the first of ``procs`` (default: all started) that has exited."""
        wanted = None if procs is None else list(procs)
        for name, proc, _ in self._started:
            if (wanted is None or any(proc is p for p in wanted)) and proc.poll() is not None:
                tail = self.output(proc)  # empty where it wrote to the terminal, just above
                raise NodeExited(f"{name} exited with code {proc.returncode}" + (f":\n{tail}" if tail else ""))

    def wait_until(self, ready: Callable[[], bool], node, timeout: float, what: str, procs=None) -> None:
        """Spin ``node`` until ``ready()``; NodeExited if one of ``procs`` exits first, or at ``timeout``."""

        def settled() -> bool:
            self.check_running(procs)
            return ready()

        if not spin_until(node, settled, timeout, period=0.1):
            raise NodeExited(f"{what}: not within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop every process still running, the last started first."""
        while self._started:
            _, proc, log = self._started.pop()
            stop_process(proc)
            if log is not None:
                log.close()


def spin_until(node, done: Callable[[], bool], timeout: float, period: float = 0.05) -> bool:
    """Spin ``node`` until ``done()`` holds or ``timeout`` seconds pass; whether it holds."""
    import rclpy

    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        rclpy.spin_once(node, timeout_sec=period)
    return True


def _name_of(argv: list[str]) -> str:
    """``seg_node`` or ``image_player`` as named in the command, else its program."""
    for word in ("seg_node", "image_player", "seg_lifecycle_node"):
        if any(word in part for part in argv[:6]):
            return word
    return argv[0]
