"""``seg_lifecycle_node``: ``seg_node`` as a managed (lifecycle) node, for stacks that bring their
nodes up through a lifecycle manager (Nav2's ``nav2_lifecycle_manager``, ``ros2 lifecycle set``,
launch_ros lifecycle events). The node is named ``seg_node`` and has the plain node's parameters,
topics and outputs; what it does depends on its state:

- unconfigured (at start, and after cleanup): parameters declared, no model, no topics.
- configure: checks the parameters and loads the model; creates the output publishers. A bad
  configuration fails the transition with the one-line reason the plain node exits with, and the
  node stays unconfigured (alive: fix the parameters and configure again).
- inactive: model loaded, publishers there, nothing published, no camera subscribed.
- activate: label info out, the camera subscribed while an output has a subscriber (as the plain
  node does), masks published, diagnostics and the status log running.
- deactivate: back to inactive: no camera subscription, no inference, nothing published.
- cleanup: publishers destroyed and the model dropped (its memory released).
- shutdown, from any of them: whatever is running stops, the model is dropped; finalized.

The work of each transition is :class:`~.seg_node.SegNode`'s own steps (``_load``, ``_open``,
``_start``, ``_stop``, ``_close``, ``_unload``), which the plain node runs in its constructor.
"""

from __future__ import annotations

import sys
import traceback
import weakref

from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn

from ..inference.params import PARAMETERS
from .runtime import run_node
from .seg_node import ConfigurationError, SegNode

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class SegLifecycleNode(SegNode, LifecycleNode):
    """SegNode's data path under the lifecycle state machine (see the module's description)."""

    def __init__(self, segmenter_factory=None, **kwargs):
        LifecycleNode.__init__(self, "seg_node", **kwargs)  # not SegNode's: that one runs everything
        self._segmenter_factory = segmenter_factory
        self.segmenter = self.rules = None
        self.cameras = []
        self._declare_parameters()
        self.get_logger().info("unconfigured: waiting for a lifecycle manager to configure and activate")

    # ------------------------------------------------------------------ transitions
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self._load(self._segmenter_factory)
            self._open()
        except ConfigurationError as exc:
            self._unload()
            self.get_logger().error(f"bad configuration: {exc}")
            return FAILURE
        except Exception as exc:  # reported, not crashed on: the node stays unconfigured
            self._close()
            self._unload()
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            return FAILURE
        self.get_logger().info(f"inactive: {self.segmenter.source}, {self.segmenter.describe()} loaded")
        return SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        try:
            self._start()
        except Exception as exc:  # reported; the node stays inactive
            self._stop()
            self.get_logger().error(f"activate failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            return FAILURE
        return SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop()
        self.get_logger().info("inactive: camera unsubscribed, nothing published")
        return SUCCESS

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._close()
        self._unload()
        self.get_logger().info("unconfigured: model released")
        return SUCCESS

    def _unload(self) -> None:
        """SegNode's, and a warning if anything still holds the engine (its memory would stay)."""
        engine = weakref.ref(self.segmenter) if self.segmenter is not None else None
        super()._unload()
        if engine is not None and engine() is not None:
            self.get_logger().warning("the engine is still referenced after cleanup: its memory is not freed")

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._teardown()
        return SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self._teardown()
        return SUCCESS  # to unconfigured: the manager may configure again

    def _teardown(self) -> None:
        """Whatever the state: stop what runs, destroy the topics, drop the model."""
        if self._active_entities or self._worker is not None:
            self._stop()
        self._close()
        self._unload()

    @property
    def engine_loaded(self) -> bool:
        return self.segmenter is not None


def main(args=None) -> int:
    from .seg_node import __doc__ as description

    usage = {name: (param.default, param.description) for name, param in PARAMETERS.items()}
    return run_node(
        SegLifecycleNode,
        "seg_lifecycle_node",
        args,
        config_errors=(ConfigurationError,),
        usage=(f"{__doc__}\n{description}", usage),
    )


if __name__ == "__main__":
    sys.exit(main())
