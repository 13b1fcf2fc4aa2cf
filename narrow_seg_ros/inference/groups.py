"""Label groups: a model's classes mapped to coarser groups for a consumer (a planner's drivable /
obstacle, Autoware's classes), from a YAML file::

    groups:
      - {name: drivable, classes: [Road, Pavement]}
      - {name: obstacle, classes: [Car, Pedestrian, Bicyclist, Pole, Fence], color: [220, 20, 60]}

Group ids follow the file's order; a class in no group becomes unlabeled (``rules.UNLABELED``).
Class names match the weights' case-insensitively; an unknown or repeated class is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .rules import UNLABELED


@dataclass(frozen=True)
class LabelGroups:
    names: list[str]
    palette: np.ndarray  # (groups, 3) uint8 RGB
    lookup: np.ndarray  # (256,) uint8: class id → group id, UNLABELED elsewhere

    def apply(self, mask: np.ndarray) -> np.ndarray:
        """A class-id mask → a group-id mask (same shape, uint8)."""
        return self.lookup[mask]


def load_groups(path: str | Path, class_names: list[str], palette) -> LabelGroups:
    """Read a groups YAML for a model with ``class_names``; ValueError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"label groups file not found: {path}")
    data = yaml.safe_load(path.read_text())
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list) or not groups or not all(isinstance(g, dict) and "name" in g for g in groups):
        raise ValueError(f"{path}: expected 'groups:', a list of {{name: ..., classes: [...]}}")
    index = {name.lower(): i for i, name in enumerate(class_names)}
    lookup = np.full(256, UNLABELED, np.uint8)
    colors = []
    for group_id, group in enumerate(groups):
        members = group.get("classes") or []
        unknown = [c for c in members if str(c).lower() not in index]
        if unknown:
            raise ValueError(f"{path}: group {group['name']!r} names classes the model lacks: {unknown}; "
                             f"the model's classes: {', '.join(class_names)}")  # fmt: skip
        ids = [index[str(c).lower()] for c in members]
        taken = [class_names[i] for i in ids if lookup[i] != UNLABELED]
        if taken:
            raise ValueError(f"{path}: classes {taken} are in more than one group")
        lookup[ids] = group_id
        colors.append(group.get("color") or (list(palette[ids[0]]) if ids else [0, 0, 0]))
    return LabelGroups([str(g["name"]) for g in groups], np.asarray(colors, np.uint8).reshape(-1, 3), lookup)
