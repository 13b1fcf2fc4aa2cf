"""Training configs: small YAML files under config/ plus command-line overrides (MMSeg-style)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import yaml

# Every key a config may set, with its default. Unknown keys are an error (typos fail fast).
DEFAULTS: dict = {
    "model": {"name": "ndnet45", "options": {}},
    "data": {
        # cityscapes (Cityscapes layout, also narrow-seg synth), camvid, or a dataset YAML file
        # (data/folder.py: image and mask folders with a class table)
        "dataset": "cityscapes",
        "root": "data/synth",
        "train_split": "train",
        "val_split": "val",
        # validate on frames of these sequences only (file name up to the first "_", e.g. CamVid's
        # 0006R0), and train on none of them: selection on streets the training never saw
        "val_sequences": None,
        "crop": [512, 1024],
        "base_size": None,  # [H, W] every sample is resized to before augmentation
        "scales": [0.75, 1.0, 1.25, 1.5, 1.75, 2.0],
        "flip": True,
        # None, or a mapping of PhotoMetricDistortion's arguments ({} for its defaults: brightness
        # 32, contrast and saturation [0.5, 1.5], hue 18 degrees)
        "photometric": None,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "num_workers": 2,
        # [H, W] the network input the weights record and validation uses (the deployed size);
        # None = base_size, else the training images' own size
        "input_size": None,
        "val_max_images": None,
        # DAFormer's rare-class sampling (training/sampling.py): this fraction of the samples is
        # drawn by class, P(c) ∝ exp((1 - f_c) / temperature), with the crop placed on that class
        "rare_class_sampling": {"fraction": 0.0, "temperature": 0.01, "min_pixels": 64},
    },
    "optim": {
        "name": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "betas": [0.9, 0.999],
        "weight_decay": 5.0e-4,
        "no_decay_bn_bias": True,
    },
    # milestones are fractions of train.iters when < 1, else absolute iterations.
    "schedule": {"name": "step", "milestones": [0.4375, 0.75], "gamma": 0.1, "power": 0.9, "warmup_iters": 0},
    "train": {
        "iters": 80000,
        "batch_size": 16,
        "aux_weight": 0.4,
        # None, or "log": ENet/ERFNet weights 1 / ln(c + p) from the training set's class frequencies
        "class_weights": None,
        "class_weight_c": 1.10,
        # None, or knowledge distillation from a frozen teacher (training/distill.py):
        # {teacher: a weights file of the dataset's classes, weight: 1.0, temperature: 1.0}
        "distill": None,
        # exponential moving average of the weights and BN statistics, as timm's ModelEmaV3:
        # null = off; e.g. 0.999. Validation scores both; the weights file gets the average
        "ema_decay": None,
        # a weights file (the deployment contract) whose state dict starts the run: fine-tuning
        "init_weights": None,
        "amp": True,
        "device": "auto",
        "seed": 0,
        "log_interval": 20,
        "val_interval": 2000,
        "checkpoint_interval": 1000,
        "num_samples": 4,
        "out": "runs/train",
    },
}


def _merge(base: dict, update: dict, path: str = "") -> dict:
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in base:
            raise ValueError(f"unknown config key {where!r}")
        if isinstance(base[key], dict) and key != "options":
            if not isinstance(value, dict):
                raise ValueError(f"config key {where!r} must be a mapping")
            _merge(base[key], value, where + ".")
        else:
            base[key] = value
    return base


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Defaults ← YAML file ← overrides (a nested dict, or {'a.b': value} dotted keys)."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"config file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a config is a YAML mapping")
        _merge(config, data)
    for dotted, value in (overrides or {}).items():
        nested: dict = {}
        cursor = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            cursor = cursor.setdefault(part, {})
        cursor[leaf] = value
        _merge(config, nested)
    validate(config)
    return config


def _check_photometric(value) -> None:
    if value is None:
        return
    known = {"brightness", "contrast", "saturation", "hue"}
    if not isinstance(value, dict) or set(value) - known:
        raise ValueError(f"data.photometric must be null or a mapping of {sorted(known)}, got {value!r}")
    for key in ("brightness", "hue"):
        if key in value and not (_is_number(value[key]) and 0 <= value[key] < math.inf):
            raise ValueError(f"data.photometric.{key} must be a number >= 0, got {value[key]!r}")
    for key in ("contrast", "saturation"):
        pair = value.get(key, [0.5, 1.5])
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(_is_number(v) for v in pair) and 0 <= pair[0] <= pair[1]
        ):
            raise ValueError(f"data.photometric.{key} must be [low, high] with 0 <= low <= high, got {pair!r}")


def _check_distill(value) -> None:
    if value is None:
        return
    if not (isinstance(value, dict) and isinstance(value.get("teacher"), str) and value["teacher"]):
        raise ValueError(f"train.distill must be null or a mapping with a teacher weights file, got {value!r}")
    unknown = set(value) - {"teacher", "weight", "temperature"}
    if unknown:
        raise ValueError(f"train.distill: unknown keys {sorted(unknown)} (known: teacher, weight, temperature)")
    value.setdefault("weight", 1.0)
    value.setdefault("temperature", 1.0)
    if not (_is_number(value["weight"]) and 0 <= value["weight"] < math.inf):
        raise ValueError(f"train.distill.weight must be a finite number >= 0, got {value['weight']!r}")
    if not (_is_number(value["temperature"]) and 0 < value["temperature"] < math.inf):
        raise ValueError(f"train.distill.temperature must be a finite number > 0, got {value['temperature']!r}")


def validate(config: dict) -> None:
    train, data, sched = config["train"], config["data"], config["schedule"]
    if train["iters"] < 1 or train["batch_size"] < 1:
        raise ValueError("train.iters and train.batch_size must be >= 1")
    if len(data["crop"]) != 2 or min(data["crop"]) < 1:
        raise ValueError(f"data.crop must be [H, W], got {data['crop']}")
    rare = data["rare_class_sampling"]
    if not 0.0 <= rare["fraction"] <= 1.0 or rare["temperature"] <= 0 or rare["min_pixels"] < 1:
        raise ValueError(
            f"data.rare_class_sampling needs 0 <= fraction <= 1, temperature > 0 and min_pixels >= 1, got {rare}"
        )
    held_out = data["val_sequences"]
    if held_out is not None and not (
        isinstance(held_out, list) and held_out and all(isinstance(v, str) and v for v in held_out)
    ):
        raise ValueError(f"data.val_sequences must be null or a list of sequence names, got {held_out!r}")
    _check_photometric(data["photometric"])
    if train["class_weights"] not in (None, "log"):
        raise ValueError(f"train.class_weights must be null or 'log', got {train['class_weights']!r}")
    _check_distill(train["distill"])
    # an interval of 0 would divide by zero at the first iteration; val_interval 0 means no validation
    for section, key, low in (
        ("train", "log_interval", 1),
        ("train", "checkpoint_interval", 1),
        ("train", "val_interval", 0),
        ("train", "num_samples", 0),
        ("data", "num_workers", 0),
    ):
        value = config[section][key]
        if not (_is_int(value) and value >= low):
            raise ValueError(f"{section}.{key} must be an integer >= {low}, got {value!r}")
    lr = config["optim"]["lr"]
    if not (_is_number(lr) and 0 <= lr < math.inf):  # 0 is allowed: it refreshes BN statistics only
        hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(lr, str) else ""
        raise ValueError(f"optim.lr must be a finite number >= 0, got {lr!r}{hint}")
    decay = train["ema_decay"]
    if not (decay is None or (_is_number(decay) and 0.0 <= decay < 1.0)):
        raise ValueError(f"train.ema_decay must be null or in [0, 1), got {decay!r}")
    if config["optim"]["name"] not in ("sgd", "adam", "adamw"):
        raise ValueError(f"optim.name must be sgd, adam or adamw, got {config['optim']['name']!r}")
    if sched["name"] not in ("step", "poly"):
        raise ValueError(f"schedule.name must be step or poly, got {sched['name']!r}")


def open_split(config: dict, role: str):
    """The run's ``train`` or ``val`` dataset: ``data.{role}_split`` with ``data.val_sequences``
    kept for validation and removed from training."""
    from ..data.folder import open_dataset

    dcfg = config["data"]
    held_out = dcfg["val_sequences"]
    if role == "train":
        return open_dataset(dcfg["dataset"], dcfg["root"], dcfg["train_split"], exclude_sequences=held_out)
    return open_dataset(dcfg["dataset"], dcfg["root"], dcfg["val_split"], sequences=held_out)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # YAML: true is not 1


def _is_int(value) -> bool:
    return _is_number(value) and isinstance(value, int)


def milestones(config: dict) -> list[int]:
    iters = config["train"]["iters"]
    return [int(m * iters) if m < 1 else int(m) for m in config["schedule"]["milestones"]]
