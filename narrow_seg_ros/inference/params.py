"""seg_node's parameters without ROS, so that the node, ``narrow-seg infer`` and Python users read
one configuration the same way:

* :data:`PARAMETERS`: the one table of names, defaults, allowed values (choices, ranges) and
  descriptions; the node declares it, ``infer`` and the engine check options against it;
* :func:`read_params_file`: the values a ROS 2 parameter file gives the node;
* :func:`resolve`: defaults plus values, checked;
* :func:`build_segmenter` and :func:`build_rules`: the engine and output rules they configure.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..devices import DEVICE_NAMES, is_device_name
from ..resources import DEFAULT_MODEL, SHIPPED_MODELS
from ..ros.image_conversion import MAX_PIXELS
from .backends import PROVIDERS as ORT_PROVIDERS
from .rules import UNLABELED, OutputRules, parse_output_size

BACKENDS = ("auto", "torch", "onnxruntime")
PROVIDERS = ("auto", *ORT_PROVIDERS)
RESIZE_MODES = ("stretch", "keep_aspect")
CONFIDENCE_RULES = ("max", "margin")
RELIABILITIES = ("best_effort", "reliable")
# parameters every ROS 2 node declares: a parameter file may set them for seg_node too
ROS_OWN = ("use_sim_time", "start_type_description_service")


def _device(value) -> None:
    if not is_device_name(value):
        raise ValueError(f"device={value!r}: use {DEVICE_NAMES}")


def _cameras(value) -> None:
    # the names themselves are checked where the node parses them (camera_channel.parse_cameras)
    if not isinstance(value, (str, list, tuple)):
        raise ValueError(f"cameras={value!r}: give a list of names or one string")


def _output_size(value) -> None:
    parse_output_size(value)


# a camera's input transports (camera_channel.py subscribes them)
TRANSPORTS = ("raw", "compressed", "video")


def _transport(value) -> None:
    if value not in ("", *TRANSPORTS):
        raise ValueError(f"transport={value!r} is not one of {', '.join(TRANSPORTS)} (or empty)")


@dataclass(frozen=True)
class Param:
    """One parameter: its default (whose type is the parameter's), what it does, what it allows."""

    default: object
    text: str
    choices: tuple = ()
    bounds: tuple | None = None  # (low, high), inclusive
    check: Callable[[object], None] | None = None  # raises ValueError saying what is wrong
    read_only: bool = True
    dynamic_typing: bool = False  # any type (the check decides)

    @property
    def description(self) -> str:
        text = f"{self.text}: {' | '.join(self.choices)}" if self.choices else self.text
        return f"{text}; within [{self.bounds[0]}, {self.bounds[1]}]" if self.bounds else text

    def problem(self, name: str, value, types: bool = True) -> str | None:
        """What is wrong with ``value`` for this parameter, or None; ``types``: as strict as ROS
        (an integer is not a float parameter's value)."""
        if types and not self.dynamic_typing and type(value) is not type(self.default):
            return f"{name}={value!r} is {_kind(value)}, not {_kind(self.default)}"
        if self.choices and value not in self.choices:
            return f"{name}={value!r} is not one of {', '.join(self.choices)}"
        if self.bounds is not None and not self.bounds[0] <= value <= self.bounds[1]:
            return f"{name}={value!r} is outside [{self.bounds[0]}, {self.bounds[1]}]"
        if self.check is not None:
            try:
                self.check(value)
            except ValueError as exc:
                return str(exc)
        return None


def _kind(value) -> str:
    names = {bool: "a bool", int: "an integer", float: "a float (e.g. 1.0)", str: "a string"}
    return names.get(type(value), f"a {type(value).__name__}")


_SIZE = (0, 8192)
PARAMETERS = {
    "weights": Param("", "weights file (.pt) or exported .onnx; empty = the shipped weights of `model`"),
    "model": Param(DEFAULT_MODEL, "shipped model used when `weights` is empty", tuple(SHIPPED_MODELS)),
    "backend": Param("auto", "network backend", BACKENDS),
    "device": Param("auto", f"compute device: {DEVICE_NAMES}", check=_device),
    "provider": Param("auto", "onnxruntime provider (auto: TensorRT, then CUDA, on a CUDA device)", PROVIDERS),
    "fp16": Param(False, "half precision on CUDA"),
    "input_width": Param(0, "network input width; 0 = the weights' training size", bounds=_SIZE),
    "input_height": Param(0, "network input height; 0 = the weights' training size", bounds=_SIZE),
    "resize_mode": Param(
        "stretch", "how a frame fits the network input (keep_aspect pads; the padding is undone exactly)", RESIZE_MODES
    ),
    "threads": Param(0, "CPU threads for the backend; 0 = library default", bounds=(0, 256)),
    "cameras": Param(
        "",
        "several cameras in one node, one model: names (a list, or comma-separated), each subscribing "
        "<name>/image and publishing ~/<name>/mask etc.; name:compressed or name:raw sets its transport; "
        "empty = one camera on image",
        check=_cameras,
        dynamic_typing=True,
    ),
    "use_compressed": Param(False, "subscribe image/compressed (jpeg/png) instead of image"),
    "transport": Param(
        "",
        "input of cameras that name none: raw (image), compressed (image/compressed, jpeg/png) or video "
        "(image/foxglove, foxglove_msgs/CompressedVideo h264/h265); empty = as use_compressed says",
        check=_transport,
    ),
    "max_image_pixels": Param(
        MAX_PIXELS,
        "input frames (raw, or as a compressed image's header declares) larger than this many pixels are "
        "refused before they are decoded or allocated",
        bounds=(1, 2**31 - 1),
    ),
    "qos_reliability": Param("best_effort", "subscription reliability", RELIABILITIES),
    "qos_depth": Param(
        5,
        "queue depth of the camera_info and video subscriptions (image subscriptions keep the newest frame alone)",
        bounds=(1, 1000),
    ),
    "output_size": Param(
        "camera",
        "size of every output: camera (the image's), network (its input size), reference (the size on "
        "reference/camera_info, e.g. a depth camera's) or WxH (width x height, e.g. 640x480)",
        check=_output_size,
    ),
    "confidence_rule": Param(
        "max",
        "how ~/confidence and confidence_threshold score a pixel (max softmax probability, or the top-1 minus "
        "top-2 margin)",
        CONFIDENCE_RULES,
    ),
    "confidence_threshold": Param(
        0.0,
        f"pixels whose confidence is below this become {UNLABELED} (unlabeled) in ~/mask; 0 = off "
        "(LabelInfo's threshold)",
        bounds=(0.0, 1.0),
    ),
    "label_groups": Param("", "YAML file grouping the model's classes; ~/mask and ~/label_info then carry groups"),
    "label_info_period": Param(
        1.0,
        "seconds between re-sent ~/label_info messages (stamped with the latest frame); 0 = once",
        bounds=(0.0, 3600.0),
    ),
    "publish_color": Param(True, "compute and publish ~/color_mask", read_only=False),
    "publish_overlay": Param(True, "compute and publish ~/overlay", read_only=False),
    "publish_confidence": Param(False, "compute and publish ~/confidence", read_only=False),
    "overlay_alpha": Param(0.5, "weight of the color mask in ~/overlay", bounds=(0.0, 1.0), read_only=False),
    "diagnostics_period": Param(1.0, "seconds between /diagnostics messages", bounds=(0.1, 60.0)),
    "log_period": Param(10.0, "seconds between one-line status logs; 0 = never", bounds=(0.0, 3600.0)),
}


def require(name: str, value) -> None:
    """ValueError unless ``value`` is allowed for ``name`` (the engine's check of its options,
    where Python's numbers mix freely: types are not checked)."""
    problem = PARAMETERS[name].problem(name, value, types=False)
    if problem:
        raise ValueError(problem)


def check(params: dict) -> None:
    """ValueError naming the first problem: an unknown name, a value of the wrong type or outside
    what the table allows, or parameters that contradict each other."""
    for name, value in params.items():
        if name not in PARAMETERS:
            raise ValueError(_unknown(name))
        problem = PARAMETERS[name].problem(name, value)
        if problem:
            raise ValueError(f"parameter {problem}")
    if (params.get("input_width", 0) == 0) != (params.get("input_height", 0) == 0):
        raise ValueError("set both input_width and input_height, or neither")
    if params.get("fp16") and params.get("device") == "cpu":
        raise ValueError("parameter fp16=true needs a CUDA device, but device=cpu")


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, PARAMETERS, n=1)
    hint = f"did you mean {close[0]}?" if close else f"seg_node's parameters: {', '.join(PARAMETERS)}"
    return f"unknown parameter {name!r}: {hint}"


def resolve(values: dict) -> dict:
    """Every parameter: the defaults, replaced by ``values``; checked (ValueError)."""
    params = {name: param.default for name, param in PARAMETERS.items()}
    params.update(values)
    check(params)
    return params


# ------------------------------------------------------------------------------------- the file
def read_params_file(path, node: str = "seg_node") -> dict:
    """The values a ROS 2 parameter file gives ``node``: every ``ros__parameters`` section whose
    node name matches (``/**``, ``seg_node``, ``/ns/seg_node``, ``/**/seg_node``, nested namespace
    keys), merged in file order as rclpy does, later sections winning. ``node``: a bare name (in
    the one namespace the file names it in, else the root) or a full ``/ns/name``. Parameters every
    ROS node has (use_sim_time) are left out; ValueError for a missing or malformed file."""
    from ..safe_yaml import load_yaml_file

    path = Path(path)
    data = load_yaml_file(path, "parameter file")  # bounded: a file from a user, as the groups file
    sections = list(_sections(data, "", path))
    fqn = _node_name(node, sections, path)
    matching = [values for pattern, values in sections if _matches(pattern, fqn)]
    if not matching:
        names = _listed([p for p, _ in sections]) or "none"
        raise ValueError(f"{path} has no ros__parameters for {fqn} (its node names: {names})")
    merged = {k: v for values in matching for k, v in values.items()}
    return {k: v for k, v in merged.items() if k not in ROS_OWN}


def _sections(data, prefix: str, path: Path):
    """(node name pattern, {parameter: value}) of every ros__parameters block, in file order."""
    if not isinstance(data, dict) or not data:
        where = f" under {_listed([prefix])}" if prefix else ""
        raise ValueError(f"{path}: expected node names with ros__parameters{where} (the ROS 2 parameter file layout)")
    for key, value in data.items():
        if key == "ros__parameters" and prefix and isinstance(value, dict):
            yield prefix, _flatten(value)
        elif key == "ros__parameters":
            raise ValueError(f"{path}: ros__parameters{' of ' + _listed([prefix]) if prefix else ''} must map names to values "
                             "and sit under a node name (e.g. /**: or seg_node:)")  # fmt: skip
        else:
            yield from _sections(value, f"{prefix}/{str(key).strip('/')}", path)


def _flatten(values: dict, prefix: str = "") -> dict:
    """Nested parameter maps as ROS names them: ``{a: {b: 1}}`` → ``{'a.b': 1}``."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _node_name(node: str, sections, path: Path) -> str:
    if node.startswith("/"):
        return node
    named = sorted({p for p, _ in sections if "*" not in p and p.rsplit("/", 1)[-1] == node})
    if len(named) > 1:
        raise ValueError(f"{path} has parameters for several {node} nodes ({_listed(named)}): name one, "
                         f"with its namespace (e.g. {_listed(named[:1])})")  # fmt: skip
    return named[0] if named else f"/{node}"


def _listed(names: list[str], most: int = 10) -> str:
    """Node names from the file for an error line: each cut to 60 characters (a newline in one
    escaped: fuzzing found a key of "\\n"), at most ``most``."""
    from ..safe_yaml import shown

    text = ", ".join(name if len(name) <= 60 and name.isprintable() else shown(name) for name in names[:most])
    return text + (f" and {len(names) - most} more" if len(names) > most else "")


def _matches(pattern: str, fqn: str) -> bool:
    """ROS node-name wildcards: ``**`` any number of namespace levels, ``*`` one level's name (or
    the rest of it, inside a name)."""
    parts = []
    for token in pattern.strip("/").split("/"):
        if token == "**":
            parts.append("(/[^/]+)*")
        else:
            parts.append("/" + re.escape(token).replace(r"\*", "[^/]+" if token == "*" else "[^/]*"))
    return re.fullmatch("".join(parts), fqn) is not None


# ------------------------------------------------------------------------------ what they build
def weights_file(params: dict) -> str:
    """``weights``, or the shipped weights of ``model`` (its .onnx for the onnxruntime backend)."""
    from ..resources import shipped_weights

    return params["weights"] or str(shipped_weights(params["model"], params["backend"] == "onnxruntime"))


def build_segmenter(params: dict, warmup: int = 2):
    """The :class:`~.engine.Segmenter` that resolved ``params`` configure (ValueError for bad weights)."""
    from .engine import Segmenter

    size = (params["input_height"], params["input_width"]) if params["input_width"] else None
    return Segmenter.from_weights(
        weights_file(params),
        backend=params["backend"],
        device=params["device"],
        fp16=params["fp16"],
        input_size=size,
        resize_mode=params["resize_mode"],
        threads=params["threads"] or None,
        warmup=warmup,
        provider=params["provider"],
    )


def build_rules(params: dict, segmenter) -> OutputRules:
    """The output rules ``params`` set for ``segmenter``'s classes (ValueError for a bad groups file)."""
    groups = None
    if params["label_groups"]:
        from .groups import load_groups

        groups = load_groups(params["label_groups"], segmenter.class_names, segmenter.palette)
    return OutputRules(
        parse_output_size(params["output_size"]),
        params["confidence_rule"],
        float(params["confidence_threshold"]),
        groups,
    )
