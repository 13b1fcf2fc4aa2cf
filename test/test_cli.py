"""The narrow-seg CLI: its commands through main(argv) in this process (a separate process per
call would mostly time torch's import), and the installed console script end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from narrow_seg_ros.cli import bench_memory
from narrow_seg_ros.cli.main import main

PAPER_TOTALS = {"ndnet29": 521e3, "ndnet45": 400e3, "ndnet61": 307e3, "vnet": 0.16e6}


@pytest.fixture
def narrow_seg(capsys):
    """``narrow-seg ARGS`` through main(argv): a CompletedProcess, as from the console script."""

    def call(*args: str) -> subprocess.CompletedProcess:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's errors and --help
            code = exc.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["narrow-seg", *args], code, out, err)

    return call


def test_info_all_json(narrow_seg):
    proc = narrow_seg("info", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["model"]: r for r in json.loads(proc.stdout)}
    assert set(rows) >= set(PAPER_TOTALS) | {"ndnet45_e2"}
    for row in rows.values():
        assert {"model", "params_total", "params_backbone", "gmacs", "size"} <= set(row)
        assert row["size"] == "1024x2048" and row["gmacs"] > 0
        assert 0 < row["params_backbone"] < row["params_total"]
    assert abs(rows["ndnet45"]["params_total"] / 400e3 - 1) < 0.06
    assert abs(rows["vnet"]["params_total"] / 0.16e6 - 1) < 0.15


def test_info_single_model_table_and_size(narrow_seg):
    proc = narrow_seg("info", "ndnet45", "--size", "512x1024")
    assert proc.returncode == 0, proc.stderr
    assert "ndnet45" in proc.stdout and "GMACs@512x1024" in proc.stdout
    small = json.loads(narrow_seg("info", "ndnet45", "--size", "512x1024", "--json").stdout)[0]
    big = json.loads(narrow_seg("info", "ndnet45", "--json").stdout)[0]
    assert small["gmacs"] * 4 == big["gmacs"] or abs(small["gmacs"] * 4 / big["gmacs"] - 1) < 1e-3


def test_info_model_options(narrow_seg):
    """--option KEY=VALUE builds the model with a config's model.options (NDNet's FCN8 decoder)."""
    base, fcn8 = (
        json.loads(narrow_seg("info", "ndnet45", *extra, "--json").stdout)[0]
        for extra in ([], ["--option", "head=fcn8"])
    )
    assert fcn8["options"] == {"head": "fcn8"} and (base["output_stride"], fcn8["output_stride"]) == (32, 8)
    assert fcn8["params_backbone"] == base["params_backbone"] and 1.1 < fcn8["gmacs"] / base["gmacs"] < 1.2
    for args, error in (
        (["ndnet45", "--option", "head"], "--option expects KEY=VALUE, got 'head'"),
        (["vnet", "--option", "head=fcn8"], "model 'vnet' does not take the options {'head': 'fcn8'}"),
        (["--all", "--option", "head=fcn8"], "--option applies to one model"),
    ):
        proc = narrow_seg("info", *args)
        assert proc.returncode != 0 and error in proc.stderr and "Traceback" not in proc.stderr, args


def test_info_rejects_bad_size(narrow_seg):
    proc = narrow_seg("info", "ndnet45", "--size", "big")
    assert proc.returncode == 2 and "HxW" in proc.stderr


def test_console_script_end_to_end():
    """The installed ``narrow-seg`` in a process of its own: its output, and the exit code for
    input the command rejects (a ValueError: one line, exit 2, no traceback)."""
    script = Path(sys.executable).parent / "narrow-seg"

    def run(*args):
        return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=300)

    proc = run("info", "ndnet45", "--size", "64x128", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["size"] == "64x128"
    proc = run("info", "vnet", "--option", "head=fcn8", "--size", "64x128")
    assert proc.returncode == 2 and "does not take the options" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_openmp_wait_policy_is_set_on_dispatch_not_import():
    """The training OpenMP wait policy is set when main() dispatches ``train`` in a process
    without torch yet, not when the module is imported (here in a fresh interpreter, no torch)."""
    code = (
        "import os, sys; sys.argv = ['narrow-seg', 'train']; from narrow_seg_ros.cli import main as m; "
        "before = os.environ.get('OMP_WAIT_POLICY'); m._set_openmp_wait_policy(['eval']); "
        "between = os.environ.get('OMP_WAIT_POLICY'); m._set_openmp_wait_policy(['train']); "
        "print(before, between, os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.stdout.split() == ["None", "None", "PASSIVE", "False"], proc.stderr


def test_bench_memory_prints_ratio(narrow_seg, monkeypatch):
    proc = narrow_seg("bench-memory", "--size", "128x256", "--batch-size", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["mode"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"reversible", "plain"}
    rev, plain = rows["reversible"], rows["plain"]
    assert rev["saved_for_backward_mb"] < plain["saved_for_backward_mb"]
    assert rev["step_peak_mb"] > 0 and plain["step_peak_mb"] > 0
    assert rev["ratio_to_plain"] == round(rev["step_peak_mb"] / plain["step_peak_mb"], 3)
    # The table from the same measurements: the workers' rows, without measuring again.
    worker_rows = iter([rev, plain])
    monkeypatch.setattr(bench_memory, "run_worker", lambda argv, what, env: dict(next(worker_rows)))
    text = narrow_seg("bench-memory", "--size", "128x256", "--batch-size", "1")
    ratio = rev["step_peak_mb"] / plain["step_peak_mb"]
    assert f"reversible / plain peak training memory: {ratio:.3f}" in text.stdout


def test_bench_memory_rejects_model_without_reversible_stages(narrow_seg):
    proc = narrow_seg("bench-memory", "--model", "ndnet45", "--size", "64x64", "--batch-size", "1")
    assert proc.returncode == 2 and "no reversible stages" in proc.stderr


def test_bad_counts_fail_at_the_command_line(narrow_seg, tmp_path):
    """A count of 0 or a word is one argparse error (exit 2), not an empty run or a traceback."""
    cases = [
        (["eval", "--weights", "w.pt", "--data", str(tmp_path), "--max-images", "0"], "--max-images: must be >= 1"),
        (["bench", "--threads", "two"], "--threads: expected an integer, got 'two'"),
        (["demo", "--frames", "-1"], "--frames: must be >= 1, got -1"),
        (["ceiling", "--weights", "w.pt", "--data", str(tmp_path), "--steps", "-1"], "--steps: must be >= 0"),
    ]
    for argv, message in cases:
        proc = narrow_seg(*argv)
        assert proc.returncode == 2 and message in proc.stderr, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_bench_postprocess_agrees_with_torch(narrow_seg):
    proc = narrow_seg(
        "bench-postprocess", "--size", "128x256", "--low", "8x16", "--repeats", "2", "--reference-repeats", "1"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("128x256 from (19, 8, 16) logits, align_corners=True, 2 threads, boundary cells")
    assert "mask agreement with the reference: 100.00000% (0 pixels differ)" in proc.stdout
    assert narrow_seg("bench-postprocess", "--repeats", "0").returncode == 2
