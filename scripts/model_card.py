"""Write the JSON model card beside a shipped weights file (models/<name>.json).

    python scripts/model_card.py models/ndnet45_synth.pt --eval-data data/synth_holdout \
        --eval-command "narrow-seg synth --out data/synth_holdout --num 60 --size 512x1024 --seed 3 --split val" \
        --train-command "narrow-seg train --config config/train_ndnet45_synth.yaml" \
        --train-command "narrow-seg train --config config/train_ndnet45_synth_2x.yaml" \
        --ceiling-json ceiling.json   # optional: narrow-seg ceiling --json on the same data

Evaluates with ``narrow-seg eval --json`` (the same code the tests run), and records the
evaluation, the commands, the iterations the weights file itself records, size and sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

TRAIN_DATA = [
    "narrow-seg synth --out data/synth --num 400 --size 512x1024 --seed 1 --split train",
    "narrow-seg synth --out data/synth --num 60 --size 512x1024 --seed 2 --split val",
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", type=Path)
    p.add_argument("--eval-data", required=True)
    p.add_argument("--eval-dataset", default="cityscapes", help="cityscapes, camvid or a dataset YAML (eval --dataset)")
    p.add_argument("--run-dir", type=Path, help="the training run's folder: its wall time goes into the card")
    p.add_argument("--eval-command", required=True, help="how the evaluation set was made")
    p.add_argument(
        "--train-command", required=True, action="append", help="repeat for each stage (e.g. a fine-tune), in order"
    )
    p.add_argument(
        "--train-data",
        action="append",
        help=f"repeat for each command that made the training data, in order (default: {'; '.join(TRAIN_DATA)})",
    )
    p.add_argument(
        "--ceiling-json",
        type=Path,
        help="output of `narrow-seg ceiling --json` for this model and input size on the evaluation data",
    )
    args = p.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from narrow_seg_ros.weights import load_weights

    weights = load_weights(args.weights)
    proc = subprocess.run(
        [sys.executable, "-m", "narrow_seg_ros.cli.main", "eval", "--weights", str(args.weights)]
        + ["--data", args.eval_data, "--dataset", args.eval_dataset, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout)
    data = args.weights.read_bytes()
    card = {
        "model": weights.model,
        "model_options": weights.model_options,
        "input_size": list(weights.input_size),
        "val_miou": round(result["miou"], 4),
        "pixel_accuracy": round(result["pixel_accuracy"], 4),
        "per_class": {k: (None if v is None else round(v, 4)) for k, v in result["per_class"].items()},
        "eval_data": args.eval_command,
        "train_data": args.train_data or TRAIN_DATA,
        "train_command": args.train_command if len(args.train_command) > 1 else args.train_command[0],
        "iterations": weights.metadata.get("iterations"),  # of the last stage
        "classes": weights.class_names,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
    }
    if args.run_dir:  # from the run's config (written at its start) to its weights file (at its end)
        started = (args.run_dir / "config.json").stat().st_mtime
        card["train_minutes"] = round(((args.run_dir / "weights.pt").stat().st_mtime - started) / 60, 1)
    if args.ceiling_json:
        ceiling = json.loads(args.ceiling_json.read_text())
        ceiling_net = (ceiling["model"], ceiling.get("model_options", {}), ceiling["input_size"])
        if ceiling_net != (weights.model, weights.model_options, list(weights.input_size)):
            p.error(f"{args.ceiling_json} is for {ceiling_net} (model, options, input size), not these weights")
        card["head_ceiling"] = {
            "miou": round(ceiling["miou"], 4),
            "per_class": {k: (None if v is None else round(v, 4)) for k, v in ceiling["per_class"].items()},
            "command": f"narrow-seg ceiling --weights {args.weights} --data {args.eval_data} --steps {ceiling['steps']}",
        }
    out = args.weights.with_suffix(".json")
    out.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {out}: mIoU {100 * card['val_miou']:.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
