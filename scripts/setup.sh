#!/usr/bin/env bash
# Idempotent set-up: .venv at the repo root with every dependency pinned (requirements.lock),
# then narrow_seg_ros installed in editable mode. Safe to run again; skips what is done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want="$(sha256sum requirements.lock | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing pinned dependencies (requirements.lock)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "pip==26.3"
  # --no-deps: the lock is complete, so pip resolves nothing unpinned. torch comes apart, pinned,
  # with what its build needs: nothing more for a CPU build; PyPI's CUDA build adds its nvidia-*
  # libraries (a CPU-only machine can use the CPU build from torch's own CPU wheel index instead).
  grep -v '^torch==' requirements.lock > .venv/requirements-no-torch.txt
  .venv/bin/python -m pip install --quiet --no-deps -r .venv/requirements-no-torch.txt
  .venv/bin/python -m pip install --quiet "$(grep '^torch==' requirements.lock)"
  echo "$want" > "$stamp"
fi
# strict mode: only the narrow_seg_ros package goes on sys.path (compat mode put the repository
# root there, so `import launch` found ./launch); its link tree lists files, so a change in the
# package's file list installs again
files="$(find narrow_seg_ros -name '*.py' | sort | sha256sum | cut -d' ' -f1)"
if [ "$(cat .venv/.package-files 2>/dev/null)" != "$files" ] || [ ! -x .venv/bin/narrow-seg ]; then
  echo "[setup] installing narrow_seg_ros (editable)"
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e . --config-settings editable_mode=strict
  echo "$files" > .venv/.package-files
fi
# Test tooling PyPI lacks (launch, launch_ros, ros2cli, vision_msgs), built from ../shared/ros2_src
# where that folder is beside the checkout (developers, CI): a ROS install has the real ones.
tools=../shared/ros2_src/install_ros2_tools.sh
if [ -f "$tools" ] && [ ! -f .ros2_tools/env.sh ]; then
  if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
    echo "[setup] installing cmake and g++ (Debian packages) to build vision_msgs"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ >/dev/null
  fi
  echo "[setup] building the ROS 2 test tools into .venv (.ros2_tools/, about a minute)"
  bash "$tools" .venv .ros2_tools >/dev/null
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch, rclpy; print("torch", torch.__version__, "| rclpy ok")')"
