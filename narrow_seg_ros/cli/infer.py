"""``narrow-seg infer``: masks for a folder of images or a video, without ROS.

A folder in gives a folder out: ``<name>_mask.png`` (class ids, mono8, 255 = unlabeled) and, with
``--overlay``, ``<name>_overlay.png``. A video in gives a video out (the overlay with ``--overlay``,
else the color mask) when ``--output`` ends in a video suffix, or per-frame PNGs in a folder.
"""

from __future__ import annotations

from pathlib import Path

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm"}


def add_parser(sub) -> None:
    p = sub.add_parser("infer", help="segment a folder of images or a video offline (no ROS)")
    p.add_argument("--weights", required=True, help="weights .pt or exported .onnx")
    p.add_argument("--input", required=True, help="image folder or video file")
    p.add_argument("--output", required=True, help="output folder, or a video file for video input")
    p.add_argument("--overlay", action="store_true", help="also write overlays (video: write the overlay)")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay alpha")
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def _frames(source: Path):
    """(name, bgr frame) pairs from a folder (recursively) or a video."""
    import cv2

    from ..data.frames import list_frames

    if source.is_dir():
        for path in list_frames(source):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise ValueError(f"cannot read image {path}")
            yield path.stem.removesuffix("_leftImg8bit"), frame
    elif source.suffix.lower() in VIDEO_SUFFIXES:
        video = cv2.VideoCapture(str(source))
        if not video.isOpened():
            raise ValueError(f"cannot open video {source}")
        index = 0
        while True:
            ok, frame = video.read()
            if not ok:
                break
            yield f"frame_{index:06d}", frame
            index += 1
    else:
        raise ValueError(f"--input {source} is neither a folder nor a video ({', '.join(sorted(VIDEO_SUFFIXES))})")


def _count(source: Path) -> int | None:
    import cv2

    from ..data.frames import list_frames

    if source.is_dir():
        return len(list_frames(source))
    video = cv2.VideoCapture(str(source))
    count = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    return count or None


def run(args) -> int:
    import cv2
    from tqdm import tqdm

    from ..inference.engine import Segmenter

    source, output = Path(args.input), Path(args.output)
    if not source.exists():
        raise ValueError(f"--input {source} does not exist")
    engine = Segmenter.from_weights(args.weights, backend=args.backend, device=args.device)
    to_video = output.suffix.lower() in VIDEO_SUFFIXES
    writer = None
    if not to_video:
        output.mkdir(parents=True, exist_ok=True)
    done, total_ms = 0, 0.0
    try:
        for name, frame in tqdm(_frames(source), total=_count(source), desc="infer", unit="frame"):
            result = engine.segment(
                frame, "bgr8", color=True, overlay=args.overlay or to_video, overlay_alpha=args.alpha
            )
            total_ms += result.timings["total_ms"]
            if to_video:
                picture = result.overlay if args.overlay else result.color
                if writer is None:
                    output.parent.mkdir(parents=True, exist_ok=True)
                    writer = cv2.VideoWriter(
                        str(output), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (picture.shape[1], picture.shape[0])
                    )
                    if not writer.isOpened():
                        raise ValueError(f"cannot write video {output}")
                writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            else:
                cv2.imwrite(str(output / f"{name}_mask.png"), result.mask)
                if args.overlay:
                    cv2.imwrite(str(output / f"{name}_overlay.png"), cv2.cvtColor(result.overlay, cv2.COLOR_RGB2BGR))
            done += 1
    finally:
        if writer is not None:
            writer.release()
    if done == 0:
        raise ValueError(f"no frames in {source}")
    print(f"{done} frames → {output} ({engine.describe()}, {total_ms / done:.1f} ms per frame)")
    return 0
