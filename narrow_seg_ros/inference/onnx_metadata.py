"""The metadata an exported ``.onnx`` carries (the weights contract: classes, palette, mean/std,
input size, stride, model, and the weights file it came from), read with onnxruntime alone: an
``.onnx`` is a deployment artifact that needs neither torch nor the onnx package.

The metadata is input from a file someone else made: :func:`session_metadata` checks it the way
``weights.load_weights`` checks a ``.pt`` (:func:`contract_problem` is shared by both), so that a
lying file is refused at load, with one line naming the file, rather than failing per frame or
publishing class ids its labels do not name (``narrow-seg fuzz weights``, docs/reliability.md).
Torch-free on purpose, which is why the contract's checks live here and not in ``weights.py``.
"""

from __future__ import annotations

import json
import math

from ..safe_yaml import shown

METADATA_KEY = "narrow_seg_ros"
MAX_INPUT_SIDE = 8192  # pixels per side of the network input (image_conversion.MAX_PIXELS is 8192 x 8192)
MAX_CLASSES = 255  # class ids 0..254 fit a uint8 mask; 255 is unlabeled
# what from_onnx and prebuild-trt read; model_options and metadata are optional, as in a .pt
REQUIRED_KEYS = (
    "model", "class_names", "palette", "mean", "std", "input_size", "output_stride", "input_multiple", "align_corners"
)  # fmt: skip


def read_onnx_metadata(path) -> dict:
    """The checked metadata of the ``.onnx`` at ``path``; ValueError of one line naming the file if
    it is not one of ours, or if its metadata does not describe its graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # metadata only
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        raise ValueError(f"{path} is not an ONNX model onnxruntime can load: {one_line(exc)}") from exc
    meta = session_metadata(session, path)
    check_output_channels(session, meta, path)
    return meta


def session_metadata(session, path) -> dict:
    """The checked metadata of an open onnxruntime session (no second load of the file)."""
    try:  # onnxruntime decodes every entry as UTF-8 when the map is built
        text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: its metadata is not UTF-8 text: {one_line(exc)}") from exc
    if text is None:
        raise ValueError(f"{path} carries no {METADATA_KEY} metadata (export it with `narrow-seg export`)")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; json recurses per level of nesting
        raise ValueError(f"{path}: its {METADATA_KEY} metadata is not JSON: {one_line(exc)}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its {METADATA_KEY} metadata is a JSON {type(meta).__name__}, not an object")
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise ValueError(f"{path}: its {METADATA_KEY} metadata lacks {', '.join(missing)}")
    problem = contract_problem(meta) or _graph_fields_problem(meta)
    if problem is not None:
        raise ValueError(f"{path}: its {METADATA_KEY} metadata: {problem}")
    return meta


def check_output_channels(session, meta: dict, path) -> None:
    """ValueError unless the graph's first output has one channel per class, where the graph fixes
    it: metadata naming 11 classes over a 19-channel graph published ids 11..18, which no label names."""
    try:  # onnxruntime decodes the graph's names as UTF-8 only when they are asked for
        outputs = session.get_outputs()
        shape = outputs[0].shape if outputs else None  # (batch, classes, h, w); a name (or None) where free
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: the graph's output is damaged: {one_line(exc)}") from exc
    if shape is None:
        raise ValueError(f"{path}: the graph has no output")
    if len(shape) != 4:
        raise ValueError(f"{path}: the graph's output {shown(shape)} is not (batch, classes, height, width)")
    channels = shape[1]
    if isinstance(channels, int) and channels != len(meta["class_names"]):
        raise ValueError(
            f"{path}: its {METADATA_KEY} metadata names {len(meta['class_names'])} classes, the graph outputs {channels}"
        )


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line: onnxruntime's and json's messages run over several lines."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else f"{text[:limit]}..."


def _is_int(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_finite(value) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past float's range (JSON and pickle hold any int)
        return False


def _is_triple(value, check) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 3 and all(map(check, value))


def contract_problem(data: dict) -> str | None:
    """What is wrong with the weights contract's fields (a ``.pt``'s dict or an ``.onnx``'s
    metadata), or None: the types and ranges an engine relies on."""
    model, options, names = data["model"], data.get("model_options", {}), data["class_names"]
    if not isinstance(model, str) or not model:
        return f"model {shown(model)} is not a model name"
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        return f"model_options {shown(options)} is not a mapping of option names"
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        return f"class_names {shown(names)} is not a list of names"
    if len(names) > MAX_CLASSES:
        return f"{len(names)} classes: at most {MAX_CLASSES} fit a mask (255 is unlabeled)"
    palette = data["palette"]
    if not isinstance(palette, (list, tuple)) or len(palette) != len(names):
        return "palette must have one RGB triple per class"
    if not all(_is_triple(color, lambda v: _is_int(v, 0, 255)) for color in palette):
        return "palette must have one RGB triple per class, each 0..255"
    mean, std = data["mean"], data["std"]
    if not (_is_triple(mean, _is_finite) and _is_triple(std, _is_finite)) or min(std) <= 0:
        return "mean/std must be 3 values each, std > 0"
    size = data["input_size"]
    if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(_is_int(v, 1, MAX_INPUT_SIDE) for v in size):
        return f"input_size {shown(size)} is not [height, width] of 1..{MAX_INPUT_SIDE} pixels"
    if not isinstance(data.get("metadata", {}), dict):
        return f"metadata {shown(data.get('metadata'))} is not a mapping"
    return None


def _graph_fields_problem(meta: dict) -> str | None:
    """The fields only an exported graph's metadata has: its strides and how it resizes."""
    for key in ("output_stride", "input_multiple"):
        if not _is_int(meta[key], 1, MAX_INPUT_SIDE):
            return f"{key} {shown(meta[key])} is not a positive int (at most {MAX_INPUT_SIDE})"
    if not isinstance(meta["align_corners"], bool):
        return f"align_corners {shown(meta['align_corners'])} is not true or false"
    return None
