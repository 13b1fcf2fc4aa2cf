"""Training reports: loss / mIoU curves (PNG) and sample prediction grids."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from ..palette import colorize


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as fh:
        return list(csv.DictReader(fh))


def truncate_csv(path: Path, last_iteration: int) -> None:
    """Drop rows logged after ``last_iteration`` (work lost by a kill, redone after --resume)."""
    rows = [r for r in _read_csv(path) if int(r["iteration"]) <= last_iteration]
    if not path.exists():
        return
    with path.open("w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def plot_curves(out: Path) -> Path | None:
    """out/curves.png: training loss and validation mIoU against iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log, val = _read_csv(out / "log.csv"), _read_csv(out / "val.csv")
    if not log:
        return None
    fig, (ax_loss, ax_miou) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot([int(r["iteration"]) for r in log], [float(r["loss"]) for r in log])
    ax_loss.set(xlabel="iteration", ylabel="loss", title="training loss", yscale="log")
    lines = 0
    for column, label in (("miou", "weights file"), ("miou_raw", "raw weights (EMA run)")):
        rows = [r for r in val if r.get(column) not in (None, "")]
        if rows:
            ax_miou.plot([int(r["iteration"]) for r in rows], [100 * float(r[column]) for r in rows], "o-", label=label)
            lines += 1
    if lines > 1:  # an EMA run: say which curve is which
        ax_miou.legend()
    ax_miou.set(xlabel="iteration", ylabel="mIoU %", title="validation mIoU")
    fig.tight_layout()
    path = out / "curves.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def save_sample_grid(path: Path, image_rgb, target, pred, palette) -> None:
    """image | ground truth | prediction, side by side."""
    path.parent.mkdir(parents=True, exist_ok=True)
    row = np.concatenate(
        [image_rgb, colorize(np.asarray(target, np.uint8), palette), colorize(np.asarray(pred, np.uint8), palette)],
        axis=1,
    )
    cv2.imwrite(str(path), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
