"""The training loop: iteration-based, DDP through torchrun, AMP on CUDA, exact resume.

Launch on one process (CPU or one GPU) with ``narrow-seg train``; on several GPUs or nodes with
``torchrun --nproc_per_node=K -m narrow_seg_ros.cli.main train ...`` (torchrun sets RANK,
WORLD_SIZE and LOCAL_RANK; we use torch.distributed, nothing home-made). Rank 0 logs, validates
and writes files; checkpoints are atomic and hold everything needed to continue exactly.
"""

from __future__ import annotations

import bisect
import csv
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.cityscapes import read_image
from ..data.folder import image_class_pixels, open_dataset
from ..data.transforms import TrainTransform
from ..losses import log_class_weights, lovasz_softmax, ohem_target, upsampled_cross_entropy
from ..models import build_model
from ..models.transfer import transfer_state
from ..weights import FORMAT as WEIGHTS_FORMAT
from ..weights import Weights, atomic_torch_save, load_weights, save_weights
from .config import milestones
from .evaluate import evaluate
from .report import plot_curves, save_sample_grid, truncate_csv
from .sampling import RareClassFocus, ResumableSampler, SeededSamples

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"


def _distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))) if world > 1 else (0, 1, 0)


def _init_from_weights(model: torch.nn.Module, name: str, path: str, class_names: list[str], verbose: bool) -> None:
    """Fine-tuning start: the network's weights from a weights file, by class name where the
    file's classes differ from the dataset's (models/transfer.py)."""
    weights = load_weights(path)
    if weights.model != name:
        raise ValueError(f"train.init_weights {path}: a {weights.model} cannot start a {name} run")
    try:
        report = transfer_state(model, weights.state_dict, weights.class_names, class_names)
    except ValueError as exc:
        raise ValueError(f"train.init_weights {path} ({weights.label}): {exc}") from exc
    if verbose:
        carried = ", ".join(f"{t}<-{s}" if t != s else t for t, s in report["carried"].items())
        print(f"initialised from {path}; classifier rows carried: {carried or 'none'}")
        if report["fresh"]:
            print(f"classes starting fresh (no counterpart in the weights): {', '.join(report['fresh'])}")
        if report["fresh_heads"]:
            print(f"heads starting fresh: {', '.join(report['fresh_heads'])}")


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device asks for CUDA but no CUDA device is available")
        torch.cuda.set_device(device)
    return device


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


class _StopRequest:
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


def train(config: dict, resume: bool = False, stop_at: int | None = None) -> dict:
    """Train per ``config`` (see training/config.py); returns the final validation summary.

    ``stop_at`` pauses after that iteration with a checkpoint (continue later with ``resume``),
    exactly as if the run had been interrupted there.
    """
    rank, world, local_rank = _distributed()
    tcfg, dcfg = config["train"], config["data"]
    device = _device(tcfg["device"], local_rank)
    cuda = device.type == "cuda"
    amp = bool(tcfg["amp"]) and cuda
    out = Path(tcfg["out"])
    is_main = rank == 0
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config, indent=2))
        if not resume:  # a fresh run's logs start empty (its columns may differ from an earlier run's)
            for log in ("log.csv", "val.csv"):
                (out / log).unlink(missing_ok=True)

    torch.manual_seed(tcfg["seed"])  # identical initial weights on every rank
    train_set = open_dataset(dcfg["dataset"], dcfg["root"], dcfg["train_split"])
    class_names, palette = train_set.class_names, np.asarray(train_set.palette, np.uint8)
    num_classes = len(class_names)
    model = build_model(config["model"]["name"], num_classes=num_classes, **config["model"]["options"])
    if tcfg["init_weights"] and not resume:
        _init_from_weights(model, config["model"]["name"], tcfg["init_weights"], class_names, is_main)
    model = model.to(device)
    channels_last = cuda or model.cpu_channels_last
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    net = DistributedDataParallel(model, device_ids=[device.index] if cuda else None) if world > 1 else model
    if world > 1 and is_main:
        print(f"distributed: {world} processes ({dist.get_backend()}), {tcfg['batch_size']} images each per iteration")
    optimizer = build_optimizer(model, config["optim"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    # the average sees every rank's identical weights after each step (DDP keeps them in sync)
    ema = None
    if tcfg["ema_decay"] is not None:
        ema = AveragedModel(model, multi_avg_fn=_ema_update(tcfg["ema_decay"]), use_buffers=True)
    deployed = model if ema is None else ema.module  # what validation scores and the weights file holds

    start = 0
    checkpoint_path = out / CHECKPOINT
    if resume:
        if not checkpoint_path.is_file():
            raise ValueError(f"--resume: no checkpoint at {checkpoint_path}")
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        if (ema is None) != ("ema" not in state):
            started = "with" if "ema" in state else "without"
            raise ValueError(f"--resume: {checkpoint_path} was written {started} train.ema_decay; resume it {started}")
        if ema is not None:
            ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["torch_rng"])
        start = int(state["iteration"])
        if is_main:
            for log in ("log.csv", "val.csv"):
                truncate_csv(out / log, start)
            print(f"resumed from {checkpoint_path} at iteration {start}")

    transform = TrainTransform(
        crop_size=tuple(dcfg["crop"]),
        scales=tuple(dcfg["scales"]),
        base_size=dcfg["base_size"],
        mean=dcfg["mean"],
        std=dcfg["std"],
        flip=dcfg["flip"],
    )
    rare = dcfg["rare_class_sampling"]
    uses_pixel_counts = rare["fraction"] > 0 or tcfg["class_weights"] == "log"
    class_pixels = None
    if uses_pixel_counts:  # rank 0 reads every label map once; the other ranks receive the counts
        received = [image_class_pixels(train_set, num_classes) if rank == 0 else None]
        if world > 1:
            dist.broadcast_object_list(received, src=0)
        class_pixels = received[0]
    focus = RareClassFocus(class_pixels, **rare) if rare["fraction"] > 0 else None
    if focus is not None and is_main:
        print(
            f"rare-class sampling ({100 * focus.fraction:.0f} % of samples):",
            " ".join(f"{n}={p:.3f}" for n, p in zip(class_names, focus.probabilities)),
        )
    sampler = ResumableSampler(len(train_set), tcfg["batch_size"], tcfg["seed"], rank, world, start, focus)
    loader = DataLoader(
        SeededSamples(train_set, transform),
        batch_size=tcfg["batch_size"],
        sampler=sampler,
        num_workers=dcfg["num_workers"],
        pin_memory=cuda,
        drop_last=True,
        persistent_workers=dcfg["num_workers"] > 0,
    )
    val_set = open_dataset(dcfg["dataset"], dcfg["root"], dcfg["val_split"]) if tcfg["val_interval"] else None
    class_weight = None
    if tcfg["class_weights"] == "log":
        class_weight = log_class_weights(class_pixels.sum(axis=0), tcfg["class_weight_c"]).to(device)
        if is_main:
            print("class weights:", " ".join(f"{n}={w:.2f}" for n, w in zip(class_names, class_weight.tolist())))
    elif tcfg["class_weights"] is not None:
        raise ValueError(f"train.class_weights must be null or 'log', got {tcfg['class_weights']!r}")
    input_size = training_input_size(config, train_set)

    def save_checkpoint(iteration: int) -> None:
        atomic_torch_save(
            {
                "iteration": iteration,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "config": config,
                "input_size": input_size,
                "class_names": class_names,
                "palette": palette.tolist(),
                **({"ema": ema.state_dict()} if ema is not None else {}),
            },
            checkpoint_path,
        )

    summary: dict = {}

    def validate(iteration: int) -> dict:
        samples_dir = out / "samples"

        def keep_sample(i, image, target, pred):
            if i < tcfg["num_samples"]:
                save_sample_grid(samples_dir / f"iter_{iteration:06d}_{i}.png", image, target, pred, palette)

        def score(network, on_prediction=None) -> dict:
            args = (num_classes, dcfg["mean"], dcfg["std"], input_size, device)
            matrix = evaluate(network, val_set, *args, dcfg["val_max_images"], on_prediction=on_prediction)
            return matrix.summary(class_names)

        result = score(deployed, keep_sample)
        row = {
            "iteration": iteration,
            "miou": round(result["miou"], 5),
            "pixel_accuracy": round(result["pixel_accuracy"], 5),
        }
        if ema is not None:  # the raw weights beside their average, measured in the same run
            result["miou_raw"] = score(model)["miou"]
            row["miou_raw"] = round(result["miou_raw"], 5)
        _append_csv(out / "val.csv", row)
        return result

    align = model.align_corners
    ohem = tcfg["ohem"]
    if ohem["thresh"] is not None and is_main:
        kept = ohem["min_kept"] * tcfg["batch_size"]
        print(f"OHEM: pixels with p(label) < {ohem['thresh']}, at least the {kept} hardest of each batch (per rank)")

    lovasz = tcfg["lovasz"]
    if lovasz["weight"] > 0 and is_main:
        print(f"loss: cross-entropy + {lovasz['weight']} × Lovász-softmax (pixel stride {lovasz['stride']})")

    def pixel_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mined = targets
        if ohem["thresh"] is not None:  # each head mines its own hard pixels, as in MMSeg / HRNet
            mined = ohem_target(logits, targets, align, ohem["thresh"], ohem["min_kept"])
        loss = upsampled_cross_entropy(logits, mined, align, weight=class_weight)
        if lovasz["weight"] > 0:  # on all labelled pixels: OHEM selects for the cross-entropy only
            loss = loss + lovasz["weight"] * lovasz_softmax(logits, targets, align, lovasz["stride"])
        return loss

    has_aux = model.aux_head is not None
    data_iter = iter(loader)
    bar = tqdm(total=tcfg["iters"], initial=start, disable=not is_main, dynamic_ncols=True, desc="train")
    window_loss, window_start, window_images = [], time.perf_counter(), 0
    net.train()
    with _StopRequest() as stop:
        it = start
        while it < tcfg["iters"]:
            images, targets = next(data_iter)
            images = images.to(device, non_blocking=True)
            images = images.contiguous(memory_format=memory_format)
            targets = targets.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                if has_aux:
                    low, aux = net(images, return_aux=True, full_resolution=False)
                else:
                    low, aux = net(images, full_resolution=False), None
            loss = pixel_loss(low.float(), targets)
            if aux is not None:
                loss = loss + tcfg["aux_weight"] * pixel_loss(aux.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            it += 1
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at iteration {it}")
            window_loss.append(loss.item())
            window_images += images.shape[0] * world
            bar.update(1)
            if is_main and (it % tcfg["log_interval"] == 0 or it == tcfg["iters"]):
                seconds = time.perf_counter() - window_start
                row = {
                    "iteration": it,
                    "loss": round(float(np.mean(window_loss)), 5),
                    "lr": optimizer.param_groups[0]["lr"],
                    "images_per_s": round(window_images / seconds, 3),
                }
                _append_csv(out / "log.csv", row)
                bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}", img_s=f"{row['images_per_s']:.1f}")
                window_loss, window_start, window_images = [], time.perf_counter(), 0
            last = it == tcfg["iters"]
            pause = stop.requested or (stop_at is not None and it >= stop_at and not last)
            if is_main and (it % tcfg["checkpoint_interval"] == 0 or last or pause):
                save_checkpoint(it)
            if val_set is not None and is_main and (it % tcfg["val_interval"] == 0 or last):
                summary = validate(it)
                raw = f" (raw weights {100 * summary['miou_raw']:.2f} %)" if ema is not None else ""
                bar.write(f"iteration {it}: val mIoU {100 * summary['miou']:.2f} %{raw}")
                plot_curves(out)
            if world > 1:
                dist.barrier()
            if pause:
                bar.close()
                print(f"stopped at iteration {it}; checkpoint written, continue with --resume")
                return summary
    bar.close()
    if is_main:
        metadata = {"iterations": tcfg["iters"], "config": config, "weights": "raw" if ema is None else "average"}
        if summary:
            metadata["val_miou"] = summary["miou"]
        contract = weights_contract(config, input_size, class_names, palette.tolist(), deployed.state_dict(), metadata)
        save_weights(contract, out / WEIGHTS)
        plot_curves(out)
        print(f"weights written to {out / WEIGHTS}")
    if world > 1:
        dist.destroy_process_group()
    return summary


def training_input_size(config: dict, train_set=None) -> list[int]:
    """The input size a run's weights record and validates at: ``data.input_size``, else
    ``data.base_size``, else its first training image's."""
    dcfg = config["data"]
    if dcfg.get("input_size") or dcfg["base_size"]:
        return list(dcfg.get("input_size") or dcfg["base_size"])
    train_set = train_set or open_dataset(dcfg["dataset"], dcfg["root"], dcfg["train_split"])
    return list(read_image(train_set.files[0][0]).shape[:2])


def weights_contract(
    config: dict, input_size: list[int], class_names: list[str], palette: list, state_dict: dict, metadata: dict
) -> Weights:
    """The deployment contract for a run's network (the training-only aux head left out)."""
    return Weights(
        model=config["model"]["name"],
        model_options={k: v for k, v in config["model"]["options"].items() if k != "aux_head"},
        class_names=list(class_names),
        palette=[list(map(int, c)) for c in palette],
        mean=list(config["data"]["mean"]),
        std=list(config["data"]["std"]),
        input_size=input_size,
        state_dict={k: v for k, v in state_dict.items() if not k.startswith("aux_head.")},
        metadata=metadata,
    )


def weights_from_checkpoint(path, raw: bool = False) -> Weights:
    """A weights file from a run's checkpoint (paused or finished): the weight average when the run
    keeps one (as the run's own weights file), or the raw weights with ``raw``."""
    if not Path(path).is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not a torch file
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc
    if isinstance(state, dict) and state.get("format") == WEIGHTS_FORMAT:
        raise ValueError(f"{path} is a weights file already, not a training checkpoint")
    if not isinstance(state, dict) or not {"config", "model", "iteration"} <= state.keys():
        raise ValueError(f"{path} is not a training checkpoint (no config, model and iteration)")
    config = state["config"]
    if raw or "ema" not in state:
        kind, state_dict = "raw", state["model"]
    else:  # AveragedModel's state: the model's under "module.", plus its step counter
        kind = "average"
        state_dict = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    metadata = {"iterations": state["iteration"], "config": config, "weights": kind}
    input_size = state.get("input_size") or training_input_size(config)  # older checkpoints: from the data
    return weights_contract(config, list(input_size), state["class_names"], state["palette"], state_dict, metadata)


def _ema_update(decay: float):
    """torch's EMA update for the float tensors; integer buffers (BN's num_batches_tracked) are
    copied, as timm's ModelEmaV3 does: averaged, they would truncate and stay at 1."""
    lerp = get_ema_multi_avg_fn(decay)

    def update(averaged: list, current: list, n_averaged) -> None:
        if averaged[0].is_floating_point():  # AveragedModel passes one dtype per call
            lerp(averaged, current, n_averaged)
        else:
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)

    return update


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
