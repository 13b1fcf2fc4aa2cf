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

from ..safe_yaml import load_yaml_file, shown
from .rules import UNLABELED

MAX_GROUPS = 254  # group ids 0..253: 255 is unlabeled (rules.UNLABELED), 254 is left free


@dataclass(frozen=True)
class LabelGroups:
    names: list[str]
    palette: np.ndarray  # (groups, 3) uint8 RGB
    lookup: np.ndarray  # (256,) uint8: class id → group id, UNLABELED elsewhere

    def apply(self, mask: np.ndarray) -> np.ndarray:
        """A class-id mask → a group-id mask (same shape, uint8)."""
        return self.lookup[mask]


def load_groups(path: str | Path, class_names: list[str], palette) -> LabelGroups:
    """Read a groups YAML for a model with ``class_names``; ValueError of one line naming the file
    and the field. The file is read with ``safe_yaml``'s bounds (a groups file is the node's input
    from a user, and an alias bomb in it cost seconds and a GB) and every field checked for its type."""
    path = Path(path)
    groups = _group_list(load_yaml_file(path, "label groups file"), path)
    index = {name.lower(): i for i, name in enumerate(class_names)}
    lookup = np.full(256, UNLABELED, np.uint8)
    names, colors = [], []
    for group_id, group in enumerate(groups):
        name, members, color = _group_fields(group, group_id, path)
        if name in names:
            raise ValueError(
                f"{path}: group {group_id}: the name {shown(name)} appears twice: group names must be unique"
            )
        unknown = [c for c in members if c.lower() not in index]
        if unknown:
            raise ValueError(f"{path}: group {shown(name)} names classes the model lacks: {shown(unknown, 200)}; "
                             f"the model's classes: {', '.join(class_names)}")  # fmt: skip
        ids = [index[c.lower()] for c in members]
        taken = [class_names[i] for i in ids if lookup[i] != UNLABELED]
        if taken:
            raise ValueError(f"{path}: classes {shown(taken, 200)} are in more than one group")
        lookup[ids] = group_id
        names.append(name)
        colors.append(color if color is not None else (list(palette[ids[0]]) if ids else [0, 0, 0]))
    return LabelGroups(names, np.asarray(colors, np.uint8).reshape(-1, 3), lookup)


def _group_list(data, path: Path) -> list[dict]:
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list) or not groups or not all(isinstance(g, dict) for g in groups):
        raise ValueError(f"{path}: expected 'groups:', a list of {{name: ..., classes: [...]}}")
    if len(groups) > MAX_GROUPS:
        raise ValueError(f"{path}: {len(groups)} groups, over the {MAX_GROUPS} a mask holds ({UNLABELED} is unlabeled)")
    return groups


def _group_fields(group: dict, group_id: int, path: Path) -> tuple[str, list[str], list[int] | None]:
    """(name, class names, color or None) of one entry of ``groups``, each checked for its type."""
    name = group.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{path}: group {group_id}: name {shown(name)} is not a name (a non-empty string)")
    members = group.get("classes")
    members = [] if members is None else members  # "classes:" left empty: a group of no class
    if not isinstance(members, list) or not all(isinstance(c, str) for c in members):
        raise ValueError(f"{path}: group {shown(name)}: classes {shown(members)} is not a list of class names")
    color = group.get("color")
    if color is not None and not (
        isinstance(color, list)
        and len(color) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in color)
    ):
        raise ValueError(f"{path}: group {shown(name)}: color {shown(color)} is not three integers 0..255")
    return name, members, color
