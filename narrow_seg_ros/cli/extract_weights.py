"""``narrow-seg extract-weights``: a weights file from a training checkpoint (as MMSeg's publish_model).

A paused run has no weights file yet, and a run with a weight average (``train.ema_decay``) writes
the average only: this writes either from its ``checkpoint.pt``, without the optimizer state.
"""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("extract-weights", help="write a weights file from a training checkpoint")
    p.add_argument("checkpoint", type=Path, help="a run's checkpoint.pt")
    p.add_argument("--out", type=Path, required=True, help="weights file to write")
    p.add_argument("--raw", action="store_true", help="the raw weights, not the run's weight average")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..training.loop import weights_from_checkpoint
    from ..weights import save_weights

    weights = weights_from_checkpoint(args.checkpoint, raw=args.raw)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(weights, args.out)
    kind = weights.metadata["weights"]
    note = " (the run keeps no weight average)" if kind == "raw" and not args.raw else ""
    print(f"{kind} weights of iteration {weights.metadata['iterations']}{note} written to {args.out}")
    return 0
