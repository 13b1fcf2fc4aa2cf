"""What a run holds while it trains: read by the loop and its hooks, saved by checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel

from .runtime import Runtime


@dataclass
class Run:
    config: dict
    runtime: Runtime
    model: torch.nn.Module  # the network itself (``net`` is its DDP wrapper under torchrun)
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    class_names: list[str]
    palette: np.ndarray
    input_size: list[int]  # what the weights record and validation runs at
    amp: bool = False  # fp16 autocast (CUDA only)
    memory_format: torch.memory_format = torch.contiguous_format  # of the network's input batches
    ema: AveragedModel | None = None  # the weight average (train.ema_decay)
    teacher: Callable[[torch.Tensor], torch.Tensor] | None = None  # train.distill's (training/distill.py)
    iteration: int = 0  # steps taken
    loss: torch.Tensor | None = None  # of the last step
    images: int = 0  # in the last step's batch, on this rank
    pause: bool = False  # stop after this iteration, resumable
    summary: dict = field(default_factory=dict)  # the latest validation's

    @property
    def out(self) -> Path:
        return Path(self.config["train"]["out"])

    @property
    def deployed(self) -> torch.nn.Module:
        """What validation scores first and the weights file holds: the average when there is one."""
        return self.model if self.ema is None else self.ema.module

    @property
    def last(self) -> bool:
        return self.iteration == self.config["train"]["iters"]
