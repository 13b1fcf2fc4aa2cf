"""``narrow-seg synth``: write procedural street scenes in the Cityscapes folder layout."""

from __future__ import annotations

import argparse

from ..sizes import parse_hw
from .common import format_size


def _int_at_least(minimum: int, what: str):
    """argparse type: an integer >= ``minimum``, else a message naming ``what``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "expected a positive integer")
_seed = _int_at_least(0, "seed must be a non-negative integer")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="write synthetic street scenes as a Cityscapes-layout dataset",
        description="Writes DIR/leftImg8bit/SPLIT/CITY/*_leftImg8bit.png and "
        "DIR/gtFine/SPLIT/CITY/*_gtFine_labelIds.png (Cityscapes label ids). "
        "Same arguments give byte-identical files.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="dataset root to write into")
    p.add_argument("--num", type=_positive_int, required=True, metavar="N", help="number of images")
    p.add_argument("--size", type=parse_hw, default=(512, 1024), help="image HxW (default 512x1024)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    # data.synth.SPLITS, not imported here: it loads the Cityscapes label table
    p.add_argument("--split", choices=("train", "val", "test"), default="train", help="split folder (default train)")
    p.add_argument("--city", default="synthtown", help="city folder and file-name prefix (default synthtown)")
    p.add_argument(
        "--sequence", action="store_true", help="consecutive frames of one drive (17 fps) instead of independent scenes"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.synth import generate  # imports the Cityscapes label table: only when run

    pairs = generate(
        args.out, args.num, size=args.size, seed=args.seed, split=args.split, city=args.city,
        sequence=args.sequence, progress=True,
    )  # fmt: skip
    kind = "frames of one sequence" if args.sequence else "scenes"
    print(f"wrote {len(pairs)} {kind} at {format_size(args.size)}:")
    print(f"  images: {pairs[0][0].parent}")
    print(f"  labels: {pairs[0][1].parent}")
    return 0
