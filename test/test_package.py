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
    deps = {e.text for e in root.iter("exec_depend")}
    assert {
        "rclpy",
        "sensor_msgs",
        "std_msgs",
        "diagnostic_msgs",
        "launch",
        "launch_ros",
        "python3-numpy",
        "python3-opencv",
        "python3-torch",
    } <= deps


# top-level import → its rosdep key in package.xml, or "pip" for what the README's install line adds
IMPORT_KEYS = {
    "ament_index_python": "ament_index_python", "cityscapesscripts": "pip", "cv2": "python3-opencv",
    "diagnostic_msgs": "diagnostic_msgs", "matplotlib": "python3-matplotlib", "numba": "python3-numba",
    "numpy": "python3-numpy", "onnx": "pip", "onnxruntime": "python3-onnxruntime-pip",
    "rcl_interfaces": "rcl_interfaces", "rclpy": "rclpy", "rosbags": "pip", "sensor_msgs": "sensor_msgs",
    "std_msgs": "std_msgs",
    "torch": "python3-torch", "tqdm": "python3-tqdm", "vision_msgs": "vision_msgs", "yaml": "python3-yaml",
}  # fmt: skip


def test_package_xml_lists_every_import():
    """Every third-party module the package imports is a dependency in package.xml (rosdep installs
    it) or on the README's pip line; a new import without either fails here."""
    import ast

    found = set()
    for path in (REPO / "narrow_seg_ros").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    third_party = {
        name for name in found - set(sys.stdlib_module_names) if name not in ("narrow_seg_ros", "__future__")
    }
    assert third_party <= set(IMPORT_KEYS), f"imports without a declared dependency: {third_party - set(IMPORT_KEYS)}"
    deps = {e.text for e in ET.parse(REPO / "package.xml").getroot().iter("exec_depend")}
    pip_line = next(line for line in (REPO / "README.md").read_text().splitlines() if "pip install torch==" in line)
    for name in third_party:
        key = IMPORT_KEYS[name]
        assert (key in deps) if key != "pip" else (name in pip_line.split()), (name, key)


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
