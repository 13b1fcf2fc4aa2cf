"""``narrow-seg fuzz``: long property-based fuzzing campaigns against the image decoders.

The properties and inputs are those of ``test/test_fuzz.py`` (``narrow_seg_ros.fuzz``); CI runs
them with a small fixed budget, this command with N fresh random cases per target.
"""

from __future__ import annotations

from .common import int_at_least

TARGET_NAMES = ("image", "compressed")


def add_parser(sub) -> None:
    p = sub.add_parser("fuzz", help="property-based fuzzing of the Image / CompressedImage decoders (needs hypothesis)")
    p.add_argument("target", choices=(*TARGET_NAMES, "all"), help="decoder to fuzz, or all")
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
    # OpenCV's log lines about broken inputs would come by the thousand (libpng's and libjpeg's own
    # warnings still go to stderr)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    seed_value = random.getrandbits(32) if args.seed is None else args.seed
    targets = TARGET_NAMES if args.target == "all" else (args.target,)
    results = []
    for target in targets:
        print(f"fuzzing {target}: {args.cases} cases, seed {seed_value} ...", flush=True)
        result = run_campaign(target, args.cases, seed_value=seed_value)
        results.append(result)
        for number, failure in enumerate(result.failures, 1):
            print(f"--- {target} failure {number} ---\n{failure}\n", flush=True)
    print(f"{'target':<12}{'cases tried':>12}{'failures':>10}{'seconds':>10}")
    for r in results:
        print(f"{r.target:<12}{r.cases:>12}{len(r.failures):>10}{r.seconds:>10.1f}")
    print(f"replay: narrow-seg fuzz {args.target} --cases {args.cases} --seed {seed_value}")
    return 1 if any(r.failures for r in results) else 0
