"""What happens around the training steps, as hooks on the run (MMEngine's hook pattern): the weight
average, the progress bar and log.csv, checkpoints, validation and the weights file.

The loop calls every hook's ``after_iter`` in list order once a step is taken (so the average has
seen the step before a checkpoint stores it or validation scores it), and ``after_run`` when the
run finishes or pauses.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from ..atomic import atomic_path
from ..weights import save_weights
from .checkpoint import WEIGHTS, run_weights, save_checkpoint
from .evaluate import evaluate
from .report import plot_curves, save_sample_grid
from .state import Run


class Hook:
    """Does nothing; subclasses override what they need."""

    def after_iter(self, run: Run) -> None:
        pass

    def after_run(self, run: Run, paused: bool) -> None:
        pass


def weight_average(model, decay: float) -> AveragedModel:
    """Exponential moving average of the weights and BN statistics (``train.ema_decay``), as
    timm's ModelEmaV3, through torch's own AveragedModel."""
    return AveragedModel(model, multi_avg_fn=_ema_update(decay), use_buffers=True)


class EmaHook(Hook):
    """Updates ``run.ema`` after every step. Under DDP every rank averages its own copy of the
    weights, identical on every rank after each step."""

    def after_iter(self, run: Run) -> None:
        run.ema.update_parameters(run.model)


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


class LoggerHook(Hook):
    """The tqdm bar and log.csv (rank 0): over each ``train.log_interval`` iterations, the mean
    loss (rank 0's batches), the lr at its end, and the images/s of all ranks together."""

    def __init__(self, run: Run):
        self.interval = run.config["train"]["log_interval"]
        total = run.config["train"]["iters"]
        self.bar = tqdm(
            total=total, initial=run.iteration, disable=not run.runtime.is_main, dynamic_ncols=True, desc="train"
        )
        self._start_window()

    def _start_window(self) -> None:
        self.losses, self.images, self.start = [], 0, time.perf_counter()

    def after_iter(self, run: Run) -> None:
        self.losses.append(run.loss.item())
        self.images += run.images * run.runtime.world
        self.bar.update(1)
        if run.runtime.is_main and (run.iteration % self.interval == 0 or run.last):
            row = {
                "iteration": run.iteration,
                "loss": round(float(np.mean(self.losses)), 5),
                "lr": run.optimizer.param_groups[0]["lr"],
                "images_per_s": round(self.images / (time.perf_counter() - self.start), 3),
            }
            append_csv(run.out / "log.csv", row)
            self.bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}", img_s=f"{row['images_per_s']:.1f}")
            self._start_window()

    def after_run(self, run: Run, paused: bool) -> None:
        self.bar.close()


class CheckpointHook(Hook):
    """checkpoint.pt every ``train.checkpoint_interval`` iterations, at the end, and on a pause."""

    def __init__(self, run: Run):
        self.interval = run.config["train"]["checkpoint_interval"]

    def after_iter(self, run: Run) -> None:
        if run.runtime.is_main and (run.iteration % self.interval == 0 or run.last or run.pause):
            save_checkpoint(run)


LAST_VALIDATION = "val_last.json"


class ValidationHook(Hook):
    """Every ``train.val_interval`` iterations and at the end (rank 0): the deployed network's mIoU
    on the validation split into val.csv (and the raw weights' beside an average's), its per-class
    IoU and most frequent confusions into val_last.json (what a model card reports), sample
    images, curves.png."""

    def __init__(self, run: Run, val_set):
        self.val_set = val_set
        self.interval = run.config["train"]["val_interval"]

    def after_iter(self, run: Run) -> None:
        if not run.runtime.is_main or not (run.iteration % self.interval == 0 or run.last):
            return
        run.summary = self.validate(run)
        raw = f" (raw weights {100 * run.summary['miou_raw']:.2f} %)" if run.ema is not None else ""
        tqdm.write(f"iteration {run.iteration}: val mIoU {100 * run.summary['miou']:.2f} %{raw}")
        plot_curves(run.out)

    def validate(self, run: Run) -> dict:
        result = self.score(run, run.deployed, self.sample_saver(run))
        row = {
            "iteration": run.iteration,
            "miou": round(result["miou"], 5),
            "pixel_accuracy": round(result["pixel_accuracy"], 5),
        }
        if run.ema is not None:  # the raw weights beside their average, measured in the same run
            result["miou_raw"] = self.score(run, run.model)["miou"]
            row["miou_raw"] = round(result["miou_raw"], 5)
        append_csv(run.out / "val.csv", row)
        with atomic_path(run.out / LAST_VALIDATION) as tmp:
            tmp.write_text(json.dumps({"iteration": run.iteration, **result}, indent=2) + "\n")
        return result

    def score(self, run: Run, network, on_prediction=None) -> dict:
        dcfg = run.config["data"]
        args = (len(run.class_names), dcfg["mean"], dcfg["std"], run.input_size, run.runtime.device)
        matrix = evaluate(network, self.val_set, *args, dcfg["val_max_images"], on_prediction=on_prediction)
        return matrix.summary(run.class_names)

    @staticmethod
    def sample_saver(run: Run):
        """``on_prediction`` that writes the first ``train.num_samples`` images with their label and prediction."""
        count, folder = run.config["train"]["num_samples"], run.out / "samples"

        def keep_sample(i, image, target, pred):
            if i < count:
                save_sample_grid(folder / f"iter_{run.iteration:06d}_{i}.png", image, target, pred, run.palette)

        return keep_sample


class WeightsHook(Hook):
    """weights.pt and the final curves when the run finishes (rank 0)."""

    def after_run(self, run: Run, paused: bool) -> None:
        if paused or not run.runtime.is_main:
            return
        save_weights(run_weights(run), run.out / WEIGHTS)
        plot_curves(run.out)
        print(f"weights written to {run.out / WEIGHTS}")


def append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
