#!/usr/bin/env bash
# The README's test command: set-up, lint, then the whole pytest suite with DDS kept on this host.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/ros_env.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
