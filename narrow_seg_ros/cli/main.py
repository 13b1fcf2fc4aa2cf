"""``narrow-seg`` entry point: dispatches to the subcommand modules."""

from __future__ import annotations

import argparse
import importlib
import sys

# One module per subcommand (narrow_seg_ros/cli/<name>.py with add_parser(sub) and run(args)).
SUBCOMMANDS = [
    "info",
    "bench_memory",
    "train",
    "eval",
    "export",
    "demo",
    "bench",
    "bench_node",
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
