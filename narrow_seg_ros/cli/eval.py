"""``narrow-seg eval``: per-class IoU, mIoU and pixel accuracy of a weights file on a dataset."""

from __future__ import annotations

from pathlib import Path

from .common import int_at_least, iou_summary, parse_size, print_iou_report


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="mIoU / per-class IoU of weights on a Cityscapes-layout split")
    p.add_argument("--weights", required=True)
    p.add_argument("--data", required=True, help="dataset root in the Cityscapes layout")
    p.add_argument("--split", default="val")
    p.add_argument("--size", type=parse_size, help="network input HxW (default: the weights' input size)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-images", type=int_at_least(1))
    p.add_argument("--json", action="store_true", help="print JSON with miou, pixel_accuracy, per_class")
    p.add_argument("--confusion", metavar="CSV", help="also write the confusion matrix (pixel counts) to this file")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.cityscapes import CityscapesDataset
    from ..training.evaluate import evaluate
    from ..weights import load_weights

    weights = load_weights(args.weights)
    model = weights.build_model().to(args.device)
    dataset = CityscapesDataset(args.data, args.split)
    matrix = evaluate(
        model,
        dataset,
        weights.num_classes,
        weights.mean,
        weights.std,
        args.size or weights.input_size,
        args.device,
        args.max_images,
        progress=not args.json,
    )
    summary = iou_summary(matrix, weights, dataset, args.max_images, weights=str(args.weights), split=args.split)
    print_iou_report(summary, args.json, f"{weights.label} on {args.data} [{args.split}], {summary['images']} images")
    if args.confusion:  # after the report, so that a bad path cannot lose it
        Path(args.confusion).parent.mkdir(parents=True, exist_ok=True)
        matrix.write_csv(args.confusion, weights.class_names)
    return 0
