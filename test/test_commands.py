"""The node-driving commands end to end on tiny inputs: soak, bench-node and bench-cameras start
seg_node processes over real DDS, feed them frames and print their tables; a broken command fails
here, not in a user's hands."""

import json

import pytest
from conftest import make_weights, run_cli

SIZE = "64x128"


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return str(make_weights(tmp_path_factory.mktemp("weights") / "tiny.pt", input_size=(64, 128)))


def test_soak_prints_memory_and_counts(ros, tiny_weights):
    proc = run_cli("soak", "--weights", tiny_weights, "--size", SIZE, "--rate", "10", "--minutes", "0.1",
                   "--period", "3", timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = lines.index("second  rss_mb  published  masks  dropped  invalid  failed")
    rows = [[float(v) for v in line.split()] for line in lines[header + 1 : header + 3]]
    assert [row[0] for row in rows] == [3, 6]
    assert all(row[1] > 50 for row in rows)  # the node's RSS in MB: a live process with a model
    assert rows[-1][2] >= 40 and rows[-1][3] > 0  # ~60 frames published at 10 Hz, masks came back
    assert rows[-1][6] == 0  # no frame failed
    assert "RSS growth from second 3 to second 6" in proc.stdout


def test_bench_node_reports_latency_against_the_engine(ros, tiny_weights):
    proc = run_cli("bench-node", "--weights", tiny_weights, "--backend", "torch", "--size", SIZE, "32x64",
                   "--outputs", "mask", "mask_png,color,overlay,confidence", "--frames", "3", "--json", timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(proc.stdout[proc.stdout.index("[") :])
    assert [(r["size"], r["outputs"]) for r in rows] == [
        (size, outputs) for size in (SIZE, "32x64") for outputs in ("mask", "mask_png,color,overlay,confidence")
    ]
    for row in rows:
        assert row["frames"] == 3 and 0 < row["engine_ms_p50"]
        assert 0 < row["node_latency_ms_p50"] <= row["node_latency_ms_p99"]
        # frame by frame: the latency less the engine's time on that frame
        assert row["ros_overhead_ms_p50"] < row["node_latency_ms_p50"]
        # the echo node's round trip of the same frame: a transport with no work under it
        assert 0 < row["transport_floor_ms_p50"] <= row["transport_floor_ms_p99"]
        assert row["transport_floor_ms_p50"] < row["node_latency_ms_p50"]
        # per frame: latency less two positive times (engine, floor), so its median is below the latency's
        assert row["node_own_ms_p50"] < row["node_latency_ms_p50"]


def test_bench_cameras_compares_layouts(ros, tiny_weights):
    proc = run_cli("bench-cameras", "--weights", tiny_weights, "--backend", "torch", "--cameras", "1", "2",
                   "--size", SIZE, "--rate", "5", "--warmup", "1", "--seconds", "2", "--json", timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(proc.stdout[proc.stdout.index("[") :])
    assert {(r["layout"], r["cameras"]) for r in rows} == {("multi", 1), ("multi", 2), ("single", 1), ("single", 2)}
    assert all(r["masks_per_s"] > 0 and r["rss_mb"] > 0 for r in rows)


def test_bench_startup_compares_the_torch_and_torch_free_paths(ros):
    proc = run_cli("bench-startup", "--runs", "1", "--size", SIZE, "--json", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(proc.stdout[proc.stdout.index("[") :])
    assert [r["path"] for r in rows] == ["torch (.pt)", "torch-free (.onnx)"]
    assert all(r["first_mask_s"] > 0 and r["peak_rss_mb"] >= r["rss_mb"] > 50 for r in rows)


@pytest.mark.parametrize(
    "command, code, said",
    [
        ("soak", 1, "seg_node exited with code 2"),
        ("bench-cameras", 1, "seg_node exited with code 2"),
        ("bench-node", 2, "narrow-seg bench-node: error:"),  # its own engine loads the weights first
    ],
)
def test_a_node_that_cannot_start_is_reported_with_its_error(ros, command, code, said, tmp_path):
    """The node's own one-line error and no traceback."""
    proc = run_cli(command, "--weights", str(tmp_path / "missing.pt"), "--size", SIZE, timeout=120)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert said in proc.stderr and "weights file not found" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
