"""The banded full-resolution loss equals F.interpolate + F.cross_entropy; the loss the config
composes is the plain formula."""

import pytest
import torch
import torch.nn.functional as F

from narrow_seg_ros.training.config import load_config
from narrow_seg_ros.training.losses import build_loss, log_class_weights, upsampled_cross_entropy


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
    (g_autocast,) = torch.autograd.grad(under_autocast, low)
    assert under_autocast.item() == pytest.approx(exact.item(), rel=1e-6)
    assert torch.allclose(g_autocast, g_exact, rtol=1e-5, atol=1e-9)
    with torch.no_grad():  # forward only: same loss, no gradient work
        assert upsampled_cross_entropy(low, target, True).item() == pytest.approx(exact.item(), rel=1e-6)


@pytest.mark.parametrize("aux_head", [False, True])
def test_configured_loss_is_the_weighted_sum_of_each_heads_cross_entropy(aux_head):
    """The loss a recipe's config composes (class weights, aux head at aux_weight 0.4) is
    CE(decode) + 0.4 × CE(aux) on the bilinearly upsampled logits: bit for bit that sum of the
    banded terms, and the plain F.interpolate + F.cross_entropy formula to float rounding."""
    torch.manual_seed(10)
    targets = torch.randint(0, 19, (2, 64, 128))
    targets[:, :5] = 255
    outputs = {"decode": torch.randn(2, 19, 2, 4, requires_grad=True)}
    if aux_head:
        outputs["aux"] = torch.randn(2, 19, 4, 8, requires_grad=True)
    weight = log_class_weights(torch.rand(19) ** 4)
    train = load_config("config/train_ndnet45.yaml", {"train.class_weights": "log"})["train"]
    loss = build_loss(train, False, aux_head, weight)(outputs, targets)

    def banded(logits):
        return upsampled_cross_entropy(logits, targets, False, weight=weight)

    expected = banded(outputs["decode"]) + (train["aux_weight"] * banded(outputs["aux"]) if aux_head else 0)
    assert torch.equal(loss, expected)

    def plain(logits):
        up = F.interpolate(logits.double(), (64, 128), mode="bilinear", align_corners=False)
        return F.cross_entropy(up, targets, weight.double(), ignore_index=255)

    formula = plain(outputs["decode"]) + (0.4 * plain(outputs["aux"]) if aux_head else 0)
    assert loss.item() == pytest.approx(formula.item(), rel=1e-5)
    heads = list(outputs.values())
    grads, formula_grads = torch.autograd.grad(loss, heads), torch.autograd.grad(formula, heads)
    for grad, reference in zip(grads, formula_grads, strict=True):
        torch.testing.assert_close(grad, reference.float(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_distillation_is_hintons_pixelwise_kl_on_the_students_grid(temperature):
    """train.distill's term: weight × T² × mean over pixels of KL(softmax(t/T) ‖ softmax(s/T)),
    the teacher's logits resized bilinearly to the student's grid; zero, with zero gradient, when
    the student already predicts the teacher's distribution."""
    torch.manual_seed(3)
    student = torch.randn(2, 11, 6, 8, requires_grad=True)
    teacher = torch.randn(2, 11, 12, 16)
    targets = torch.randint(0, 11, (2, 48, 64))
    train = load_config(
        "config/train_vnet_camvid.yaml", {"train.distill": {"teacher": "t.pt", "temperature": temperature}}
    )["train"]
    loss = build_loss({**train, "distill": {**train["distill"], "weight": 0.5}}, False, False)
    total = loss({"decode": student, "teacher": teacher}, targets)
    ce = upsampled_cross_entropy(student, targets, False)
    resized = F.interpolate(teacher, (6, 8), mode="bilinear", align_corners=False)
    kl = F.kl_div(
        F.log_softmax(student / temperature, 1),
        F.log_softmax(resized / temperature, 1),
        reduction="none",
        log_target=True,
    )
    expected = ce + 0.5 * temperature**2 * kl.sum(1).mean()
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)

    same = student.detach().clone().requires_grad_(True)
    only_kd = build_loss({**train, "distill": {**train["distill"], "weight": 1.0}}, False, False).terms[-1]
    value = only_kd({"decode": same, "teacher": same.detach() * 1.0}, targets)
    (grad,) = torch.autograd.grad(value, same)
    assert abs(value.item()) < 1e-6 and grad.abs().max().item() < 1e-7


@pytest.mark.parametrize(
    "distill, message",
    [
        ({"weight": 1.0}, "a mapping with a teacher weights file"),
        ({"teacher": "t.pt", "alpha": 1.0}, "unknown keys \\['alpha'\\]"),
        ({"teacher": "t.pt", "temperature": 0}, "temperature must be a finite number > 0"),
        ({"teacher": "t.pt", "weight": -1}, "weight must be a finite number >= 0"),
    ],
)
def test_bad_distillation_configs_fail_before_training(distill, message):
    with pytest.raises(ValueError, match=message):
        load_config("config/train_vnet_camvid.yaml", {"train.distill": distill})
