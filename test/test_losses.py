"""The banded full-resolution loss equals F.interpolate + F.cross_entropy; OHEM keeps the hard pixels."""

import pytest
import torch
import torch.nn.functional as F

from narrow_seg_ros.losses import (
    log_class_weights,
    lovasz_softmax,
    lovasz_softmax_flat,
    ohem_target,
    sampled_upsample,
    true_class_probability,
    upsampled_cross_entropy,
)


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


def naive_true_class_probability(low, target, align_corners):
    up = F.interpolate(low, target.shape[-2:], mode="bilinear", align_corners=align_corners).softmax(1)
    return up.gather(1, target.clamp_max(low.shape[1] - 1)[:, None])[:, 0]


@pytest.mark.parametrize("align_corners", [True, False])
def test_banded_true_class_probability_equals_naive(align_corners):
    torch.manual_seed(1)
    low = torch.randn(2, 19, 5, 7)
    target = torch.randint(0, 19, (2, 37, 61))
    target[:, :4] = 255
    banded = true_class_probability(low, target, align_corners, band_pixels=300)
    naive = naive_true_class_probability(low, target, align_corners)
    valid = target != 255
    assert torch.allclose(banded[valid], naive[valid], atol=1e-6)
    assert torch.all(banded[~valid] == 1)  # ignored pixels are never hard


def test_ohem_keeps_pixels_below_the_threshold_and_trains_on_them_only():
    torch.manual_seed(2)
    low = (3 * torch.randn(2, 4, 16, 24, dtype=torch.float64)).requires_grad_(True)
    up = F.interpolate(low.detach(), (64, 96), mode="bilinear", align_corners=False)
    target = up.argmax(1).where(torch.rand(2, 64, 96) < 0.6, torch.randint(0, 4, (2, 64, 96)))
    target[0, :8] = 255
    prob = naive_true_class_probability(low.detach(), target, False)
    hard = ohem_target(low.detach(), target, False, thresh=0.7, min_kept=0)
    expected = target.masked_fill((prob >= 0.7) | (target == 255), 255)
    assert torch.equal(hard, expected)
    assert 0.2 < (hard != 255).float().mean() < 0.8  # the fixture mixes easy and hard pixels
    loss = upsampled_cross_entropy(low, hard, False)
    up = F.interpolate(low, (64, 96), mode="bilinear", align_corners=False)
    naive = F.cross_entropy(up, expected, ignore_index=255)
    assert loss.item() == pytest.approx(naive.item(), rel=1e-10)
    (grad,) = torch.autograd.grad(loss, low)
    (naive_grad,) = torch.autograd.grad(naive, low)
    assert torch.allclose(grad, naive_grad, rtol=1e-8, atol=1e-12)


def test_ohem_keeps_at_least_min_kept_hardest_pixels_per_image():
    torch.manual_seed(3)
    low = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    prob = naive_true_class_probability(low, target, False)
    hard = ohem_target(low, target, False, thresh=1e-6, min_kept=5)  # no pixel is that hard
    kept = hard != 255
    assert kept.sum() == 2 * 5
    assert prob[kept].max() < prob[~kept].min()  # exactly the ten least probable labels
    assert torch.equal(hard[kept], target[kept])
    everything = ohem_target(low, target, False, thresh=1e-6, min_kept=10_000)
    assert (everything != 255).sum() == 2 * 64 - 1  # all but the easiest (MMSeg's rule)


def test_ohem_on_an_ignored_batch_changes_nothing():
    target = torch.full((1, 8, 8), 255)
    assert torch.equal(ohem_target(torch.randn(1, 3, 2, 2), target, False, 0.7, 100), target)


def test_half_precision_logits_keep_their_gradient_under_a_loss_scale():
    """fp16 logits (AMP) with GradScaler's initial scale 65536: the gradient stays in fp32 until
    the scale is applied, so it neither overflows nor flushes small values to zero."""
    torch.manual_seed(4)
    low = torch.randn(2, 19, 8, 16)
    target = torch.randint(0, 19, (2, 64, 128))
    reference = low.clone().requires_grad_(True)
    (upsampled_cross_entropy(reference, target, False) * 65536).backward()
    half = low.half().requires_grad_(True)
    (upsampled_cross_entropy(half, target, False) * 65536).backward()
    assert half.grad.dtype == torch.float16 and torch.isfinite(half.grad).all()
    error = (half.grad.float() - reference.grad).norm() / reference.grad.norm()
    assert error < 2e-3, error  # fp16 rounding of the inputs, not of the gradient


def test_autocast_does_not_lower_the_loss_precision():
    torch.manual_seed(5)
    low = torch.randn(2, 19, 8, 16, requires_grad=True)
    target = torch.randint(0, 19, (2, 64, 128))
    exact = upsampled_cross_entropy(low, target, True)
    (g_exact,) = torch.autograd.grad(exact, low)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = upsampled_cross_entropy(low, target, True)
        prob = true_class_probability(low.detach(), target, True)
    (g_autocast,) = torch.autograd.grad(under_autocast, low)
    assert under_autocast.item() == pytest.approx(exact.item(), rel=1e-6)
    assert torch.allclose(g_autocast, g_exact, rtol=1e-5, atol=1e-9)
    assert torch.allclose(prob, true_class_probability(low.detach(), target, True), atol=1e-6)
    with torch.no_grad():  # forward only: same loss, no gradient work
        assert upsampled_cross_entropy(low, target, True).item() == pytest.approx(exact.item(), rel=1e-6)


def _jaccard_loss(mistakes: set, labelled: set) -> float:
    """The set function Lovász-softmax extends: 1 − IoU of a class whose wrong pixels are ``mistakes``."""
    return len(mistakes) / len(labelled | mistakes) if mistakes else 0.0


def test_lovasz_softmax_of_hard_predictions_is_one_minus_miou_of_present_classes():
    torch.manual_seed(6)
    labels = torch.randint(0, 5, (200,))
    labels[labels == 3] = 1  # class 3 absent from the labels: not averaged, even where predicted
    predicted = torch.randint(0, 5, (200,))
    ious = [
        ((labels == c) & (predicted == c)).sum().item() / ((labels == c) | (predicted == c)).sum().item()
        for c in (0, 1, 2, 4)
    ]
    loss = lovasz_softmax_flat(torch.nn.functional.one_hot(predicted, 5).T.double(), labels)
    assert loss.item() == pytest.approx(1 - sum(ious) / 4, abs=1e-12)


def test_lovasz_softmax_equals_the_lovasz_extension_written_out():
    """Soft probabilities: per present class, Σ_i e_(i) · (Δ({π_1..π_i}) − Δ({π_1..π_(i−1)})) with the
    errors sorted descending and Δ the Jaccard loss of a set of pixels (Berman et al., eq. 8-9)."""
    torch.manual_seed(7)
    probs = torch.randn(4, 30, dtype=torch.float64).softmax(0)
    labels = torch.randint(0, 3, (30,))  # class 3 never labelled
    expected = []
    for c in range(3):
        labelled = {i for i in range(30) if labels[i] == c}
        errors = [abs(float(labels[i] == c) - probs[c, i].item()) for i in range(30)]
        order = sorted(range(30), key=lambda i: -errors[i])
        total, before = 0.0, 0.0
        for k in range(30):
            after = _jaccard_loss(set(order[: k + 1]), labelled)
            total += errors[order[k]] * (after - before)
            before = after
        expected.append(total)
    assert lovasz_softmax_flat(probs, labels).item() == pytest.approx(sum(expected) / 3, abs=1e-12)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("stride", [1, 2, 3, 4, 64])
@pytest.mark.parametrize("size", [(37, 50), (1, 9), (3, 4)])  # up, one row, down
def test_sampled_upsample_equals_strided_full_upsample(align_corners, stride, size):
    low = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    full = torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=align_corners)
    offset = stride // 2
    sampled = sampled_upsample(low, size, align_corners, stride)
    expected = full[..., offset::stride, offset::stride]
    assert sampled.shape == expected.shape and torch.allclose(sampled, expected, atol=1e-12)


def test_lovasz_softmax_on_logits_skips_ignored_pixels_and_has_the_autograd_gradient():
    torch.manual_seed(8)
    low = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 4, (2, 24, 40))
    target[:, :6] = 255
    loss = lovasz_softmax(low, target, False, stride=2)
    up = torch.nn.functional.interpolate(low, size=(24, 40), mode="bilinear")[..., 1::2, 1::2]
    labels = target[:, 1::2, 1::2].reshape(-1)
    probs = up.softmax(1).permute(1, 0, 2, 3).reshape(4, -1)
    reference = lovasz_softmax_flat(probs[:, labels != 255], labels[labels != 255])
    assert loss.item() == pytest.approx(reference.item(), abs=1e-12)
    # piecewise linear in the probabilities: autograd through the sort is its exact gradient
    assert torch.autograd.gradcheck(lambda x: lovasz_softmax(x, target, False, 2), (low,))


def test_lovasz_softmax_of_an_ignored_batch_is_zero_with_a_gradient():
    low = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = lovasz_softmax(low, torch.full((1, 8, 8), 255), False)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(low.grad, torch.zeros_like(low))
    with pytest.raises(ValueError, match="stride 16 samples no pixel of a \\(8, 8\\) target"):
        lovasz_softmax(low, torch.zeros(1, 8, 8, dtype=torch.long), False, stride=16)


def test_lovasz_softmax_under_autocast_and_in_half_precision_stays_fp32():
    torch.manual_seed(9)
    low = torch.randn(2, 19, 8, 16)
    target = torch.randint(0, 19, (2, 64, 128))
    exact = lovasz_softmax(low, target, True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert lovasz_softmax(low, target, True).item() == pytest.approx(exact.item(), rel=1e-6)
    half = lovasz_softmax(low.half(), target, True)
    assert half.dtype == torch.float32 and half.item() == pytest.approx(exact.item(), rel=1e-3)
