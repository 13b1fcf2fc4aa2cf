"""``narrow-seg`` entry point: dispatches to the subcommand modules."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Before torch loads, for training only: OpenMP threads that spin after each op steal the cores
# the DataLoader workers need (2 cores: 2.1 → 5.2 images/s). Inference keeps spinning threads,
# which run torch's own ops faster (NDNet45 1024x2048 on 2 cores: 210 ms vs 311 ms passive).
if len(sys.argv) > 1 and sys.argv[1] == "train":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# One module per subcommand (narrow_seg_ros/cli/<name>.py with add_parser(sub) and run(args)).
SUBCOMMANDS = [
    "info",
    "bench_memory",
    "train",
    "eval",
    "publish",
    "ceiling",
    "export",
    "demo",
    "infer",
    "bench",
    "bench_node",
    "soak",
    "synth",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="narrow-seg", description="NDNet / VNet semantic segmentation tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__package__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # bad user input: one clear line, no traceback
        print(f"narrow-seg {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
