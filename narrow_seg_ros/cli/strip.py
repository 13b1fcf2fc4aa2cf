"""``narrow-seg strip``: a picture to judge a model by: for frames of a labelled split (e.g. the
held-out CamVid sequence), one row each of frame | ground truth | prediction | confidence, as one
PNG. The prediction is the engine's (what the node publishes for that frame). Write it where
research data may lie (a gitignored folder such as runs/): the frames are the dataset's."""

from __future__ import annotations

from pathlib import Path

from .common import add_dataset_arguments, int_at_least


def add_parser(sub) -> None:
    p = sub.add_parser("strip", help="frame | ground truth | prediction | confidence rows as one PNG")
    p.add_argument("--weights", required=True, help="weights .pt or exported .onnx")
    add_dataset_arguments(p)
    p.add_argument("--frames", type=int_at_least(1), default=4, help="rows, spread evenly over the split")
    p.add_argument("--width", type=int_at_least(16), default=480, help="width of each tile in pixels")
    p.add_argument("--out", required=True, help="the PNG to write (e.g. runs/strips/ndnet45_fcn8_camvid.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    import cv2
    import numpy as np

    from ..atomic import atomic_path
    from ..data.folder import open_dataset
    from ..inference.engine import Segmenter
    from ..palette import colorize

    dataset = open_dataset(args.dataset, args.data, args.split, args.sequences)
    engine = Segmenter.from_weights(args.weights, warmup=0)
    if engine.class_names != dataset.class_names:
        raise ValueError(f"{args.weights} predicts {len(engine.class_names)} classes, not the dataset's own")
    picks = np.linspace(0, len(dataset) - 1, min(args.frames, len(dataset))).round().astype(int)
    rows = []
    for index in picks:
        image, target = dataset[int(index)]
        out = engine.segment(image, "rgb8", confidence=True)
        confidence = cv2.cvtColor(out.confidence, cv2.COLOR_GRAY2RGB)
        tiles = [image, colorize(target, engine.palette), colorize(out.mask, engine.palette), confidence]
        h = round(image.shape[0] * args.width / image.shape[1])
        rows.append(np.concatenate([cv2.resize(t, (args.width, h), interpolation=cv2.INTER_NEAREST) for t in tiles], 1))
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
    with atomic_path(out_path) as tmp:
        tmp.write_bytes(png.tobytes())
    names = ", ".join(dataset.name(int(i)) for i in picks)
    print(f"wrote {out_path}: frame | ground truth | prediction | confidence for {names}")
    return 0
