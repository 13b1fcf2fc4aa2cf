"""Ctrl-C during a node's start-up: raised as usual, and also remembered.

A SIGINT raises KeyboardInterrupt wherever the main thread happens to be, and while modules load
that is sometimes a place which swallows it: importlib's module-lock weakref callback ("Exception
ignored in: <function _get_module_lock.<locals>.cb>") or a C extension's initialisation that clears
the error and goes on, or turns it into an unrelated ImportError (numpy's "PyCapsule_Import could
not import module 'datetime'"). Seen on this project's CI: an interrupted seg_node went on to load
its model and serve. The handler here records the interrupt before raising it, so the start-up can
ask afterwards whether one arrived, and a swallowed one is not reported as an error.

It stays installed for the node's life: rclpy's own handler (installed by ``rclpy.init``) calls it,
and replacing it after ``rclpy.init`` would remove rclpy's.
"""

import signal
import sys

_received = False


def install() -> None:
    """Record SIGINTs from now on (idempotent); a swallowed KeyboardInterrupt is not printed."""
    if signal.getsignal(signal.SIGINT) is _on_sigint:
        return
    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = _quiet_interrupts(sys.unraisablehook)


def received() -> bool:
    """Whether a SIGINT arrived since ``install()``, whether or not its exception got through."""
    return _received


def _on_sigint(signum, frame):
    global _received
    _received = True
    raise KeyboardInterrupt


def _quiet_interrupts(previous):
    def hook(unraisable):
        if not (_received and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            previous(unraisable)

    return hook
