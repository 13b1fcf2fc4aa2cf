"""Export a weights file to ONNX or TorchScript, carrying the weights contract's metadata.

The exported graph maps a normalised float32 image (N, 3, H, W) to logits at 1/output_stride
(the engine's fast post-processing does the upsample and argmax); ``full_resolution=True`` adds the
bilinear upsample to the graph for consumers that want input-resolution logits. With
``uint8_input=True`` the graph takes the camera's uint8 RGB image as it lies in memory
(N, H, W, 3) and normalises it itself: for GPU execution providers (TensorRT on a Jetson), where
that is nearly free and the host→device copy shrinks fourfold. (onnxruntime's CPU provider runs
those elementwise ops slowly, ~30 ms at 1024x2048; the engine feeds CPU graphs float input.) The metadata
(classes, palette, mean/std, input size, output stride, align_corners) rides along as ONNX
``metadata_props`` / TorchScript extra files, so an engine can run from the exported file alone.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..geometry import padded_size
from ..normalization import uint8_normalization
from ..weights import Weights
from .onnx_metadata import METADATA_KEY

DEFAULT_OPSET = 18


INPUT_FLOAT = "float32_nchw_normalized"
INPUT_UINT8 = "uint8_nhwc_rgb"


class ExportWrapper(torch.nn.Module):
    """The network as exported; ``mean``/``std`` given → uint8 (N, H, W, 3) RGB input."""

    def __init__(self, model: torch.nn.Module, full_resolution: bool = False, mean=None, std=None):
        super().__init__()
        self.model, self.full_resolution = model, full_resolution
        self.uint8_input = mean is not None
        if self.uint8_input:
            scale, shift = uint8_normalization(mean, std)
            self.register_buffer("scale", torch.from_numpy(scale))
            self.register_buffer("shift", torch.from_numpy(shift))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.uint8_input:
            image = image.permute(0, 3, 1, 2).float() * self.scale + self.shift
        return self.model(image, full_resolution=self.full_resolution)


def export_metadata(
    weights: Weights,
    model: torch.nn.Module,
    size,
    full_resolution: bool,
    uint8_input: bool = False,
    channel_multiple: int = 1,
    source=None,
) -> dict:
    """Everything an engine needs to run the graph alone; ``source`` (the ``.pt`` exported) is
    named with its SHA-256, so the graph traces back to its weights file and model card."""
    provenance = {}
    if source is not None:
        source = Path(source)
        provenance = {"weights_file": source.name, "weights_sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    return {
        "format": "narrow_seg_ros.export/1",
        "model": weights.model,
        "model_options": weights.model_options,
        "class_names": weights.class_names,
        "palette": weights.palette,
        "mean": weights.mean,
        "std": weights.std,
        "input_size": list(size),
        "output_stride": 1 if full_resolution else model.output_stride,
        "input_multiple": model.input_multiple,
        "align_corners": model.align_corners,
        "input_format": INPUT_UINT8 if uint8_input else INPUT_FLOAT,
        "channel_multiple": channel_multiple,
        "metadata": {k: v for k, v in weights.metadata.items() if k != "config"},
        **provenance,
    }


def export_onnx(
    weights: Weights,
    path,
    size=None,
    dynamic: bool = False,
    opset: int = DEFAULT_OPSET,
    full_resolution: bool = False,
    uint8_input: bool = False,
    channel_multiple: int = 1,
    dynamic_batch: bool = False,
    source=None,
) -> Path:
    """``dynamic``: batch, height and width free (multiples of the stride); ``dynamic_batch``: the
    batch alone (the engine batches several cameras at one input size). ``channel_multiple``: pad
    narrow layers with zero channels to a multiple of it (16 keeps NDNet in onnxruntime's NCHWc
    layout on AVX-512 CPUs; the logits are unchanged)."""
    import onnx

    path = Path(path)
    size = tuple(size or weights.input_size)
    if channel_multiple < 1:
        raise ValueError(f"channel_multiple must be >= 1, got {channel_multiple}")
    model = weights.build_model().with_channel_multiple(channel_multiple)
    stride = model.input_multiple
    canvas = padded_size(size, stride)  # the graph's input; the metadata keeps the size asked for
    if uint8_input:
        wrapper = ExportWrapper(model, full_resolution, weights.mean, weights.std).eval()
        example, axes = torch.zeros(1, *canvas, 3, dtype=torch.uint8), (1, 2)
    else:
        wrapper = ExportWrapper(model, full_resolution).eval()
        example, axes = torch.zeros(1, 3, *canvas), (2, 3)
    dynamic_shapes = None
    if dynamic or dynamic_batch:
        dynamic_shapes = {"image": {0: torch.export.Dim("batch", min=1, max=64)}}
    if dynamic:  # sizes as multiples of the stride, so every downsampling stage stays exact
        h = torch.export.Dim("h", min=1, max=4096 // stride)
        w = torch.export.Dim("w", min=1, max=8192 // stride)
        dynamic_shapes["image"].update({axes[0]: stride * h, axes[1]: stride * w})
    with atomic_path(path) as tmp:
        # torch's exporter writes the weights beside its file as <file>.data; onnx.save below
        # inlines them into the one file we publish, so the side file is removed
        side_data = tmp.with_name(tmp.name + ".data")
        try:
            _export_graph(wrapper, example, tmp, opset, dynamic_shapes)
            proto = onnx.load(str(tmp))
        finally:
            side_data.unlink(missing_ok=True)
        meta = export_metadata(weights, model, size, full_resolution, uint8_input, channel_multiple, source)
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return path


def _export_graph(wrapper, example, path, opset: int, dynamic_shapes) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        # torch.export's own pytree code (torch 2.13) uses a check it deprecates; nothing in our
        # models triggers it. Everything else, a TracerWarning about a traced branch too, shows.
        warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
        torch.onnx.export(
            wrapper,
            (example,),
            str(path),
            opset_version=opset,
            input_names=["image"],
            output_names=["logits"],
            dynamic_shapes=dynamic_shapes,
            verbose=False,
        )


def export_torchscript(weights: Weights, path, size=None, full_resolution: bool = False) -> Path:
    path = Path(path)
    size = tuple(size or weights.input_size)
    model = weights.build_model()
    wrapper = ExportWrapper(model, full_resolution).eval()
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        # TorchScript is deprecated in torch in favour of torch.export, but it is still what libtorch
        # (C++) consumers load, so this export stays until they have another path; only those notices
        # are silenced: a TracerWarning (data-dependent control flow frozen into the trace) still shows.
        warnings.filterwarnings("ignore", r"`torch\.jit\.(trace|trace_method|save)` is deprecated", DeprecationWarning)
        traced = torch.jit.trace(wrapper, torch.zeros(1, 3, *size))
        extra = {f"{METADATA_KEY}.json": json.dumps(export_metadata(weights, model, size, full_resolution))}
        torch.jit.save(traced, str(tmp), _extra_files=extra)
    return path
