"""The banded full-resolution loss equals F.interpolate + F.cross_entropy."""

import pytest
import torch
import torch.nn.functional as F

from narrow_seg_ros.losses import log_class_weights, upsampled_cross_entropy


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("shape", [(4, 8, 128, 256), (5, 7, 37, 61), (16, 32, 64, 128)])
def test_banded_loss_and_gradient_equal_naive(align_corners, shape, weighted):
    torch.manual_seed(0)
    h, w, out_h, out_w = shape
    low = torch.randn(2, 19, h, w, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 19, (2, out_h, out_w))
    target[:, :3] = 255  # ignored rows
    weight = log_class_weights(torch.rand(19) ** 4).double() if weighted else None
    naive = F.cross_entropy(
        F.interpolate(low, (out_h, out_w), mode="bilinear", align_corners=align_corners),
        target,
        weight,
        ignore_index=255,
    )
    (g_naive,) = torch.autograd.grad(naive, low)
    banded = upsampled_cross_entropy(low, target, align_corners, band_pixels=1000, weight=weight)
    (g_banded,) = torch.autograd.grad(banded, low)
    assert banded.item() == pytest.approx(naive.item(), rel=1e-10)
    assert ((g_banded - g_naive).norm() / g_naive.norm()).item() < 1e-10


def test_all_ignored_gives_zero_loss_and_gradient():
    low = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = upsampled_cross_entropy(low, torch.full((1, 16, 16), 255), align_corners=False)
    loss.backward()
    assert loss.item() == 0 and low.grad.abs().sum() == 0


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="expected logits"):
        upsampled_cross_entropy(torch.zeros(1, 3, 4), torch.zeros(1, 4, 4), False)


def test_log_class_weights_favour_rare_classes():
    weights = log_class_weights([900, 90, 9, 1], c=1.10)
    assert torch.all(weights[1:] > weights[:-1])  # rarer → heavier
    assert weights[-1].item() == pytest.approx(1 / torch.log(torch.tensor(1.10 + 0.001)).item(), rel=1e-6)
