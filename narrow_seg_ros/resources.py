"""Where the package's shared files (models/, config/, launch/) are, however it was installed.

colcon/ament installs put them in ``share/narrow_seg_ros`` (found through the ament index); pip
wheels in ``<prefix>/share/narrow_seg_ros``; an editable checkout keeps them at the repo root.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACKAGE = "narrow_seg_ros"
# shipped model name → file under models/ (models/README.md has a card for each): real-road
# models trained on CamVid (11 classes) first, then those trained on synthetic scenes (Cityscapes' 19)
SHIPPED_MODELS = {
    name: f"{name}.pt"
    for name in ("ndnet45_fcn8_camvid", "vnet_camvid", "ndnet45_synth", "ndnet45_fcn8_synth", "vnet_synth")
}
# shipped models that also ship as an exported .onnx (scripts/export_shipped_onnx.sh: dynamic batch
# and size), which onnxruntime runs without torch: the real-road models and the demo's
SHIPPED_ONNX = ("ndnet45_fcn8_camvid", "vnet_camvid", "ndnet45_fcn8_synth")
DEFAULT_MODEL = "ndnet45_fcn8_camvid"  # the best real-road model: what a real camera needs
# the demo plays the shipped synthetic sequence (CamVid's frames cannot be shipped): its own domain
DEMO_MODEL = "ndnet45_fcn8_synth"


def share_dirs() -> list[Path]:
    candidates = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            candidates.append(Path(get_package_share_directory(PACKAGE)))
        except (PackageNotFoundError, OSError):  # OSError: no AMENT_PREFIX_PATH (not a ROS install)
            pass
    except ImportError:
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE)
    candidates.append(Path(__file__).resolve().parents[1])  # source checkout / editable install
    return [c for c in candidates if (c / "package.xml").is_file()]


def share_file(*parts: str) -> Path:
    """First existing ``share/narrow_seg_ros/<parts>``; ValueError naming the places looked in."""
    dirs = share_dirs()
    for d in dirs:
        path = d.joinpath(*parts)
        if path.exists():
            return path
    looked = ", ".join(str(d) for d in dirs) or "(no narrow_seg_ros share directory found)"
    raise ValueError(f"{'/'.join(parts)} not found in {looked}")


def shipped_weights(model: str, prefer_onnx: bool = False) -> Path:
    """The shipped weights file for a model name (a key of ``SHIPPED_MODELS``): its ``.onnx`` where
    ``prefer_onnx`` or where torch is not installed (a torch-free deployment), else its ``.pt``."""
    if model not in SHIPPED_MODELS:
        raise ValueError(f"no shipped weights for model {model!r}; shipped: {', '.join(sorted(SHIPPED_MODELS))}")
    if model in SHIPPED_ONNX and (prefer_onnx or not torch_available()):
        return share_file("models", f"{model}.onnx")
    if not torch_available():
        onnx = ", ".join(SHIPPED_ONNX)
        raise ValueError(f"model {model} ships as .pt only, which needs torch (pip install narrow_seg_ros[train]); "
                         f"torch-free: {onnx}")  # fmt: skip
    return share_file("models", SHIPPED_MODELS[model])


def torch_available() -> bool:
    """Whether torch can be imported, without importing it (seconds and hundreds of MB)."""
    if "torch" in sys.modules:
        return sys.modules["torch"] is not None  # None: blocked, as an import that fails
    return importlib.util.find_spec("torch") is not None


# what `pip install narrow_seg_ros[train]` adds to the deployment (setup.py's TRAIN)
TRAINING_MODULES = ("torch", "onnx", "onnxscript", "cityscapesscripts", "matplotlib")


def needs_training_tools(module: str) -> str:
    return (
        f"this needs {module}, which is not installed: the deployment runs .onnx weights without it; "
        "training, evaluation, export and .pt weights need pip install 'narrow_seg_ros[train]' "
        "(torch: the build for your CUDA / JetPack)"
    )
