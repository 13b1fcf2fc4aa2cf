"""Segmentation metrics from a confusion matrix (Cityscapes convention: ignore label excluded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.labels import IGNORE_INDEX


class ConfusionMatrix:
    """Accumulates ``counts[gt, pred]`` over batches; pixels labelled ``ignore_index`` are skipped.

    A prediction of -1 is a class with no counterpart in the ground truth's class set (weights of
    another dataset): ``unmatched[gt]`` counts those pixels, wrong for their ground-truth class
    (a miss in its IoU) without being a false positive of any other.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.counts = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.unmatched = np.zeros(num_classes, dtype=np.int64)

    def update(self, pred, target) -> None:
        pred = torch.as_tensor(pred).reshape(-1).long()
        target = torch.as_tensor(target).reshape(-1).long()
        if pred.shape != target.shape:
            raise ValueError(f"prediction and target sizes differ: {pred.numel()} vs {target.numel()}")
        keep = target != self.ignore_index
        if not bool(((target[keep] >= 0) & (target[keep] < self.num_classes)).all()):
            raise ValueError(f"target has labels outside 0..{self.num_classes - 1} and {self.ignore_index}")
        n = self.num_classes
        pred, target = pred[keep], target[keep]
        other = pred < 0
        if bool(other.any()):
            self.unmatched += torch.bincount(target[other], minlength=n).cpu().numpy()
            pred, target = pred[~other], target[~other]
        pred = pred.clamp_(0, n - 1)
        self.counts += torch.bincount(target * n + pred, minlength=n * n).reshape(n, n).cpu().numpy()

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for classes absent from both ground truth and prediction."""
        tp = np.diag(self.counts).astype(np.float64)
        union = self.counts.sum(0) + self.counts.sum(1) + self.unmatched - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.counts.sum() + self.unmatched.sum()
        return float(np.diag(self.counts).sum() / total) if total else float("nan")

    def most_confused(self) -> list[tuple[int, float] | None]:
        """Per ground-truth class: the class its pixels are most often predicted as instead, and
        the share of its pixels that goes there (None when it has no pixels or no errors)."""
        result = []
        for c, row in enumerate(self.counts):
            errors = row.copy()
            errors[c] = 0
            j = int(errors.argmax())
            result.append((j, float(errors[j] / (row.sum() + self.unmatched[c]))) if errors[j] else None)
        return result

    def summary(self, class_names: list[str]) -> dict:
        iou = self.iou()
        return {
            "miou": self.miou(),
            "pixel_accuracy": self.pixel_accuracy(),
            "pixels": int(self.counts.sum() + self.unmatched.sum()),
            "per_class": {name: (None if np.isnan(v) else float(v)) for name, v in zip(class_names, iou, strict=True)},
            "mistaken_for": {
                name: None if top is None else {"class": class_names[top[0]], "share": top[1]}
                for name, top in zip(class_names, self.most_confused(), strict=True)
            },
        }

    def write_csv(self, path, class_names: list[str]) -> None:
        """Pixel counts, one row per ground-truth class, one column per predicted class (and one for
        predictions with no counterpart, when there are any)."""
        extra = self.unmatched.any()
        lines = [",".join(["ground_truth/predicted", *class_names] + (["(no counterpart)"] if extra else []))]
        for name, row, other in zip(class_names, self.counts, self.unmatched, strict=True):
            lines.append(",".join([name, *map(str, row)] + ([str(other)] if extra else [])))
        Path(path).write_text("\n".join(lines) + "\n")


def format_iou_table(summary: dict) -> str:
    """Per-class IoU table with mIoU and pixel accuracy, as printed by ``narrow-seg eval``."""
    width = max(len(n) for n in summary["per_class"]) + 2
    mistaken = summary.get("mistaken_for", {})
    lines = [f"{'class':<{width}}  IoU" + ("   most often predicted instead" if mistaken else "")]
    for name, value in summary["per_class"].items():
        line = f"{name:<{width}}{'  n/a' if value is None else f'{100 * value:5.1f}'}"
        if mistaken.get(name):
            share = 100 * mistaken[name]["share"]
            line += f"   {mistaken[name]['class']} ({share:.{0 if share >= 1 else 1}f} % of its pixels)"
        lines.append(line)
    lines.append("-" * (width + 5))
    lines.append(f"{'mIoU':<{width}}{100 * summary['miou']:5.1f}")
    lines.append(f"{'pixel acc':<{width}}{100 * summary['pixel_accuracy']:5.1f}")
    return "\n".join(lines)
