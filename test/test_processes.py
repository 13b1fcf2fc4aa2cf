"""The one way commands and tests run node processes: output kept without blocking, a dead process
reported with its output, every process stopped however the job ends."""

import sys
import time

import pytest

from narrow_seg_ros.ros.processes import NodeExited, NodeProcesses, stop_process


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_process_that_exits_is_reported_with_its_output():
    with NodeProcesses() as procs:
        proc = procs.start(python("import sys; print('FATAL: bad configuration'); sys.exit(2)"), "seg_node")
        proc.wait(timeout=30)
        with pytest.raises(NodeExited, match=r"seg_node exited with code 2:\nFATAL: bad configuration"):
            procs.check_running()


def test_a_chatty_process_never_blocks_on_its_output():
    """A pipe nobody reads holds 64 KiB; a node logging more would stall. 1 MB here."""
    with NodeProcesses() as procs:
        proc = procs.start(python("print('x' * 1_000_000)"))
        assert proc.wait(timeout=30) == 0
        assert procs.output(proc).endswith("x\n") and len(procs.output(proc)) == 2000


def test_every_process_is_stopped_on_leaving_even_on_error():
    started = []
    with pytest.raises(RuntimeError, match="the job failed"):
        with NodeProcesses() as procs:
            started += [procs.start(python("import time; time.sleep(600)")) for _ in range(2)]
            raise RuntimeError("the job failed")
    assert all(proc.poll() is not None for proc in started)


def test_stop_kills_a_process_that_ignores_sigterm():
    with NodeProcesses() as procs:
        code = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
        proc = procs.start(python(code))
        while "up" not in procs.output(proc):
            assert proc.poll() is None
            time.sleep(0.05)
        stop_process(proc, timeout=0.5)
        assert proc.returncode == -9
