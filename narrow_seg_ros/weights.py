"""The weights file: the one contract between training and deployment.

A weights file is a ``torch.save``-d dict of plain types and tensors, so it loads with
``torch.load(path, weights_only=True)`` (no pickle code execution). It records everything an
engine needs to run the network without the training config: model name and options, class
names, palette, input normalisation, training input size, the state dict, and free-form training
metadata. Writes are atomic (temporary file + ``os.replace``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .atomic import atomic_path
from .inference.onnx_metadata import contract_problem
from .models import build_model, model_label

FORMAT = "narrow_seg_ros.weights/1"


@dataclass
class Weights:
    model: str
    class_names: list[str]
    palette: list[list[int]]  # RGB per class id
    mean: list[float]  # RGB, applied to pixel / 255
    std: list[float]
    input_size: list[int]  # [height, width] the network was trained at
    state_dict: dict[str, torch.Tensor]
    model_options: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def label(self) -> str:
        """The model name with its options, e.g. ``ndnet45 head=fcn8``."""
        return model_label(self.model, self.model_options)

    def build_model(self) -> torch.nn.Module:
        """The network with these weights loaded, in eval mode; ValueError if the state dict is not
        this network's (another architecture's, other options, tensors of other shapes)."""
        model = build_model(self.model, num_classes=self.num_classes, **self.model_options)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:  # missing / unexpected keys, size mismatches
            raise ValueError(f"the state dict does not fit the {self.label} network: {_one_line(exc, False)}") from exc
        return model.eval()

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "model": self.model,
            "model_options": dict(self.model_options),
            "class_names": list(self.class_names),
            "palette": [list(map(int, c)) for c in self.palette],
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "input_size": [int(v) for v in self.input_size],
            "metadata": dict(self.metadata),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict.items()},
        }


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` written atomically (narrow_seg_ros/atomic.py)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_weights(weights: Weights, path: str | os.PathLike) -> None:
    atomic_torch_save(weights.to_dict(), path)


def _one_line(exc: BaseException, with_type: bool = True, limit: int = 300) -> str:
    """An exception as one line of plain text: torch's run over several lines, with terminal colours."""
    text = f"{type(exc).__name__}: {exc}" if with_type else str(exc)
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", text).split())
    return text if len(text) <= limit else f"{text[:limit]}..."


def _field_problem(data: dict) -> str | None:
    """What is wrong with the fields of a loaded weights dict, or None: the contract's fields as an
    exported .onnx's metadata has them (one check for both), and the state dict."""
    problem = contract_problem(data)
    if problem is not None:
        return problem
    state = data["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        return "state_dict is not a mapping of parameter names to tensors"
    return None


def load_weights(path: str | os.PathLike) -> Weights:
    """Load and validate a weights file; raises ValueError with a specific message if it is not one.

    ``torch.load(weights_only=True)`` raises many types for a damaged file (RuntimeError, KeyError,
    UnicodeDecodeError, UnpicklingError, IndexError, ...; ``narrow-seg fuzz weights``): each becomes
    ValueError naming the file and the error. The fields are checked for the types an engine uses."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not a torch file
        raise ValueError(
            f"cannot read weights file {path} (damaged, truncated or not a torch.save file): {_one_line(exc)}"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a narrow_seg_ros weights file (expected format {FORMAT!r})")
    fields = ("model", "class_names", "palette", "mean", "std", "input_size", "state_dict")
    missing = [k for k in fields if k not in data]
    if missing:
        raise ValueError(f"weights file {path} lacks {', '.join(missing)}")
    problem = _field_problem(data)
    if problem is not None:
        raise ValueError(f"weights file {path}: {problem}")
    return Weights(
        **{k: data[k] for k in fields}, model_options=data.get("model_options", {}), metadata=data.get("metadata", {})
    )


def random_weights(model: str, input_size, seed: int = 0, **options) -> Weights:
    """A randomly initialised network in the contract, with the Cityscapes classes and NDNet's
    normalisation: for speed benchmarks and tests, where what is measured is not accuracy."""
    from .data.labels import CLASS_NAMES, PALETTE

    torch.manual_seed(seed)
    net = build_model(model, num_classes=len(CLASS_NAMES), **options)
    return Weights(
        model=model,
        model_options=options,
        class_names=list(CLASS_NAMES),
        palette=PALETTE.tolist(),
        mean=[0.5] * 3,
        std=[0.5] * 3,
        input_size=[int(v) for v in input_size],
        state_dict=net.state_dict(),
    )
