"""``narrow-seg bench-memory``: peak training memory of reversible vs plain autograd.

Each mode runs in its own subprocess so allocator caches cannot leak between them. One warm-up
training step, then the measured step (forward, cross-entropy at full resolution, backward).
On CUDA the figure is ``torch.cuda.max_memory_allocated`` above what was allocated before the
step; on CPU it is the peak resident set size (VmHWM, reset through /proc/self/clear_refs) above
the RSS before the step. Weights, optimizer-free gradients and the Python/torch runtime are thus
excluded from both figures alike; the raw peaks are printed too.
"""

from __future__ import annotations

import argparse
import json
import os

from ..devices import resolve_device
from ..sizes import parse_hw
from .common import format_size, int_at_least, print_json, print_table, run_worker, status_mb

MODES = ("reversible", "plain")


def add_parser(sub) -> None:
    p = sub.add_parser("bench-memory", help="peak training memory, reversible vs plain backprop")
    p.add_argument("--model", default="vnet", help="a model with reversible stages (default vnet)")
    p.add_argument("--batch-size", type=int_at_least(1), default=2)
    p.add_argument("--size", type=parse_hw, default=(1024, 2048), help="training input HxW")
    p.add_argument("--device", default="auto", help="auto (CUDA where torch sees it), cpu, cuda, cuda:N")
    p.add_argument("--num-classes", type=int_at_least(1), default=19)
    p.add_argument(
        "--loss",
        choices=("banded", "naive"),
        default="banded",
        help="banded: upsampled_cross_entropy, the trainer's loss (default); naive: F.interpolate + F.cross_entropy",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args) -> int:
    args.device = resolve_device(args.device)
    if args.worker:
        print(
            json.dumps(
                measure(args.model, args.worker, args.batch_size, args.size, args.device, args.num_classes, args.loss)
            )
        )
        return 0
    rows = []
    for mode in MODES:
        argv = ["bench-memory", "--worker", mode, "--model", args.model, "--batch-size", str(args.batch_size)]
        argv += ["--size", format_size(args.size), "--device", args.device]
        argv += ["--num-classes", str(args.num_classes), "--loss", args.loss]
        rows.append(run_worker(argv, f"{mode} worker", _worker_env()))
    ratio = rows[0]["step_peak_mb"] / rows[1]["step_peak_mb"]
    saved_ratio = rows[0]["saved_for_backward_mb"] / rows[1]["saved_for_backward_mb"]
    for r in rows:
        r["ratio_to_plain"] = round(r["step_peak_mb"] / rows[1]["step_peak_mb"], 3)
    if args.json:
        print_json(rows)
        return 0
    print(f"{args.model}, batch {args.batch_size} × {format_size(args.size)}, device {args.device}, {args.loss} loss")
    print_table(
        rows,
        [
            ("mode", "mode"),
            ("step_peak_mb", "step peak MB"),
            ("raw_peak_mb", "raw peak MB"),
            ("saved_for_backward_mb", "saved-for-backward MB"),
            ("step_seconds", "step s"),
            ("ratio_to_plain", "ratio"),
        ],
    )
    print(f"reversible / plain peak training memory: {ratio:.3f}")
    print(f"reversible / plain activations saved for backward: {saved_ratio:.3f}")
    return 0


def _worker_env() -> dict:
    # A fixed mmap threshold makes glibc hand large freed blocks back to the OS at once, so
    # RSS follows live tensors instead of the allocator's high-water mark.
    env = dict(os.environ)
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    env.setdefault("MALLOC_TRIM_THRESHOLD_", "0")
    return env


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5" resets VmHWM to the current RSS
        fh.write("5")


def measure(name, mode, batch_size, size, device, num_classes, loss) -> dict:
    import time

    import torch
    import torch.nn.functional as F

    from ..inference.rules import UNLABELED
    from ..models import build_model
    from ..training.losses import upsampled_cross_entropy

    torch.manual_seed(0)
    model = build_model(name, num_classes=num_classes).to(device).train()
    if not hasattr(model, "reversible"):
        raise ValueError(f"model {name!r} has no reversible stages to compare")
    model.reversible = mode == "reversible"
    x = torch.randn(batch_size, 3, *size, device=device)
    target = torch.randint(0, num_classes, (batch_size, *size), device=device)

    def loss_of(out):
        if loss == "banded":
            return upsampled_cross_entropy(out, target, model.align_corners, band_pixels=1 << 14)
        return F.cross_entropy(out, target, ignore_index=UNLABELED)

    def step():
        model.zero_grad(set_to_none=True)
        loss_of(model(x, full_resolution=loss == "naive")).backward()

    # Warm-up (one-time allocations are not the method's cost), counting on the way the bytes
    # the model's forward saves for backward: an allocator-independent view of the same effect.
    saved: dict[int, int] = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x, full_resolution=loss == "naive")
    loss_of(out).backward()
    del out
    model.zero_grad(set_to_none=True)
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    else:
        _reset_peak_rss()
        base = status_mb("VmRSS")
    t0 = time.perf_counter()
    step()
    if cuda:
        torch.cuda.synchronize()
        raw = torch.cuda.max_memory_allocated() / 2**20
    else:
        raw = status_mb("VmHWM")
    return {
        "model": name,
        "mode": mode,
        "device": device,
        "batch_size": batch_size,
        "size": format_size(size),
        "loss": loss,
        "step_peak_mb": round(raw - base, 1),
        "saved_for_backward_mb": round(sum(saved.values()) / 2**20, 1),
        "raw_peak_mb": round(raw, 1),
        "step_seconds": round(time.perf_counter() - t0, 3),
    }
