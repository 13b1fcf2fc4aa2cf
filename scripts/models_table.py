"""Print the per-class IoU of model cards side by side as a Markdown table (for models/README.md).

    python scripts/models_table.py models/ndnet45_fcn8_camvid.json models/vnet_camvid.json
    python scripts/models_table.py runs/s2r_synth/val.json runs/s2r_scratch/val.json --names synthetic scratch

Each file is a model card (``scripts/model_card.py``) or ``narrow-seg eval --json`` output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--names", nargs="+", help="column titles (default: the file stems)")
    args = p.parse_args()
    names = args.names or [f.stem for f in args.files]
    if len(names) != len(args.files):
        p.error("give one name per file")
    results = [json.loads(f.read_text()) for f in args.files]
    classes = list(results[0]["per_class"])
    print("| class | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for name in classes:
        cells = [r["per_class"].get(name) for r in results]
        print(f"| {name} | " + " | ".join("n/a" if v is None else f"{100 * v:.1f}" for v in cells) + " |")
    print("| **mIoU** | " + " | ".join(f"**{100 * r.get('val_miou', r.get('miou')):.1f}**" for r in results) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
