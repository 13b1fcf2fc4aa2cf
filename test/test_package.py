"""The ROS 2 package builds with colcon the way ROS users build it, and pip-installs."""

import subprocess
import sys
import xml.etree.ElementTree as ET

from conftest import REPO, VENV_BIN, copy_source_tree


def test_package_xml_is_format3_ament_python():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "narrow_seg_ros"
    assert root.find("export/build_type").text == "ament_python"


# top-level import → (rosdep key, pip distribution, role): "deploy" the node / infer / player need it,
# "train" training, evaluation and export ([train] extra), "dev" the fuzzing campaign (test tooling)
IMPORTS = {
    "builtin_interfaces": ("builtin_interfaces", None, "deploy"),
    "ament_index_python": ("ament_index_python", None, "deploy"),
    "cv2": ("python3-opencv", "opencv-python-headless", "deploy"),
    "diagnostic_msgs": ("diagnostic_msgs", None, "deploy"),
    "numba": ("python3-numba", "numba", "deploy"),
    "numpy": ("python3-numpy", "numpy", "deploy"),
    "onnxruntime": ("python3-onnxruntime-pip", "onnxruntime", "deploy"),
    "rcl_interfaces": ("rcl_interfaces", None, "deploy"),
    "rclpy": ("rclpy", None, "deploy"),
    "rosbags": ("python3-rosbags-pip", "rosbags", "deploy"),
    "lz4": ("python3-rosbags-pip", "rosbags", "deploy"),  # rosbags' dependency: bags.py bounds its decompression
    "sensor_msgs": ("sensor_msgs", None, "deploy"),
    "std_msgs": ("std_msgs", None, "deploy"),
    "tqdm": ("python3-tqdm", "tqdm", "deploy"),
    "vision_msgs": ("vision_msgs", None, "deploy"),
    "yaml": ("python3-yaml", "pyyaml", "deploy"),
    "torch": ("python3-torch", "torch", "train"),
    "matplotlib": ("python3-matplotlib", "matplotlib", "train"),
    "onnx": (None, "onnx", "train"),
    "cityscapesscripts": (None, "cityscapesscripts", "train"),
    "hypothesis": ("python3-hypothesis", "hypothesis", "dev"),
    "foxglove_msgs": ("foxglove_msgs", None, "deploy"),
    "av": (None, "av", "video"),  # PyAV: no rosdep key in rosdistro; setup.py's [video] extra
}
# launch files, not the package, use these; exec_depends for `ros2 launch`
LAUNCH_KEYS = {"launch", "launch_ros", "lifecycle_msgs"}


def package_imports() -> set[str]:
    import ast

    found = set()
    for path in (REPO / "narrow_seg_ros").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found - set(sys.stdlib_module_names) if name not in ("narrow_seg_ros", "__future__")}


def test_dependencies_match_the_imports():
    """package.xml's exec_depends are exactly what the deployed node imports (rosdep keys that
    exist in rosdistro's rosdep files; python3-onnxruntime-pip and python3-rosbags-pip are its
    pip keys) plus launch; torch and the other training tools are test_depends and the [train]
    extra. setup.py's install_requires are the deployed imports' distributions. A new import
    without a declared dependency fails here."""
    found = package_imports()
    assert found <= set(IMPORTS), f"imports without a declared dependency: {found - set(IMPORTS)}"
    root = ET.parse(REPO / "package.xml").getroot()
    exec_deps = {e.text for e in root.iter("exec_depend")}
    test_deps = {e.text for e in root.iter("test_depend")}
    deployed = {key for key, _, role in IMPORTS.values() if role == "deploy"}
    assert exec_deps == deployed | LAUNCH_KEYS
    assert {key for key, _, role in IMPORTS.values() if key and role != "deploy"} <= test_deps
    setup_globals: dict = {}
    setup_text = (REPO / "setup.py").read_text()
    exec(setup_text[setup_text.index("DEPLOY =") : setup_text.index("\n", setup_text.index("VIDEO ="))], setup_globals)
    assert sorted(setup_globals["DEPLOY"]) == sorted(
        {pip for _, pip, role in IMPORTS.values() if role == "deploy" and pip}
    )
    assert setup_globals["VIDEO"] == [pip for _, pip, role in IMPORTS.values() if role == "video"]
    assert sorted(setup_globals["TRAIN"]) == sorted(
        [pip for _, pip, role in IMPORTS.values() if role == "train"] + ["onnxscript"]  # torch.onnx's exporter
    )


def test_colcon_layout(colcon_install):
    pkg = colcon_install / "narrow_seg_ros"
    assert (pkg / "share/ament_index/resource_index/packages/narrow_seg_ros").is_file()
    assert (pkg / "share/narrow_seg_ros/package.xml").is_file()
    assert (pkg / "lib/narrow_seg_ros/narrow-seg").is_file()  # where `ros2 run` looks
    for folder in ("launch", "config", "models"):
        shipped = sorted(p.name for p in (REPO / folder).iterdir() if p.is_file() and p.name != ".gitkeep")
        target = pkg / "share/narrow_seg_ros" / folder
        installed = sorted(p.name for p in target.iterdir()) if target.exists() else []
        assert shipped == installed, folder
    assert (pkg / "share/narrow_seg_ros/config/fastdds_localhost.xml").is_file()


def test_colcon_installed_cli_runs(colcon_install):
    script = (
        f"source {colcon_install}/setup.bash && "
        "python -c 'import narrow_seg_ros; print(narrow_seg_ros.__file__)' && "
        f"{colcon_install}/narrow_seg_ros/lib/narrow_seg_ros/narrow-seg info ndnet45 --json"
    )
    env_path = f"{VENV_BIN}:/usr/bin:/bin"
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=120, env={"PATH": env_path}, cwd=colcon_install
    )
    assert proc.returncode == 0, proc.stderr
    first, rest = proc.stdout.split("\n", 1)
    assert str(colcon_install) in first  # the installed copy, not the source tree
    assert '"params_total": 399947' in rest


def test_pip_wheel_has_cli_and_share_files(tmp_path):
    """Users without a ROS workspace `pip install` the same package."""
    import zipfile

    src = tmp_path / "src"
    copy_source_tree(src)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("narrow_seg_ros-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "narrow_seg_ros/models/ndnet.py" in names
    assert any(n.endswith("data/share/narrow_seg_ros/package.xml") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "narrow-seg = narrow_seg_ros.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_rviz_config_shows_input_color_mask_and_overlay():
    """config/seg.rviz (YAML): image displays on the node's topics, with QoS that matches them (the
    camera display best effort, so it connects to any camera; outputs are published reliable)."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "seg.rviz").read_text())
    displays = {
        d["Topic"]["Value"]: d
        for d in config["Visualization Manager"]["Displays"]
        if d["Class"] == "rviz_default_plugins/Image"
    }
    assert set(displays) == {"/image", "/seg_node/color_mask", "/seg_node/overlay"}
    assert displays["/image"]["Topic"]["Reliability Policy"] == "Best Effort"
    assert all(d["Enabled"] for d in displays.values())
