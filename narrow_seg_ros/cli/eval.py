"""``narrow-seg eval``: per-class IoU, mIoU and pixel accuracy of a weights file on a dataset."""

from __future__ import annotations

from pathlib import Path

from ..sizes import parse_hw
from .common import add_dataset_arguments, int_at_least, iou_summary, print_iou_report


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="mIoU / per-class IoU of weights on a labelled split")
    p.add_argument("--weights", required=True)
    add_dataset_arguments(p)
    p.add_argument("--size", type=parse_hw, help="network input HxW (default: the weights' input size)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-images", type=int_at_least(1))
    p.add_argument("--json", action="store_true", help="print JSON with miou, pixel_accuracy, per_class")
    p.add_argument("--confusion", metavar="CSV", help="also write the confusion matrix (pixel counts) to this file")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.folder import open_dataset
    from ..models.transfer import class_mapping
    from ..training.evaluate import evaluate
    from ..weights import load_weights

    weights = load_weights(args.weights)
    model = weights.build_model().to(args.device)
    dataset = open_dataset(args.dataset, args.data, args.split, args.sequences)
    class_map = None
    if weights.class_names != dataset.class_names:
        class_map = class_mapping(weights.class_names, dataset.class_names)
        if not args.json:
            pairs = (
                f"{p}->{dataset.class_names[d]}" if d is not None else f"{p}->(none)"
                for p, d in zip(weights.class_names, class_map)
            )
            print(f"predicted classes counted as the dataset's: {', '.join(pairs)}")
    matrix = evaluate(
        model,
        dataset,
        len(dataset.class_names),
        weights.mean,
        weights.std,
        args.size or weights.input_size,
        args.device,
        args.max_images,
        progress=not args.json,
        class_map=class_map,
    )
    summary = iou_summary(
        matrix, dataset.class_names, weights, dataset, args.max_images, weights=str(args.weights), split=args.split
    )
    print_iou_report(summary, args.json, f"{weights.label} on {args.data} [{args.split}], {summary['images']} images")
    if args.confusion:  # after the report, so that a bad path cannot lose it
        Path(args.confusion).parent.mkdir(parents=True, exist_ok=True)
        matrix.write_csv(args.confusion, dataset.class_names)
    return 0
