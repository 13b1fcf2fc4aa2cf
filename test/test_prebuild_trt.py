"""`narrow-seg prebuild-trt` without a GPU: its refusals, and on a fake onnxruntime that offers
TensorRT, the provider options it passes and the build / cache-hit report (measured only where a
GPU is lent)."""

import json
import os
from types import SimpleNamespace

import numpy as np
import onnxruntime
from conftest import run_cli

from narrow_seg_ros.cli.main import main
from narrow_seg_ros.inference.onnx_metadata import METADATA_KEY, read_onnx_metadata

REAL_SESSION = onnxruntime.InferenceSession


def test_refuses_without_tensorrt_or_a_cuda_device():
    proc = run_cli("prebuild-trt", "--size", "64x96")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "TensorrtExecutionProvider is not available here" in proc.stderr
    proc = run_cli("prebuild-trt", "--device", "cpu")
    assert proc.returncode == 2 and "TensorRT runs on a CUDA device, not 'cpu'" in proc.stderr


class FakeTensorRTSession:
    """An onnxruntime session as the TensorRT provider behaves: the first run writes the engine
    into the cache folder unless one is there already."""

    created: list = []

    def __init__(self, path, options, providers):
        self.providers = providers
        with_real = onnxruntime.InferenceSession
        onnxruntime.InferenceSession = REAL_SESSION  # the metadata from the real file
        try:
            self.meta = read_onnx_metadata(path)
        finally:
            onnxruntime.InferenceSession = with_real
        FakeTensorRTSession.created.append(self)

    def get_inputs(self):
        return [SimpleNamespace(name="image", type="tensor(float)", shape=["batch", 3, "h", "w"])]

    def get_providers(self):
        return [name for name, _ in self.providers]

    def get_modelmeta(self):
        return SimpleNamespace(custom_metadata_map={METADATA_KEY: json.dumps(self.meta)})

    def run(self, _, feeds):
        self.shape = feeds["image"].shape
        cache = self.providers[0][1]["trt_engine_cache_path"]
        engine = f"{cache}/model_{self.shape[2]}x{self.shape[3]}.engine"
        if not any(p.endswith(".engine") for p in os.listdir(cache)):
            open(engine, "wb").close()
        return [np.zeros((1, 11, 1, 1), np.float32)]


def test_builds_then_hits_the_cache_on_a_fake_tensorrt(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NARROW_SEG_CACHE", str(tmp_path))
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: available)
    monkeypatch.setattr(onnxruntime, "InferenceSession", FakeTensorRTSession)
    for _ in range(2):
        assert main(["prebuild-trt", "--size", "100x150", "--batch", "2", "--fp16", "--device", "cuda:1"]) == 0
    first, second = FakeTensorRTSession.created[-2:]
    name, options = first.providers[0]
    assert name == "TensorrtExecutionProvider" and options["trt_fp16_enable"] is True
    assert options["device_id"] == 1 and options["trt_engine_cache_path"] == str(tmp_path / "trt")
    assert first.shape == (2, 3, 128, 160)  # 100x150 padded to the model's multiple of 32
    built, hit = capsys.readouterr().out.splitlines()
    assert "TensorRT engine built in" in built and str(tmp_path / "trt") in built
    assert "TensorRT engine cache hit" in hit
