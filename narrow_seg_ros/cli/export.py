"""``narrow-seg export``: a weights file → ONNX (with metadata) or TorchScript."""

from __future__ import annotations

from ..sizes import parse_hw
from .common import int_at_least


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export weights to ONNX or TorchScript (metadata included)")
    p.add_argument("--weights", required=True)
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--size", type=parse_hw, help="input HxW (default: the weights' input size)")
    p.add_argument("--dynamic", action="store_true", help="ONNX: dynamic batch, height and width")
    p.add_argument(
        "--dynamic-batch",
        action="store_true",
        help="ONNX: dynamic batch at a fixed size (seg_node runs several cameras as one batch; a fixed-batch "
        "graph runs them one call each)",
    )
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17)")
    p.add_argument(
        "--full-resolution",
        action="store_true",
        help="include the bilinear upsample (logits at input size) instead of 1/stride logits",
    )
    p.add_argument(
        "--uint8-input",
        action="store_true",
        help="ONNX: take uint8 RGB (N, H, W, 3) and normalise inside the graph (the engine's GPU graphs)",
    )
    p.add_argument(
        "--channel-multiple",
        type=int_at_least(1),
        default=1,
        help="ONNX: pad narrow layers with zero channels to a multiple of N, same logits (16 on AVX-512 "
        "CPUs keeps onnxruntime in its NCHWc layout: NDNet45 ~20%% faster; the engine does this itself)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from ..inference.export import export_onnx, export_torchscript
    from ..weights import load_weights

    weights = load_weights(args.weights)
    if args.format == "onnx":
        if args.opset < 17:
            raise ValueError(f"--opset must be >= 17, got {args.opset}")
        path = export_onnx(
            weights,
            args.out,
            args.size,
            dynamic=args.dynamic,
            opset=args.opset,
            full_resolution=args.full_resolution,
            uint8_input=args.uint8_input,
            channel_multiple=args.channel_multiple,
            dynamic_batch=args.dynamic_batch,
            source=args.weights,
        )
    else:
        if args.dynamic or args.dynamic_batch or args.uint8_input or args.channel_multiple != 1:
            raise ValueError("--dynamic, --dynamic-batch, --uint8-input and --channel-multiple apply to ONNX only")
        path = export_torchscript(weights, args.out, args.size, args.full_resolution)
    size = args.size or weights.input_size
    print(
        f"wrote {path} ({args.format}, {weights.label}, input {size[0]}x{size[1]}{', dynamic' if args.dynamic else ', dynamic batch' if args.dynamic_batch else ''})"
    )
    return 0
