"""Argument, output and worker-process helpers shared by subcommands."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def int_at_least(low: int):
    """An argparse type: an integer >= ``low`` (``--max-images 0`` is an error, not an empty run)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def parse_key_values(items: list[str], flag: str) -> dict:
    """['a.b=1', 'c=[1, 2]'] → {'a.b': 1, 'c': [1, 2]} (values parsed as YAML)."""
    import yaml

    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} expects KEY=VALUE, got {item!r}")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def add_model_option_argument(p) -> None:
    """``--option KEY=VALUE`` (repeatable): a model option, as in a config's ``model.options``."""
    p.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="a model option, as in a config's model.options (e.g. --option head=fcn8 for NDNet)",
    )  # fmt: skip


def add_dataset_arguments(p) -> None:
    """``--data ROOT --dataset KIND --split NAME``: a labelled split (data/folder.py's open_dataset)."""
    p.add_argument("--data", help="dataset root folder (for a dataset YAML file: default its folder)")
    p.add_argument(
        "--dataset", default="cityscapes",
        help="cityscapes (Cityscapes layout, also narrow-seg synth), camvid, or a dataset YAML file "
        "(image and mask folders with a class table)",
    )  # fmt: skip
    p.add_argument("--split", default="val", help="a split, or several joined by + (train+val); CamVid also has test")
    p.add_argument(
        "--sequences", type=lambda text: [s for s in text.split(",") if s],
        help="only the frames of these comma-separated sequences (file name up to the first _, e.g. 0006R0)",
    )  # fmt: skip


def format_size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """Print ``rows`` as an aligned text table; ``columns`` = [(key, header), ...]."""
    cells = [[h for _, h in columns]] + [[str(r[k]) for k, _ in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    for line in cells:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))))


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2))


def iou_summary(matrix, class_names, weights, dataset, max_images: int | None, /, **context) -> dict:
    """A confusion matrix's summary with the model, its options and the number of images it counts."""
    summary = matrix.summary(list(class_names))
    images = len(dataset) if max_images is None else min(len(dataset), max_images)
    summary.update(model=weights.model, model_options=weights.model_options, images=images, **context)
    return summary


def print_iou_report(summary: dict, as_json: bool, title: str) -> None:
    """``summary`` (ConfusionMatrix.summary plus context) as JSON, or ``title`` and the IoU table."""
    from ..training.metrics import format_iou_table  # here: metrics imports torch, which parsing must not

    if as_json:
        print_json(summary)
    else:
        print(title)
        print(format_iou_table(summary))


def run_worker(argv: list[str], what: str, env: dict | None = None) -> dict:
    """``narrow-seg ARGV`` in a fresh interpreter; the JSON object its last stdout line holds.

    Benchmarks measure each case in its own process, so that threads, allocator caches and peak
    memory of one case cannot disturb the next. A failed worker raises ValueError with the tail
    of its stderr, naming ``what`` failed.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "narrow_seg_ros.cli.main", *argv], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise ValueError(f"{what} failed:\n{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def street_frames(size, count: int) -> list:
    """Synthetic street scenes for benchmarks: realistic class boundaries, which the
    post-processing's cost depends on (noise would be nearly all boundary and time a different
    workload)."""
    import numpy as np

    from ..data.synth import render_scene

    return [render_scene(np.random.default_rng(i), size)[0] for i in range(count)]


def status_mb(field: str = "VmRSS", pid: int | str = "self") -> float:
    """A memory figure of ``/proc/<pid>/status`` (VmRSS, VmHWM, ...) in MB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")
