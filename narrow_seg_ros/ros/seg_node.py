"""``seg_node``: camera images in, segmentation masks out. A thin adapter over the engine.

With ``cameras`` set, one node serves several cameras with one model: camera ``front`` subscribes
``front/image`` and publishes ``~/front/mask`` and the rest, exactly as below; each cycle runs the
newest unprocessed frame of every camera as one network batch, so no camera waits for another's
backlog.

Subscribes ``image`` (sensor_msgs/Image) or ``image/compressed`` (sensor_msgs/CompressedImage)
with sensor-data QoS (REP-2003; reliability settable; the reader keeps the newest frame alone,
which the worker pulls when the network is free for it: ros/pulled.py) and the camera's
``camera_info`` beside it (image_transport's convention), runs :class:`narrow_seg_ros.inference.engine.Segmenter`
on the newest frame only (stale frames are dropped and counted) in two threads, the network of one
batch beside the post-processing and publishing of the one before it, and publishes
``~/mask`` (mono8 class ids, 255 = unlabeled) and ``~/mask/compressed`` (lossless PNG),
``~/color_mask`` and ``~/overlay`` (rgb8), ``~/confidence`` (mono8), ``~/camera_info`` (the
camera's, scaled to the masks), every output with the input header unchanged and at the size
``output_size`` chooses; and the latched ``~/label_info`` (vision_msgs/LabelInfo, where
vision_msgs is installed) and ``~/label_info_json``. Outputs nobody subscribes to are not
computed. Health goes to ``/diagnostics`` and to a periodic one-line log.

The parameters (``inference/params.py``) and the rules that shape the mask from them
(``inference/rules.py``: output size, confidence threshold, label groups) are the engine's, read the
same way by ``narrow-seg infer --params-file``: a recording processed offline gets these masks.
"""

from __future__ import annotations

import gc
import json
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from ..inference import params as config
from ..inference.params import PARAMETERS, Param
from ..inference.requests import Request
from ..inference.rules import UNLABELED
from .camera_channel import CameraChannel, LabelInfo, decode, default_transport, deserialize, parse_cameras
from .camera_info import CameraInfoError, described_size
from .image_conversion import ImageConversionError
from .pulled import FrameSignal
from .runtime import return_free_memory, run_node


class ConfigurationError(ValueError):
    """Bad parameters: the node refuses to start, with one clear message."""


class SegNode(Node):
    def __init__(self, segmenter_factory=None, **kwargs):
        super().__init__("seg_node", **kwargs)
        self._declare_parameters()
        self._load(segmenter_factory)
        self._open()
        self._start()

    # -------------------------------------------------------------------- lifecycle steps
    # The plain node runs them all in its constructor; the managed node (managed.py) runs them
    # one per lifecycle transition: configure = _load + _open, activate = _start,
    # deactivate = _stop, cleanup = _close + _unload.
    def _declare_parameters(self) -> None:
        self.params: dict = {}
        self._active_entities: list = []
        self._configured_entities: tuple = ((), ())
        self._worker = None
        self._signal = FrameSignal(self.context)  # the worker's wake-up, for the node's lifetime
        for name, param in PARAMETERS.items():
            self.declare_parameter(name, param.default, descriptor(param))
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _load(self, segmenter_factory=None) -> None:
        """Parameters read and checked, the model loaded; ConfigurationError says what is wrong."""
        params = {name: self.get_parameter(name).value for name in PARAMETERS}
        self._validate(params)
        self.params = params
        self.segmenter = (segmenter_factory or build_segmenter)(self.params)
        self.rules = build_rules(self.params, self.segmenter)

    def _open(self) -> None:
        """The cameras' output publishers (and output_size=reference's camera_info subscriptions),
        /diagnostics: the node's topics exist, nothing is published yet."""
        publishers, subscriptions = set(self.publishers), set(self.subscriptions)
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.params["qos_depth"],
            reliability=ReliabilityPolicy.RELIABLE
            if self.params["qos_reliability"] == "reliable"
            else ReliabilityPolicy.BEST_EFFORT,
            durability=qos_profile_sensor_data.durability,
        )
        named = parse_cameras(self.params["cameras"], default_transport(self.params))
        self.cameras = [
            CameraChannel(self, n, t, qos, self._signal.wake)
            for n, t in named or [("", default_transport(self.params))]
        ]
        if self.rules.output_size == "reference":
            for camera in self.cameras:
                camera.subscribe_reference(qos)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._configured_entities = (
            [p for p in self.publishers if p not in publishers],
            [s for s in self.subscriptions if s not in subscriptions],
        )

    def _start(self) -> None:
        """Label info out; the timers (among them the one that subscribes a camera while an output
        has a subscriber) and the inference worker running."""
        timers = set(self.timers)
        # OpenCV logs a WARN line per broken PNG or JPEG, unthrottled (7,019 lines for 100,000 bad
        # frames); the node reports each refused frame itself, throttled
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        labels = label_info_json(self.segmenter, self.rules)
        for camera in self.cameras:
            camera.publish_labels(self._label_names(), self.rules.confidence_threshold, labels)
        if LabelInfo is not None and self.params["label_info_period"] > 0:
            self.create_timer(self.params["label_info_period"], self._publish_label_info)
        self.create_timer(0.25, self._update_subscriptions)

        self._running = True
        self._last_error_log: dict[str, float] = {}
        # two stages: the worker runs pre-process + network on batch k+1 while the publisher
        # post-processes and publishes batch k (numpy, OpenCV, numba and onnxruntime release the GIL)
        self._handoff: queue.Queue = queue.Queue()
        self._publisher = threading.Thread(target=self._publish_batches, name="seg_publisher", daemon=True)
        self._worker = threading.Thread(target=self._work, name="seg_worker", daemon=True)
        self._publisher.start()
        self._worker.start()
        self.create_timer(self.params["diagnostics_period"], self._publish_diagnostics)
        if self.params["log_period"] > 0:
            self.create_timer(self.params["log_period"], self._log_status)
        self._active_entities = [t for t in self.timers if t not in timers]
        self._log_ready()

    def _stop(self) -> None:
        """The reverse of _start: no timer, no worker, no camera subscription; frames waiting are
        dropped. Nothing is computed or published until the next _start."""
        for timer in self._active_entities:
            self.destroy_timer(timer)
        self._active_entities = []
        self._stop_worker()
        for camera in self.cameras:
            camera.unsubscribe()

    def _close(self) -> None:
        """The reverse of _open: the node's topics gone."""
        publishers, subscriptions = self._configured_entities
        for publisher in publishers:
            self.destroy_publisher(publisher)
        for subscription in subscriptions:
            self.destroy_subscription(subscription)
        self._configured_entities = ((), ())
        self.cameras = []

    def _unload(self) -> None:
        """The reverse of _load: the engine (and the memory its model holds) released."""
        self.segmenter = self.rules = None
        gc.collect()
        return_free_memory()

    def _stop_worker(self) -> None:
        worker, self._worker = getattr(self, "_worker", None), None  # absent when construction failed part-way
        if worker is not None:
            self._running = False
            self._signal.wake()
            worker.join(timeout=5)
            self._handoff.put(None)  # after the worker's last batch: the publisher ends behind it
            self._publisher.join(timeout=5)

    def _log_ready(self) -> None:
        label_topics = "~/label_info (vision_msgs/LabelInfo) and " if LabelInfo is not None else ""
        self.get_logger().info(f"labels on {label_topics}~/label_info_json (std_msgs/String, JSON with colors)")
        h, w = self.segmenter.input_size
        topics = ", ".join(f"{c.image_topic} and {c.info_topic}" for c in self.cameras)
        self.get_logger().info(
            f"ready: {self.segmenter.source}, {self.segmenter.describe()}, input {h}x{w} (HxW); subscribes to {topics} "
            f"({self.params['qos_reliability']}; images: the newest frame, camera_info and video: depth "
            f"{self.params['qos_depth']}) while an output has a subscriber"
        )

    # -------------------------------------------------------------------- parameters
    def _validate(self, p: dict) -> None:
        try:
            config.check(p)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        try:
            parse_cameras(p["cameras"], default_transport(p))
        except ValueError as exc:
            raise ConfigurationError(f"parameter {exc}") from exc

    def _on_set_parameters(self, params) -> SetParametersResult:
        for param in params:
            spec = PARAMETERS.get(param.name)
            problem = spec.problem(param.name, param.value) if spec else None
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        for param in params:
            if param.name in self.params:
                self.params[param.name] = param.value
        return SetParametersResult(successful=True)

    # -------------------------------------------------------------------- data path
    def _update_subscriptions(self) -> None:
        for camera in self.cameras:
            camera.update_subscription()

    def _label_names(self) -> list[str]:
        return self.rules.labels(self.segmenter.class_names, self.segmenter.palette)[0]

    def _publish_label_info(self) -> None:
        for camera in self.cameras:
            camera.publish_labels(self._label_names(), self.rules.confidence_threshold)

    def _take_frames(self) -> list | None:
        """The newest frame of every camera that has one, so a fast camera cannot starve a slow
        one; waits until one has. None when the node stops."""
        while self._running and self.context.ok():
            try:
                jobs = [(camera, *frame) for camera in self.cameras if (frame := camera.take()) is not None]
                if jobs:
                    return jobs
                self._signal.wait([sub for c in self.cameras if c.pulled and (sub := c.sub) is not None])
            except Exception as exc:  # the middleware's; the worker must outlive it
                if self.context.ok():
                    self._throttled_error("take", f"taking frames failed: {type(exc).__name__}: {exc}")
                    time.sleep(0.1)
        return None

    def _work(self) -> None:
        """Stage one: frames → network, the logits handed to the publisher. The next frames are
        taken only once the publisher has picked up the last batch: at most one batch waits, and
        each frame is the newest one when the network is free for it."""
        while True:
            self._handoff.join()
            if (jobs := self._take_frames()) is None:
                return
            frames = [f for f in (self._guarded(c, self._prepare, c, m, t) for c, m, t in jobs) if f]
            if not frames:
                continue
            batch = self._guarded(frames, self.segmenter.infer, [f.request for f in frames])
            if batch is not None:
                self._handoff.put((frames, batch))

    def _publish_batches(self) -> None:
        """Stage two: each frame of a batch post-processed and published, one after another; a
        frame that fails costs only itself."""
        while (item := self._handoff.get()) is not None:
            self._handoff.task_done()  # picked up: the worker may take the next frames
            frames, batch = item
            for i, frame in enumerate(frames):
                result = self._guarded(frame.camera, self.segmenter.finish, batch, i)
                if result is not None:
                    self._guarded(frame.camera, self._publish, frame, result)
        self._handoff.task_done()

    def _guarded(self, cameras, function, *args):
        """``function(*args)``, or None after counting and logging its error against the camera(s):
        whatever one frame does, the node keeps serving."""
        cameras = cameras if isinstance(cameras, list) else [cameras]
        cameras = [getattr(c, "camera", c) for c in cameras]
        try:
            return function(*args)
        except ImageConversionError as exc:
            self._count(cameras, "invalid", "invalid", f"dropped invalid frame: {exc}")
        except LookupError as exc:  # an input the outputs need has not arrived yet
            self._count(cameras, "dropped", "waiting", f"dropped frame: {exc}", errors=False)
        except Exception as exc:
            if not self.context.ok():  # shutting down (Ctrl-C): the publishers went with the context
                return None
            trace = traceback.format_exc()
            self._count(cameras, "failed", type(exc).__name__, f"frame failed: {type(exc).__name__}: {exc}\n{trace}")
        return None

    def _count(self, cameras, counter: str, key: str, text: str, errors: bool = True) -> None:
        now = time.monotonic()
        for camera in cameras:
            camera.count(counter)
            if errors:
                camera.error_rate.tick(now)
        names = ", ".join(c.name for c in cameras if c.name)
        self._throttled_error(key, f"{names}: {text}" if names else text)

    def _prepare(self, camera: CameraChannel, data: bytes, received: float):
        """The engine request for one camera's serialized frame, or None when nobody listens."""
        wants = camera.wants(self.params)
        if not any(wants.values()):
            return None  # nobody listens: compute nothing
        msg = deserialize(camera, data)
        image, encoding = decode(msg, self.params["max_image_pixels"])
        request = self.rules.request(
            image,
            encoding,
            self._reference_size(camera),
            confidence=wants["confidence"],
            color=wants["color"],
            overlay=wants["overlay"],
            overlay_alpha=float(self.params["overlay_alpha"]),
        )
        return _Frame(camera, msg.header, received, wants, request)

    def _publish(self, frame: _Frame, result) -> None:
        camera = frame.camera
        refused = camera.publish(frame.header, result.mask, result, frame.wants, frame.request.image.shape[:2])
        camera.done(frame.received, result.timings["total_ms"])
        if refused is not None:  # the frame's other outputs went out: counted apart, not as failed
            camera.count("invalid_camera_info")
            prefix = f"{camera.name}: " if camera.name else ""
            text = f"{prefix}published without camera_info (on {camera.info_topic}): {refused}"
            self._throttled_error("camera_info", text, warn=True)

    def _reference_size(self, camera: CameraChannel) -> tuple[int, int] | None:
        """(H, W) on the camera's reference/camera_info with output_size=reference (the one size
        rule that follows a topic), else None: the engine applies the others. LookupError while
        that camera_info has not arrived, or while it is one ``described_size`` refuses or larger
        than ``max_image_pixels`` (2^32-1 x 2^32-1 would ask the engine for masks of that size)."""
        if self.rules.output_size != "reference":
            return None
        info = camera.reference_info
        if info is None:
            raise LookupError(f"no camera_info on {camera.reference_topic} yet: output_size=reference waits")
        try:  # a camera_info from the network: its fields checked, its size bounded as a frame's is
            (height, width), _, _ = described_size(info)
            if height * width > self.params["max_image_pixels"]:
                raise CameraInfoError(
                    f"it describes {width}x{height} (width x height), {height * width} pixels, over the limit of "
                    f"{self.params['max_image_pixels']} (max_image_pixels)"
                )
        except CameraInfoError as exc:
            camera.count("invalid_camera_info")
            raise LookupError(f"the camera_info on {camera.reference_topic} cannot size the outputs: {exc}") from None
        return height, width

    def _throttled_error(self, key: str, text: str, period_s: float = 5.0, warn: bool = False) -> None:
        now = time.monotonic()
        if now - self._last_error_log.get(key, -1e9) >= period_s:
            self._last_error_log[key] = now
            if warn:  # two call sites: rclpy refuses one call site logging at two severities
                self.get_logger().warning(text)
            else:
                self.get_logger().error(text)

    # -------------------------------------------------------------------- health
    def health(self, camera: CameraChannel | None = None) -> dict:
        """One camera's counters (the only camera's by default), with the backend."""
        return {**(camera or self.cameras[0]).health(), "backend": self.segmenter.describe()}

    def _publish_diagnostics(self) -> None:
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        for camera in self.cameras:
            h = self.health(camera)
            name = f"{self.get_fully_qualified_name()}: {camera.name or 'segmentation'}"
            status = DiagnosticStatus(name=name, hardware_id=camera.name)
            status.level, status.message = diagnose(h, camera.sub is not None, camera.image_topic)
            status.values = [KeyValue(key=k, value=str(v)) for k, v in h.items()]
            array.status.append(status)
        self.pub_diagnostics.publish(array)

    def _log_status(self) -> None:
        for camera in self.cameras:
            h, prefix = camera.health(), f"{camera.name}: " if camera.name else ""
            if camera.sub is None:
                self.get_logger().info(
                    f"{prefix}idle: no subscribers to any output (processed {h['processed']} frames so far)"
                )
                continue
            self.get_logger().info(
                f"{prefix}in {h['input_rate_hz']:.1f} Hz, out {h['processed_rate_hz']:.1f} Hz, latency {h['latency_ms']:.0f} ms "
                f"(engine {h['engine_ms']:.0f} ms), dropped {h['dropped']}, invalid {h['invalid']}, failed {h['failed']}"
            )

    def destroy_node(self):
        self._stop_worker()
        for camera in getattr(self, "cameras", []):  # absent when construction failed early
            camera.unsubscribe()  # video decoders stopped, QoS status handles freed
        if (signal := getattr(self, "_signal", None)) is not None:
            signal.destroy()
        return super().destroy_node()


@dataclass
class _Frame:
    """A camera's frame on its way through the batch."""

    camera: CameraChannel
    header: object
    received: float
    wants: dict
    request: Request


def diagnose(health: dict, subscribed: bool, image_topic: str) -> tuple[bytes, str]:
    """/diagnostics level and message: idle is fine; frames failing or invalid at a sustained rate
    (at least one in two, over the 5 s window) are an error; no images, or the model keeping up
    with fewer than half of them, a warning."""
    if not subscribed:
        return DiagnosticStatus.OK, "idle: no subscribers to any output"
    if health["error_rate_hz"] > 0 and health["error_rate_hz"] >= 0.5 * health["input_rate_hz"]:
        return DiagnosticStatus.ERROR, (
            f"frames failing or invalid: {health['error_rate_hz']:.1f} Hz of {health['input_rate_hz']:.1f} Hz "
            f"(invalid {health['invalid']}, failed {health['failed']}; see the log)"
        )
    if health["input_rate_hz"] == 0:
        return DiagnosticStatus.WARN, f"no images on {image_topic}"
    if health["processed_rate_hz"] < 0.5 * health["input_rate_hz"]:
        return DiagnosticStatus.WARN, "dropping most frames (model slower than camera)"
    return DiagnosticStatus.OK, "segmenting"


def label_info_json(segmenter, rules) -> str:
    """Class (or group) ids, names and rgb colors, and the mask's unlabeled value."""
    names, palette = rules.labels(segmenter.class_names, segmenter.palette)
    classes = [{"id": i, "name": name, "color": [int(c) for c in palette[i]]} for i, name in enumerate(names)]
    return json.dumps({"classes": classes, "ignore_id": UNLABELED, "ignore_name": "unlabeled"})


def descriptor(param: Param) -> ParameterDescriptor:
    """The ROS descriptor of a table entry: ROS then enforces its range (and read-only) itself."""
    extra = {}
    if param.bounds is not None:
        low, high = param.bounds
        if isinstance(param.default, float):
            extra["floating_point_range"] = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
        else:
            extra["integer_range"] = [IntegerRange(from_value=low, to_value=high, step=0)]
    return ParameterDescriptor(
        description=param.description, read_only=param.read_only, dynamic_typing=param.dynamic_typing, **extra
    )


def build_rules(params: dict, segmenter):
    try:
        return config.build_rules(params, segmenter)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc


def build_segmenter(params: dict):
    try:
        return config.build_segmenter(params)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    except ModuleNotFoundError as exc:
        from ..resources import TRAINING_MODULES, needs_training_tools

        if exc.name not in TRAINING_MODULES:
            raise
        raise ConfigurationError(f"weights {config.weights_file(params)}: {needs_training_tools(exc.name)}") from exc


def main(args=None) -> int:
    usage = {name: (param.default, param.description) for name, param in PARAMETERS.items()}
    return run_node(SegNode, "seg_node", args, config_errors=(ConfigurationError,), usage=(__doc__, usage))


if __name__ == "__main__":
    sys.exit(main())
