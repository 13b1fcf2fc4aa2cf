"""The training loop: iteration-based, DDP through torchrun (training/runtime.py), AMP on CUDA,
exact resume.

:func:`train` builds a :class:`~.state.Run` from the config, the data stream and the loss
(training/losses.py), then takes steps; what happens between steps (weight average, logs,
checkpoints, validation, the weights file) is a list of hooks (training/hooks.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.folder import image_class_pixels
from ..data.transforms import PhotoMetricDistortion, TrainTransform
from ..models import build_model
from .checkpoint import init_from_weights, restore_checkpoint, training_input_size, weights_from_checkpoint
from .config import open_split
from .distill import Teacher
from .hooks import (
    LAST_VALIDATION,
    CheckpointHook,
    EmaHook,
    Hook,
    LoggerHook,
    ValidationHook,
    WeightsHook,
    weight_average,
)
from .losses import SegmentationLoss, build_loss, log_class_weights
from .optim import build_optimizer, build_schedule
from .runtime import Runtime, StopRequest
from .sampling import RareClassFocus, ResumableSampler, SeededSamples
from .state import Run

# entry points used elsewhere (cli/extract_weights.py, cli/train.py)
__all__ = ["train", "training_input_size", "weights_from_checkpoint"]


def train(config: dict, resume: bool = False, stop_at: int | None = None) -> dict:
    """Train per ``config`` (see training/config.py); returns the final validation summary.

    ``stop_at`` pauses after that iteration with a checkpoint (continue later with ``resume``),
    exactly as if the run had been interrupted there.
    """
    runtime = Runtime.start(config["train"]["device"])
    _prepare_output(config, runtime, resume)
    torch.manual_seed(config["train"]["seed"])  # identical initial weights on every rank
    train_set = open_split(config, "train")
    run = _build_run(config, runtime, train_set, resume)
    if resume:
        restore_checkpoint(run)
    class_pixels = _class_pixels(config, train_set, runtime)
    loader = _loader(run, train_set, class_pixels)
    loss = _loss(run, class_pixels)
    hooks = _hooks(run)
    paused = _iterate(run, loader, loss, hooks, stop_at)
    for hook in hooks:
        hook.after_run(run, paused)
    if paused:
        print(f"stopped at iteration {run.iteration}; checkpoint written, continue with --resume")
    else:
        runtime.close()
    return run.summary


def _prepare_output(config: dict, runtime: Runtime, resume: bool) -> None:
    if not runtime.is_main:
        return
    out = Path(config["train"]["out"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    if not resume:  # a fresh run's logs start empty (its columns may differ from an earlier run's)
        for log in ("log.csv", "val.csv", LAST_VALIDATION):
            (out / log).unlink(missing_ok=True)


def _build_run(config: dict, runtime: Runtime, train_set, resume: bool) -> Run:
    """The network (from ``train.init_weights`` on a fresh fine-tune), its optimiser, schedule and
    weight average."""
    tcfg, name, class_names = config["train"], config["model"]["name"], train_set.class_names
    model = build_model(name, num_classes=len(class_names), **config["model"]["options"])
    if tcfg["init_weights"] and not resume:
        init_from_weights(model, name, tcfg["init_weights"], class_names, runtime.is_main)
    memory_format = torch.channels_last if runtime.cuda or model.cpu_channels_last else torch.contiguous_format
    model = model.to(runtime.device).to(memory_format=memory_format)
    net = runtime.wrap(model)
    if runtime.world > 1 and runtime.is_main:
        print(
            f"distributed: {runtime.world} processes ({runtime.backend}), {tcfg['batch_size']} images each per iteration"
        )
    optimizer = build_optimizer(model, config["optim"])
    amp = bool(tcfg["amp"]) and runtime.cuda
    return Run(
        config=config,
        runtime=runtime,
        model=model,
        net=net,
        optimizer=optimizer,
        scheduler=build_schedule(optimizer, config),
        scaler=torch.amp.GradScaler("cuda", enabled=amp),
        class_names=class_names,
        palette=np.asarray(train_set.palette, np.uint8),
        input_size=training_input_size(config, train_set),
        amp=amp,
        memory_format=memory_format,
        ema=None if tcfg["ema_decay"] is None else weight_average(model, tcfg["ema_decay"]),
        teacher=_teacher(config, class_names, runtime),
    )


def _teacher(config: dict, class_names: list[str], runtime: Runtime) -> Teacher | None:
    distill, data = config["train"]["distill"], config["data"]
    if distill is None:
        return None
    teacher = Teacher(distill["teacher"], class_names, data["mean"], data["std"], runtime.device)
    if runtime.is_main:
        print(f"distilling from {teacher.label}: weight {distill['weight']}, temperature {distill['temperature']}")
    return teacher


def _class_pixels(config: dict, train_set, runtime: Runtime) -> np.ndarray | None:
    """Pixels of each class in each training image, when rare-class sampling or class weights need
    them: rank 0 reads every label map once; the other ranks receive the counts."""
    if config["data"]["rare_class_sampling"]["fraction"] == 0 and config["train"]["class_weights"] != "log":
        return None
    return runtime.from_main(lambda: image_class_pixels(train_set, len(train_set.class_names)))


def _loader(run: Run, train_set, class_pixels) -> DataLoader:
    """The training stream from the run's iteration on (training/sampling.py: exact on resume)."""
    dcfg, tcfg, runtime = run.config["data"], run.config["train"], run.runtime
    rare = dcfg["rare_class_sampling"]
    focus = RareClassFocus(class_pixels, **rare) if rare["fraction"] > 0 else None
    if focus is not None and runtime.is_main:
        print(
            f"rare-class sampling ({100 * focus.fraction:.0f} % of samples):",
            " ".join(f"{n}={p:.3f}" for n, p in zip(run.class_names, focus.probabilities)),
        )
    batch = tcfg["batch_size"]
    sampler = ResumableSampler(len(train_set), batch, tcfg["seed"], runtime.rank, runtime.world, run.iteration, focus)
    transform = TrainTransform(
        crop_size=tuple(dcfg["crop"]),
        scales=tuple(dcfg["scales"]),
        base_size=dcfg["base_size"],
        mean=dcfg["mean"],
        std=dcfg["std"],
        flip=dcfg["flip"],
        photometric=PhotoMetricDistortion(**dcfg["photometric"]) if dcfg["photometric"] is not None else None,
    )
    return DataLoader(
        SeededSamples(train_set, transform),
        batch_size=batch,
        sampler=sampler,
        num_workers=dcfg["num_workers"],
        pin_memory=runtime.cuda,
        drop_last=True,
        persistent_workers=dcfg["num_workers"] > 0,
    )


def _loss(run: Run, class_pixels) -> SegmentationLoss:
    """The configured loss; ``train.class_weights: log`` weighs classes by the training set's pixel counts."""
    tcfg, class_weight = run.config["train"], None
    if tcfg["class_weights"] == "log":
        class_weight = log_class_weights(class_pixels.sum(axis=0), tcfg["class_weight_c"]).to(run.runtime.device)
        if run.runtime.is_main:
            print("class weights:", " ".join(f"{n}={w:.2f}" for n, w in zip(run.class_names, class_weight.tolist())))
    return build_loss(tcfg, run.model.align_corners, run.model.aux_head is not None, class_weight)


def _hooks(run: Run) -> list[Hook]:
    """In the order they run after each step (see training/hooks.py)."""
    hooks: list[Hook] = [EmaHook()] if run.ema is not None else []
    hooks += [LoggerHook(run), CheckpointHook(run)]
    if run.config["train"]["val_interval"]:
        hooks.append(ValidationHook(run, open_split(run.config, "val")))
    return [*hooks, WeightsHook()]


def _iterate(run: Run, loader: DataLoader, loss_fn: SegmentationLoss, hooks: list[Hook], stop_at: int | None) -> bool:
    """Steps until ``train.iters`` (False) or a pause (True): ``stop_at`` or SIGINT/SIGTERM."""
    iters, batches = run.config["train"]["iters"], iter(loader)
    with StopRequest() as stop:
        while run.iteration < iters:
            _step(run, next(batches), loss_fn)
            run.pause = stop.requested or (stop_at is not None and run.iteration >= stop_at and not run.last)
            for hook in hooks:
                hook.after_iter(run)
            run.runtime.barrier()
            if run.pause:
                return True
    return False


def _step(run: Run, batch, loss_fn: SegmentationLoss) -> None:
    images, targets = batch
    device = run.runtime.device
    images = images.to(device, non_blocking=True).contiguous(memory_format=run.memory_format)
    targets = targets.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.float16, enabled=run.amp):
        if run.model.aux_head is not None:
            decode, aux = run.net(images, return_aux=True, full_resolution=False)
            outputs = {"decode": decode, "aux": aux}
        else:
            outputs = {"decode": run.net(images, full_resolution=False)}
        if run.teacher is not None:
            outputs["teacher"] = run.teacher(images)
    loss = loss_fn(outputs, targets)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    run.iteration += 1
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss became {loss.item()} at iteration {run.iteration}")
    run.loss, run.images = loss, images.shape[0]
