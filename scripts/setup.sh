#!/usr/bin/env bash
# Idempotent set-up. Safe to run again; skips what is done.
#   bash scripts/setup.sh             .venv: Python 3.11, ROS 2 kilted wheels, torch, everything
#                                     pinned in requirements.lock (development, training, the tests)
#   bash scripts/setup.sh --env jazzy   .venv-jazzy: Python 3.12, ROS 2 Jazzy's wheels and the
#                                     torch-free deployment (requirements-jazzy.lock)
#   bash scripts/setup.sh --env py310   .venv-py310: Python 3.10 (Humble's), the torch-free
#                                     deployment without ROS (requirements-py310.lock)
# Each installs narrow_seg_ros in editable (strict) mode into its venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
env_name=main
if [ "${1:-}" = "--env" ]; then env_name="${2:?--env jazzy|py310}"; fi
case "$env_name" in
  main)  venv=.venv;       lock=requirements.lock;       python="${PYTHON:-python3}" ;;
  jazzy) venv=.venv-jazzy; lock=requirements-jazzy.lock; python="${PYTHON:-python3.12}"; export PYENV_VERSION=3.12.1 ;;
  py310) venv=.venv-py310; lock=requirements-py310.lock; python="${PYTHON:-python3.10}"; export PYENV_VERSION=3.10.13 ;;
  *) echo "[setup] unknown --env $env_name (jazzy or py310)" >&2; exit 2 ;;
esac

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
unset PYENV_VERSION
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing pinned dependencies ($lock)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pip==26.3" "setuptools==79.0.1"
  # --no-deps: the lock is complete, so pip resolves nothing unpinned. torch comes apart, pinned,
  # with what its build needs: nothing more for a CPU build; PyPI's CUDA build adds its nvidia-*
  # libraries (a CPU-only machine can use the CPU build from torch's own CPU wheel index instead).
  grep -v '^torch==' "$lock" > "$venv/requirements-no-torch.txt"
  "$venv/bin/python" -m pip install --quiet --no-deps -r "$venv/requirements-no-torch.txt"
  if grep -q '^torch==' "$lock"; then
    "$venv/bin/python" -m pip install --quiet "$(grep '^torch==' "$lock")"
  fi
  echo "$want" > "$stamp"
fi
# strict mode: only the narrow_seg_ros package goes on sys.path (compat mode put the repository
# root there, so `import launch` found ./launch); its link tree lists files, so a change in the
# package's file list installs again
files="$(find narrow_seg_ros -name '*.py' | sort | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$venv/.package-files" 2>/dev/null)" != "$files" ] || [ ! -x "$venv/bin/narrow-seg" ]; then
  echo "[setup] installing narrow_seg_ros (editable) into $venv"
  "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e . --config-settings editable_mode=strict
  echo "$files" > "$venv/.package-files"
fi
# Test tooling PyPI lacks (launch, launch_ros, ros2cli, vision_msgs), built from ../shared/ros2_src
# where that folder is beside the checkout (developers, CI): a ROS install has the real ones.
tools=../shared/ros2_src/install_ros2_tools.sh
workspace=.ros2_tools${venv#.venv}
if [ "$env_name" != py310 ] && [ -f "$tools" ] && [ ! -f "$workspace/env.sh" ]; then
  if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
    echo "[setup] installing cmake and g++ (Debian packages) to build vision_msgs"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ >/dev/null
  fi
  echo "[setup] building the ROS 2 test tools into $venv ($workspace/, about a minute)"
  bash "$tools" "$venv" "$workspace" >/dev/null
fi
report='import importlib.util as u, sys
have = ["%s %s" % (m, "yes" if u.find_spec(m) else "no") for m in ("torch", "rclpy", "onnxruntime")]
print("Python", sys.version.split()[0], "|", " | ".join(have))'
echo "[setup] ready ($venv): $("$venv/bin/python" -c "$report")"
