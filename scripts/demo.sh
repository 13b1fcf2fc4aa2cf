#!/usr/bin/env bash
# The README's main job: set-up, then the whole pipeline on the bundled demo sequence with the
# shipped weights — image_player → seg_node → recorder over ROS 2 (DDS kept on this host) —
# writing masks and overlays to runs/demo/ and printing the achieved FPS. Extra arguments go to
# `narrow-seg demo` (e.g. --model vnet, --frames 100, --rate 30, --source my_folder).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/ros_env.sh
exec .venv/bin/narrow-seg demo "$@"
