"""The DDS environment that keeps ROS 2 traffic on this host, defined once: discovery on localhost
and the project's Fast DDS profile (loopback UDP + shared memory). Read by the commands that start
their own nodes (``ros.runtime.keep_dds_on_this_host``), by the tests, and by
``scripts/ros_env.sh``, which runs this file as a script (any ``python3``; no package import) to
print it as shell exports.

The profile file's variable was renamed in Fast DDS 3.0: Fast DDS 3.x (Kilted) reads
``FASTDDS_DEFAULT_PROFILES_FILE``, but Fast DDS 2.x (Humble, Jazzy: 2.14) reads only
``FASTRTPS_DEFAULT_PROFILES_FILE`` and silently ignores the new name. Without the profile, Jazzy's
participants fall back to Fast DDS's builtin transports: UDP on every interface plus shared memory
with a 512 KB segment, into which no 640x480 rgb8 frame (900 KB) fits, so best-effort images of that
size were mostly lost. The old name is therefore set as well unless only Fast DDS 3 is found (with
Fast DDS 3, Kilted's rmw_fastrtps prints a deprecation warning for it at every participant)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

PROFILE = ("config", "fastdds_localhost.xml")
_ROOT = Path(__file__).resolve().parents[1]


def _lib_dirs() -> list[Path]:
    """Where rmw_fastrtps would find Fast DDS: this interpreter's prefix, the ROS prefixes and
    library path, and the venv of the project's ROS tools workspace (``NSR_ROS2_TOOLS``, default
    ``.ros2_tools`` for ``.venv``, ``.ros2_tools-jazzy`` for ``.venv-jazzy``; scripts/ros_env.sh
    runs this file with some ``python3`` before it sources that workspace)."""
    dirs = [Path(sys.prefix) / "lib"]
    dirs += [Path(p) / "lib" for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    dirs += [Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    tools = Path(os.environ.get("NSR_ROS2_TOOLS") or _ROOT / ".ros2_tools")
    if tools.name.startswith(".ros2_tools"):
        dirs.append(tools.parent / (".venv" + tools.name[len(".ros2_tools") :]) / "lib")
    return dirs


def fastdds_majors() -> set[int]:
    """The Fast DDS major versions whose libraries are found (2: libfastrtps, 3: libfastdds)."""
    found: set[int] = set()
    for d in _lib_dirs():
        if any(d.glob("libfastrtps.so.2*")):
            found.add(2)
        if any(d.glob("libfastdds.so.3*")):
            found.add(3)
    return found


def localhost_env(profile: Path | None = None) -> dict[str, str]:
    """The variables, with the installed package's profile unless ``profile`` is given."""
    if profile is None:
        from .resources import share_file

        profile = share_file(*PROFILE)
    env = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "FASTDDS_DEFAULT_PROFILES_FILE": str(profile)}
    if fastdds_majors() != {3}:  # Fast DDS 2.x, or unknown: its name for the same file
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(profile)
    return env


if __name__ == "__main__":
    for name, value in localhost_env(_ROOT.joinpath(*PROFILE)).items():
        print(f"export {name}={shlex.quote(value)}")
