"""``narrow-seg fuzz``: long property-based fuzzing campaigns against what the node and the
commands read from outside: image messages, camera_info, recordings, YAML files, weights, H.264 /
H.265 video packets.

The properties and inputs are those of ``test/test_fuzz.py`` (``narrow_seg_ros.fuzz``); CI runs
them with a small fixed budget, this command with N fresh random cases per target.
"""

from __future__ import annotations

import importlib.util

from .common import int_at_least

TARGET_NAMES = ("image", "compressed", "camera_info", "recording", "config", "weights", "video")
# modules a target's code under test needs besides hypothesis (the image targets need OpenCV alone)
TARGET_NEEDS = {
    "camera_info": ("sensor_msgs",),
    "recording": ("rosbags",),
    "config": ("torch",),  # data/folder.py reads its masks through torch's Dataset
    "weights": ("torch", "onnx", "onnxruntime"),
    "video": ("av",),  # PyAV: encodes the seed clips and decodes (an optional dependency of the node)
}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fuzz",
        help="property-based fuzzing of decoders, camera_info, recordings, YAML, weights and video (needs hypothesis)",
    )
    p.add_argument("target", choices=(*TARGET_NAMES, "all"), help="what to fuzz, or all")
    p.add_argument("--cases", type=int_at_least(1), default=1000, help="cases per target (default 1000)")
    p.add_argument("--seed", type=int, default=None, help="random seed, to replay a campaign (default: fresh)")
    p.set_defaults(func=run)


def run(args) -> int:
    import random

    try:
        import cv2

        from ..fuzz import run_campaign
    except ImportError as err:
        if err.name != "hypothesis":
            raise
        raise ValueError("needs hypothesis, a test dependency: pip install -r requirements.lock") from err
    targets = _runnable(TARGET_NAMES) if args.target == "all" else (args.target,)
    for target in targets:
        if _missing(target):
            raise ValueError(f"fuzzing {target} needs {', '.join(_missing(target))}, which is not installed")
    # OpenCV's log lines about broken inputs would come by the thousand (libpng's and libjpeg's own
    # warnings still go to stderr)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    _quiet_warnings()
    seed_value = random.getrandbits(32) if args.seed is None else args.seed
    results = []
    for target in targets:
        print(f"fuzzing {target}: {args.cases} cases, seed {seed_value} ...", flush=True)
        result = run_campaign(target, args.cases, seed_value=seed_value)
        results.append(result)
        for number, failure in enumerate(result.failures, 1):
            print(f"--- {target} failure {number} ---\n{failure}\n", flush=True)
        for (where, _kind), (count, example) in sorted(result.pending.items()):
            print(f"--- {target} pending ({count} cases): fix in {where} ---\n{example}\n", flush=True)
    print(f"{'target':<12}{'cases tried':>12}{'failures':>10}{'pending':>9}{'seconds':>10}")
    for r in results:
        pending = sum(count for count, _ in r.pending.values())
        print(f"{r.target:<12}{r.cases:>12}{len(r.failures):>10}{pending:>9}{r.seconds:>10.1f}")
    if any(r.pending for r in results):
        print("pending: known failures whose fix lies outside the fuzzed files (docs/reliability.md, Pending fixes)")
    print(f"replay: narrow-seg fuzz {args.target} --cases {args.cases} --seed {seed_value}")
    return 1 if any(r.failures for r in results) else 0


def _missing(target: str) -> list[str]:
    return [m for m in TARGET_NEEDS.get(target, ()) if importlib.util.find_spec(m) is None]


def _runnable(names) -> tuple[str, ...]:
    """``all``: the targets whose tools are installed; each one left out is said (a torch-free
    deployment has no torch to build weights files with)."""
    for target in names:
        if _missing(target):
            print(f"skipping {target}: needs {', '.join(_missing(target))}, which is not installed", flush=True)
    return tuple(t for t in names if not _missing(t))


def _quiet_warnings() -> None:
    """torch.load's warning about pickle protocols comes for every damaged .pt the weights target reads."""
    import warnings

    warnings.filterwarnings("ignore", message="Detected pickle protocol")
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="narrow_seg_ros.normalization")
