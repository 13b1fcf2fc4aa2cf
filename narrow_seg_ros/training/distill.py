"""The teacher of a distillation run (``train.distill``): a weights file, run frozen on the
student's training batches; its logits feed :class:`~.losses.Distillation`.

The teacher need not be real-time nor of the student's architecture: only the student ships. It
must predict the dataset's classes in the dataset's order, and it sees each batch normalised as it
was trained (its weights file records its own mean and std).
"""

from __future__ import annotations

import torch

from ..weights import load_weights


class Teacher:
    """``teacher(images)``: the teacher's logits at its own stride, without gradient, for a batch
    normalised with the student's ``mean``/``std``."""

    def __init__(self, path: str, class_names: list[str], mean, std, device: torch.device):
        weights = load_weights(path)
        if list(weights.class_names) != list(class_names):
            raise ValueError(
                f"train.distill.teacher {path} ({weights.label}) predicts {weights.class_names}, "
                f"not the dataset's classes in its order {list(class_names)}"
            )
        self.label = f"{path} ({weights.label})"
        self.model = weights.build_model().to(device)
        self.model.requires_grad_(False)
        # student-normalised x → teacher-normalised: (x·s_std + s_mean − t_mean) / t_std
        s_mean, s_std, t_mean, t_std = (
            torch.tensor(v, dtype=torch.float32, device=device).view(1, 3, 1, 1)
            for v in (mean, std, weights.mean, weights.std)
        )
        self.scale = s_std / t_std
        self.shift = (s_mean - t_mean) / t_std

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images * self.scale + self.shift, full_resolution=False)
