"""The narrow-seg CLI as a user runs it."""

import json

PAPER_TOTALS = {"ndnet29": 521e3, "ndnet45": 400e3, "ndnet61": 307e3, "vnet": 0.16e6}


def test_info_all_json(cli):
    proc = cli("info", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["model"]: r for r in json.loads(proc.stdout)}
    assert set(rows) >= set(PAPER_TOTALS) | {"ndnet45_e2"}
    for row in rows.values():
        assert {"model", "params_total", "params_backbone", "gmacs", "size"} <= set(row)
        assert row["size"] == "1024x2048" and row["gmacs"] > 0
        assert 0 < row["params_backbone"] < row["params_total"]
    assert abs(rows["ndnet45"]["params_total"] / 400e3 - 1) < 0.06
    assert abs(rows["vnet"]["params_total"] / 0.16e6 - 1) < 0.15


def test_info_single_model_table_and_size(cli):
    proc = cli("info", "ndnet45", "--size", "512x1024")
    assert proc.returncode == 0, proc.stderr
    assert "ndnet45" in proc.stdout and "GMACs@512x1024" in proc.stdout
    small = json.loads(cli("info", "ndnet45", "--size", "512x1024", "--json").stdout)[0]
    big = json.loads(cli("info", "ndnet45", "--json").stdout)[0]
    assert small["gmacs"] * 4 == big["gmacs"] or abs(small["gmacs"] * 4 / big["gmacs"] - 1) < 1e-3


def test_info_model_options(cli):
    """--option KEY=VALUE builds the model with a config's model.options (NDNet's FCN8 decoder)."""
    base, fcn8 = (
        json.loads(cli("info", "ndnet45", *extra, "--json").stdout)[0] for extra in ([], ["--option", "head=fcn8"])
    )
    assert fcn8["options"] == {"head": "fcn8"} and (base["output_stride"], fcn8["output_stride"]) == (32, 8)
    assert fcn8["params_backbone"] == base["params_backbone"] and 1.1 < fcn8["gmacs"] / base["gmacs"] < 1.2
    for args, error in (
        (["ndnet45", "--option", "head"], "--option expects KEY=VALUE, got 'head'"),
        (["vnet", "--option", "head=fcn8"], "model 'vnet' does not take the options {'head': 'fcn8'}"),
        (["--all", "--option", "head=fcn8"], "--option applies to one model"),
    ):
        proc = cli("info", *args)
        assert proc.returncode != 0 and error in proc.stderr and "Traceback" not in proc.stderr, args


def test_info_rejects_bad_size(cli):
    proc = cli("info", "ndnet45", "--size", "big")
    assert proc.returncode == 2 and "HxW" in proc.stderr


def test_bench_memory_prints_ratio(cli):
    proc = cli("bench-memory", "--size", "128x256", "--batch-size", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["mode"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"reversible", "plain"}
    rev, plain = rows["reversible"], rows["plain"]
    assert rev["saved_for_backward_mb"] < plain["saved_for_backward_mb"]
    assert rev["step_peak_mb"] > 0 and plain["step_peak_mb"] > 0
    assert rev["ratio_to_plain"] == round(rev["step_peak_mb"] / plain["step_peak_mb"], 3)
    text = cli("bench-memory", "--size", "128x256", "--batch-size", "1")
    assert "reversible / plain peak training memory:" in text.stdout


def test_bench_memory_rejects_model_without_reversible_stages(cli):
    proc = cli("bench-memory", "--model", "ndnet45", "--size", "64x64", "--batch-size", "1")
    assert proc.returncode == 2 and "no reversible stages" in proc.stderr


def test_bad_counts_fail_at_the_command_line(cli, tmp_path):
    """A count of 0 or a word is one argparse error (exit 2), not an empty run or a traceback."""
    cases = [
        (["eval", "--weights", "w.pt", "--data", str(tmp_path), "--max-images", "0"], "--max-images: must be >= 1"),
        (["bench", "--threads", "two"], "--threads: expected an integer, got 'two'"),
        (["demo", "--frames", "-1"], "--frames: must be >= 1, got -1"),
        (["ceiling", "--weights", "w.pt", "--data", str(tmp_path), "--steps", "-1"], "--steps: must be >= 0"),
    ]
    for argv, message in cases:
        proc = cli(*argv)
        assert proc.returncode == 2 and message in proc.stderr, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr
