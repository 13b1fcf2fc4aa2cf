"""Segmentation networks in pure PyTorch (no ROS, no torchvision).

``build_model(name, num_classes=19, **options)`` builds any registered network;
``list_models()`` names them.
"""

from . import ndnet, vnet  # noqa: F401  (imports register the builders)
from .base import SegmentationNet
from .registry import build_model, list_models, model_label, register_model

__all__ = ["SegmentationNet", "build_model", "list_models", "model_label", "register_model"]
