"""``seg_node``: camera images in, segmentation masks out. A thin adapter over the engine.

With ``cameras`` set, one node serves several cameras with one model: camera ``front`` subscribes
``front/image`` and publishes ``~/front/mask`` and the rest, exactly as below; each cycle runs the
newest unprocessed frame of every camera as one network batch, so no camera waits for another's
backlog.

Subscribes ``image`` (sensor_msgs/Image) or ``image/compressed`` (sensor_msgs/CompressedImage)
with sensor-data QoS (REP-2003; reliability and depth settable) and the camera's ``camera_info``
beside it (image_transport's convention), runs :class:`narrow_seg_ros.inference.engine.Segmenter`
in a worker thread on the newest frame only (stale frames are dropped and counted), and publishes
``~/mask`` (mono8 class ids, 255 = unlabeled) and ``~/mask/compressed`` (lossless PNG),
``~/color_mask`` and ``~/overlay`` (rgb8), ``~/confidence`` (mono8), ``~/camera_info`` (the
camera's, scaled to the masks), every output with the input header unchanged and at the size
``output_size`` chooses; and the latched ``~/label_info`` (vision_msgs/LabelInfo, where
vision_msgs is installed) and ``~/label_info_json``. Outputs nobody subscribes to are not
computed. Health goes to ``/diagnostics`` and to a periodic one-line log.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from ..devices import DEVICE_NAMES, is_device_name
from ..inference.requests import Request
from ..resources import DEFAULT_MODEL, SHIPPED_MODELS
from .camera_channel import CameraChannel, LabelInfo, decode, deserialize, parse_cameras
from .camera_info import parse_output_size
from .image_conversion import MAX_PIXELS, ImageConversionError
from .runtime import run_node

# name: (default, description, read_only, extra descriptor fields)
PARAMETERS = {
    "weights": ("", "weights file (.pt) or exported .onnx; empty = the shipped weights of `model`", True, {}),
    "model": (DEFAULT_MODEL, f"shipped model used when `weights` is empty: {', '.join(SHIPPED_MODELS)}", True, {}),
    "backend": ("auto", "auto, torch or onnxruntime", True, {}),
    "device": ("auto", "auto, cpu, cuda, cuda:N", True, {}),
    "provider": (
        "auto",
        "onnxruntime provider: auto (TensorRT, then CUDA, on a CUDA device), tensorrt, cuda or cpu",
        True,
        {},
    ),
    "fp16": (False, "half precision on CUDA", True, {}),
    "input_width": (
        0,
        "network input width; 0 = the weights' training size",
        True,
        {"integer_range": [IntegerRange(from_value=0, to_value=8192, step=0)]},
    ),
    "input_height": (
        0,
        "network input height; 0 = the weights' training size",
        True,
        {"integer_range": [IntegerRange(from_value=0, to_value=8192, step=0)]},
    ),
    "resize_mode": ("stretch", "stretch or keep_aspect (padding, undone exactly on output)", True, {}),
    "threads": (
        0,
        "CPU threads for the backend; 0 = library default",
        True,
        {"integer_range": [IntegerRange(from_value=0, to_value=256, step=0)]},
    ),
    "cameras": (
        "",
        "several cameras in one node, one model: names (a list, or comma-separated), each subscribing "
        "<name>/image and publishing ~/<name>/mask etc.; name:compressed or name:raw sets its transport; "
        "empty = one camera on image",
        True,
        {"dynamic_typing": True},
    ),
    "use_compressed": (False, "subscribe image/compressed (jpeg/png) instead of image", True, {}),
    "max_image_pixels": (
        MAX_PIXELS,
        "input frames (raw, or as a compressed image's header declares) larger than this many pixels are "
        "refused before they are decoded or allocated",
        True,
        {"integer_range": [IntegerRange(from_value=1, to_value=2**31 - 1, step=0)]},
    ),
    "qos_reliability": ("best_effort", "subscription reliability: best_effort or reliable", True, {}),
    "qos_depth": (
        5,
        "subscription queue depth",
        True,
        {"integer_range": [IntegerRange(from_value=1, to_value=1000, step=0)]},
    ),
    "output_size": (
        "camera",
        "size of every output: camera (the image's), network (its input size), reference (the size "
        "on reference/camera_info, e.g. a depth camera's) or WxH",
        True,
        {},
    ),
    "confidence_rule": ("max", "~/confidence: max (max softmax probability) or margin (top-1 - top-2)", True, {}),
    "confidence_threshold": (
        0.0,
        "pixels whose confidence is below this become 255 (unlabeled) in ~/mask; 0 = off (LabelInfo's threshold)",
        True,
        {"floating_point_range": [FloatingPointRange(from_value=0.0, to_value=1.0, step=0.0)]},
    ),
    "label_groups": ("", "YAML file grouping the model's classes; ~/mask and ~/label_info then carry groups", True, {}),
    "label_info_period": (
        1.0,
        "seconds between re-sent ~/label_info messages (stamped with the latest frame); 0 = once",
        True,
        {"floating_point_range": [FloatingPointRange(from_value=0.0, to_value=3600.0, step=0.0)]},
    ),
    "publish_color": (True, "compute and publish ~/color_mask", False, {}),
    "publish_overlay": (True, "compute and publish ~/overlay", False, {}),
    "publish_confidence": (False, "compute and publish ~/confidence", False, {}),
    "overlay_alpha": (
        0.5,
        "weight of the color mask in ~/overlay",
        False,
        {"floating_point_range": [FloatingPointRange(from_value=0.0, to_value=1.0, step=0.0)]},
    ),
    "diagnostics_period": (
        1.0,
        "seconds between /diagnostics messages",
        True,
        {"floating_point_range": [FloatingPointRange(from_value=0.1, to_value=60.0, step=0.0)]},
    ),
    "log_period": (
        10.0,
        "seconds between one-line status logs; 0 = never",
        True,
        {"floating_point_range": [FloatingPointRange(from_value=0.0, to_value=3600.0, step=0.0)]},
    ),
}
CHOICES = {
    "backend": ("auto", "torch", "onnxruntime"),
    "provider": ("auto", "tensorrt", "cuda", "cpu"),
    "resize_mode": ("stretch", "keep_aspect"),
    "qos_reliability": ("best_effort", "reliable"),
    "model": tuple(SHIPPED_MODELS),
    "confidence_rule": ("max", "margin"),
}


class ConfigurationError(ValueError):
    """Bad parameters: the node refuses to start, with one clear message."""


class SegNode(Node):
    def __init__(self, segmenter_factory=None, **kwargs):
        super().__init__("seg_node", **kwargs)
        for name, (default, description, read_only, extra) in PARAMETERS.items():
            self.declare_parameter(
                name, default, ParameterDescriptor(description=description, read_only=read_only, **extra)
            )
        self.params = {name: self.get_parameter(name).value for name in PARAMETERS}
        self._validate(self.params)
        self.output_size = parse_output_size(self.params["output_size"])
        self.segmenter = (segmenter_factory or build_segmenter)(self.params)
        self.groups = build_groups(self.params, self.segmenter)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.params["qos_depth"],
            reliability=ReliabilityPolicy.RELIABLE
            if self.params["qos_reliability"] == "reliable"
            else ReliabilityPolicy.BEST_EFFORT,
            durability=qos_profile_sensor_data.durability,
        )
        named = parse_cameras(self.params["cameras"], self.params["use_compressed"])
        self.cameras = [CameraChannel(self, n, c, qos) for n, c in named or [("", self.params["use_compressed"])]]
        labels = label_info_json(self.segmenter, self.groups)
        for camera in self.cameras:
            camera.publish_labels(self._label_names(), float(self.params["confidence_threshold"]), labels)
            if self.output_size == "reference":
                camera.subscribe_reference(qos)
        if LabelInfo is not None and self.params["label_info_period"] > 0:
            self.create_timer(self.params["label_info_period"], self._publish_label_info)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(0.25, self._update_subscriptions)

        # the cameras' newest-frame slots, shared with the worker
        self._lock = threading.Condition()
        self._running = True
        self._last_error_log: dict[str, float] = {}
        self._worker = threading.Thread(target=self._work, name="seg_worker", daemon=True)
        self._worker.start()
        self.create_timer(self.params["diagnostics_period"], self._publish_diagnostics)
        if self.params["log_period"] > 0:
            self.create_timer(self.params["log_period"], self._log_status)
        self._log_ready()

    def _log_ready(self) -> None:
        label_topics = "~/label_info (vision_msgs/LabelInfo) and " if LabelInfo is not None else ""
        self.get_logger().info(f"labels on {label_topics}~/label_info_json (std_msgs/String, JSON with colors)")
        h, w = self.segmenter.input_size
        topics = ", ".join(f"{c.image_topic} and {c.info_topic}" for c in self.cameras)
        self.get_logger().info(
            f"ready: {self.segmenter.source}, {self.segmenter.describe()}, input {h}x{w} (HxW); subscribes to {topics} "
            f"({self.params['qos_reliability']}, depth {self.params['qos_depth']}) while an output has a subscriber"
        )

    # -------------------------------------------------------------------- parameters
    def _validate(self, p: dict) -> None:
        for name, choices in CHOICES.items():
            if p[name] not in choices:
                raise ConfigurationError(f"parameter {name}={p[name]!r} is not one of {', '.join(choices)}")
        if (p["input_width"] == 0) != (p["input_height"] == 0):
            raise ConfigurationError("set both input_width and input_height, or neither")
        device = p["device"]
        if not is_device_name(device):
            raise ConfigurationError(f"parameter device={device!r}: use {DEVICE_NAMES}")
        if p["fp16"] and device == "cpu":
            raise ConfigurationError("parameter fp16=true needs a CUDA device, but device=cpu")
        if not isinstance(p["cameras"], (str, list, tuple)):
            raise ConfigurationError(f"parameter cameras={p['cameras']!r}: give a list of names or one string")
        try:
            parse_output_size(p["output_size"])
            parse_cameras(p["cameras"], p["use_compressed"])
        except ValueError as exc:
            raise ConfigurationError(f"parameter {exc}") from exc

    def _on_set_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == "overlay_alpha" and not 0.0 <= param.value <= 1.0:
                return SetParametersResult(successful=False, reason="overlay_alpha must be within [0, 1]")
        for param in params:
            if param.name in self.params:
                self.params[param.name] = param.value
        return SetParametersResult(successful=True)

    # -------------------------------------------------------------------- data path
    def _update_subscriptions(self) -> None:
        for camera in self.cameras:
            camera.update_subscription(self._on_image)

    def _label_names(self) -> list[str]:
        return self.groups.names if self.groups else self.segmenter.class_names

    def _publish_label_info(self) -> None:
        for camera in self.cameras:
            camera.publish_labels(self._label_names(), float(self.params["confidence_threshold"]))

    def _on_image(self, camera: CameraChannel, data: bytes) -> None:
        now = time.monotonic()
        camera.in_rate.tick(now)
        with self._lock:
            camera.stats["received"] += 1
            if camera.pending is not None:
                camera.stats["dropped"] += 1  # the worker is busy: keep only the newest frame
            camera.pending = (data, now)
            self._lock.notify()

    def _take_frames(self) -> list | None:
        """Wait for frames; then the newest unprocessed frame of every camera that has one, so a
        fast camera cannot starve a slow one. None when the node shuts down."""
        with self._lock:
            while self._running and not any(c.pending for c in self.cameras):
                self._lock.wait()
            if not self._running:
                return None
            jobs = [(camera, *camera.pending) for camera in self.cameras if camera.pending]
            for camera, _, _ in jobs:
                camera.pending = None
            return jobs

    def _work(self) -> None:
        while (jobs := self._take_frames()) is not None:
            frames = [f for f in (self._guarded(c, self._prepare, c, m, t) for c, m, t in jobs) if f]
            if not frames:
                continue
            results = self._guarded(frames, self.segmenter.segment_batch, [f.request for f in frames])
            for frame, result in zip(frames, results or (), strict=False):
                self._guarded(frame.camera, self._publish, frame, result)

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
            trace = traceback.format_exc()
            self._count(cameras, "failed", type(exc).__name__, f"frame failed: {type(exc).__name__}: {exc}\n{trace}")
        return None

    def _count(self, cameras, counter: str, key: str, text: str, errors: bool = True) -> None:
        now = time.monotonic()
        for camera in cameras:
            camera.stats[counter] += 1
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
        threshold = float(self.params["confidence_threshold"])
        request = Request(
            image,
            encoding,
            output_size=self._target_size(camera),
            confidence=wants["confidence"] or threshold > 0,
            color=wants["color"],
            overlay=wants["overlay"],
            overlay_alpha=float(self.params["overlay_alpha"]),
            confidence_rule=self.params["confidence_rule"],
        )
        return _Frame(camera, msg.header, received, wants, request)

    def _publish(self, frame: _Frame, result) -> None:
        mask = result.mask
        threshold = float(self.params["confidence_threshold"])
        if threshold > 0:
            mask = mask.copy()
            mask[result.confidence < round(threshold * 255)] = 255
        if self.groups is not None:
            mask = self.groups.apply(mask)
        frame.camera.publish(frame.header, mask, result, frame.wants)
        frame.camera.done(frame.received, result.timings["total_ms"])

    def _target_size(self, camera: CameraChannel) -> tuple[int, int] | None:
        """(H, W) of the outputs; None for the camera's own size. LookupError while the reference
        camera_info has not arrived."""
        if self.output_size == "camera":
            return None
        if self.output_size == "network":
            return tuple(self.segmenter.input_size)
        if self.output_size == "reference":
            info = camera.reference_info
            if info is None or not info.width:
                raise LookupError(f"no camera_info on {camera.reference_topic} yet: output_size=reference waits")
            return info.height, info.width
        return self.output_size

    def _throttled_error(self, key: str, text: str, period_s: float = 5.0) -> None:
        now = time.monotonic()
        if now - self._last_error_log.get(key, -1e9) >= period_s:
            self._last_error_log[key] = now
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
        worker = getattr(self, "_worker", None)  # absent when construction failed part-way
        if worker is not None:
            with self._lock:
                self._running = False
                self._lock.notify_all()
            worker.join(timeout=5)
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


def label_info_json(segmenter, groups=None) -> str:
    """Class (or group) ids, names and rgb colors; 255 is 'unlabeled' in ~/mask."""
    names, palette = (groups.names, groups.palette) if groups else (segmenter.class_names, segmenter.palette)
    classes = [{"id": i, "name": name, "color": [int(c) for c in palette[i]]} for i, name in enumerate(names)]
    return json.dumps({"classes": classes, "ignore_id": 255, "ignore_name": "unlabeled"})


def build_groups(params: dict, segmenter):
    if not params["label_groups"]:
        return None
    from ..inference.groups import load_groups

    try:
        return load_groups(params["label_groups"], segmenter.class_names, segmenter.palette)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc


def build_segmenter(params: dict):
    from ..inference.engine import Segmenter
    from ..resources import shipped_weights

    size = (params["input_height"], params["input_width"]) if params["input_width"] else None
    try:
        weights = params["weights"] or str(shipped_weights(params["model"], params["backend"] == "onnxruntime"))
        return Segmenter.from_weights(
            weights,
            backend=params["backend"],
            device=params["device"],
            fp16=params["fp16"],
            input_size=size,
            resize_mode=params["resize_mode"],
            threads=params["threads"] or None,
            provider=params["provider"],
        )
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    except ModuleNotFoundError as exc:
        from ..resources import TRAINING_MODULES, needs_training_tools

        if exc.name not in TRAINING_MODULES:
            raise
        raise ConfigurationError(f"weights {weights}: {needs_training_tools(exc.name)}") from exc


def main(args=None) -> int:
    usage = {name: (default, description) for name, (default, description, _, _) in PARAMETERS.items()}
    return run_node(SegNode, "seg_node", args, config_errors=(ConfigurationError,), usage=(__doc__, usage))


if __name__ == "__main__":
    sys.exit(main())
