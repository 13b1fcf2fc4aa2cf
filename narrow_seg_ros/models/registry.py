"""Model registry: architectures register small builder functions under a name (timm-style)."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register ``fn`` under its function name."""
    name = fn.__name__
    if name in _BUILDERS:
        raise ValueError(f"model {name!r} registered twice")
    _BUILDERS[name] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def model_label(name: str, options: dict) -> str:
    """A model name with its options, as people read it: ``ndnet45 head=fcn8``."""
    return " ".join([name, *(f"{k}={v}" for k, v in sorted(options.items()))])


def build_model(name: str, num_classes: int = 19, **options) -> nn.Module:
    """Build a registered segmentation network, e.g. ``build_model("ndnet45", aux_head=True)``."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}") from None
    try:
        return builder(num_classes=num_classes, **options)
    except TypeError as exc:  # an option the architecture does not take (e.g. a VNet head=fcn8)
        raise ValueError(f"model {name!r} does not take the options {options}: {exc}") from exc
