"""``narrow-seg ceiling``: the best mIoU a weights file's output head could reach on a dataset."""

from __future__ import annotations

from ..sizes import parse_hw
from .common import add_dataset_arguments, int_at_least, iou_summary, print_iou_report


def add_parser(sub) -> None:
    p = sub.add_parser(
        "ceiling",
        help="upper bound of mIoU for the network's head (output stride + bilinear upsampling) on a split",
        description=(
            "For each label map, search the low-resolution logits whose bilinear upsample fits it best "
            "(Adam on the cross-entropy, from the per-cell class fractions) and score them like eval: "
            "no network with this head and input size can do better (up to the search's accuracy)."
        ),
    )
    p.add_argument("--weights", required=True, help="weights file: model, input size and classes")
    add_dataset_arguments(p)
    p.add_argument("--size", type=parse_hw, help="network input HxW (default: the weights' input size)")
    p.add_argument("--steps", type=int_at_least(0), default=60, help="Adam steps per image (0: cell fractions only)")
    p.add_argument("--max-images", type=int_at_least(1))
    p.add_argument("--json", action="store_true", help="print JSON with miou, pixel_accuracy, per_class")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..data.folder import open_dataset
    from ..training.ceiling import head_ceiling
    from ..weights import load_weights

    weights = load_weights(args.weights)
    model = weights.build_model().eval()
    size = args.size or tuple(weights.input_size)
    with torch.no_grad():
        grid = tuple(model.forward_lowres(torch.zeros(1, 3, *size)).shape[-2:])
    dataset = open_dataset(args.dataset, args.data, args.split, args.sequences)
    matrix = head_ceiling(
        dataset, weights.num_classes, grid, model.align_corners, args.steps, args.max_images, progress=not args.json
    )
    summary = iou_summary(
        matrix, weights.class_names, weights, dataset, args.max_images, data=str(args.data), split=args.split
    )
    summary.update(steps=args.steps, input_size=list(size), low_res_grid=list(grid))
    title = f"head ceiling of {weights.label} at {size[0]}x{size[1]} (logits {grid[0]}x{grid[1]}) on {args.data}"
    print_iou_report(summary, args.json, title)
    return 0
