"""``narrow-seg bench-postprocess``: time the post-processing and check it against torch.

Times :func:`~narrow_seg_ros.inference.postprocess.logits_to_mask`,
:func:`~narrow_seg_ros.inference.postprocess.logits_to_confidence` and the naive torch reference
(``F.interpolate`` of every class + ``argmax``) on street-scene logits
(:mod:`~narrow_seg_ros.inference.street_logits`), and prints how far they agree. The share of
boundary cells is printed too, since the mask's cost grows with it.
"""

from __future__ import annotations

import time

from ..sizes import parse_hw
from .common import int_at_least


def add_parser(sub) -> None:
    p = sub.add_parser("bench-postprocess", help="post-processing latency and agreement with torch's upsample + argmax")
    p.add_argument("--size", type=parse_hw, default=(1024, 2048), help="output mask HxW (default 1024x2048)")
    p.add_argument("--low", type=parse_hw, default=(32, 64), help="logit HxW (default 32x64)")
    p.add_argument("--align-corners", type=int, choices=(0, 1), default=1, help="1: NDNet (default), 0: VNet")
    p.add_argument("--repeats", type=int_at_least(1), default=50, help="timed runs of ours (default 50)")
    p.add_argument("--reference-repeats", type=int_at_least(1), default=5, help="timed runs of the torch reference")
    p.add_argument("--threads", type=int_at_least(1), default=2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _times_ms(fn, repeats: int):
    import numpy as np

    fn()  # warm-up: caches, allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return np.array(times) * 1e3


def run(args) -> int:
    import cv2
    import numpy as np
    import torch

    from ..inference import postprocess
    from ..inference.street_logits import boundary_cell_fraction, street_scene_logits

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    size, align_corners = tuple(args.size), bool(args.align_corners)
    logits = street_scene_logits(tuple(args.low), seed=args.seed)

    def reference():
        return postprocess.reference_mask(logits, size, align_corners)

    rows = [
        ("logits_to_mask", _times_ms(lambda: postprocess.logits_to_mask(logits, size, align_corners), args.repeats)),
        (
            "logits_to_confidence",
            _times_ms(lambda: postprocess.logits_to_confidence(logits, size, align_corners), args.repeats),
        ),
        ("torch interpolate + argmax", _times_ms(reference, args.reference_repeats)),
    ]
    mask = postprocess.logits_to_mask(logits, size, align_corners)
    agreement = float((mask == reference()).mean())
    error = np.abs(
        postprocess.logits_to_confidence(logits, size, align_corners).astype(np.int16)
        - postprocess.reference_confidence(logits, size, align_corners)
    )

    print(
        f"{size[0]}x{size[1]} from {logits.shape} logits, align_corners={align_corners}, {args.threads} threads, "
        f"boundary cells {100 * boundary_cell_fraction(logits):.1f}%"
    )
    for name, times in rows:
        print(
            f"  {name:28s} median {np.median(times):7.2f} ms   p99 {np.percentile(times, 99):7.2f} ms   (n={len(times)})"
        )
    print(
        f"  mask agreement with the reference: {100 * agreement:.5f}% ({int((mask != reference()).sum())} pixels differ)"
    )
    print(
        f"  confidence |error| in uint8 levels: mean {error.mean():.2f}, p99 {np.percentile(error, 99):.0f}, "
        f"max {error.max()}"
    )
    return 0
