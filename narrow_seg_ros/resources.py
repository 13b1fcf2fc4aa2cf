"""Where the package's shared files (models/, config/, launch/) are, however it was installed.

colcon/ament installs put them in ``share/narrow_seg_ros`` (found through the ament index); pip
wheels in ``<prefix>/share/narrow_seg_ros``; an editable checkout keeps them at the repo root.
"""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "narrow_seg_ros"
# shipped model name → file under models/ (models/README.md has a card for each): real-road
# models trained on CamVid (11 classes) first, then those trained on synthetic scenes (Cityscapes' 19)
SHIPPED_MODELS = {
    name: f"{name}.pt"
    for name in ("ndnet45_fcn8_camvid", "vnet_camvid", "ndnet45_synth", "ndnet45_fcn8_synth", "vnet_synth")
}
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


def shipped_weights(model: str) -> Path:
    """The shipped weights file for a model name (a key of ``SHIPPED_MODELS``)."""
    if model not in SHIPPED_MODELS:
        raise ValueError(f"no shipped weights for model {model!r}; shipped: {', '.join(sorted(SHIPPED_MODELS))}")
    return share_file("models", SHIPPED_MODELS[model])
