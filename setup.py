"""ament_python package narrow_seg_ros; also installable with plain pip."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "narrow_seg_ros"
# import name → distribution; test/test_package.py checks them against the imports and package.xml
DEPLOY = ["numpy", "numba", "opencv-python-headless", "onnxruntime", "pyyaml", "tqdm", "rosbags"]
TRAIN = ["torch", "onnx", "onnxscript", "cityscapesscripts", "matplotlib"]
VIDEO = ["av"]  # H.264/H.265 cameras (foxglove_msgs/CompressedVideo): PyAV, which rosdistro has no key for


def share(folder: str, pattern: str = "*"):
    files = [f for f in glob(f"{folder}/{pattern}") if not f.endswith(".gitkeep")]
    return (f"share/{PACKAGE}/{folder}", files)


def demo_files():
    """The shipped demo sequence, keeping its Cityscapes folder layout."""
    groups = {}
    for f in glob("demo/**/*.*", recursive=True):
        groups.setdefault(f"share/{PACKAGE}/{os.path.dirname(f)}", []).append(f)
    return sorted(groups.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        share("launch"),
        share("config"),
        share("models"),
        *demo_files(),
    ],
    python_requires=">=3.10",
    # the deployment: the node, image_player and `narrow-seg infer` run an exported .onnx on
    # onnxruntime (on a Jetson, its GPU build) with no torch
    install_requires=DEPLOY,
    # training, evaluation, export and the torch backend (`.pt` weights)
    extras_require={"train": TRAIN, "video": VIDEO},
    zip_safe=True,
    maintainer="narrow_seg_ros developers",
    maintainer_email="dev@narrow-seg-ros.invalid",
    description="Real-time semantic segmentation (NDNet, VNet) for ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "narrow-seg = narrow_seg_ros.cli.main:main",
            "seg_node = narrow_seg_ros.ros.entry:seg_node",
            "seg_lifecycle_node = narrow_seg_ros.ros.entry:seg_lifecycle_node",
            "image_player = narrow_seg_ros.ros.entry:image_player",
        ],
    },
)
