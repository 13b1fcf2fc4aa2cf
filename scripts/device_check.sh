#!/usr/bin/env bash
# The GPU rows of docs/benchmarks.md, measured on a lent GPU machine in one short call of the
# device tool (its image has python3 with CUDA torch, numpy, OpenCV, numba and PyYAML; no ROS):
#   run(command="bash scripts/device_check.sh", timeout_s=480)
# Engine per stage for the shipped real-road and synthetic models at 1024x2048 camera frames, torch
# CUDA fp32 and fp16, then training memory of VNet's reversible stages on CUDA. Each command's JSON goes to $OUT (files the tool brings back) and its
# table to the output. DEVICE=cpu ITERS=3 runs the same commands here, as a check of the script.
set -uo pipefail
OUT=${OUT:-/tmp/device_check}
DEVICE=${DEVICE:-cuda}
ITERS=${ITERS:-200}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nsr() { "$PY" -m narrow_seg_ros.cli.main "$@"; }

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')"
} 2>&1 | tee "$OUT/machine.txt"

status=0
# each model at the network input the node gives it (models/README.md)
for pair in ndnet45_fcn8_camvid:540x720 vnet_camvid:360x480 ndnet45_fcn8_synth:1024x2048; do
  model=${pair%%:*} input=${pair#*:}
  for precision in fp32 fp16; do
    [ "$precision" = fp16 ] && [ "$DEVICE" = cpu ] && continue  # half precision is CUDA's
    flag=(); [ "$precision" = fp16 ] && flag=(--fp16)
    echo "== bench $model $precision ($DEVICE)"
    nsr bench --weights "models/$model.pt" --backends torch --device "$DEVICE" "${flag[@]}" \
      --size 1024x2048 --input-size "$input" --iters "$ITERS" --warmup 20 --json > "$OUT/bench_${model}_${precision}.json" || status=1
    "$PY" -c "import json,sys; [print(json.dumps(r)) for r in json.load(open(sys.argv[1]))]" \
      "$OUT/bench_${model}_${precision}.json" || status=1
  done
done
echo "== bench-memory vnet 1024x2048 batch 1 ($DEVICE)"
nsr bench-memory --size 1024x2048 --batch-size 1 --device "$DEVICE" --json > "$OUT/bench_memory.json" || status=1
cat "$OUT/bench_memory.json"
exit $status
