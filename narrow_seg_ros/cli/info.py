"""``narrow-seg info``: parameters, GMACs and output stride of the registered models."""

from __future__ import annotations

from ..sizes import parse_hw
from .common import add_model_option_argument, int_at_least, parse_key_values, print_json, print_table


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="parameters, GMACs and output stride of a model (or --all)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("model", nargs="?", help="registered model name (ndnet45, vnet, ...; --all lists them)")
    which.add_argument("--all", action="store_true", help="every registered model")
    p.add_argument("--size", type=parse_hw, default=(1024, 2048), help="input HxW for GMACs (default 1024x2048)")
    p.add_argument("--num-classes", type=int_at_least(1), default=19)
    add_model_option_argument(p)
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models import list_models, model_label
    from ..models.stats import model_stats

    if args.model is not None and args.model not in list_models():
        raise ValueError(f"unknown model {args.model!r}; registered: {', '.join(list_models())}")
    names = list_models() if args.all else [args.model]
    options = parse_key_values(args.option, "--option")
    if options and args.all:
        raise ValueError("--option applies to one model; give the model name instead of --all")
    rows = [model_stats(n, args.size, args.num_classes, **options) for n in names]
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        r["model"] = model_label(r["model"], options)
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
