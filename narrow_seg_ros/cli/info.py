"""``narrow-seg info``: parameters, GMACs and output stride of the registered models."""

from __future__ import annotations

from ..models import list_models
from ..models.stats import model_stats
from .common import parse_key_values, parse_size, print_json, print_table


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="parameters, GMACs and output stride of a model (or --all)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("model", nargs="?", choices=list_models(), help="registered model name")
    which.add_argument("--all", action="store_true", help="every registered model")
    p.add_argument("--size", type=parse_size, default=(1024, 2048), help="input HxW for GMACs (default 1024x2048)")
    p.add_argument("--num-classes", type=int, default=19)
    p.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="a model option, as in a config's model.options (e.g. --option head=fcn8 for NDNet)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p.set_defaults(func=run)


def run(args) -> int:
    names = list_models() if args.all else [args.model]
    options = parse_key_values(args.option, "--option")
    rows = [model_stats(n, args.size, args.num_classes, **options) for n in names]
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        r["model"] += "".join(f" {k}={v}" for k, v in options.items())
        r["params_total_k"] = f"{r['params_total'] / 1e3:.1f}K"
        r["params_backbone_k"] = f"{r['params_backbone'] / 1e3:.1f}K"
    print_table(
        rows,
        [
            ("model", "model"),
            ("params_total_k", "params"),
            ("params_backbone_k", "backbone"),
            ("gmacs", f"GMACs@{rows[0]['size']}"),
            ("output_stride", "stride"),
        ],
    )
    return 0
