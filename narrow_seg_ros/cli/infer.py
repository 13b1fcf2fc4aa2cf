"""``narrow-seg infer``: masks for a folder of images, a video or a recording, without ROS.

The masks are seg_node's for the same configuration: ``--params-file`` reads the node's own ROS 2
parameter file (config/seg.yaml) and flags named as its parameters override it; the engine applies
the node's rules (input size and resize mode, output size, confidence threshold and rule, label
groups) in the one place it applies them for the node.

A folder in gives a folder out: ``<name>_mask.png`` (class or group ids, mono8, unlabeled
``rules.UNLABELED``) and, with ``--overlay``, ``<name>_overlay.png``. A video in gives a video out
(the overlay with ``--overlay``, else the color mask) when ``--output`` ends in a video suffix, or per-frame PNGs in a folder.

A rosbag2 recording in (sqlite3 or MCAP) gives a new recording out, holding for each camera topic
what seg_node would publish for it (``narrow_seg_ros.data.bags`` names the topics): ``mask`` and,
as flags ask, ``mask/compressed``, ``color_mask``, ``overlay``, ``confidence``, ``camera_info`` and
``label_info``, every message with its image's header and the image's log time, so the result
plays beside the original. The recording is written under a temporary name and renamed when done.
"""

from __future__ import annotations

from pathlib import Path

from ..inference.params import PARAMETERS

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm"}
# flags named as seg_node's parameters (--input-width is input_width): they override --params-file;
# their values are checked against the parameter table, as the file's are (one error line, not
# argparse's usage text)
FLAGS = {
    "weights": str,
    "model": str,
    "backend": str,
    "device": str,
    "input_width": int,
    "input_height": int,
    "resize_mode": str,
    "output_size": str,
    "confidence_rule": str,
    "confidence_threshold": float,
    "label_groups": str,
    "overlay_alpha": float,
}
FLAG_ALIASES = {"overlay_alpha": ["--alpha"]}
FLAG_NOTES = {
    "model": "; given here, it replaces the file's weights too",
    "output_size": "; reference is seg_node's alone",
}


def add_parser(sub) -> None:
    p = sub.add_parser("infer", help="segment a folder of images, a video or a recording offline (no ROS)")
    p.add_argument("--input", required=True, help="image folder, video file or rosbag2 recording (sqlite3/MCAP)")
    p.add_argument("--output", required=True, help="output folder, a video file for video input, or the new recording")
    p.add_argument("--overlay", action="store_true", help="also write overlays (video: write the overlay)")
    node = p.add_argument_group("seg_node's configuration", "defaults: the node's; a flag overrides the file")
    node.add_argument("--params-file", metavar="YAML", help="seg_node's ROS 2 parameter file (e.g. config/seg.yaml): "
                      "its model, input, output size, confidence and label-group rules and overlay_alpha apply")  # fmt: skip
    node.add_argument("--node", default="seg_node", help="whose section of --params-file to read: seg_node "
                      "(default), or /NAMESPACE/seg_node where the file names several")  # fmt: skip
    for name, kind in FLAGS.items():
        param, flag = PARAMETERS[name], f"--{name.replace('_', '-')}"
        text = f"{param.description} (default {param.default!r}{FLAG_NOTES.get(name, '')})"
        node.add_argument(flag, *FLAG_ALIASES.get(name, []), dest=name, type=kind, help=text)
    bag = p.add_argument_group("recording input", "outputs go to <camera namespace>/<output namespace>/<name>")
    bag.add_argument("--topics", nargs="+", default=[], metavar="TOPIC", help="Image or CompressedImage topics "
                     "to segment (default: every one in the recording)")  # fmt: skip
    bag.add_argument("--output-namespace", default="seg_node", help="relative: under each camera's namespace "
                     "(/cam_front/image_raw -> /cam_front/seg_node/mask); absolute: used as it is")  # fmt: skip
    bag.add_argument("--mask-png", action="store_true", help="also write mask/compressed (lossless PNG)")
    bag.add_argument("--color", action="store_true", help="also write color_mask (rgb8)")
    bag.add_argument("--confidence", action="store_true", help="also write confidence (mono8)")
    bag.add_argument("--label-info", action="store_true", help="also write label_info (vision_msgs/LabelInfo)")
    bag.add_argument("--camera-info", action="store_true", help="also write camera_info (the camera's, restamped)")
    bag.add_argument("--storage", choices=("sqlite3", "mcap"), help="output storage (default: the input's)")
    bag.add_argument("--overwrite", action="store_true", help="replace an existing output recording")
    p.set_defaults(func=run)


def configuration(args) -> dict:
    """Every seg_node parameter for this run: the node's defaults, then --params-file's values,
    then the flags'. A --model given here replaces the file's weights as well (the node would
    prefer weights). ValueError naming an unknown or invalid parameter."""
    from ..inference.params import read_params_file, resolve

    values = read_params_file(args.params_file, args.node) if args.params_file else {}
    flags = {name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None}
    if "model" in flags:
        values.pop("weights", None)
    params = resolve({**values, **flags})
    if params["output_size"] == "reference":
        raise ValueError("output_size=reference follows seg_node's reference/camera_info topic; "
                         "offline, use camera, network or WxH (width x height)")  # fmt: skip
    return params


def _load(params: dict):
    """The engine and the output rules ``params`` configure, as seg_node builds them."""
    from ..inference.params import build_rules, build_segmenter

    engine = build_segmenter(params)
    return engine, build_rules(params, engine)


BAG_OPTIONS = ("topics", "mask_png", "color", "confidence", "label_info", "camera_info", "storage", "overwrite")


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


def _is_recording(source: Path, args) -> bool:
    """A recording (or a bag file, or --topics given: then bags.require_bag says what is wrong)."""
    from ..data.bags import BAG_SUFFIXES, find_bag

    if find_bag(source) is not None or source.suffix in BAG_SUFFIXES or args.topics:
        return True
    used = [f"--{name.replace('_', '-')}" for name in BAG_OPTIONS if getattr(args, name)]
    if used:
        raise ValueError(f"{', '.join(used)} apply to a recording input; {source} is not a rosbag2 recording")
    return False


def run(args) -> int:
    import cv2
    from tqdm import tqdm

    source, output = Path(args.input), Path(args.output)
    if not source.exists():
        raise ValueError(f"--input {source} does not exist")
    params = configuration(args)
    if _is_recording(source, args):
        return _run_bag(args, params, source, output)
    engine, rules = _load(params)
    to_video = output.suffix.lower() in VIDEO_SUFFIXES
    writer = None
    if not to_video:
        output.mkdir(parents=True, exist_ok=True)
    done, total_ms = 0, 0.0
    try:
        for name, frame in tqdm(_frames(source), total=_count(source), desc="infer", unit="frame"):
            request = rules.request(
                frame, "bgr8", color=True, overlay=args.overlay or to_video, overlay_alpha=params["overlay_alpha"]
            )
            result = engine.segment_batch([request])[0]
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


# --------------------------------------------------------------------------------------------------
# Recordings


class _Camera:
    """One input topic: where its outputs go and what was last written for it."""

    def __init__(self, connection, namespace: str):
        from ..data.bags import COMPRESSED, camera_namespace

        self.topic, self.ns = connection.topic, namespace
        self.compressed = connection.msgtype == COMPRESSED
        self.decoder = _video_decoder(connection)  # a CompressedVideo topic's, else None
        self.info_topic = f"{camera_namespace(self.topic)}/camera_info"  # beside the image, as seg_node reads it
        self.info = None  # the camera's latest camera_info
        self.label_time: int | None = None  # log time of the last label_info written


def _cameras(reader, args) -> dict[str, _Camera]:
    """The cameras to segment, by topic; two cameras writing to one namespace are refused."""
    from ..data.bags import CAMERA_INFO, BagError, camera_connections, output_namespace

    connections = camera_connections(reader, args.topics)
    cameras = {c.topic: _Camera(c, output_namespace(c.topic, args.output_namespace)) for c in connections}
    by_ns: dict[str, list[str]] = {}
    for camera in cameras.values():
        by_ns.setdefault(camera.ns, []).append(camera.topic)
    for ns, topics in by_ns.items():
        if len(topics) > 1:
            raise BagError(f"{' and '.join(topics)} would both write to {ns}: choose one with --topics "
                           "or give each its own namespace")  # fmt: skip
    if args.camera_info:
        types = {c.topic: c.msgtype for c in reader.connections}
        for camera in cameras.values():
            if types.get(camera.info_topic) != CAMERA_INFO:
                found = types.get(camera.info_topic, "not recorded")
                raise BagError(f"--camera-info: {camera.info_topic} (beside {camera.topic}) is {found}, "
                               f"not {CAMERA_INFO}")  # fmt: skip
    return cameras


def _run_bag(args, params: dict, source: Path, output: Path) -> int:
    from tqdm import tqdm

    from ..data import bags

    with bags.open_bag(source) as reader:
        cameras = _cameras(reader, args)
        infos = {c.info_topic for c in cameras.values()} if args.camera_info else set()
        wanted = [c for c in reader.connections if c.topic in cameras or c.topic in infos]
        frames = sum(c.msgcount for c in wanted if c.topic in cameras)
        bags.check_output(output, args.overwrite)  # before the model loads: a mistake fails at once
        engine, rules = _load(params)
        storage = args.storage or bags.storage_of(reader.paths[0])
        segmented = (engine, rules, params["overlay_alpha"])
        done, total_ms = 0, 0.0
        with (
            bags.atomic_bag(output, storage, args.overwrite) as out,
            tqdm(total=frames, desc="infer", unit="frame") as bar,
        ):
            for connection, log_time, msg in bags.read_messages(reader, wanted):
                if connection.topic not in cameras:  # a camera_info
                    for camera in cameras.values():
                        camera.info = msg if camera.info_topic == connection.topic else camera.info
                    continue
                total_ms += _segment_message(segmented, out, cameras[connection.topic], msg, log_time, args)
                done += 1
                bar.update()
            if done == 0:  # raised inside: no empty recording is left behind
                raise bags.BagError(f"no messages on {', '.join(cameras)} in {source}")
    print(
        f"{done} frames of {len(cameras)} camera(s) → {output} ({engine.describe()}, {total_ms / done:.1f} ms per frame)"
    )
    return 0


def _segment_message(segmented, out, camera: _Camera, msg, log_time: int, args) -> float:
    """Writes the outputs of one image message; the engine's time in ms. ``segmented``: (engine,
    output rules, overlay alpha)."""
    from ..ros.image_conversion import compressed_fields, compressed_to_rgb, image_fields, image_to_rgb

    engine, rules, alpha = segmented
    if camera.decoder is not None and not isinstance(msg, _DecodedFrame):
        return _segment_video(segmented, out, camera, msg, log_time, args)
    if isinstance(msg, _DecodedFrame):
        image, encoding = msg.rgb, "rgb8"
    else:
        image, encoding = compressed_to_rgb(msg) if camera.compressed else image_to_rgb(msg)
    outputs = {"color": args.color, "overlay": args.overlay, "overlay_alpha": alpha, "confidence": args.confidence}
    result = engine.segment_batch([rules.request(image, encoding, **outputs)])[0]
    header, ns = msg.header, camera.ns
    out.image(f"{ns}/mask", header, image_fields(result.mask, "mono8"), log_time)
    if args.mask_png:  # lossless: a class mask must never go through JPEG
        out.compressed(f"{ns}/mask/compressed", header, *compressed_fields(result.mask, "mono8", "png"), log_time)
    for flag, name, picture, encoding in (
        (args.color, "color_mask", result.color, "rgb8"),
        (args.overlay, "overlay", result.overlay, "rgb8"),
        (args.confidence, "confidence", result.confidence, "mono8"),
    ):
        if flag:
            out.image(f"{ns}/{name}", header, image_fields(picture, encoding), log_time)
    if args.camera_info and camera.info is not None:
        _check_camera_info(camera, result.mask.shape)
        out.camera_info(f"{ns}/camera_info", header, camera.info, log_time)
    # re-sent every second of the recording, as seg_node does (label_info_period), so a player
    # that starts or seeks anywhere has the labels within a second
    if args.label_info and (camera.label_time is None or log_time - camera.label_time >= 1_000_000_000):
        names = rules.labels(engine.class_names, engine.palette)[0]
        out.label_info(f"{ns}/label_info", header, names, rules.confidence_threshold, log_time)
        camera.label_time = log_time
    return result.timings["total_ms"]


def _video_decoder(connection):
    """A VideoDecoder for a CompressedVideo topic (one line and exit 2 without PyAV), else None."""
    from ..data.bags import VIDEO

    if connection.msgtype != VIDEO:
        return None
    from ..video import VideoDecoder, available

    if not available():
        raise ValueError(f"{connection.topic} is {VIDEO} (H.264/H.265): decoding it needs PyAV (pip install av)")
    topic = connection.topic
    return VideoDecoder(log=lambda text: print(f"{topic}: {text}", flush=True))


def _segment_video(segmented, out, camera: _Camera, msg, log_time: int, args) -> float:
    """The outputs of every frame one CompressedVideo packet gives (none before the first keyframe,
    none for a damaged packet: the stream resumes at the next keyframe), each with the packet's
    timestamp and frame_id as its header and the packet's log time."""
    from types import SimpleNamespace

    from ..video import VideoError, to_rgb

    try:
        frames = camera.decoder.decode(msg.data, msg.format)
    except VideoError:
        return 0.0  # the decoder said so; the stream resumes at the next keyframe
    header = SimpleNamespace(stamp=msg.timestamp, frame_id=msg.frame_id)
    return sum(
        _segment_message(segmented, out, camera, _DecodedFrame(header, to_rgb(f)), log_time, args) for f in frames
    )


class _DecodedFrame:
    """A decoded video frame with its packet's header (stamp, frame_id)."""

    def __init__(self, header, rgb):
        self.header, self.rgb = header, rgb


def _check_camera_info(camera: _Camera, shape: tuple[int, int]) -> None:
    """The camera's camera_info is written as it is, which is right only where it describes the
    image itself (seg_node would scale it: its scaling lives with the ROS message classes)."""
    from ..data.bags import BagError

    info = camera.info
    roi = info.roi.width and info.roi.height
    if (info.height, info.width) != tuple(shape) or info.binning_x > 1 or info.binning_y > 1 or roi:
        raise BagError(
            f"--camera-info: {camera.info_topic} describes {info.width}x{info.height} (binning "
            f"{info.binning_x}x{info.binning_y}, ROI {'set' if roi else 'none'}) but the images on {camera.topic} are "
            f"{shape[1]}x{shape[0]}: infer writes the camera_info unscaled, so it must describe the images as they are"
        )
