"""Network backends: run one batch of N images to low-resolution logits.

A backend with ``takes_uint8`` receives the cameras' uint8 RGB pixels as they lie in memory,
(N, H, W, 3), and normalises them itself (on the GPU, or inside the ONNX graph); otherwise it
receives the normalised float32 (N, 3, H, W) batch (ONNX files exported with float input).

* ``torch`` (``torch_backend.py``, the one that imports torch): CPU, or CUDA with fp16 and
  channels_last (optionally ``torch.compile``).
* ``onnxruntime``: CPU execution provider; CUDA and TensorRT providers when the installed
  onnxruntime has them (fp16 and engine-cache options passed through: the Jetson path).

Each backend returns logits as float32 numpy (N, C, h, w), or keeps them on the GPU as a torch
tensor when the post-processing runs there too (``returns_torch``).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from ..devices import cuda_index
from .onnx_metadata import one_line

log = logging.getLogger("narrow_seg_ros.inference")


def cache_dir() -> Path:
    root = os.environ.get("NARROW_SEG_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "narrow_seg_ros"
    )
    return Path(root)


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(
        self,
        onnx_path,
        device: str = "cpu",
        fp16: bool = False,
        threads: int | None = None,
        provider: str = "auto",
    ):
        import onnxruntime as ort

        providers = provider_chain(provider, device, fp16, ort.get_available_providers(), cache_dir() / "trt")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spin while a run is in flight (fast), but stop the moment it returns: on a 2-core machine a
        # pool that keeps spinning slows the post-processing that follows by up to 50 %.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        self.trt_cache = Path(providers[0][1]["trt_engine_cache_path"]) if providers[0][0] == TENSORRT else None
        if self.trt_cache is not None:
            self.trt_cache.mkdir(parents=True, exist_ok=True)
            self._cached_before = set(self.trt_cache.iterdir())
        self.first_call_s = None  # TensorRT builds its engine (or loads it from the cache) on the first run
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as exc:  # onnxruntime's own types (InvalidProtobuf, Fail, ...): a bad file
            raise ValueError(f"{onnx_path}: onnxruntime cannot load it: {one_line(exc)}") from exc
        self.input_name, input_type, shape = graph_input(self.session, onnx_path)
        self.takes_uint8 = input_type == "tensor(uint8)"
        # a graph exported with a fixed batch runs several cameras' frames one call each
        self.max_batch = shape[0] if isinstance(shape[0], int) else None
        spatial = shape[1:3] if self.takes_uint8 else shape[2:4]
        self.spatial_size = tuple(spatial) if all(isinstance(v, int) for v in spatial) else None  # None: free
        self.provider = self.session.get_providers()[0]
        self.fp16 = fp16
        self.returns_torch = False

    def __call__(self, batch):
        batch = np.ascontiguousarray(batch, dtype=np.uint8 if self.takes_uint8 else np.float32)
        start = time.perf_counter()
        (logits,) = self.session.run(None, {self.input_name: batch})
        if self.first_call_s is None:
            self.first_call_s = time.perf_counter() - start
        return logits

    def describe(self) -> str:
        import onnxruntime as ort

        return f"onnxruntime {ort.__version__} {self.provider}{self.trt_cache_status()}"

    def trt_cache_status(self) -> str:
        """Whether the first run built a TensorRT engine (and how long it took) or found one cached."""
        if self.trt_cache is None or self.provider != TENSORRT or self.first_call_s is None:
            return ""
        built = set(self.trt_cache.iterdir()) - self._cached_before
        if built:
            return f" (TensorRT engine built in {self.first_call_s:.1f} s, cached in {self.trt_cache})"
        return f" (TensorRT engine cache hit in {self.trt_cache}, first run {self.first_call_s:.2f} s)"


def graph_input(session, onnx_path) -> tuple[str, str, list]:
    """(name, type, shape) of the graph's image input; ValueError naming the file for a damaged graph
    that onnxruntime still loads: no input, not 4 dimensions, or names that are not UTF-8 (which
    onnxruntime decodes only when they are asked for)."""
    try:
        inputs = session.get_inputs()
        described = (inputs[0].name, inputs[0].type, inputs[0].shape) if inputs else None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{onnx_path}: the graph's input is damaged: {one_line(exc)}") from exc
    if described is None or len(described[2]) != 4:
        raise ValueError(f"{onnx_path}: the graph's input is not a batch of images (4 dimensions)")
    return described


TENSORRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
PROVIDERS = {"tensorrt": TENSORRT, "cuda": CUDA, "cpu": CPU}


def provider_chain(provider: str, device: str, fp16: bool, available: list[str], trt_cache) -> list[tuple[str, dict]]:
    """onnxruntime's providers, in order, with their options, for ``provider`` (auto, tensorrt,
    cuda, cpu) on ``device`` (cpu, cuda, cuda:N). ``auto`` prefers TensorRT, then CUDA on a CUDA
    device; the CUDA device index goes to both as ``device_id``; TensorRT gets fp16 and its engine
    cache (the first start builds the engine, later starts load it). ValueError if what was asked
    for is not available."""
    if provider not in ("auto", *PROVIDERS):
        raise ValueError(f"provider must be auto, tensorrt, cuda or cpu, got {provider!r}")
    on_gpu = device.startswith("cuda")
    if provider == "auto":
        provider = next((p for p in ("tensorrt", "cuda") if on_gpu and PROVIDERS[p] in available), "cpu")
    if provider != "cpu" and not on_gpu:
        raise ValueError(f"provider {provider} needs a CUDA device, but device is {device!r}")
    if PROVIDERS[provider] not in available:
        raise ValueError(
            f"onnxruntime provider {PROVIDERS[provider]} is not available here (have: {', '.join(available)})"
        )
    gpu = {"device_id": cuda_index(device)}
    chain = [(CPU, {})]
    if provider in ("cuda", "tensorrt"):
        chain.insert(0, (CUDA, gpu))
    if provider == "tensorrt":
        options = {"trt_fp16_enable": fp16, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(trt_cache)}
        chain.insert(0, (TENSORRT, {**gpu, **options}))
    return chain


def cpu_channel_block() -> int:
    """Channel block of onnxruntime's NCHWc CPU kernels: 16 on AVX-512 x86, 8 on AVX2. A layer whose
    width is not a multiple of it leaves the blocked layout (two reorders and plain-NCHW kernels),
    so the engine's CPU graphs pad such layers with zero channels."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: no padding, the graph is correct either way
        return 1
    return 16 if "avx512f" in flags else 8 if "avx2" in flags else 1


def onnx_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return ort.get_available_providers()


def onnx_cuda_usable() -> bool:
    """Whether the installed onnxruntime can run on a CUDA device (the torch-free ``auto`` test)."""
    return bool({TENSORRT, CUDA} & set(onnx_providers()))
