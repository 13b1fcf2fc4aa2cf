"""``narrow-seg bench``: per-stage and end-to-end latency of the engine for each backend.

End to end = uint8 camera frame in → class mask + color mask out (``Segmenter.segment``). Each
backend runs in its own subprocess (its threads and allocator cannot disturb the next one), with
warm-up runs excluded, several different input frames rotated, and GPU work synchronised before a
clock is read. Achieved GFLOP/s counts the network's multiply-adds (torch.utils.flop_counter) over
the network stage's median time.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from ..inference.params import BACKENDS
from ..sizes import parse_hw
from .common import (
    add_model_option_argument,
    format_size,
    int_at_least,
    parse_key_values,
    print_json,
    print_table,
    run_worker,
    street_frames,
)

FRAMES = 4


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="engine latency per stage and FPS for each backend")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="weights file")
    src.add_argument("--model", help="registered model with random weights (speed only)")
    add_model_option_argument(p)  # with --model
    p.add_argument("--backends", default="torch,onnxruntime", help="comma-separated: torch, onnxruntime")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument("--fp16", action="store_true", help="half precision (CUDA)")
    p.add_argument("--size", type=parse_hw, default=(1024, 2048), help="camera frame HxW (and network input)")
    p.add_argument("--input-size", type=parse_hw, help="network input HxW if different from --size")
    p.add_argument("--threads", type=int_at_least(1), default=2)
    p.add_argument("--iters", type=int_at_least(1), default=50)
    p.add_argument("--warmup", type=int_at_least(0), default=5)
    p.add_argument("--json", action="store_true")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.worker:
        print(json.dumps(measure(args, args.worker)))
        return 0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    runnable = [b for b in BACKENDS if b != "auto"]
    for b in backends:
        if b not in runnable:
            raise ValueError(f"unknown backend {b!r} ({', '.join(runnable)})")
    with tempfile.TemporaryDirectory() as tmp:
        if args.option and args.weights:
            raise ValueError("--option builds a --model; a weights file records its own options")
        options = parse_key_values(args.option, "--option")
        weights = args.weights or _random_weights(args.model, args.input_size or args.size, tmp, options)
        rows = []
        for backend in backends:
            argv = ["bench", "--weights", weights, "--worker", backend, "--device", args.device]
            argv += ["--size", format_size(args.size), "--threads", str(args.threads)]
            argv += ["--iters", str(args.iters), "--warmup", str(args.warmup)]
            if args.input_size:
                argv += ["--input-size", format_size(args.input_size)]
            if args.fp16:
                argv.append("--fp16")
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            rows.append(run_worker(argv, f"{backend} benchmark", env))
    if args.json:
        print_json(rows)
        return 0
    print(
        f"{rows[0]['model']}, frame {format_size(args.size)}, network input {rows[0]['input_size']}, "
        f"{args.threads} threads, {args.iters} iterations (medians; e2e p99 last)"
    )
    print_table(
        rows,
        [
            ("backend", "backend"),
            ("device", "device"),
            ("pre_ms_p50", "pre ms"),
            ("net_ms_p50", "net ms"),
            ("post_ms_p50", "post ms"),
            ("e2e_ms_p50", "e2e ms"),
            ("fps", "FPS"),
            ("gflops", "GFLOP/s"),
            ("peak_mem_mb", "peak MB"),
            ("e2e_ms_p99", "e2e p99"),
            ("cpu_steal_percent", "steal %"),
        ],
    )
    return 0


def _random_weights(model: str, size, folder: str, options: dict) -> str:
    from ..weights import random_weights, save_weights

    path = os.path.join(folder, f"{model}_random.pt")
    save_weights(random_weights(model, size, **options), path)
    return path


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(args, backend: str) -> dict:
    import time

    import numpy as np

    from ..inference.engine import Segmenter
    from ..models.stats import model_stats
    from ..weights import load_weights

    weights = load_weights(args.weights)
    input_size = tuple(args.input_size or args.size)
    engine = Segmenter.from_weights(
        args.weights,
        backend=backend,
        device=args.device,
        fp16=args.fp16,
        input_size=input_size,
        threads=args.threads,
        warmup=0,
    )
    cuda = args.device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    frames = street_frames(args.size, FRAMES)
    for i in range(args.warmup):
        engine.segment(frames[i % FRAMES], "rgb8", color=True)
    stages = {k: [] for k in ("pre_ms", "net_ms", "post_ms", "total_ms")}
    cpu_before = _cpu_times()
    wall = time.perf_counter()
    for i in range(args.iters):
        t = engine.segment(frames[i % FRAMES], "rgb8", color=True).timings
        for k in stages:
            stages[k].append(t[k])
    wall = time.perf_counter() - wall
    steal = _steal_percent(cpu_before, _cpu_times())
    p50 = {k: float(np.median(v)) for k, v in stages.items()}
    gmacs = model_stats(weights.model, input_size, weights.num_classes, **weights.model_options)["gmacs"]
    if cuda:
        import torch

        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = _peak_rss_mb()
    return {
        "backend": backend,
        "device": args.device + (" fp16" if args.fp16 else ""),
        "model": weights.label,
        "engine": engine.describe(),
        "size": format_size(args.size),
        "input_size": format_size(input_size),
        "threads": args.threads,
        "iters": args.iters,
        "pre_ms_p50": round(p50["pre_ms"], 2),
        "net_ms_p50": round(p50["net_ms"], 2),
        "post_ms_p50": round(p50["post_ms"], 2),
        "e2e_ms_p50": round(p50["total_ms"], 2),
        "pre_ms_p99": round(float(np.percentile(stages["pre_ms"], 99)), 2),
        "net_ms_p99": round(float(np.percentile(stages["net_ms"], 99)), 2),
        "post_ms_p99": round(float(np.percentile(stages["post_ms"], 99)), 2),
        "e2e_ms_p99": round(float(np.percentile(stages["total_ms"], 99)), 2),
        "fps": round(args.iters / wall, 2),
        "gflops": round(2 * gmacs / (p50["net_ms"] / 1e3), 1),
        "peak_mem_mb": round(peak, 1),
        # CPU time the hypervisor took from this VM during the run (None off Linux): figures
        # measured under heavy steal are slower than the machine is
        "cpu_steal_percent": steal,
    }


def _cpu_times():
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def _steal_percent(before, after):
    if not before or not after or len(before) < 8:
        return None
    delta = [b - a for a, b in zip(before, after)]
    total = sum(delta[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return round(100.0 * delta[7] / total, 1) if total > 0 else None
