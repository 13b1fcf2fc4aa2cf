"""``narrow-seg`` entry point: dispatches to the subcommand modules."""

from __future__ import annotations

import argparse
import sys

from . import bench_memory, info

SUBCOMMANDS = (info, bench_memory)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="narrow-seg", description="NDNet / VNet semantic segmentation tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
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
