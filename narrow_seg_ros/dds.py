"""The DDS environment that keeps ROS 2 traffic on this host, defined once: discovery on localhost
and the project's Fast DDS profile (loopback UDP + shared memory). Read by the commands that start
their own nodes (``ros.runtime.keep_dds_on_this_host``), by the tests, and by
``scripts/ros_env.sh``, which runs this file as a script (any ``python3``; no package import) to
print it as shell exports."""

from __future__ import annotations

import shlex
from pathlib import Path

PROFILE = ("config", "fastdds_localhost.xml")


def localhost_env(profile: Path | None = None) -> dict[str, str]:
    """The variables, with the installed package's profile unless ``profile`` is given."""
    if profile is None:
        from .resources import share_file

        profile = share_file(*PROFILE)
    return {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "FASTDDS_DEFAULT_PROFILES_FILE": str(profile)}


if __name__ == "__main__":
    for name, value in localhost_env(Path(__file__).resolve().parents[1].joinpath(*PROFILE)).items():
        print(f"export {name}={shlex.quote(value)}")
