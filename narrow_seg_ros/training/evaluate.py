"""Validation: run a model over a labelled split and fill a confusion matrix.

The network sees each image resized to ``input_size`` (what the deployed engine does by default)
and its logits are upsampled to the label's own resolution, so the score is the one a user gets
at the camera's resolution.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.transforms import normalize
from ..geometry import padded_size
from .metrics import ConfusionMatrix


def image_to_tensor(image_rgb: np.ndarray, mean, std, size=None) -> torch.Tensor:
    """uint8 HxWx3 RGB → normalised float32 1x3xHxW (as training's transforms normalise),
    optionally resized (bilinear) to ``size``."""
    if size is not None and tuple(image_rgb.shape[:2]) != tuple(size):
        image_rgb = cv2.resize(image_rgb, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return normalize(image_rgb, mean, std).unsqueeze(0)


@torch.no_grad()
def predict(model, image_rgb: np.ndarray, mean, std, input_size=None, device="cpu") -> torch.Tensor:
    """Class-index mask (H, W) at the image's own resolution, as the deployed engine computes it:
    an input whose sides are not multiples of the network's stride is padded (bottom, right) with
    the mean color, as a uint8 pixel, and the padding is cut off the upsampled logits."""
    size = tuple(input_size or image_rgb.shape[:2])
    canvas = padded_size(size, model.input_multiple)
    if canvas == size:
        x = image_to_tensor(image_rgb, mean, std, size).to(device)
        low = model(x, full_resolution=False).float()
        logits = F.interpolate(low, size=image_rgb.shape[:2], mode="bilinear", align_corners=model.align_corners)
        return logits.argmax(1)[0].cpu()
    resized = image_rgb if tuple(image_rgb.shape[:2]) == size else cv2.resize(image_rgb, (size[1], size[0]))
    fill = np.clip(np.round(np.asarray(mean) * 255), 0, 255).tolist()
    padded = cv2.copyMakeBorder(
        resized, 0, canvas[0] - size[0], 0, canvas[1] - size[1], cv2.BORDER_CONSTANT, value=fill
    )
    low = model(image_to_tensor(padded, mean, std).to(device), full_resolution=False).float()
    logits = F.interpolate(low, size=canvas, mode="bilinear", align_corners=model.align_corners)
    mask = logits.argmax(1)[:, : size[0], : size[1]]
    if size != tuple(image_rgb.shape[:2]):  # the engine's nearest resize of the cropped mask
        mask = F.interpolate(mask[None].float(), size=image_rgb.shape[:2], mode="nearest").long()[0]
    return mask[0].cpu()


def evaluate(
    model,
    dataset,
    num_classes: int,
    mean,
    std,
    input_size=None,
    device="cpu",
    max_images=None,
    progress: bool = False,
    on_prediction=None,
    class_map=None,
) -> ConfusionMatrix:
    """Confusion matrix of ``model`` over ``dataset`` (raw (image_rgb, class_id_target) pairs).

    ``on_prediction(i, image, target, pred)`` is called for each image (used for sample PNGs).
    ``class_map`` (weights of another class set): the dataset class id of each predicted class,
    -1 where it has none (models/transfer.py's ``class_mapping``).
    """
    lookup = None if class_map is None else torch.as_tensor([-1 if c is None else c for c in class_map])
    was_training = model.training
    model.eval()
    matrix = ConfusionMatrix(num_classes)
    count = len(dataset) if max_images is None else min(len(dataset), max_images)
    try:
        for i in tqdm(range(count), desc="eval", disable=not progress, leave=False):
            image, target = dataset[i]
            pred = predict(model, image, mean, std, input_size, device)
            matrix.update(pred if lookup is None else lookup[pred], torch.as_tensor(np.asarray(target)))
            if on_prediction is not None:
                on_prediction(i, image, target, pred.numpy())
    finally:
        model.train(was_training)
    return matrix
