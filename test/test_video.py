"""H.264 / H.265 cameras (foxglove_msgs/msg/CompressedVideo): the decoder on clips encoded here with
PyAV, seg_node over real DDS (masks equal to those of the same packets decoded offline, a stream
joined mid-GOP starting at the next keyframe, a missing and a corrupt packet survived), the node
without foxglove_msgs, ``narrow-seg infer`` on a recording and ``image_player transport:=video``."""

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, make_weights, open_gate, run_cli, start, stop

av = pytest.importorskip("av")
# the video cameras' message type; the tests that send or parse video cameras need it
NEEDS_FOXGLOVE = pytest.mark.skipif(
    importlib.util.find_spec("foxglove_msgs") is None,
    reason="foxglove_msgs is not installed (scripts/setup.sh builds it from ../shared/ros2_src; "
    "a ROS install: apt install ros-$ROS_DISTRO-foxglove-msgs)",
)

sys.path.insert(0, str(Path(__file__).parent / "ros_helpers"))
from camera_publisher import make_frame  # noqa: E402

from narrow_seg_ros.video import VideoDecoder, VideoEncoder, VideoError, is_keyframe  # noqa: E402

H, W, GOP, FRAMES = 96, 128, 10, 40


def clip(fmt: str, frames: int = FRAMES, gop: int = GOP) -> list[bytes]:
    """Access units of a synthetic clip, one per frame, a keyframe every ``gop``."""
    encoder = VideoEncoder(W, H, fmt, rate=10, gop=gop)
    packets = [encoder.encode(make_frame(i, H, W)) for i in range(frames)]
    assert all(len(p) == 1 for p in packets), "the encoder must not hold frames back"
    return [p[0][0] for p in packets]


def plain_decode(packets: list[bytes], fmt: str) -> list[np.ndarray]:
    """The packets decoded with PyAV alone, as the test's reference."""
    context = av.CodecContext.create({"h264": "h264", "h265": "hevc"}[fmt], "r")
    context.thread_count = 1
    return [f.to_ndarray(format="rgb24") for p in packets for f in context.decode(av.Packet(p))]


def decoded_indices(decoder: VideoDecoder, packets: dict[int, bytes], fmt: str) -> list[int]:
    out = []
    for index, data in packets.items():
        try:
            out += [index] * len(decoder.decode(data, fmt))
        except VideoError:
            pass
    return out


# --------------------------------------------------------------------------------------------------
# The decoder alone


@pytest.mark.parametrize("fmt", ["h264", "h265"])
def test_decoder_starts_at_keyframe_and_recovers(fmt):
    packets = clip(fmt)
    assert [is_keyframe(p, fmt) for p in packets] == [i % GOP == 0 for i in range(FRAMES)]
    # intact: every frame, equal to PyAV's own decoding
    decoder = VideoDecoder()
    frames = [f.to_ndarray(format="rgb24") for p in packets for f in decoder.decode(p, fmt)]
    reference = plain_decode(packets, fmt)
    assert len(frames) == FRAMES and all(np.array_equal(a, b) for a, b in zip(frames, reference, strict=True))
    # joined mid-GOP: nothing until the next keyframe, the packets before it counted, one log line
    logs = []
    decoder = VideoDecoder(log=logs.append)
    got = decoded_indices(decoder, {i: packets[i] for i in range(3, 40)}, fmt)
    assert got == list(range(10, 40)) and decoder.skipped == 7
    assert logs == [f"{fmt} stream started at a keyframe (7 packets before it dropped)"]
    # packet 14 missing: nothing from it up to the next keyframe, then everything again
    decoder = VideoDecoder()
    got = decoded_indices(decoder, {i: p for i, p in enumerate(packets) if i != 14}, fmt)
    assert got[:14] == list(range(14)) and got[-20:] == list(range(20, 40))
    assert not set(got) & set(range(15, 20)), "frames referring to the missing packet were given out"
    # garbage and a truncated packet: VideoError or nothing, never another exception; the stream resumes
    decoder = VideoDecoder()
    damaged = dict(enumerate(packets))
    damaged[12] = b"\x00\x00\x00\x01" + bytes(range(256)) * 4
    damaged[25] = packets[25][: len(packets[25]) // 3]
    got = decoded_indices(decoder, damaged, fmt)
    assert got[-10:] == list(range(30, 40)) and got[:12] == list(range(12))


def test_decoder_refuses_oversized_frames_and_unknown_formats():
    packets = clip("h264", frames=2)
    with pytest.raises(VideoError, match="max_image_pixels"):
        VideoDecoder(max_pixels=H * W - 1).decode(packets[0], "h264")
    with pytest.raises(VideoError, match="not h264 or h265"):
        VideoDecoder().decode(packets[0], "vp9")


@NEEDS_FOXGLOVE
def test_cameras_parse_video_and_say_when_it_cannot(monkeypatch):
    pytest.importorskip("rclpy")
    from narrow_seg_ros.ros.camera_channel import default_transport, parse_cameras

    assert parse_cameras("front:video, left", False) == [("front", "video"), ("left", "raw")]
    assert parse_cameras(["a", "b:raw"], "video") == [("a", "video"), ("b", "raw")]
    assert parse_cameras("a", True) == [("a", "compressed")]
    assert default_transport({"use_compressed": True}) == "compressed"
    assert default_transport({"use_compressed": True, "transport": "video"}) == "video"
    with pytest.raises(ValueError, match="raw or compressed .images. or video"):
        parse_cameras("a:h264", False)
    monkeypatch.setitem(sys.modules, "foxglove_msgs.msg", None)
    with pytest.raises(ValueError, match="front: the video transport .* needs foxglove_msgs"):
        parse_cameras("front:video,left", False)
    assert parse_cameras("left", False) == [("left", "raw")]  # no video camera: nothing needed


# --------------------------------------------------------------------------------------------------
# seg_node over DDS


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return make_weights(tmp_path_factory.mktemp("weights") / "ndnet45_64x128.pt", input_size=(64, 128))


def offline_masks(weights, frames: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    from narrow_seg_ros.inference.engine import Segmenter

    engine = Segmenter.from_weights(weights, backend="torch", device="cpu", warmup=0)
    return {i: engine.segment(rgb, "rgb8").mask for i, rgb in frames.items()}


@NEEDS_FOXGLOVE
def test_node_segments_video_cameras(ros, weights):
    """front: H.264 joined mid-GOP (packets 3..39); rear: H.265 with packet 14 missing and 23 corrupt."""
    import rclpy
    from foxglove_msgs.msg import CompressedVideo
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from test_node import Collector, start_node, wait_for_node

    from narrow_seg_ros.ros.image_conversion import image_to_numpy

    streams = {"front": ("h264", clip("h264")), "rear": ("h265", clip("h265"))}
    sent = {
        "front": {i: p for i, p in enumerate(streams["front"][1]) if i >= 3},
        "rear": {i: p for i, p in enumerate(streams["rear"][1]) if i != 14},
    }
    sent["rear"][23] = b"\x00\x00\x00\x01" + bytes(range(256)) * 4
    node = start_node(weights, "cameras:=front:video,rear:video", "qos_reliability:=reliable", "qos_depth:=50")
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {n: ros.create_publisher(CompressedVideo, f"/{n}/image/foxglove", reliable) for n in streams}
    collect = Collector(ros, [f"/seg_node/{n}/mask" for n in streams])
    try:
        wait_for_node(ros, node, "/seg_node/front/mask")
        deadline = time.monotonic() + 60
        while not all(p.get_subscription_count() for p in pubs.values()):  # the node subscribes on demand
            assert time.monotonic() < deadline and node.poll() is None, "seg_node never subscribed"
            rclpy.spin_once(ros, timeout_sec=0.1)
        for index in range(FRAMES):
            for name, (fmt, _) in streams.items():
                if index in sent[name]:
                    msg = CompressedVideo(frame_id=f"{name}_{index}", format=fmt, data=sent[name][index])
                    msg.timestamp.sec, msg.timestamp.nanosec = 1000 + index, 5
                    pubs[name].publish(msg)
            collect.spin_until(lambda: False, 0.12)
        last = {n: f"/seg_node/{n}/mask" for n in streams}
        done = collect.spin_until(
            lambda: all(
                any(int(m.header.frame_id.split("_")[1]) >= 30 for m in collect.msgs[t]) for t in last.values()
            ),
            60,
        )
        assert done, {t: [m.header.frame_id for m in v] for t, v in collect.msgs.items()}
        assert node.poll() is None, "seg_node died"
    finally:
        log = stop(node)
        collect.close()
    assert "Traceback" not in log, log
    assert "h264 stream started at a keyframe (7 packets before it dropped)" in log, log
    # reference: the packets each camera was sent, decoded with PyAV from the first keyframe
    front = [sent["front"][i] for i in range(10, FRAMES)]
    reference = dict(zip(range(10, FRAMES), plain_decode(front, "h264"), strict=True))
    rear = [sent["rear"][i] for i in range(30, FRAMES)]  # after the corrupt packet's GOP
    reference.update({100 + i: f for i, f in zip(range(30, FRAMES), plain_decode(rear, "h265"), strict=True)})
    rear_head = plain_decode([sent["rear"][i] for i in range(14)], "h265")
    reference.update({100 + i: f for i, f in enumerate(rear_head)})
    expected = offline_masks(weights, reference)
    compared = 0
    for name, offset in (("front", 0), ("rear", 100)):
        for msg in collect.msgs[f"/seg_node/{name}/mask"]:
            index = int(msg.header.frame_id.split("_")[1])
            assert msg.header.frame_id == f"{name}_{index}" and (msg.header.stamp.sec, msg.header.stamp.nanosec) == (
                1000 + index,
                5,
            )
            assert (msg.height, msg.width) == (H, W)
            if name == "front":
                assert index >= 10, "a frame before the first keyframe was segmented"
            else:
                assert index not in range(15, 20), "a frame depending on the missing packet was segmented"
            if offset + index in expected:
                mask = image_to_numpy(msg)
                assert np.array_equal(mask, expected[offset + index]), f"{name} {index}"
                compared += 1
    assert compared >= 3, compared


def test_node_without_foxglove_msgs_says_so(weights):
    from narrow_seg_ros.ros.runtime import seg_node_command

    cmd = seg_node_command(f"weights:={weights}", "cameras:=front:video,left")
    script = (
        "import sys; sys.modules['foxglove_msgs'] = None; sys.modules['foxglove_msgs.msg'] = None\n"
        "from narrow_seg_ros.ros.seg_node import main; sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, *cmd[4:]], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    fatal = [line for line in proc.stderr.splitlines() if "FATAL" in line]
    assert len(fatal) == 1 and "front" in fatal[0] and "foxglove_msgs" in fatal[0], proc.stderr


# --------------------------------------------------------------------------------------------------
# Recordings and the player


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_infer_segments_a_video_topic(tmp_path, weights, storage):
    from rosbags.rosbag2 import Writer

    from narrow_seg_ros.data.bags import STORAGES, VIDEO, CameraPlayback, open_bag, read_messages, video_typestore

    store = video_typestore()
    packets = clip("h264", frames=25)
    topic, start_ns = "/front/image/foxglove", 1_700_000_000_000_000_000
    with Writer(tmp_path / "drive", version=9, storage_plugin=STORAGES[storage]) as writer:
        connection = writer.add_connection(topic, VIDEO, typestore=store)
        for i, data in enumerate(packets[4:], start=4):  # joined mid-GOP
            stamp = store.types["builtin_interfaces/msg/Time"](sec=50 + i, nanosec=7)
            msg = store.types[VIDEO](
                timestamp=stamp, frame_id=f"cam_{i}", data=np.frombuffer(data, np.uint8), format="h264"
            )
            writer.write(connection, start_ns + i * 100_000_000, store.serialize_cdr(msg, VIDEO))
    playback = CameraPlayback(tmp_path / "drive")  # what image_player plays
    try:
        assert playback.types == {topic: VIDEO}
        assert playback.next()[:2] == (topic, start_ns + 4 * 100_000_000)
    finally:
        playback.close()
    proc = run_cli("infer", "--weights", str(weights), "--backend", "torch", "--device", "cpu",
                   "--input", str(tmp_path / "drive"), "--output", str(tmp_path / "masks"))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "started at a keyframe (6 packets before it dropped)" in proc.stdout + proc.stderr
    with open_bag(tmp_path / "masks") as reader:
        masks = [(t, m) for c, t, m in read_messages(reader, reader.connections) if c.topic == "/front/seg_node/mask"]
    assert [m.header.frame_id for _, m in masks] == [f"cam_{i}" for i in range(10, 25)]
    assert all(m.header.stamp.sec == 50 + 10 + k and m.header.stamp.nanosec == 7 for k, (_, m) in enumerate(masks))
    assert [t for t, _ in masks] == [start_ns + i * 100_000_000 for i in range(10, 25)]
    frames = plain_decode(packets[10:], "h264")
    expected = offline_masks(weights, dict(enumerate(frames)))
    for k, (_, m) in enumerate(masks):
        assert np.array_equal(m.data.reshape(m.height, m.width), expected[k]), k


@NEEDS_FOXGLOVE
def test_player_encodes_the_demo_as_h264(ros):
    import rclpy
    from foxglove_msgs.msg import CompressedVideo
    from rclpy.qos import QoSProfile

    received = []
    sub = ros.create_subscription(CompressedVideo, "/image/foxglove", received.append, QoSProfile(depth=50))
    cmd = [sys.executable, "-m", "narrow_seg_ros.ros.entry", "image_player", "--ros-args", "-p", "transport:=video",
           "-p", "max_frames:=12", "-p", "rate:=20.0", "-p", "reliable:=true", "-p", "wait_for_subscribers:=2",
           "-p", "loop:=false"]  # fmt: skip
    player = start(cmd, cwd=REPO)
    gate = None
    try:
        gate = open_gate(ros, [sub])
        deadline = time.monotonic() + 60
        while len(received) < 12 and time.monotonic() < deadline:
            rclpy.spin_once(ros, timeout_sec=0.1)
        player.wait(timeout=30)
    finally:
        log = stop(player)
        ros.destroy_subscription(sub)
        if gate is not None:
            ros.destroy_subscription(gate)
    assert len(received) == 12, log
    assert {m.format for m in received} == {"h264"} and received[0].frame_id == "camera"
    assert is_keyframe(bytes(received[0].data), "h264") and is_keyframe(bytes(received[10].data), "h264")
    frames = plain_decode([bytes(m.data) for m in received], "h264")
    assert len(frames) == 12 and frames[0].ndim == 3 and frames[0].std() > 0


@NEEDS_FOXGLOVE
def test_video_stream_never_blocks_the_callback(monkeypatch):
    """A stalled decoder thread: the callback still returns at once; the backlog beyond
    VIDEO_BACKLOG is dropped and the stream resumes at the next keyframe."""
    pytest.importorskip("rclpy")
    import threading
    import types

    from foxglove_msgs.msg import CompressedVideo
    from rclpy.serialization import serialize_message

    from narrow_seg_ros.ros import camera_channel

    monkeypatch.setattr(camera_channel, "VIDEO_BACKLOG", 5)
    logs, delivered, stalled, release = [], [], threading.Event(), threading.Event()
    node = types.SimpleNamespace(
        params={"max_image_pixels": 0}, get_logger=lambda: types.SimpleNamespace(info=logs.append)
    )
    camera = types.SimpleNamespace(node=node, name="front", image_topic="/front/image/foxglove",
                                   image_type=CompressedVideo, stats={})  # fmt: skip

    def deliver(item):
        stalled.set()
        release.wait(30)  # the first frame stalls the decoder
        delivered.append(item)

    stream = camera_channel.VideoStream(camera, deliver)
    packets = [
        serialize_message(CompressedVideo(frame_id=str(i), format="h264", data=p)) for i, p in enumerate(clip("h264"))
    ]
    stream.put(packets[0])
    assert stalled.wait(30)
    start = time.monotonic()
    for data in packets[1:30]:  # 29 packets while the decoder is stuck: 24 dropped, 1 s at most
        stream.put(data)
    assert time.monotonic() - start < 1.0, "the callback waited for the decoder"
    release.set()
    for data in packets[30:]:
        time.sleep(0.02)
        stream.put(data)
    deadline = time.monotonic() + 30
    while (not delivered or delivered[-1].header.frame_id != "39") and time.monotonic() < deadline:
        time.sleep(0.05)
    stream.stop()
    assert [int(f.header.frame_id) for f in delivered] == [0, *range(30, 40)]
    assert camera.stats["video_lost"] == 1 and camera.stats["video_skipped"] == 29 - 0, camera.stats
    assert any("packets behind" in line for line in logs) and any("resumed" in line for line in logs), logs


# --------------------------------------------------------------------------------------------------
# Failures the video fuzz target found (narrow_seg_ros.fuzz, `narrow-seg fuzz video`), and the SPS
# size check


def test_an_empty_packet_does_not_end_the_stream():
    """An empty packet made FFmpeg drain (the end of the stream): the next keyframe then failed with
    EOF and the stream lost a whole GOP. It is skipped now."""
    packets = clip("h264", frames=20)
    decoder = VideoDecoder()
    got = decoded_indices(decoder, dict(enumerate(packets[:7] + [b""] + packets[7:])), "h264")
    assert got == [i for i in range(21) if i != 7] and decoder.lost == 0 and decoder.skipped == 1


def test_the_size_limit_is_the_cropped_picture_s():
    """A 32x24 H.264 stream is coded as 32x32 macroblocks and cropped: with max_pixels 768 its SPS
    was refused for the coded size (the fuzz target's first failure)."""
    encoder = VideoEncoder(32, 24, "h264", gop=4)
    packets = [encoder.encode(make_frame(i, 24, 32))[0][0] for i in range(4)]
    decoder = VideoDecoder(max_pixels=32 * 24)
    frames = [f for p in packets for f in decoder.decode(p, "h264")]
    assert [(f.width, f.height) for f in frames] == [(32, 24)] * 4


@pytest.mark.parametrize("fmt", ["h264", "h265"])
def test_an_sps_declaring_more_than_the_limit_is_refused_before_ffmpeg_allocates_it(fmt):
    """A keyframe whose SPS says 16384 x 16384 (FFmpeg's own cap) made FFmpeg allocate 400 MB
    frames for a packet of 2 KB; it is refused by the SPS alone, and the stream resumes at the next
    intact keyframe. The default limit is MAX_PIXELS (``narrow-seg infer`` passes none)."""
    import resource

    from narrow_seg_ros.fuzz import rewrite_sps_size
    from narrow_seg_ros.video import declared_size

    packets = clip(fmt, frames=20)
    bomb = rewrite_sps_size(packets[0], fmt, 16384, 16384)
    assert declared_size(bomb, {"h264": "h264", "h265": "hevc"}[fmt])[0] == 16384
    decoder = VideoDecoder()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(
        VideoError, match=rf"^cannot decode {fmt} packet: its SPS declares 16384x\d+, over max_image_pixels=67108864$"
    ):
        decoder.decode(bomb, fmt)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) * 1024 < 64 << 20
    got = decoded_indices(decoder, {i: packets[i] for i in range(1, 20)}, fmt)
    assert got == list(range(10, 20)) and decoder.lost == 1


def test_a_damaged_sps_does_not_hold_frames_back_after_the_next_keyframe():
    """The fuzz target's minimal case (seed 2530512648): a bit flipped in the second keyframe's SPS
    (x264's 32x24 clip, byte 23) made FFmpeg return nothing for it and hold back two frames of every
    GOP after, the intact keyframes too. A keyframe with another SPS now starts a fresh decoder."""
    from narrow_seg_ros.fuzz import VIDEO_FRAMES, VideoCase, check_video, video_seed

    packets = list(video_seed("h264", (32, 24)))
    packets[4] = packets[4][:23] + bytes([packets[4][23] ^ 1]) + packets[4][24:]
    case = VideoCase([(p, "h264") for p in packets + list(video_seed("h264", (32, 24)))], VIDEO_FRAMES, (32, 24))
    check_video(case)


# --------------------------------------------------------------------------------------------------
# The decoder's memory: the reference frames an SPS has FFmpeg keep


@pytest.mark.parametrize(("fmt", "size", "most"), [("h264", (32, 24), 16), ("h265", (64, 48), 15)])
def test_the_reference_count_read_is_the_one_ffmpeg_bounds(fmt, size, most):
    """The SPS field read (and rewritten) is the one FFmpeg checks: at its maximum the clip decodes
    whole, one over it FFmpeg refuses the stream (H.264 max_num_ref_frames 16, H.265
    sps_max_dec_pic_buffering_minus1 15); the pictures counted are those and the current one."""
    from narrow_seg_ros.fuzz import rewrite_sps_references, video_seed
    from narrow_seg_ros.video import declared_decoder_bytes

    codec = {"h264": "h264", "h265": "hevc"}[fmt]
    seed = video_seed(fmt, size)
    coded = (32, 32) if fmt == "h264" else size  # x264 codes 32x24 as two rows of macroblocks
    for references, frames in ((most, 8), (most + 1, 0)):
        packets = [rewrite_sps_references(p, fmt, references) for p in seed]
        assert declared_decoder_bytes(packets[0], codec) == (references + 1) * coded[0] * coded[1] * 3 // 2
        decoder = VideoDecoder(max_pixels=0)  # no limit: what FFmpeg itself takes
        assert len(decoded_indices(decoder, dict(enumerate(packets)), fmt)) == frames


@pytest.mark.parametrize("fmt", ["h264", "h265"])
def test_an_sps_keeping_too_many_pictures_at_the_limit_is_refused_before_ffmpeg_allocates_them(fmt):
    """8192 x 8192 is within MAX_PIXELS, but with 16 reference frames FFmpeg may keep 17 pictures
    of 100 MB (H.265: 16, the current one included) (a fuzz case raised the peak RSS by 719 MiB).
    Refused by the SPS alone, over MAX_DECODER_BYTES; with one reference frame the same size
    passes the check; the stream resumes at the next intact keyframe."""
    import resource

    from narrow_seg_ros.fuzz import rewrite_sps_references, rewrite_sps_size
    from narrow_seg_ros.video import MAX_DECODER_BYTES, declared_decoder_bytes

    codec = {"h264": "h264", "h265": "hevc"}[fmt]
    packets = clip(fmt, frames=20)
    at_limit = rewrite_sps_size(packets[0], fmt, 8192, 8192)
    assert declared_decoder_bytes(rewrite_sps_references(at_limit, fmt, 1), codec) == 2 * 8192 * 8192 * 3 // 2
    assert declared_decoder_bytes(rewrite_sps_references(at_limit, fmt, 1), codec) <= MAX_DECODER_BYTES
    most = 16 if fmt == "h264" else 15  # H.264: references; H.265: pictures kept, the current one included, - 1
    bomb = rewrite_sps_references(at_limit, fmt, most)
    decoder = VideoDecoder()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(VideoError, match=rf"^cannot decode {fmt} packet: its SPS has the decoder keep "
                       rf"{(most + 1) * 8192 * 8192 * 3 // 2} bytes of pictures .* over the budget of 805306368 "
                       r"\(MAX_DECODER_BYTES\)$"):  # fmt: skip
        decoder.decode(bomb, fmt)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) * 1024 < 64 << 20
    assert decoded_indices(decoder, {i: packets[i] for i in range(1, 20)}, fmt) == list(range(10, 20))
