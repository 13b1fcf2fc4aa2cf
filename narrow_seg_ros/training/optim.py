"""Optimiser and learning-rate schedule from the config's ``optim`` and ``schedule`` sections."""

from __future__ import annotations

import bisect

import torch

from .config import milestones


def param_groups(model: torch.nn.Module, weight_decay: float, no_decay_bn_bias: bool) -> list[dict]:
    """Weight decay on conv weights only when ``no_decay_bn_bias`` (BN affine and biases are 1-D)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if no_decay_bn_bias and p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model, optim: dict) -> torch.optim.Optimizer:
    groups = param_groups(model, optim["weight_decay"], optim["no_decay_bn_bias"])
    if optim["name"] == "sgd":
        return torch.optim.SGD(groups, lr=optim["lr"], momentum=optim["momentum"])
    cls = torch.optim.Adam if optim["name"] == "adam" else torch.optim.AdamW
    return cls(groups, lr=optim["lr"], betas=tuple(optim["betas"]))


def lr_factor(config: dict):
    """Multiplier of the base lr at iteration ``it``: linear warm-up, then step or poly decay."""
    sched, iters = config["schedule"], config["train"]["iters"]
    steps, warmup = milestones(config), sched["warmup_iters"]

    def factor(it: int) -> float:
        scale = min(1.0, (it + 1) / warmup) if warmup else 1.0
        if sched["name"] == "step":
            return scale * sched["gamma"] ** bisect.bisect_right(steps, it)
        return scale * max(0.0, 1 - it / iters) ** sched["power"]

    return factor


def build_schedule(optimizer: torch.optim.Optimizer, config: dict) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))
