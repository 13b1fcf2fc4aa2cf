"""The files a run reads and writes besides its logs: the starting weights of a fine-tune, the
checkpoint (atomic; everything needed to continue exactly) and the weights file (the deployment
contract, narrow_seg_ros/weights.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.pairs import read_image
from ..models.transfer import transfer_state
from ..weights import FORMAT as WEIGHTS_FORMAT
from ..weights import Weights, atomic_torch_save, load_weights
from .config import open_split
from .report import truncate_csv
from .state import Run

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"


def init_from_weights(model: torch.nn.Module, name: str, path: str, class_names: list[str], verbose: bool) -> None:
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


def save_checkpoint(run: Run) -> None:
    state = {
        "iteration": run.iteration,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "config": run.config,
        "input_size": run.input_size,
        "class_names": run.class_names,
        "palette": run.palette.tolist(),
    }
    if run.ema is not None:
        state["ema"] = run.ema.state_dict()
    atomic_torch_save(state, run.out / CHECKPOINT)


def restore_checkpoint(run: Run) -> None:
    """``--resume``: the run's state as its checkpoint left it; logs after that iteration dropped."""
    path = run.out / CHECKPOINT
    if not path.is_file():
        raise ValueError(f"--resume: no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    if (run.ema is None) != ("ema" not in state):
        started = "with" if "ema" in state else "without"
        raise ValueError(f"--resume: {path} was written {started} train.ema_decay; resume it {started}")
    if run.ema is not None:
        run.ema.load_state_dict(state["ema"])
    torch.set_rng_state(state["torch_rng"])
    run.iteration = int(state["iteration"])
    if run.runtime.is_main:
        for log in ("log.csv", "val.csv"):
            truncate_csv(run.out / log, run.iteration)
        print(f"resumed from {path} at iteration {run.iteration}")


def training_input_size(config: dict, train_set=None) -> list[int]:
    """The input size a run's weights record and validates at: ``data.input_size``, else
    ``data.base_size``, else its first training image's."""
    dcfg = config["data"]
    if dcfg.get("input_size") or dcfg["base_size"]:
        return list(dcfg.get("input_size") or dcfg["base_size"])
    train_set = train_set or open_split(config, "train")
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


def run_weights(run: Run) -> Weights:
    """A finished run's weights file: the deployed network (the average when the run keeps one)."""
    metadata = {"iterations": run.iteration, "config": run.config, "weights": "raw" if run.ema is None else "average"}
    if run.summary:
        metadata["val_miou"] = run.summary["miou"]
    state_dict = run.deployed.state_dict()
    return weights_contract(run.config, run.input_size, run.class_names, run.palette.tolist(), state_dict, metadata)


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
    if not isinstance(state, dict) or not {"config", "model", "iteration", "input_size"} <= state.keys():
        raise ValueError(f"{path} is not a training checkpoint (no config, model, iteration and input_size)")
    config = state["config"]
    if raw or "ema" not in state:
        kind, state_dict = "raw", state["model"]
    else:  # AveragedModel's state: the model's under "module.", plus its step counter
        kind = "average"
        state_dict = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    metadata = {"iterations": state["iteration"], "config": config, "weights": kind}
    return weights_contract(
        config, list(state["input_size"]), state["class_names"], state["palette"], state_dict, metadata
    )
