"""The metadata an exported ``.onnx`` carries (the weights contract: classes, palette, mean/std,
input size, stride, model, and the weights file it came from), read with onnxruntime alone: an
``.onnx`` is a deployment artifact that needs neither torch nor the onnx package."""

from __future__ import annotations

import json

METADATA_KEY = "narrow_seg_ros"


def read_onnx_metadata(path) -> dict:
    """The metadata of the ``.onnx`` at ``path`` (ValueError if it is not one of ours)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # metadata only
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        raise ValueError(f"{path} is not an ONNX model onnxruntime can load: {exc}") from exc
    return session_metadata(session, path)


def session_metadata(session, path) -> dict:
    """The metadata of an open onnxruntime session (no second load of the file)."""
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        raise ValueError(f"{path} carries no {METADATA_KEY} metadata (export it with `narrow-seg export`)")
    return json.loads(text)
