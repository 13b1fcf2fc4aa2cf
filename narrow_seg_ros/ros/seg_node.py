"""``seg_node``: camera images in, segmentation masks out. A thin adapter over the engine.

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
from collections import deque

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from ..resources import DEFAULT_MODEL, SHIPPED_MODELS
from .camera_info import parse_output_size, scale_camera_info
from .image_conversion import (
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
    numpy_to_compressed,
    numpy_to_image,
)
from .runtime import run_node

try:  # on any ROS install; the pip-only set-up lacks it and publishes the JSON form alone
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError:
    LabelInfo = VisionClass = None

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
    "use_compressed": (False, "subscribe image/compressed (jpeg/png) instead of image", True, {}),
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


class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window_s: float = 5.0):
        self.window_s, self.stamps = window_s, deque()

    def tick(self, now: float) -> None:
        self.stamps.append(now)

    def rate(self, now: float) -> float:
        while self.stamps and now - self.stamps[0] > self.window_s:
            self.stamps.popleft()
        if len(self.stamps) < 2:
            return 0.0
        return (len(self.stamps) - 1) / max(1e-9, self.stamps[-1] - self.stamps[0])


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

        self.pub_mask = self.create_publisher(Image, "~/mask", 1)
        self.pub_mask_png = self.create_publisher(CompressedImage, "~/mask/compressed", 1)
        self.pub_color = self.create_publisher(Image, "~/color_mask", 1)
        self.pub_overlay = self.create_publisher(Image, "~/overlay", 1)
        self.pub_confidence = self.create_publisher(Image, "~/confidence", 1)
        self.pub_camera_info = self.create_publisher(CameraInfo, "~/camera_info", 1)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
            history=HistoryPolicy.KEEP_LAST,
        )
        self.pub_label_json = self.create_publisher(String, "~/label_info_json", latched)
        self.pub_label_json.publish(String(data=label_info_json(self.segmenter, self.groups)))
        self.pub_label_info = None
        if LabelInfo is not None:
            self.pub_label_info = self.create_publisher(LabelInfo, "~/label_info", latched)
            self._publish_label_info(None)
            if self.params["label_info_period"] > 0:
                self.create_timer(self.params["label_info_period"], lambda: self._publish_label_info(self._last_header))
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.params["qos_depth"],
            reliability=ReliabilityPolicy.RELIABLE
            if self.params["qos_reliability"] == "reliable"
            else ReliabilityPolicy.BEST_EFFORT,
            durability=qos_profile_sensor_data.durability,
        )
        # the camera is subscribed only while some output has a subscriber (as image_proc does):
        # a 6 MB frame nobody needs is not even deserialised
        self._image_qos = qos
        self.image_type, name = (
            (CompressedImage, "image/compressed") if self.params["use_compressed"] else (Image, "image")
        )
        self.image_topic = self.resolve_topic_name(name)
        self.sub = self.sub_info = None
        # image_transport's convention: camera_info beside the (resolved, remapped) image topic
        base = self.image_topic.removesuffix("/compressed")
        self.info_topic = f"{base.rsplit('/', 1)[0]}/camera_info"
        self.camera_info = self.reference_info = self._last_header = None
        if self.output_size == "reference":
            self.create_subscription(CameraInfo, "reference/camera_info", self._on_reference_info, qos)
        self.create_timer(0.25, self._update_subscription)

        # newest-frame slot shared with the worker
        self._lock = threading.Condition()
        self._pending = None
        self._running = True
        self.stats = {"received": 0, "processed": 0, "dropped": 0, "invalid": 0, "failed": 0}
        self._in_rate, self._out_rate, self._error_rate = RateMeter(), RateMeter(), RateMeter()
        self._latency_ms = deque(maxlen=100)
        self._engine_ms = deque(maxlen=100)
        self._last_error_log: dict[str, float] = {}
        self._worker = threading.Thread(target=self._work, name="seg_worker", daemon=True)
        self._worker.start()
        self.create_timer(self.params["diagnostics_period"], self._publish_diagnostics)
        if self.params["log_period"] > 0:
            self.create_timer(self.params["log_period"], self._log_status)
        label_topics = "~/label_info (vision_msgs/LabelInfo) and " if self.pub_label_info else ""
        self.get_logger().info(f"labels on {label_topics}~/label_info_json (std_msgs/String, JSON with colors)")
        self.get_logger().info(
            f"ready: {self.segmenter.describe()}, input {self.segmenter.input_size[0]}x{self.segmenter.input_size[1]} (HxW); "
            f"subscribes to {self.image_topic} ({self.params['qos_reliability']}, depth {self.params['qos_depth']}) "
            f"and {self.info_topic} while an output has a subscriber"
        )

    # -------------------------------------------------------------------- parameters
    def _validate(self, p: dict) -> None:
        for name, choices in CHOICES.items():
            if p[name] not in choices:
                raise ConfigurationError(f"parameter {name}={p[name]!r} is not one of {', '.join(choices)}")
        if (p["input_width"] == 0) != (p["input_height"] == 0):
            raise ConfigurationError("set both input_width and input_height, or neither")
        device = p["device"]
        if not (device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
            raise ConfigurationError(f"parameter device={device!r}: use auto, cpu, cuda or cuda:N")
        if p["fp16"] and device == "cpu":
            raise ConfigurationError("parameter fp16=true needs a CUDA device, but device=cpu")
        try:
            parse_output_size(p["output_size"])
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
    def _outputs(self):
        return (self.pub_mask, self.pub_mask_png, self.pub_color, self.pub_overlay, self.pub_confidence,
                self.pub_camera_info)  # fmt: skip

    def listened(self) -> bool:
        return any(p.get_subscription_count() > 0 for p in self._outputs())

    def _update_subscription(self) -> None:
        wanted = self.listened()
        if wanted and self.sub is None:
            self.sub = self.create_subscription(self.image_type, self.image_topic, self._on_image, self._image_qos)
            self.sub_info = self.create_subscription(CameraInfo, self.info_topic, self._on_camera_info, self._image_qos)
        elif not wanted and self.sub is not None:
            self.destroy_subscription(self.sub)
            self.destroy_subscription(self.sub_info)
            self.sub = self.sub_info = None
            self._reset_window()

    def _reset_window(self) -> None:
        """Rates and latencies describe recent work: an idle node reports none."""
        self._in_rate, self._out_rate, self._error_rate = RateMeter(), RateMeter(), RateMeter()
        self._latency_ms.clear()
        self._engine_ms.clear()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg

    def _on_reference_info(self, msg: CameraInfo) -> None:
        self.reference_info = msg

    def _publish_label_info(self, header) -> None:
        names = self.groups.names if self.groups else self.segmenter.class_names
        msg = LabelInfo(threshold=float(self.params["confidence_threshold"]))
        if header is not None:
            msg.header = header
        msg.class_map = [VisionClass(class_id=i, class_name=name) for i, name in enumerate(names)]
        self.pub_label_info.publish(msg)

    def _on_image(self, msg) -> None:
        now = time.monotonic()
        self._in_rate.tick(now)
        with self._lock:
            self.stats["received"] += 1
            if self._pending is not None:
                self.stats["dropped"] += 1  # the worker is busy: keep only the newest frame
            self._pending = (msg, now)
            self._lock.notify()

    def _work(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and self._running:
                    self._lock.wait()
                if not self._running:
                    return
                msg, received = self._pending
                self._pending = None
            try:
                self._process(msg, received)
            except ImageConversionError as exc:
                self.stats["invalid"] += 1
                self._error_rate.tick(time.monotonic())
                self._throttled_error("invalid", f"dropped invalid frame: {exc}")
            except LookupError as exc:  # an input the outputs need has not arrived yet
                self.stats["dropped"] += 1
                self._throttled_error("waiting", f"dropped frame: {exc}")
            except Exception as exc:  # keep serving whatever one frame did
                self.stats["failed"] += 1
                self._error_rate.tick(time.monotonic())
                trace = traceback.format_exc()
                self._throttled_error(type(exc).__name__, f"frame failed: {type(exc).__name__}: {exc}\n{trace}")

    def _wanted(self, publisher, flag: str | None = None) -> bool:
        return (flag is None or self.params[flag]) and publisher.get_subscription_count() > 0

    def _target_size(self) -> tuple[int, int] | None:
        """(H, W) of the outputs; None for the camera's own size. ValueError while the reference
        camera_info has not arrived."""
        if self.output_size == "camera":
            return None
        if self.output_size == "network":
            return tuple(self.segmenter.input_size)
        if self.output_size == "reference":
            info = self.reference_info
            if info is None or not info.width:
                topic = self.resolve_topic_name("reference/camera_info")
                raise LookupError(f"no camera_info on {topic} yet: output_size=reference waits")
            return info.height, info.width
        return self.output_size

    def _process(self, msg, received: float) -> None:
        want_mask = self._wanted(self.pub_mask)
        want_png = self._wanted(self.pub_mask_png)
        want_info = self._wanted(self.pub_camera_info)
        want_color = self._wanted(self.pub_color, "publish_color")
        want_overlay = self._wanted(self.pub_overlay, "publish_overlay")
        want_conf = self._wanted(self.pub_confidence, "publish_confidence")
        if not (want_mask or want_png or want_info or want_color or want_overlay or want_conf):
            return  # nobody listens: compute nothing
        if isinstance(msg, CompressedImage):
            image, encoding = compressed_to_rgb(msg)
        else:
            image, encoding = image_to_rgb(msg)
        threshold = float(self.params["confidence_threshold"])
        result = self.segmenter.segment(
            image,
            encoding,
            output_size=self._target_size(),
            confidence=want_conf or threshold > 0,
            color=want_color,
            overlay=want_overlay,
            overlay_alpha=float(self.params["overlay_alpha"]),
            confidence_rule=self.params["confidence_rule"],
        )
        header = self._last_header = msg.header
        mask = result.mask
        if threshold > 0:
            mask = mask.copy()
            mask[result.confidence < round(threshold * 255)] = 255
        if self.groups is not None:
            mask = self.groups.apply(mask)
        if want_mask:
            self.pub_mask.publish(numpy_to_image(mask, "mono8", header))
        if want_png:  # lossless: a class mask must never go through JPEG
            self.pub_mask_png.publish(numpy_to_compressed(mask, "mono8", "png", header))
        if want_info and self.camera_info is not None:
            self.pub_camera_info.publish(scale_camera_info(self.camera_info, *mask.shape, header))
        if want_color:
            self.pub_color.publish(numpy_to_image(result.color, "rgb8", header))
        if want_overlay:
            self.pub_overlay.publish(numpy_to_image(result.overlay, "rgb8", header))
        if want_conf:
            self.pub_confidence.publish(numpy_to_image(result.confidence, "mono8", header))
        now = time.monotonic()
        self.stats["processed"] += 1
        self._out_rate.tick(now)
        self._latency_ms.append((now - received) * 1e3)
        self._engine_ms.append(result.timings["total_ms"])

    def _throttled_error(self, key: str, text: str, period_s: float = 5.0) -> None:
        now = time.monotonic()
        if now - self._last_error_log.get(key, -1e9) >= period_s:
            self._last_error_log[key] = now
            self.get_logger().error(text)

    # -------------------------------------------------------------------- health
    def health(self) -> dict:
        now = time.monotonic()
        mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
        return {
            "input_rate_hz": round(self._in_rate.rate(now), 2),
            "processed_rate_hz": round(self._out_rate.rate(now), 2),
            "error_rate_hz": round(self._error_rate.rate(now), 2),
            "latency_ms": round(mean(self._latency_ms), 1),
            "engine_ms": round(mean(self._engine_ms), 1),
            **self.stats,
            "backend": self.segmenter.describe(),
        }

    def _publish_diagnostics(self) -> None:
        h = self.health()
        status = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: segmentation", hardware_id="")
        status.level, status.message = diagnose(h, self.sub is not None, self.image_topic)
        status.values = [KeyValue(key=k, value=str(v)) for k, v in h.items()]
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self.pub_diagnostics.publish(array)

    def _log_status(self) -> None:
        h = self.health()
        if self.sub is None:
            self.get_logger().info(f"idle: no subscribers to any output (processed {h['processed']} frames so far)")
            return
        self.get_logger().info(
            f"in {h['input_rate_hz']:.1f} Hz, out {h['processed_rate_hz']:.1f} Hz, latency {h['latency_ms']:.0f} ms "
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

    weights = params["weights"] or str(shipped_weights(params["model"]))
    size = (params["input_height"], params["input_width"]) if params["input_width"] else None
    try:
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


def main(args=None) -> int:
    usage = {name: (default, description) for name, (default, description, _, _) in PARAMETERS.items()}
    return run_node(SegNode, "seg_node", args, config_errors=(ConfigurationError,), usage=(__doc__, usage))


if __name__ == "__main__":
    sys.exit(main())
