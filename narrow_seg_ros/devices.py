"""Device names as users give them (``auto``, ``cpu``, ``cuda``, ``cuda:N``): one parser for the
node's parameter, the engine, its backends and training. torch is imported only when CUDA is
asked about, so the node can check its parameters before it loads torch."""

from __future__ import annotations

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"


class CudaUnavailable(ValueError):
    """A CUDA device was asked for where torch sees none (callers may say which setting asked)."""


def is_device_name(name) -> bool:
    """Whether ``name`` is one of :data:`DEVICE_NAMES` (syntax only; CUDA is not consulted)."""
    return isinstance(name, str) and (
        name in ("auto", "cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit())
    )


def torch_cuda_usable() -> bool:
    import torch

    return torch.cuda.is_available()


def cuda_index(name: str) -> int:
    """The GPU index of a CUDA device name (``cuda`` is GPU 0)."""
    return int(name.split(":")[1]) if ":" in name else 0


def resolve_device(name, auto_cuda: str = "cuda", cuda_usable=None) -> str:
    """The concrete device for ``name``: ``auto`` is ``auto_cuda`` where CUDA is usable, else ``cpu``.
    ValueError for a name outside :data:`DEVICE_NAMES`; :class:`CudaUnavailable` for a CUDA device
    where there is none (failing at start-up, not at the first frame or iteration). ``cuda_usable``
    asks whether CUDA is there (default: torch; a torch-free deployment asks onnxruntime)."""
    usable = cuda_usable or torch_cuda_usable
    if not is_device_name(name):
        raise ValueError(f"device {name!r}: use {DEVICE_NAMES}")
    if name == "auto":
        return auto_cuda if usable() else "cpu"
    if name.startswith("cuda") and not usable():
        raise CudaUnavailable(f"device {name!r} requested but CUDA is not available")
    return name
