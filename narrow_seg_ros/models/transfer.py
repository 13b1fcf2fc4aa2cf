"""Weights from one class set into a network of another (timm's ``pretrained_filter_fn`` idea).

Classes correspond by name, case and ``_`` ignored, or through :data:`ALIASES`: the datasets'
names for the same things. The table is CamVid's own merge of its 32 classes into the 11 that
papers use (Brostow et al. 2009; SegNet): Car holds cars, trucks, buses and trains, Bicyclist the
rider with the bicycle or motorbike, SignSymbol signs and traffic lights, Tree all vegetation,
Building walls too. One rule serves both uses:

* training (:func:`transfer_state`): a class of the new network takes the classifier row of its
  counterpart in the weights' classes; a class with none starts fresh;
* evaluation (:func:`class_mapping` in ``narrow-seg eval``): a predicted class counts as its
  counterpart among the dataset's classes; a prediction with none is wrong.
"""

from __future__ import annotations

import torch

# a class name → the other datasets' names for it (or for the part of it they label), first = closest
ALIASES: dict[str, tuple[str, ...]] = {
    "pavement": ("sidewalk",),
    "tree": ("vegetation", "terrain"),
    "signsymbol": ("traffic sign", "traffic light"),
    "pedestrian": ("person",),
    "bicyclist": ("rider", "bicycle", "motorcycle"),
    "car": ("truck", "bus", "train"),
    "building": ("wall",),
}


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


def counterpart(name: str, candidates: list[str]) -> int | None:
    """Index in ``candidates`` of the class that ``name`` stands for: the same name, else its first
    alias present, else a candidate that lists ``name`` as its alias; None when there is none."""
    names = [_norm(c) for c in candidates]
    wanted = _norm(name)
    if wanted in names:
        return names.index(wanted)
    for alias in ALIASES.get(wanted, ()):
        if alias in names:
            return names.index(alias)
    for index, candidate in enumerate(names):
        if wanted in ALIASES.get(candidate, ()):
            return index
    return None


def class_mapping(source: list[str], target: list[str]) -> list[int | None]:
    """For each class of ``source``, the index of its counterpart in ``target`` (or None)."""
    return [counterpart(name, target) for name in source]


def transfer_state(model, state_dict: dict, source_classes: list[str], target_classes: list[str]) -> dict:
    """Load ``state_dict`` (a network trained on ``source_classes``) into ``model`` (built for
    ``target_classes``). The backbone must fit exactly (else ValueError: other model options);
    head layers load where their shapes fit; classifier rows are carried by class counterpart and
    the rest keep the model's fresh initialisation, as do heads the file lacks (the auxiliary head,
    FCN8's skips from FCN32 weights). Returns ``{"carried": {target: source}, "fresh": [names],
    "fresh_heads": [names]}``."""
    own = model.state_dict()
    heads, classifier, optional = set(model.head_modules()), model.classifier_keys(), model.optional_heads()
    extra = sorted(set(state_dict) - set(own))
    if extra:  # e.g. FCN8 weights into an FCN32 network: its skip heads would be lost
        raise ValueError(
            f"weights have layers the network lacks ({', '.join(extra[:4])}, ...): compare the model options"
        )
    rows = class_mapping(target_classes, source_classes)
    loaded, fresh_heads = {}, set()
    for key, value in own.items():
        source, module = state_dict.get(key), key.split(".")[0]
        if source is None and module in optional:
            fresh_heads.add(module)
        elif source is None:
            raise ValueError(f"weights lack {key}: compare the model options")
        elif key in classifier and source.shape[1:] == value.shape[1:]:
            loaded[key] = torch.stack([source[j] if j is not None else value[i] for i, j in enumerate(rows)])
        elif source.shape == value.shape:
            loaded[key] = source
        elif module in heads:
            fresh_heads.add(module)
        else:
            raise ValueError(f"{key}: weights have shape {tuple(source.shape)}, the network {tuple(value.shape)}")
    model.load_state_dict({**own, **loaded})
    return {
        "carried": {t: source_classes[j] for t, j in zip(target_classes, rows) if j is not None},
        "fresh": [t for t, j in zip(target_classes, rows) if j is None],
        "fresh_heads": sorted(fresh_heads),
    }
