"""Shared fixtures; keeps torch to the two cores CI has. torch is optional here: the Jazzy and
Python 3.10 environments (scripts/setup.sh --env) run the torch-free deployment's tests."""

import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from narrow_seg_ros.dds import PROFILE, localhost_env

try:
    import torch
except ImportError:  # the torch-free environments; tests that need torch are not collected there
    torch = None
REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
_SKIP = shutil.ignore_patterns(
    ".git", ".venv", ".ros2_tools", "build", "install", "log", "*.egg-info", "__pycache__", ".*cache"
)
if torch is not None:
    torch.set_num_threads(min(2, os.cpu_count() or 1))


# modules whose tests start nodes over DDS, train, build with colcon or read CamVid: minutes in all.
# `bash scripts/test.sh -m "not slow"` runs the rest, the quick loop while changing code.
SLOW_MODULES = {
    "test_bags", "test_commands", "test_datasets", "test_launch", "test_multi_camera", "test_node",
    "test_package", "test_planner_contract", "test_shipped_weights", "test_torch_free", "test_training",
    "test_hostile_node", "test_one_truth", "test_video", "test_lifecycle",
}  # fmt: skip


# and single tests of the quick modules that take over ~10 s on 2 cores (exports, whole commands)
SLOW_TESTS = {
    "test_infer_cli_folder_and_video", "test_export_dynamic_onnx_and_torchscript", "test_bench_prints_stages",
    "test_weights_files_are_readable_as_the_umask_allows", "test_backends_match_torch_fp32_reference",
    "test_export_onnx_runs_from_metadata_alone", "test_onnx_export_matches_torch",
    "test_fcn8_engine_and_export_keep_the_backbone_stride", "test_infer_runs_where_ros_is_absent",
    "test_bench_names_the_model_options", "test_bench_postprocess_agrees_with_torch", "test_bench_memory_prints_ratio",
    "test_output_shape_and_determinism", "test_ceiling_cli_json", "test_reversible_gradients_equal_plain_autograd",
    "test_a_batch_of_cameras_gives_each_frame_its_own_result", "test_a_fixed_batch_onnx_graph_runs_a_batch_one_frame_per_call",
    "test_fcn8_decoder",
}  # fmt: skip


def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``narrow-seg ARGS`` as a user would (a separate process)."""
    return subprocess.run(
        [sys.executable, "-m", "narrow_seg_ros.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


# rclpy and every ROS message package made unimportable, as on a pip-only machine
_WITHOUT_ROS = (
    "import sys\n"
    "for name in ('rclpy', 'sensor_msgs', 'std_msgs', 'vision_msgs', 'diagnostic_msgs', 'rcl_interfaces'):\n"
    "    sys.modules[name] = None  # import raises ImportError\n"
    "from narrow_seg_ros.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def run_cli_without_ros(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``narrow-seg ARGS`` in a process where no ROS module can be imported."""
    return subprocess.run([sys.executable, "-c", _WITHOUT_ROS, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


def make_weights(path, model="ndnet45", input_size=(256, 512), seed=0, **options):
    """A random-init network in the weights contract (tests of the contract, not of training).

    BN running variances are raised so logits vary over the image as a trained net's do; FCN8's
    skip classifiers, which start at zero, get random weights so that the skips take part.
    """
    from narrow_seg_ros.weights import random_weights, save_weights

    weights = random_weights(model, input_size, seed, **options)
    generator = torch.Generator().manual_seed(seed)
    for name, value in weights.state_dict.items():
        if name.endswith("running_var"):
            value.fill_(4.0)
        elif name.startswith(("skip8.1.", "skip16.1.")):
            value.copy_(torch.randn(value.shape, generator=generator) * 0.1)
    save_weights(weights, path)
    return path


@pytest.fixture(scope="session")
def ndnet_weights(tmp_path_factory):
    return make_weights(tmp_path_factory.mktemp("weights") / "ndnet45_random.pt")


@pytest.fixture(scope="session")
def ndnet_fcn8_weights(tmp_path_factory):
    return make_weights(tmp_path_factory.mktemp("weights") / "ndnet45_fcn8_random.pt", head="fcn8")


@pytest.fixture(scope="session")
def vnet_weights(tmp_path_factory):
    return make_weights(tmp_path_factory.mktemp("weights") / "vnet_random.pt", model="vnet", input_size=(128, 256))


# the shipped graph of the smaller input (540x720; the Cityscapes one is 1024x2048): a committed
# file, so the torch-free environments run the node's tests offline
SHIPPED_ONNX = REPO / "models" / "ndnet45_fcn8_camvid.onnx"


@pytest.fixture(scope="module")
def node_weights(request):
    """Weights seg_node runs here: the random .pt where torch is importable, else the shipped .onnx
    (the torch-free deployment runs .onnx files on onnxruntime). Read its contract with
    weights_contract, start the node with node_backend."""
    if torch is None:
        return SHIPPED_ONNX
    return request.getfixturevalue("ndnet_weights")


def weights_contract(path) -> tuple[list[str], tuple[int, int]]:
    """(class names, network input size (H, W)) of a .pt or an .onnx; an .onnx's from its metadata,
    read with onnxruntime alone, so that this works where torch is absent."""
    path = Path(path)
    if path.suffix == ".onnx":
        from narrow_seg_ros.inference.onnx_metadata import read_onnx_metadata

        meta = read_onnx_metadata(path)
        return list(meta["class_names"]), tuple(meta["input_size"])
    if torch is None:
        raise RuntimeError(f"{path}: a .pt is read with torch, which this environment lacks")
    from narrow_seg_ros.weights import load_weights

    weights = load_weights(path)
    return list(weights.class_names), tuple(weights.input_size)


def weights_palette(path) -> list[list[int]]:
    """The rgb color per class id of a .pt or an .onnx (as weights_contract: torch-free for .onnx)."""
    path = Path(path)
    if path.suffix == ".onnx":
        from narrow_seg_ros.inference.onnx_metadata import read_onnx_metadata

        return [list(map(int, c)) for c in read_onnx_metadata(path)["palette"]]
    if torch is None:
        raise RuntimeError(f"{path}: a .pt is read with torch, which this environment lacks")
    from narrow_seg_ros.weights import load_weights

    return [list(map(int, c)) for c in load_weights(path).palette]


def node_backend(path) -> str:
    """The backend for ``path``: auto for an .onnx (it resolves to onnxruntime, an .onnx's only
    one); torch for a .pt, since auto on a CPU picks onnxruntime and would run the engine's ONNX
    export of it (engine._resolve) instead of the torch model these tests check."""
    return "torch" if Path(path).suffix == ".pt" else "auto"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """ONNX exports made by the engine go to a folder of this test run."""
    os.environ["NARROW_SEG_CACHE"] = str(tmp_path_factory.mktemp("cache"))


def copy_source_tree(destination: Path) -> None:
    """The repository as a package source: no VCS, venv, build outputs, local datasets or runs."""

    def ignore(folder, names):
        skipped = set(_SKIP(folder, names))
        if Path(folder) == REPO:
            skipped |= {"data", "runs"} & set(names)  # top-level only: narrow_seg_ros/data is code
        return skipped

    shutil.copytree(REPO, destination, ignore=ignore)


@pytest.fixture(scope="session")
def colcon_install(tmp_path_factory):
    """The package built with colcon the way ROS users build it, in a throwaway workspace."""
    colcon = VENV_BIN / "colcon"
    if not colcon.exists():
        pytest.fail("colcon is missing from the environment: run scripts/setup.sh")
    ws = tmp_path_factory.mktemp("ws")
    copy_source_tree(ws / "src" / "narrow_seg_ros")
    proc = subprocess.run(
        [str(colcon), "build", "--base-paths", "src"], cwd=ws, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return ws / "install"


_DOMAINS = itertools.count()


def _next_domain() -> int:
    """A ROS domain per test module, 100..199 (a node a failed test left behind publishes into its
    own module's domain, not into the next module's topics), offset by the pid so that two suites
    running at once rarely share one."""
    return 100 + (os.getpid() + next(_DOMAINS)) % 100


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    """An rclpy node of the test module, with DDS kept on this host and a domain of the module's own."""
    rclpy = pytest.importorskip("rclpy")
    env = {
        **localhost_env(REPO.joinpath(*PROFILE)),
        "ROS_DOMAIN_ID": str(_next_domain()),
        "NARROW_SEG_CACHE": str(tmp_path_factory.mktemp("cache")),
        "PYTHONUNBUFFERED": "1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    rclpy.init()
    node = rclpy.create_node("test_listener")
    yield node
    node.destroy_node()
    rclpy.try_shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def open_gate(ros, subscriptions: list, timeout: float = 60.0):
    """Let a player started with ``wait_for_subscribers:=len(subscriptions) + 1`` play: once every
    one of the test's subscriptions has matched a publisher on its own (reader's) side, one more
    subscription on the first one's topic completes the player's count; returned, to destroy.

    DDS discovery is not symmetric: the player's writer can count a reader that has not yet matched
    the writer, and a volatile reader drops what was written before its side matched. A player
    counting only the test's own subscriptions could start inside that window and lose its first
    message; with the gate, it cannot start before the readers are ready."""
    import rclpy
    from rclpy.qos import QoSProfile

    deadline = time.monotonic() + timeout
    while not all(sub.get_publisher_count() > 0 for sub in subscriptions):
        assert time.monotonic() < deadline, "the player's publishers never matched the test's subscriptions"
        rclpy.spin_once(ros, timeout_sec=0.05)
    first = subscriptions[0]
    return ros.create_subscription(first.msg_type, first.topic_name, lambda _: None, QoSProfile(depth=1))


def start(argv: list[str], **kwargs) -> subprocess.Popen:
    """Start a process (a node, player, publisher, training run) with its output piped, for ``stop``."""
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def stop(proc) -> str:
    """Stop a node process the project's one way (SIGTERM, then SIGKILL); its output."""
    from narrow_seg_ros.ros.processes import stop_process

    stop_process(proc)
    return proc.stdout.read() if proc.stdout else ""
