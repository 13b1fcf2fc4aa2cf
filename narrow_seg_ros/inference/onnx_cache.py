"""The engine's cache of ONNX exports of ``.pt`` weights (exported once per weights, size and
options; reused on later starts). Needs torch (the export); running an ``.onnx`` does not."""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

import torch

from .backends import cache_dir

log = logging.getLogger("narrow_seg_ros.inference")


def onnx_for_weights(
    weights, weights_path, size, opset: int, uint8_input: bool = False, channel_multiple: int = 1
) -> Path:
    """A cached ONNX export of ``weights`` at ``size`` (exported once, reused on later starts).

    ``uint8_input`` for GPU providers (normalisation on the device, a quarter of the bytes to
    copy); on the CPU onnxruntime's elementwise Cast/Mul/Add over a full frame cost ~30 ms at
    1024x2048, far more than the engine's cv2 normalisation, so CPU graphs take float input.
    ``channel_multiple``: see :func:`cpu_channel_block`.
    """
    from .export import export_onnx

    digest = hashlib.sha256(Path(weights_path).read_bytes() + export_code_key().encode()).hexdigest()[:16]
    suffix = ("-u8" if uint8_input else "") + (f"-c{channel_multiple}" if channel_multiple > 1 else "")
    path = cache_dir() / "onnx" / f"{weights.model}-{digest}-{size[0]}x{size[1]}-op{opset}{suffix}.onnx"
    if not path.exists():
        log.info("exporting %s to ONNX at %dx%d (cached in %s)", weights.model, size[0], size[1], path)
        export_onnx(
            weights,
            path,
            size=size,
            opset=opset,
            dynamic_batch=True,
            uint8_input=uint8_input,
            channel_multiple=channel_multiple,
        )
    return path


@functools.lru_cache(maxsize=1)
def export_code_key() -> str:
    """What else shapes an exported graph besides the weights and the export options: the package,
    torch and onnx versions and the source of the models and the exporter, so that a fix in any
    of them is never hidden by a warm cache."""
    import onnx

    package = Path(__file__).resolve().parents[1]
    sources = sorted([*package.glob("models/*.py"), package / "inference" / "export.py", package / "geometry.py"])
    code = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    return f"{_package_version()}|torch {torch.__version__}|onnx {onnx.__version__}|{code}"


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("narrow_seg_ros")
    except PackageNotFoundError:  # a source tree on PYTHONPATH
        return "source"
