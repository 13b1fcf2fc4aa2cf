"""Camera frames the node's worker pulls when it is free for them, instead of the executor taking
every frame as it arrives.

rclpy's executor takes each message of a subscription as soon as it arrives, copying it out of
DDS while it holds the interpreter lock. The node runs only each camera's newest frame, so at
4 cameras x 15 Hz of 1024x2048 frames the executor thread copied more frames than the worker used,
at 20 % of a core (docs/benchmarks.md; a take as the frame arrives cost up to 12 ms of CPU in a
bare test, a take from a frame that has waited in the reader 1.4 ms). A pulled subscription
belongs to a callback group the executor never runs: its reader keeps the newest frame alone (KEEP_LAST 1), and the worker takes it when the
network is free, so a frame that a newer one replaces is never copied at all. The publisher's
sequence numbers (where the middleware gives them, as Fast DDS does) say how many frames were
replaced or lost on the way.

rclpy's QoS event handlers cannot wait in the executor for such a subscription: an event's wait-set
condition is ready whenever a message waits in the reader (measured: an executor with one message
waiting and only the "incompatible QoS" handler in its wait set spun a full core), and a pulled
reader always holds its newest frame. So a pulled subscription has no event handlers, and its
"incompatible QoS" status is read when asked (``IncompatibleQoS``).
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from rclpy.callback_groups import CallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.qos import qos_policy_name_from_kind

try:  # Iron and later
    from rclpy.event_handler import QoSSubscriptionEventType, SubscriptionEventCallbacks, UnsupportedEventTypeError
except ImportError:  # Humble: the same names in qos_event
    from rclpy.qos_event import QoSSubscriptionEventType, SubscriptionEventCallbacks, UnsupportedEventTypeError

_EventHandle = getattr(_rclpy, "EventHandle", None) or _rclpy.QoSEvent  # Humble's name for it


class PulledGroup(CallbackGroup):
    """Subscriptions the executor neither waits on nor takes from: their owner takes their
    messages. Any QoS event handler in the group is held back too (see the module's docstring:
    in the executor they kept its thread spinning, multi-camera throughput 10 masks/s against 47)."""

    def can_execute(self, entity) -> bool:
        return False

    def beginning_execution(self, entity) -> bool:
        return False

    def ending_execution(self, entity) -> None:
        pass


def subscribe(node, msg_type, topic: str, qos):
    """A pulled subscription to serialized messages: in a ``PulledGroup``, without QoS event
    handlers (nothing would run them)."""
    return node.create_subscription(
        msg_type,
        topic,
        _never_called,
        qos,
        raw=True,
        callback_group=PulledGroup(),
        event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False),
    )


def _never_called(_message) -> None:
    """A pulled subscription's callback, which the executor never runs."""


class IncompatibleQoS:
    """A pulled subscription's "requested incompatible QoS" status (a publisher it cannot hear,
    e.g. a best-effort camera and a reliable subscription), read when asked."""

    def __init__(self, subscription):
        self.event = None
        try:
            with subscription.handle:
                self.event = _EventHandle(
                    subscription.handle, QoSSubscriptionEventType.RCL_SUBSCRIPTION_REQUESTED_INCOMPATIBLE_QOS
                )
        except UnsupportedEventTypeError:  # a middleware without the event: nothing to report
            pass

    def policy(self) -> str | None:
        """The name of the last incompatible policy when publishers were found incompatible since
        the last call, else None."""
        if self.event is None:
            return None
        try:
            with self.event:
                status = self.event.take_event()
        except InvalidHandle:
            return None
        if status is None or status.total_count_change <= 0:
            return None
        return qos_policy_name_from_kind(status.last_policy_kind)

    def destroy(self) -> None:
        if self.event is not None:
            self.event.destroy_when_not_in_use()
            self.event = None


# rmw's RMW_MESSAGE_INFO_SEQUENCE_NUMBER_UNSUPPORTED: a middleware without sequence numbers
_UNSUPPORTED = 2**64 - 1


class Arrivals:
    """How many frames a pulled subscription's publishers sent, from their sequence numbers: a
    publisher's frames are numbered one by one, so a gap is the frames a newer one replaced in the
    reader (or that were lost on the way)."""

    def __init__(self):
        self.last: dict[bytes, int] = {}  # publisher gid -> sequence number last taken

    def count(self, info: dict, publishers: int = 1) -> int:
        """Frames that arrived up to and including the one ``info`` describes: 1 where the
        middleware gives no sequence numbers, for a publisher's first frame taken, and where rclpy
        does not say which publisher sent it (Jazzy) while ``publishers`` is not 1."""
        sequence = info.get("publication_sequence_number")
        if not isinstance(sequence, int) or not 0 < sequence < _UNSUPPORTED:
            return 1
        gid = info.get("publisher_gid")
        if gid is None and publishers != 1:
            self.last.clear()  # numbers of different publishers must not be compared
            return 1
        key = bytes(gid.get("data", b"")) if gid else b""
        previous, self.last[key] = self.last.get(key), sequence
        return sequence - previous if previous is not None and sequence > previous else 1


def take(subscription) -> tuple[bytes, dict] | None:
    """The serialized message waiting in a pulled subscription's reader and its message info, or
    None (nothing waiting, or the subscription destroyed meanwhile)."""
    try:
        with subscription.handle:
            return subscription.handle.take_message(subscription.msg_type, True)
    except InvalidHandle:
        return None


def received_at(info: dict) -> float:
    """The monotonic time a frame reached the reader (its info's system-clock reception stamp), so
    that its latency counts the time it waited to be pulled."""
    now, stamp = time.monotonic(), info.get("received_timestamp") or 0
    return now - max(0.0, time.time_ns() - stamp) / 1e9 if stamp > 0 else now


class FrameSignal:
    """The worker's wait for frames: until a pulled subscription has a message, or ``wake`` is
    called (a video frame decoded, a subscription made, the node stopping); at most ``timeout_s``."""

    def __init__(self, context):
        self.context = context
        self.guard = GuardCondition(None, None, context=context)

    def wake(self) -> None:
        try:
            self.guard.trigger()
        except InvalidHandle:  # destroyed with the node: no worker left to wake
            pass

    def destroy(self) -> None:
        self.guard.destroy()

    def wait(self, subscriptions, timeout_s: float = 1.0) -> None:
        with ExitStack() as stack:
            try:
                stack.enter_context(self.context.handle)
                handles = []
                for subscription in subscriptions:
                    try:
                        stack.enter_context(subscription.handle)
                        handles.append(subscription.handle)
                    except InvalidHandle:  # destroyed since the worker looked: nothing to wait on
                        pass
                stack.enter_context(self.guard.handle)
                wait_set = _rclpy.WaitSet(len(handles), 1, 0, 0, 0, 0, self.context.handle)
                for handle in handles:
                    wait_set.add_subscription(handle)
                wait_set.add_guard_condition(self.guard.handle)
                wait_set.wait(int(timeout_s * 1e9))
            except (InvalidHandle, RuntimeError):
                if self.context.ok():
                    raise
                time.sleep(0.01)  # shutting down: the caller sees the context gone
