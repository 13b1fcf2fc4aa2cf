"""The torch backend (see backends.py for the contract every backend keeps)."""

from __future__ import annotations

import torch

from ..devices import resolve_device
from ..normalization import uint8_normalization


class TorchBackend:
    name = "torch"

    def __init__(
        self,
        model: torch.nn.Module,
        mean,
        std,
        device: str = "cpu",
        fp16: bool = False,
        compile: bool = False,
    ):
        self.device = torch.device(resolve_device(device))
        if fp16 and self.device.type != "cuda":
            raise ValueError("fp16 needs a CUDA device (CPU half-precision convolutions are slower than fp32)")
        self.fp16 = fp16
        self.dtype = torch.float16 if fp16 else torch.float32
        model = model.eval().to(self.device, self.dtype)
        if self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        self.model = torch.compile(model, mode="max-autotune") if compile else model
        self.returns_torch = self.device.type == "cuda"
        self.max_batch = None
        self.takes_uint8 = self.device.type == "cuda"  # normalised on the GPU; on CPU: cv2 is faster
        self.scale, self.shift = (torch.from_numpy(a).to(self.device) for a in uint8_normalization(mean, std))

    @torch.inference_mode()
    def __call__(self, batch):
        x = torch.from_numpy(batch).to(self.device, non_blocking=True)
        if self.takes_uint8:  # uint8 crosses to the GPU (a quarter of float32's bytes)
            x = x.permute(0, 3, 1, 2).float() * self.scale + self.shift
            x = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        logits = self.model(x, full_resolution=False)
        if self.returns_torch:
            return logits
        return logits.float().numpy()

    def describe(self) -> str:
        return f"torch {torch.__version__} on {self.device}{' fp16' if self.fp16 else ''}"
