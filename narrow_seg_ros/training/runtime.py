"""Where a run executes (its rank among torchrun's processes, its device) and how it is stopped.

One process (CPU or one GPU) runs with ``narrow-seg train``; several GPUs or nodes with
``torchrun --nproc_per_node=K -m narrow_seg_ros.cli.main train ...`` (torchrun sets RANK,
WORLD_SIZE and LOCAL_RANK; torch.distributed does the rest, nothing home-made).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..devices import CudaUnavailable, resolve_device


@dataclass(frozen=True)
class Runtime:
    rank: int
    world: int
    device: torch.device

    @classmethod
    def start(cls, device_name: str) -> Runtime:
        """Joins torchrun's process group when there is one, then picks the device."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        rank, local_rank = (dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))) if world > 1 else (0, 0)
        return cls(rank, world, _device(device_name, local_rank))

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes the files."""
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def backend(self) -> str | None:
        return dist.get_backend() if self.world > 1 else None

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The network the steps run: DDP keeps every rank's weights identical after each step."""
        if self.world == 1:
            return model
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.cuda else None)

    def from_main(self, make):
        """``make()`` run on rank 0 only, its result sent to every rank."""
        received = [make() if self.is_main else None]
        if self.world > 1:
            dist.broadcast_object_list(received, src=0)
        return received[0]

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


def _device(name: str, local_rank: int) -> torch.device:
    """``auto``: this process's GPU under torchrun (LOCAL_RANK), else the CPU."""
    try:
        device = torch.device(resolve_device(name, auto_cuda=f"cuda:{local_rank}"))
    except CudaUnavailable:
        raise ValueError("train.device asks for CUDA but no CUDA device is available") from None
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


class StopRequest:
    """SIGINT/SIGTERM finish the current iteration, write a checkpoint, then stop."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
