"""``narrow-seg prebuild-trt``: build the TensorRT engine of a model for an input size ahead of
deployment, into the engine cache the node reads, so that the node's first start on the car does
not block for minutes while TensorRT builds (Autoware's `build_only` step, for this package)."""

from __future__ import annotations

import time

from ..resources import DEFAULT_MODEL, SHIPPED_MODELS
from ..sizes import parse_hw
from .common import int_at_least


def add_parser(sub) -> None:
    p = sub.add_parser("prebuild-trt", help="build and cache the TensorRT engine for a model and input size")
    p.add_argument("--weights", default="", help="an exported .onnx (default: the shipped .onnx of --model)")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=tuple(SHIPPED_MODELS))
    p.add_argument("--size", type=parse_hw, help="network input HxW (default: the model's input size)")
    p.add_argument("--batch", type=int_at_least(1), default=1, help="cameras per network call (the node's batch)")
    p.add_argument("--device", default="cuda", help="cuda or cuda:N")
    p.add_argument("--fp16", action="store_true", help="a half-precision engine (as the node's fp16:=true)")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from ..geometry import padded_size
    from ..inference.backends import OnnxRuntimeBackend
    from ..inference.onnx_metadata import session_metadata
    from ..resources import shipped_weights

    if not args.device.startswith("cuda"):
        raise ValueError(f"TensorRT runs on a CUDA device, not {args.device!r}")
    weights = args.weights or str(shipped_weights(args.model, prefer_onnx=True))
    if not weights.endswith(".onnx"):
        raise ValueError(f"{weights}: TensorRT builds from an .onnx (narrow-seg export --dynamic)")
    backend = OnnxRuntimeBackend(weights, args.device, args.fp16, provider="tensorrt")
    meta = session_metadata(backend.session, weights)
    h, w = padded_size(tuple(args.size or meta["input_size"]), meta["input_multiple"])
    shape = (args.batch, h, w, 3) if backend.takes_uint8 else (args.batch, 3, h, w)
    start = time.perf_counter()
    backend(np.zeros(shape, np.uint8 if backend.takes_uint8 else np.float32))
    print(f"{weights} at {h}x{w}, batch {args.batch}{', fp16' if args.fp16 else ''}: "
          f"{time.perf_counter() - start:.1f} s;{backend.trt_cache_status()}")  # fmt: skip
    return 0
