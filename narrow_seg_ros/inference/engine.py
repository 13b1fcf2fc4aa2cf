"""The segmentation engine: uint8 camera frame in → class mask (and color, overlay, confidence) out.

Knows nothing about ROS: the node converts messages and calls :meth:`Segmenter.segment`; plain
Python users do the same. Three stages, each timed:

1. pre-process: resize to the network input (stretch, or keep aspect with padding), normalise as
   the weights say, channel order from ``encoding``;
2. backend: the network to low-resolution logits (see ``backends.py``);
3. post-process: exact bilinear-upsample + argmax at the camera's resolution without expanding
   every class (``postprocess.py``), palette lookup, overlay.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..devices import resolve_device
from ..geometry import padded_size
from ..normalization import normalization_coefficients
from . import postprocess
from .backends import OnnxRuntimeBackend, cpu_channel_block, onnx_cuda_usable, onnx_providers
from .params import require
from .requests import Request
from .rules import output_shape, published_mask

log = logging.getLogger("narrow_seg_ros.inference")

ENCODINGS = ("rgb8", "bgr8")


@dataclass
class Segmentation:
    mask: np.ndarray  # uint8 (H, W) class ids, or group ids; rules.UNLABELED where no class is given
    confidence: np.ndarray | None = None  # uint8 (H, W), max softmax × 255 (or the margin), where asked for
    color: np.ndarray | None = None  # uint8 (H, W, 3) rgb8 palette colors
    overlay: np.ndarray | None = None  # uint8 (H, W, 3) rgb8 image blended with the colors
    # pre_ms, net_ms (the whole batch's), post_ms, total_ms, batch (frames in the network call)
    timings: dict = field(default_factory=dict)


@dataclass
class _Letterbox:
    valid: tuple[int, int]  # rows, cols of the canvas holding the image


@dataclass
class Inferred:
    """A batch between the network and post-processing: its requests, the network's logits (one
    per request, at the network's resolution), each frame's letterbox, per-frame pre-process and
    whole-batch network times (ms)."""

    requests: list[Request]
    logits: object  # numpy (N, C, h, w), or a CUDA tensor where the post-processing runs there
    boxes: list[_Letterbox | None]
    pre_ms: float
    net_ms: float


class Segmenter:
    """Pre-process → backend → post-process for one network. Build with :meth:`from_weights`."""

    def __init__(
        self,
        backend,
        class_names,
        palette,
        mean,
        std,
        input_size,
        align_corners: bool,
        output_stride: int,
        resize_mode: str = "stretch",
        input_multiple: int | None = None,
    ):
        require("resize_mode", resize_mode)
        h, w = (int(v) for v in input_size)
        if h <= 0 or w <= 0:
            raise ValueError(f"input size {h}x{w} must be positive")
        # the network runs on a canvas padded to its total stride (32 for NDNet FCN8 too); the
        # padding is cut off the output again
        self.canvas_size = padded_size((h, w), input_multiple or output_stride)
        self.backend = backend
        self.class_names = list(class_names)
        self.palette = np.asarray(palette, np.uint8).reshape(-1, 3)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.input_size = (h, w)
        self.align_corners = bool(align_corners)
        self.output_stride = output_stride
        self.resize_mode = resize_mode
        self.source: Path | None = None  # the weights or .onnx file, where built from one

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_weights(
        cls,
        path,
        backend: str = "auto",
        device: str = "auto",
        fp16: bool = False,
        input_size=None,
        resize_mode: str = "stretch",
        threads: int | None = None,
        warmup: int = 2,
        compile: bool = False,
        opset: int = 18,
        provider: str = "auto",
    ):
        """Load a weights file (or an exported ``.onnx``) and build the backend, warmed up.

        An ``.onnx`` runs on onnxruntime without importing torch; a ``.pt`` needs torch (the torch
        backend, or the engine's cached ONNX export of it)."""
        path = Path(path)
        if not path.is_file():  # before anything that needs torch: a typo is not a missing torch
            raise ValueError(f"weights file not found: {path}")
        require("backend", backend)
        if path.suffix == ".onnx":
            return cls.from_onnx(path, backend, device, fp16, input_size, resize_mode, threads, warmup, provider)
        from ..weights import load_weights

        _set_threads(threads)
        weights = load_weights(path)
        size = tuple(input_size or weights.input_size)
        backend, device = _resolve(backend, device)
        model = weights.build_model()
        if backend == "torch":
            from .torch_backend import TorchBackend

            engine_backend = TorchBackend(model, weights.mean, weights.std, device, fp16, compile)
        else:
            from .onnx_cache import onnx_for_weights

            on_cpu = device == "cpu"
            onnx_path = onnx_for_weights(
                weights,
                path,
                size,
                opset,
                uint8_input=not on_cpu,
                channel_multiple=cpu_channel_block() if on_cpu else 1,
            )
            engine_backend = OnnxRuntimeBackend(onnx_path, device, fp16, threads, provider)
        engine = cls(
            engine_backend,
            weights.class_names,
            weights.palette,
            weights.mean,
            weights.std,
            size,
            model.align_corners,
            model.output_stride,
            resize_mode,
            model.input_multiple,
        )
        engine.source = path
        engine.warm_up(warmup)
        log.info("segmenter ready: %s, %s, input %dx%d", weights.label, engine_backend.describe(), *size)
        return engine

    @classmethod
    def from_onnx(
        cls,
        path,
        backend: str = "auto",
        device: str = "auto",
        fp16: bool = False,
        input_size=None,
        resize_mode: str = "stretch",
        threads: int | None = None,
        warmup: int = 2,
        provider: str = "auto",
    ):
        """Run from an exported ONNX file alone (its metadata carries classes, palette, mean/std),
        on onnxruntime, without torch. Device and input size resolve as for ``.pt`` weights:
        ``auto`` is CUDA where onnxruntime has a CUDA provider; ``input_size`` needs a graph with
        free spatial axes (``narrow-seg export --dynamic``) unless it is the graph's own."""
        from .onnx_metadata import check_output_channels, session_metadata

        if backend not in ("auto", "onnxruntime"):
            raise ValueError(f"an .onnx file runs on the onnxruntime backend, not {backend!r}")
        _set_threads(threads)
        _, device = _resolve("onnxruntime", device, cuda_usable=onnx_cuda_usable)
        engine_backend = OnnxRuntimeBackend(path, device, fp16, threads, provider)
        meta = session_metadata(engine_backend.session, path)  # checked: a lying file is refused here
        check_output_channels(engine_backend.session, meta, path)
        size = tuple(input_size or meta["input_size"])
        fixed = engine_backend.spatial_size
        canvas = padded_size(size, meta["input_multiple"])
        if fixed is not None and tuple(fixed) != canvas:
            raise ValueError(
                f"{Path(path).name} was exported for a {fixed[0]}x{fixed[1]} input, not {size[0]}x{size[1]} "
                "(export it with --dynamic to run other sizes)"
            )
        engine = cls(
            engine_backend,
            meta["class_names"],
            meta["palette"],
            meta["mean"],
            meta["std"],
            size,
            meta["align_corners"],
            meta["output_stride"],
            resize_mode,
            meta["input_multiple"],
        )
        engine.source = Path(path)
        engine.warm_up(warmup)
        log.info("segmenter ready: %s (%s), %s, input %dx%d", meta["model"], path, engine_backend.describe(), *size)
        return engine

    def warm_up(self, runs: int = 2) -> None:
        # noise, so that every post-processing path (the compiled boundary kernel too) runs once
        frame = np.random.default_rng(0).integers(0, 256, (*self.input_size, 3), dtype=np.uint8)
        for _ in range(runs):
            self.segment(frame, confidence=True, color=True)

    def describe(self) -> str:
        return self.backend.describe()

    # ----------------------------------------------------------------- the three stages
    def preprocess(self, image: np.ndarray, encoding: str = "rgb8") -> tuple[np.ndarray, _Letterbox | None]:
        """uint8 (H, W, 3) → the backend's batch at the network's canvas size: uint8 RGB (1, h, w, 3)
        for backends that normalise themselves, else float32 (1, 3, h, w) normalised RGB. The image
        is resized to the input size (``keep_aspect``: to fit inside it), then padded at the bottom
        and right to the canvas; the box says which part holds the image."""
        _check_image(image, encoding)
        h, w = self.input_size
        nh, nw = h, w
        if self.resize_mode == "keep_aspect":
            scale = min(h / image.shape[0], w / image.shape[1])
            nh, nw = max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale))
        box = None
        resized = _resize(image, (nh, nw))
        if (nh, nw) != self.canvas_size:
            canvas = np.empty((*self.canvas_size, 3), np.uint8)
            # pad with the mean color so padding normalises to 0, as zero-padding would
            fill = np.clip(np.round(self.mean * 255), 0, 255).astype(np.uint8)
            canvas[:] = fill[::-1] if encoding == "bgr8" else fill
            canvas[:nh, :nw] = resized
            resized, box = canvas, _Letterbox((nh, nw))
        swap = encoding == "bgr8"
        if self.backend.takes_uint8:
            rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB) if swap else np.ascontiguousarray(resized)
            return rgb[None], box
        return _normalized_planes(resized, self.mean, self.std, swap), box

    def postprocess(self, logits, out_size, box: _Letterbox | None, confidence: bool, rule: str = "max"):
        """Low-resolution logits → (mask, confidence or None) at ``out_size``; ``rule``: the
        confidence's (max softmax probability, or the margin top-1 minus top-2)."""
        target = out_size if box is None else self.canvas_size
        if self.backend.returns_torch:  # logits still on the GPU: the reference is cheap there; only uint8 comes back
            mask, conf = postprocess.upsample_argmax(logits, target, self.align_corners, confidence, rule)
            mask, conf = mask.cpu().numpy(), None if conf is None else conf.cpu().numpy()
        else:
            mask = postprocess.logits_to_mask(logits, target, self.align_corners)
            conf = None
            if confidence:
                conf = postprocess.logits_to_confidence(logits, target, self.align_corners, rule=rule)
        if box is not None:
            mask = _crop_resize_nearest(mask, box.valid, out_size)
            conf = None if conf is None else _crop_resize_nearest(conf, box.valid, out_size)
        return mask, conf

    def segment(self, image: np.ndarray, encoding: str = "rgb8", output_size=None, **options) -> Segmentation:
        """Segment one frame; ``options`` as :class:`Request`'s (``rules.OutputRules.options()``
        gives those of a configuration)."""
        return self.segment_batch([Request(image, encoding, output_size, **options)])[0]

    def segment_batch(self, requests: list[Request]) -> list[Segmentation]:
        """Segment several frames (e.g. one per camera, of any sizes) as one network batch at the
        shared input size; each result as :meth:`segment` would give it for its frame alone."""
        batch = self.infer(requests)
        return [self.finish(batch, i) for i in range(len(requests))]

    def infer(self, requests: list[Request]) -> Inferred:
        """Stages 1 and 2 of :meth:`segment_batch`: pre-process and the network. A caller may
        :meth:`finish` one batch on one thread while the next runs through here on another."""
        t0 = time.perf_counter()
        prepared = [self.preprocess(r.image, r.encoding) for r in requests]
        pre_ms = (time.perf_counter() - t0) * 1e3 / len(requests)
        t1 = time.perf_counter()
        logits = self._run_backend(np.concatenate([batch for batch, _ in prepared]))
        net_ms = (time.perf_counter() - t1) * 1e3
        return Inferred(requests, logits, [box for _, box in prepared], pre_ms, net_ms)

    def finish(self, batch: Inferred, i: int) -> Segmentation:
        """Stage 3 for the batch's i-th frame: its result, timed."""
        t2 = time.perf_counter()
        result = self._finish(batch.requests[i], batch.logits[i], batch.boxes[i])
        post_ms = (time.perf_counter() - t2) * 1e3
        result.timings = {
            "pre_ms": batch.pre_ms,
            "net_ms": batch.net_ms,
            "post_ms": post_ms,
            "total_ms": batch.pre_ms + batch.net_ms + post_ms,
            "batch": len(batch.requests),
        }
        return result

    def _run_backend(self, batch: np.ndarray):
        """The backend over the whole batch, in chunks where its graph has a fixed batch size."""
        step = self.backend.max_batch or len(batch)
        chunks = [self.backend(batch[i : i + step]) for i in range(0, len(batch), step)]
        if self.backend.returns_torch:
            import torch

            torch.cuda.synchronize()
            return chunks[0] if len(chunks) == 1 else torch.cat(chunks)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def _finish(self, request: Request, logits, box: _Letterbox | None) -> Segmentation:
        """One frame's logits → its mask under the request's rules and the outputs it asked for.
        Color and overlay show the classes, before threshold and groups."""
        out_size = output_shape(request.output_size, request.image.shape, self.input_size)
        threshold = request.confidence_threshold
        require("confidence_threshold", threshold)
        scored = request.confidence or threshold > 0
        classes, conf = self.postprocess(logits, out_size, box, scored, request.confidence_rule)
        result = Segmentation(mask=classes, confidence=conf if request.confidence else None)
        if request.color or request.overlay:
            result.color = postprocess.colorize(classes, self.palette)
        result.mask = published_mask(classes, conf, threshold, request.groups)
        if request.overlay:
            require("overlay_alpha", request.overlay_alpha)
            image = request.image
            rgb = image if request.encoding == "rgb8" else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            if rgb.shape[:2] != out_size:
                rgb = _resize(rgb, out_size)
            result.overlay = postprocess.overlay(rgb, result.color, request.overlay_alpha)
        return result


def _normalized_planes(image: np.ndarray, mean, std, swap: bool) -> np.ndarray:
    """uint8 (h, w, 3) → float32 (1, 3, h, w) ``(x / 255 - mean) / std``, RGB order.

    cv2.split and one cv2.addWeighted per plane (x·a + b straight to float32), top and bottom
    halves on two threads (OpenCV releases the GIL): ~5 ms at 1024x2048 where
    cv2.dnn.blobFromImage takes ~15 ms. A channel swap is just the plane order.
    """
    out = np.empty((1, 3, *image.shape[:2]), np.float32)
    order = (2, 1, 0) if swap else (0, 1, 2)
    # float64: cv2.addWeighted takes its factors as doubles
    coefficients = list(zip(*(c.tolist() for c in normalization_coefficients(mean, std, np.float64))))

    def rows(r0: int, r1: int) -> None:
        planes = cv2.split(image[r0:r1])
        for c, (scale, shift) in enumerate(coefficients):
            plane = planes[order[c]]
            cv2.addWeighted(plane, scale, plane, 0.0, shift, dst=out[0, c, r0:r1], dtype=cv2.CV_32F)

    half = image.shape[0] // 2
    if half < 32:
        rows(0, image.shape[0])
        return out
    top = _pool().submit(rows, 0, half)
    rows(half, image.shape[0])
    top.result()
    return out


@functools.lru_cache(maxsize=1)
def _pool():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(1, thread_name_prefix="preprocess")


def _set_threads(threads: int | None) -> None:
    if threads:
        from .boundary_kernel import set_threads

        if "torch" in sys.modules:  # the torch backend's pool; an .onnx deployment has no torch
            sys.modules["torch"].set_num_threads(threads)
        cv2.setNumThreads(threads)
        set_threads(threads)


def _resolve(backend: str, device: str, cuda_usable=None) -> tuple[str, str]:
    """``auto`` picks the fastest available; a CPU fallback is logged as such. ``cuda_usable``:
    how to tell whether CUDA is there (torch's view by default; onnxruntime's for an ``.onnx``)."""
    resolved = resolve_device(device, cuda_usable=cuda_usable)
    if device == "auto" and resolved == "cpu":
        log.warning("no CUDA device available: running on the CPU")
    device = resolved
    if backend == "auto":
        providers = onnx_providers()
        if device == "cpu":
            backend = "onnxruntime" if "CPUExecutionProvider" in providers else "torch"
        else:
            backend = "onnxruntime" if "TensorrtExecutionProvider" in providers else "torch"
        log.info("backend auto → %s on %s", backend, device)
    return backend, device


def _check_image(image, encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 numpy array, got {type(image).__name__} {getattr(image, 'dtype', '')}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"empty image {image.shape[0]}x{image.shape[1]}")


def _resize(image: np.ndarray, size) -> np.ndarray:
    if tuple(image.shape[:2]) == tuple(size):
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def _crop_resize_nearest(canvas: np.ndarray, valid, out_size) -> np.ndarray:
    crop = canvas[: valid[0], : valid[1]]
    if crop.shape[:2] == tuple(out_size):
        return np.ascontiguousarray(crop)
    return cv2.resize(crop, (out_size[1], out_size[0]), interpolation=cv2.INTER_NEAREST)
