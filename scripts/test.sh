#!/usr/bin/env bash
# The README's test command: set-up, lint, then the whole pytest suite with DDS kept on this host.
#   bash scripts/test.sh [PYTEST ARGS]              the whole suite in .venv (what CI runs first)
#   bash scripts/test.sh --env jazzy|py310 [ARGS]   the torch-free deployment's tests in that
#                                                   environment (scripts/setup.sh --env; CI runs both)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ "${1:-}" = "--env" ]; then
  env_name="${2:?--env jazzy|py310}"
  shift 2
  bash scripts/setup.sh --env "$env_name"
  # the tests that need neither torch nor (for py310) ROS; each skips, saying why, what its
  # environment lacks
  files=(test/test_torch_free.py test/test_fuzz.py)
  # the node over DDS: with torch absent, its tests run the shipped .onnx (conftest.node_weights)
  if [ "$env_name" = jazzy ]; then
    files+=(test/test_image_conversion.py test/test_launch.py test/test_planner_contract.py test/test_multi_camera.py
      test/test_dds.py test/test_node.py test/test_bags.py)
  fi
  export NSR_ROS2_TOOLS="$root/.ros2_tools-$env_name"
  source scripts/ros_env.sh
  exec ".venv-$env_name/bin/python" -m pytest "${files[@]}" "$@"
fi
bash scripts/setup.sh
source scripts/ros_env.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
