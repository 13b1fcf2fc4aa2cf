"""The inference engine (no ROS): backends, pre/post-processing, export, bad input."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from narrow_seg_ros.inference.engine import Request, Segmenter
from narrow_seg_ros.weights import load_weights

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine: GPU paths are checked on a GPU host")


def scene(height=512, width=1024, seed=0):
    from narrow_seg_ros.data.synth import render_scene

    return render_scene(np.random.default_rng(seed), (height, width))[0]


def reference_mask(weights_path, image_rgb, input_size):
    """torch fp32: resize → normalise → full network incl. its own bilinear upsample → argmax."""
    import cv2

    w = load_weights(weights_path)
    model = w.build_model()
    x = cv2.resize(image_rgb, (input_size[1], input_size[0]), interpolation=cv2.INTER_LINEAR)
    x = (torch.from_numpy(x).permute(2, 0, 1).float() / 255 - torch.tensor(w.mean).view(3, 1, 1)) / torch.tensor(
        w.std
    ).view(3, 1, 1)
    with torch.no_grad():
        low = model(x[None], full_resolution=False)
        up = F.interpolate(low, size=image_rgb.shape[:2], mode="bilinear", align_corners=model.align_corners)
    return up.argmax(1)[0].numpy().astype(np.uint8)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("which", ["ndnet", "ndnet-fcn8", "vnet"])
def test_backends_match_torch_fp32_reference(backend, which, ndnet_weights, ndnet_fcn8_weights, vnet_weights):
    weights = {"ndnet": ndnet_weights, "ndnet-fcn8": ndnet_fcn8_weights, "vnet": vnet_weights}[which]
    engine = Segmenter.from_weights(weights, backend=backend, device="cpu")
    image = scene(540, 960)  # not the network's input size: exercises resize both ways
    result = engine.segment(image, "rgb8", confidence=True, color=True, overlay=True, overlay_alpha=0.4)
    ref = reference_mask(weights, image, engine.input_size)
    assert result.mask.shape == (540, 960) and result.mask.dtype == np.uint8
    agreement = (result.mask == ref).mean()
    assert agreement >= 0.999, f"{backend}/{which}: {agreement:.5f}"
    assert result.color.shape == result.overlay.shape == (540, 960, 3)
    assert result.confidence.shape == (540, 960) and result.confidence.dtype == np.uint8
    np.testing.assert_array_equal(result.color, engine.palette[result.mask])
    assert set(result.timings) == {"pre_ms", "net_ms", "post_ms", "total_ms", "batch"}


def batched_matches_alone(engine, requests) -> None:
    """segment_batch gives each frame what segment gives it alone (up to float summation order
    across batch sizes: a handful of near-tie pixels)."""
    batched = engine.segment_batch(requests)
    assert len(batched) == len(requests)
    for request, result in zip(requests, batched, strict=True):
        options = {k: getattr(request, k) for k in ("confidence", "color", "overlay", "overlay_alpha")}
        alone = engine.segment(request.image, request.encoding, request.output_size, **options)
        assert result.mask.shape == alone.mask.shape == tuple(request.output_size or request.image.shape[:2])
        assert (result.mask == alone.mask).mean() >= 0.9999
        wanted = {**options, "color": request.color or request.overlay}  # an overlay is made of the colors
        for name in ("confidence", "color", "overlay"):
            ours, theirs = getattr(result, name), getattr(alone, name)
            assert (ours is None) == (theirs is None) == (not wanted[name]), name
            if name == "confidence" and ours is not None:
                assert np.abs(ours.astype(int) - theirs).max() <= 1
            elif ours is not None:
                assert (ours == theirs).all(axis=-1).mean() >= 0.9999
        assert result.timings["batch"] == len(requests)


def camera_requests():
    """Three cameras of different sizes and encodings, each asking for other outputs."""
    wide, small, square = scene(540, 960, 1), scene(240, 320, 2), scene(300, 300, 3)
    return [
        Request(wide, "rgb8", confidence=True),
        Request(np.ascontiguousarray(small[..., ::-1]), "bgr8", output_size=(120, 160), color=True),
        Request(square, "rgb8", overlay=True, overlay_alpha=0.3),
    ]


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_batch_of_cameras_gives_each_frame_its_own_result(backend, ndnet_fcn8_weights):
    engine = Segmenter.from_weights(ndnet_fcn8_weights, backend=backend, device="cpu")
    batched_matches_alone(engine, camera_requests())


def test_a_fixed_batch_onnx_graph_runs_a_batch_one_frame_per_call(ndnet_weights, tmp_path):
    from narrow_seg_ros.inference.export import export_onnx

    fixed = export_onnx(load_weights(ndnet_weights), tmp_path / "fixed.onnx")
    engine = Segmenter.from_onnx(fixed)
    assert engine.backend.max_batch == 1
    batched_matches_alone(engine, camera_requests())


def test_channel_order_and_output_size(ndnet_weights):
    engine = Segmenter.from_weights(ndnet_weights, backend="torch", device="cpu")
    image = scene()
    rgb = engine.segment(image, "rgb8").mask
    bgr = engine.segment(np.ascontiguousarray(image[..., ::-1]), "bgr8").mask
    np.testing.assert_array_equal(rgb, bgr)
    small = engine.segment(image, "rgb8", output_size=(256, 512), color=True)
    assert small.mask.shape == (256, 512) and small.color.shape == (256, 512, 3)


def test_keep_aspect_is_undone_exactly(ndnet_weights):
    engine = Segmenter.from_weights(ndnet_weights, backend="torch", device="cpu", resize_mode="keep_aspect")
    image = scene(400, 1000)  # wider than the 256x512 input: padded below
    mask = engine.segment(image, "rgb8").mask
    assert mask.shape == (400, 1000)
    # reference: letterbox, network, upsample to the canvas, crop the image region, nearest-resize back
    import cv2

    w = load_weights(ndnet_weights)
    model = w.build_model()
    scale = min(256 / 400, 512 / 1000)
    nh, nw = round(400 * scale), round(1000 * scale)
    canvas = np.full((256, 512, 3), 128, np.uint8)
    canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    x = (torch.from_numpy(canvas).permute(2, 0, 1).float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        full = model(x[None]).argmax(1)[0].numpy().astype(np.uint8)
    ref = cv2.resize(full[:nh, :nw], (1000, 400), interpolation=cv2.INTER_NEAREST)
    assert (mask == ref).mean() >= 0.999


@pytest.mark.parametrize(
    "image, encoding, message",
    [
        (np.zeros((4, 4, 3), np.float32), "rgb8", "uint8"),
        (np.zeros((4, 4), np.uint8), "rgb8", "H×W×3"),
        (np.zeros((0, 4, 3), np.uint8), "rgb8", "empty"),
        (np.zeros((4, 4, 3), np.uint8), "yuv", "encoding"),
    ],
)
def test_bad_input_raises_specific_error(ndnet_weights, image, encoding, message):
    engine = Segmenter.from_weights(ndnet_weights, backend="torch", device="cpu", warmup=0)
    with pytest.raises(ValueError, match=message):
        engine.segment(image, encoding)


def test_bad_configuration_fails_fast(ndnet_weights, tmp_path):
    with pytest.raises(ValueError, match="backend"):
        Segmenter.from_weights(ndnet_weights, backend="tensorflow")
    with pytest.raises(ValueError, match="input size 0x100 must be positive"):
        Segmenter.from_weights(ndnet_weights, backend="torch", input_size=(0, 100))
    with pytest.raises(ValueError, match="not found"):
        Segmenter.from_weights(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        Segmenter.from_weights(junk)
    if not CUDA:
        with pytest.raises(ValueError, match="CUDA"):
            Segmenter.from_weights(ndnet_weights, backend="torch", device="cuda")


def test_fcn8_engine_and_export_keep_the_backbone_stride(ndnet_fcn8_weights, tmp_path, cli):
    """FCN8 logits are at 1/8, but its backbone still downsamples to 1/32: the export records both
    and the engine, built from the weights or from the ONNX file alone, pads a size that is a
    multiple of 8 only to the next multiple of 32 (not of 8)."""
    from narrow_seg_ros.inference.onnx_metadata import read_onnx_metadata

    out = tmp_path / "fcn8.onnx"
    proc = cli("export", "--weights", str(ndnet_fcn8_weights), "--format", "onnx", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    meta = read_onnx_metadata(out)
    assert (meta["output_stride"], meta["input_multiple"], meta["model_options"]) == (8, 32, {"head": "fcn8"})
    engine = Segmenter.from_onnx(out)
    image = scene()
    ref = reference_mask(ndnet_fcn8_weights, image, (256, 512))
    assert (engine.segment(image, "rgb8").mask == ref).mean() >= 0.999
    assert Segmenter.from_weights(ndnet_fcn8_weights, backend="torch", input_size=(264, 520)).canvas_size == (288, 544)


@pytest.mark.parametrize(("uint8_input", "channel_multiple"), [(False, 1), (True, 1), (False, 16)])
def test_export_onnx_runs_from_metadata_alone(ndnet_weights, tmp_path, cli, uint8_input, channel_multiple):
    out = tmp_path / "export" / "ndnet45.onnx"
    flags = ["--uint8-input"] if uint8_input else []
    flags += ["--channel-multiple", str(channel_multiple)]
    proc = cli("export", "--weights", str(ndnet_weights), "--format", "onnx", "--out", str(out), *flags)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary or side-data files left
    from narrow_seg_ros.inference.onnx_metadata import read_onnx_metadata

    meta = read_onnx_metadata(out)
    assert meta["class_names"][0] == "road" and len(meta["palette"]) == 19
    assert meta["mean"] == [0.5] * 3 and meta["output_stride"] == 32 and meta["align_corners"] is True
    assert meta["input_format"] == ("uint8_nhwc_rgb" if uint8_input else "float32_nchw_normalized")
    assert meta["channel_multiple"] == channel_multiple
    engine = Segmenter.from_onnx(out)
    assert engine.backend.takes_uint8 == uint8_input
    image = scene()
    ref = reference_mask(ndnet_weights, image, (256, 512))
    assert (engine.segment(image, "rgb8").mask == ref).mean() >= 0.999
    bgr = np.ascontiguousarray(image[..., ::-1])
    assert (engine.segment(bgr, "bgr8").mask == ref).mean() >= 0.999


def test_export_dynamic_onnx_and_torchscript(ndnet_weights, tmp_path, cli):
    import onnxruntime as ort

    dyn = tmp_path / "dyn.onnx"
    proc = cli("export", "--weights", str(ndnet_weights), "--out", str(dyn), "--dynamic", "--opset", "17")
    assert proc.returncode == 0, proc.stderr
    session = ort.InferenceSession(str(dyn), providers=["CPUExecutionProvider"])
    for size in ((64, 128), (96, 160)):
        (logits,) = session.run(None, {"image": np.zeros((2, 3, *size), np.float32)})
        assert logits.shape == (2, 19, size[0] // 32, size[1] // 32)
    ts = tmp_path / "model.ts"
    proc = cli("export", "--weights", str(ndnet_weights), "--format", "torchscript", "--out", str(ts))
    assert proc.returncode == 0, proc.stderr
    extra = {"narrow_seg_ros.json": ""}
    module = torch.jit.load(str(ts), _extra_files=extra)
    assert json.loads(extra["narrow_seg_ros.json"])["model"] == "ndnet45"
    assert module(torch.zeros(1, 3, 256, 512)).shape == (1, 19, 8, 16)


@needs_cuda
@pytest.mark.parametrize("fp16", [False, True])
def test_cuda_torch_backend_matches_cpu(ndnet_weights, fp16):
    image = scene()
    cpu = Segmenter.from_weights(ndnet_weights, backend="torch", device="cpu").segment(image).mask
    gpu = Segmenter.from_weights(ndnet_weights, backend="torch", device="cuda", fp16=fp16).segment(image).mask
    assert (cpu == gpu).mean() >= 0.999


def test_bench_prints_stages(ndnet_weights, cli):
    proc = cli("bench", "--weights", str(ndnet_weights), "--size", "256x512", "--iters", "3", "--warmup", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["backend"] for r in rows] == ["torch", "onnxruntime"]
    for r in rows:
        for key in ("pre_ms_p50", "net_ms_p50", "post_ms_p50", "e2e_ms_p50", "e2e_ms_p99", "fps"):
            assert r[key] > 0, key
        assert r["cpu_steal_percent"] is None or 0 <= r["cpu_steal_percent"] <= 100
        assert r["model"] == "ndnet45"


def test_bench_names_the_model_options(ndnet_fcn8_weights, cli):
    args = ("--weights", str(ndnet_fcn8_weights), "--backends", "torch", "--size", "128x256", "--iters", "2")
    proc = cli("bench", *args, "--warmup", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ndnet45 head=fcn8, frame 128x256"), proc.stdout


def test_infer_cli_folder_and_video(ndnet_weights, tmp_path, cli):
    """Offline mode: masks for a folder of images and for a video, without ROS."""
    import cv2

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"f{i}.png"), scene(128, 256, seed=i)[..., ::-1])
    out = tmp_path / "out"
    proc = cli(
        "infer",
        "--weights",
        str(ndnet_weights),
        "--input",
        str(frames),
        "--output",
        str(out),
        "--overlay",
        "--backend",
        "torch",
    )
    assert proc.returncode == 0, proc.stderr
    mask = cv2.imread(str(out / "f1_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (128, 256) and mask.max() < 19
    assert (out / "f2_overlay.png").exists()
    video = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (256, 128))
    for i in range(4):
        writer.write(scene(128, 256, seed=i)[..., ::-1].copy())
    writer.release()
    proc = cli(
        "infer",
        "--weights",
        str(ndnet_weights),
        "--input",
        str(video),
        "--output",
        str(tmp_path / "o.mp4"),
        "--backend",
        "torch",
    )
    assert proc.returncode == 0, proc.stderr
    assert cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 4
    bad = cli("infer", "--weights", str(ndnet_weights), "--input", str(tmp_path / "nope"), "--output", str(out))
    assert bad.returncode == 2 and "does not exist" in bad.stderr


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_weights_files_are_readable_as_the_umask_allows(ndnet_weights, tmp_path, umask, mode):
    """Atomic writes (weights files, checkpoints, ONNX exports) end up 0666 & ~umask, as open()
    would make them, so that a node running as another user can load what training wrote."""
    import os

    from narrow_seg_ros.inference.export import export_onnx
    from narrow_seg_ros.weights import save_weights

    old = os.umask(umask)
    try:
        save_weights(load_weights(ndnet_weights), tmp_path / "w.pt")
        export_onnx(load_weights(ndnet_weights), tmp_path / "w.onnx", size=(64, 128))
    finally:
        os.umask(old)
    for name in ("w.pt", "w.onnx"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.onnx", "w.pt"]  # no temporary file left


def test_infer_runs_where_ros_is_absent(ndnet_weights, tmp_path):
    """`narrow-seg infer` is documented as working without ROS: run it with rclpy (and every ROS
    message package) made unimportable, as on a pip-only machine."""
    import cv2
    from conftest import run_cli_without_ros

    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "f0.png"), scene(64, 128, seed=0)[..., ::-1])
    args = ["infer", "--weights", str(ndnet_weights), "--input", str(frames), "--output", str(tmp_path / "out")]
    proc = run_cli_without_ros(*args, "--backend", "torch")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "f0_mask.png").exists()


GPU_ORT = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize(
    "provider, device, available, first",
    [
        ("auto", "cuda:1", GPU_ORT, "TensorrtExecutionProvider"),  # TensorRT preferred when present
        ("auto", "cuda", GPU_ORT[1:], "CUDAExecutionProvider"),
        ("auto", "cpu", GPU_ORT, "CPUExecutionProvider"),
        ("cuda", "cuda:1", GPU_ORT, "CUDAExecutionProvider"),
        ("cpu", "cuda", GPU_ORT, "CPUExecutionProvider"),
    ],
)
def test_provider_chain_with_a_fake_provider_list(provider, device, available, first, tmp_path):
    """No GPU here: the choice and the options passed to onnxruntime, from a fake provider list."""
    from narrow_seg_ros.inference.backends import provider_chain

    chain = provider_chain(provider, device, True, available, tmp_path)
    assert chain[0][0] == first and chain[-1] == ("CPUExecutionProvider", {})
    index = 1 if device == "cuda:1" else 0
    for name, options in chain[:-1]:
        assert options["device_id"] == index, name  # cuda:N reaches every GPU provider
    if first == "TensorrtExecutionProvider":
        trt = chain[0][1]
        assert trt["trt_fp16_enable"] is True and trt["trt_engine_cache_enable"] is True
        assert trt["trt_engine_cache_path"] == str(tmp_path) and chain[1][0] == "CUDAExecutionProvider"


@pytest.mark.parametrize(
    "provider, device, available, message",
    [
        ("tensorrt", "cuda", GPU_ORT[1:], "TensorrtExecutionProvider is not available"),
        ("cuda", "cpu", GPU_ORT, "needs a CUDA device"),
        ("openvino", "cpu", GPU_ORT, "provider must be auto, tensorrt, cuda or cpu"),
    ],
)
def test_provider_chain_refuses_what_is_not_there(provider, device, available, message, tmp_path):
    from narrow_seg_ros.inference.backends import provider_chain

    with pytest.raises(ValueError, match=message):
        provider_chain(provider, device, False, available, tmp_path)


def test_onnx_cache_key_follows_versions_and_model_code(monkeypatch):
    """A fix in the export or model code, or another torch / onnx / package version, must not be
    hidden by a warm cache: all of them are in the key."""
    from narrow_seg_ros.inference import onnx_cache

    key = onnx_cache.export_code_key()
    import onnx

    assert f"torch {torch.__version__}" in key and f"onnx {onnx.__version__}" in key
    onnx_cache.export_code_key.cache_clear()
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    try:
        assert onnx_cache.export_code_key() != key
    finally:
        onnx_cache.export_code_key.cache_clear()
