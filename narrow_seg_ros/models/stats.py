"""Model statistics: parameter counts and multiply-accumulates (torch.utils.flop_counter)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .registry import build_model


def model_stats(name: str, size: tuple[int, int] = (1024, 2048), num_classes: int = 19, **options) -> dict:
    """Parameters and GMACs of one inference pass at ``size`` (H, W), counted on the meta device.

    flop_counter counts a multiply-accumulate as 2 FLOPs; GMAC = FLOP / 2. BatchNorm, ReLU,
    pooling and the bilinear upsample are not counted (the papers' convention).
    """
    with torch.device("meta"):
        model = build_model(name, num_classes=num_classes, **options).eval()
        x = torch.empty(1, 3, *size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return {
        "model": name,
        "options": dict(options),
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_backbone": sum(p.numel() for p in model.backbone_parameters()),
        "gmacs": round(counter.get_total_flops() / 2e9, 4),
        "size": f"{size[0]}x{size[1]}",
        "output_stride": model.output_stride,
        "align_corners": model.align_corners,
        "num_classes": num_classes,
    }
