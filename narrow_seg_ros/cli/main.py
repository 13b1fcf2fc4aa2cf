"""``narrow-seg`` entry point: dispatches to the subcommand modules."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..resources import TRAINING_MODULES, needs_training_tools
from ..ros.processes import NodeExited

# One module per subcommand (narrow_seg_ros/cli/<name>.py with add_parser(sub) and run(args)).
SUBCOMMANDS = [
    "info",
    "bench_memory",
    "train",
    "eval",
    "extract_weights",
    "ceiling",
    "export",
    "demo",
    "infer",
    "bench",
    "bench_postprocess",
    "bench_node",
    "bench_cameras",
    "soak",
    "synth",
    "fuzz",
    "prebuild_trt",
    "bench_startup",
    "strip",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="narrow-seg", description="NDNet / VNet semantic segmentation tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__package__}.{name}").add_parser(sub)
    return parser


def _set_openmp_wait_policy(argv: list[str]) -> None:
    """Passive OpenMP waiting for training: threads that spin after each op steal the cores the
    DataLoader workers need (2 cores: 5.2 images/s passive, 2.1 spinning). Inference keeps spinning threads,
    which run torch's own ops faster (NDNet45 1024x2048 on 2 cores: 210 ms vs 311 ms passive).

    OpenMP reads the variable once, when torch loads it, so this must run before any subcommand
    module imports torch; in a process that already has torch it would only leak into children.
    """
    if argv[:1] == ["train"] and "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    _set_openmp_wait_policy(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # bad user input: one clear line, no traceback
        print(f"narrow-seg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except NodeExited as exc:  # a node the command started died or never came up: its output, no traceback
        print(f"narrow-seg {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        if exc.name not in TRAINING_MODULES:
            raise
        print(f"narrow-seg {args.command}: error: {needs_training_tools(exc.name)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
