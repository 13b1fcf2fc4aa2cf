"""``narrow-seg train``: train a network from a YAML config with command-line overrides."""

from __future__ import annotations

from ..sizes import parse_hw
from .common import int_at_least, parse_key_values

# flag → dotted config key
OVERRIDES = {
    "iters": "train.iters",
    "batch_size": "train.batch_size",
    "lr": "optim.lr",
    "data": "data.root",
    "out": "train.out",
    "workers": "data.num_workers",
    "device": "train.device",
    "val_interval": "train.val_interval",
    "checkpoint_interval": "train.checkpoint_interval",
    "seed": "train.seed",
    "init_weights": "train.init_weights",
}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train NDNet / VNet (torchrun for several GPUs or nodes)")
    p.add_argument("--config", required=True, help="YAML config, e.g. config/train_ndnet45.yaml")
    p.add_argument("--iters", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--crop", type=parse_hw, help="training crop HxW")
    p.add_argument("--base-size", type=parse_hw, help="resize every sample to HxW before augmentation")
    p.add_argument("--data", help="dataset root in the Cityscapes layout")
    p.add_argument("--out", help="output folder (checkpoint, weights, logs, samples)")
    p.add_argument("--workers", type=int, help="DataLoader workers")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 …")
    p.add_argument("--val-interval", type=int)
    p.add_argument("--checkpoint-interval", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--init-weights", help="fine-tune: start from this weights file (same model and classes)")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--resume", action="store_true", help="continue exactly from OUT/checkpoint.pt")
    p.add_argument(
        "--stop-at", type=int_at_least(1), help="pause after this iteration (checkpoint written; --resume later)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, e.g. --set schedule.name=poly --set data.scales=[1.0]",
    )
    p.set_defaults(func=run)


def overrides_from_args(args) -> dict:
    overrides = {key: getattr(args, flag) for flag, key in OVERRIDES.items() if getattr(args, flag) is not None}
    if args.crop:
        overrides["data.crop"] = list(args.crop)
    if args.base_size:
        overrides["data.base_size"] = list(args.base_size)
    if args.no_amp:
        overrides["train.amp"] = False
    overrides.update(parse_key_values(args.set, "--set"))
    return overrides


def run(args) -> int:
    from ..training.config import load_config
    from ..training.loop import train

    config = load_config(args.config, overrides_from_args(args))
    summary = train(config, resume=args.resume, stop_at=args.stop_at)
    if summary:
        print(f"final val mIoU {100 * summary['miou']:.2f} %, pixel accuracy {100 * summary['pixel_accuracy']:.2f} %")
    return 0
