#!/usr/bin/env bash
# The shipped .onnx beside each shipped .pt that has one (resources.SHIPPED_ONNX): dynamic batch and
# size (input_width/height and several cameras keep working), float input, narrow layers padded to
# 16 channels (onnxruntime's NCHWc block on AVX-512 CPUs, a multiple of AVX2's 8; same logits).
# Run from the repository root after a weights file changes; the graphs need no torch to run.
set -euo pipefail
cd "$(dirname "$0")/.."
for model in $(.venv/bin/python -c "from narrow_seg_ros.resources import SHIPPED_ONNX; print(*SHIPPED_ONNX)"); do
  .venv/bin/narrow-seg export --weights "models/$model.pt" --format onnx --out "models/$model.onnx" \
    --dynamic --channel-multiple 16
done
