"""Training losses: small objects composed per head from the config, as MMSegmentation's
``loss_decode`` lists, on top of a full-resolution cross-entropy that never materialises the upsample.

``F.cross_entropy(F.interpolate(logits, size), target)`` keeps N×C×H×W upsampled logits, their
log-softmax and its gradient alive: at 1024×2048 with 19 classes that is ~450 MB per image, more
than a small network's own activations. :func:`upsampled_cross_entropy` computes the same loss in
bands of output rows and accumulates the gradient of the low-resolution logits band by band, so
only one band is ever expanded. The loss and gradient equal the naive form to float rounding.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.labels import IGNORE_INDEX
from ..geometry import bilinear_taps


def _interpolation_matrix(out_len: int, in_len: int, align_corners: bool, like: torch.Tensor) -> torch.Tensor:
    """torch's bilinear interpolation along one axis as an (out_len, in_len) matrix (two taps a row)."""
    taps = bilinear_taps(np.arange(out_len), out_len, in_len, align_corners)
    i0, i1, frac = (torch.from_numpy(t).to(like.device) for t in taps)
    matrix = torch.zeros(out_len, in_len, dtype=torch.float64, device=like.device)
    rows = torch.arange(out_len, device=like.device)
    matrix.index_put_((rows, i0), 1 - frac, accumulate=True)
    matrix.index_put_((rows, i1), frac, accumulate=True)
    return matrix.to(like.dtype)


class _BandedUpsample:
    """``bilinear_upsample(low) = R @ low @ Cᵀ`` (separable), expanded a band of output rows at a time.

    The horizontal pass runs once on the few low-resolution rows (``wide``, N×C×h×W); each band is
    then one small matmul. Matmuls beat F.interpolate's kernels here, forward and (by hand) backward.
    Callers run it outside autocast (which would lower the matmuls to fp16/bf16); with TF32 matmuls
    enabled on CUDA (``torch.backends.cuda.matmul.allow_tf32``) the loss is exact only to ~1e-3.
    """

    def __init__(self, low: torch.Tensor, out_size, align_corners: bool, band_pixels: int):
        n, _, h, w = low.shape
        self.out_h, out_w = out_size
        self.rows = _interpolation_matrix(self.out_h, h, align_corners, low)
        self.cols = _interpolation_matrix(out_w, w, align_corners, low)
        self.wide = low @ self.cols.T
        self.band = max(1, band_pixels // max(1, n * out_w))

    def bands(self):
        """(start, stop, R[start:stop], upsampled logits of rows start:stop, N×C×rows×W)."""
        for start in range(0, self.out_h, self.band):
            stop = min(self.out_h, start + self.band)
            rows = self.rows[start:stop]
            yield start, stop, rows, torch.matmul(rows, self.wide)


def _acc_dtype(tensor: torch.Tensor) -> torch.dtype:
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32  # fp16/bf16 → fp32


class _UpsampledCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, low, target, align_corners, ignore_index, band_pixels, weight):
        with torch.autocast(low.device.type, enabled=False):
            up = _BandedUpsample(low.detach().to(_acc_dtype(low)), target.shape[-2:], align_corners, band_pixels)
            need_grad = ctx.needs_input_grad[0]
            grad_wide = torch.zeros_like(up.wide) if need_grad else None
            total = up.wide.new_zeros(())
            count = up.wide.new_zeros(())
            for start, stop, rows, logits in up.bands():
                labels = target[:, None, start:stop]
                valid = labels != ignore_index
                labels = labels.where(valid, 0)
                pixel_weight = valid.to(logits.dtype) if weight is None else weight[labels] * valid
                # softmax cross-entropy and its gradient (softmax − one-hot) from one exp pass
                logits = logits - logits.amax(1, keepdim=True)
                prob = logits.exp()
                norm = prob.sum(1, keepdim=True)
                total += ((norm.log() - logits.gather(1, labels)) * pixel_weight).sum()
                count += pixel_weight.sum()
                if need_grad:
                    prob *= pixel_weight / norm
                    prob.scatter_add_(1, labels, -pixel_weight)
                    grad_wide += torch.matmul(rows.T, prob)
            count = count.clamp_min(1e-12)  # all-ignored batch: loss 0 and no gradient (PyTorch's mean: nan)
            if need_grad:
                # kept in fp32 until the loss scale is applied: fp16 would flush small gradients to
                # zero and overflow under GradScaler's 65536
                ctx.save_for_backward(grad_wide @ up.cols / count)
            ctx.low_dtype = low.dtype
        return total / count

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return (grad * grad_out.to(grad.dtype)).to(ctx.low_dtype), None, None, None, None, None


def upsampled_cross_entropy(
    low_logits: torch.Tensor,
    target: torch.Tensor,
    align_corners: bool,
    ignore_index: int = IGNORE_INDEX,
    band_pixels: int = 1 << 18,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of ``bilinear_upsample(low_logits, target.shape[-2:])`` against ``target``.

    ``band_pixels`` bounds how many output pixels (over the batch) are expanded at once.
    ``weight`` (C,) weighs classes as ``F.cross_entropy`` does (mean over the targets' weights).
    """
    if low_logits.dim() != 4 or target.dim() != 3 or low_logits.shape[0] != target.shape[0]:
        raise ValueError(
            f"expected logits (N,C,h,w) and target (N,H,W), got {tuple(low_logits.shape)} and {tuple(target.shape)}"
        )
    if weight is not None:
        weight = weight.to(device=low_logits.device, dtype=_acc_dtype(low_logits))
    return _UpsampledCrossEntropy.apply(low_logits, target.long(), align_corners, ignore_index, band_pixels, weight)


def log_class_weights(frequencies, c: float = 1.10) -> torch.Tensor:
    """ENet/ERFNet class weighting ``1 / ln(c + p_class)`` from pixel frequencies ``p``.

    ENet uses c = 1.02; ERFNet (which VNet's modules come from) 1.10, a milder balance (weights
    between ~3 and ~10.5 instead of ~3 and ~50). Thin classes (poles, signs, lights) cover a
    fraction of a percent of the pixels and are otherwise learned last.
    """
    p = torch.as_tensor(frequencies, dtype=torch.float64)
    p = p / p.sum().clamp_min(1)
    return (1.0 / torch.log(c + p)).float()


class CrossEntropy:
    """One loss term of one head (MMSegmentation's ``CrossEntropyLoss`` with ``class_weight`` and
    ``loss_weight``): ``loss_weight`` × the full-resolution cross-entropy of the ``head``'s logits,
    taken in fp32 whatever precision the head ran in under autocast."""

    def __init__(
        self, align_corners: bool, class_weight: torch.Tensor | None = None, loss_weight: float = 1.0, head="decode"
    ):
        self.align_corners = align_corners
        self.class_weight = class_weight
        self.loss_weight = loss_weight
        self.head = head

    def __call__(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        logits = outputs[self.head].float()
        loss = upsampled_cross_entropy(logits, targets, self.align_corners, weight=self.class_weight)
        return self.loss_weight * loss


class Distillation:
    """Pixel-wise knowledge distillation (Hinton et al. 2015, "Distilling the Knowledge in a Neural
    Network"; per pixel for segmentation as in Liu et al., CVPR 2019, "Structured Knowledge
    Distillation for Semantic Segmentation"): ``loss_weight`` × T² × the mean over pixels of
    KL(softmax(teacher / T) ‖ softmax(student / T)). Taken on the student's logit grid; the
    teacher's logits (``outputs["teacher"]``, no gradient) are resized to it bilinearly. Every
    pixel counts, unlabeled ones too: the teacher has an opinion where the labels have none."""

    def __init__(self, temperature: float = 1.0, loss_weight: float = 1.0, align_corners: bool = False):
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.align_corners = align_corners

    def __call__(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        student, teacher = outputs["decode"].float(), outputs["teacher"].float()
        if teacher.shape[-2:] != student.shape[-2:]:
            teacher = F.interpolate(teacher, student.shape[-2:], mode="bilinear", align_corners=self.align_corners)
        t = self.temperature
        log_student = F.log_softmax(student / t, dim=1)
        log_teacher = F.log_softmax(teacher / t, dim=1)
        kl = (log_teacher.exp() * (log_teacher - log_student)).sum(1).mean()
        return self.loss_weight * t * t * kl


class SegmentationLoss:
    """The training loss: the sum of its terms over the network's outputs by head name
    (MMSegmentation's ``loss_decode`` lists of the decode and auxiliary heads, flattened), plus
    distillation from a teacher's logits when the config asks for it."""

    def __init__(self, terms: list):
        self.terms = terms

    def __call__(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        values = [term(outputs, targets) for term in self.terms]
        return sum(values[1:], values[0])


def build_loss(train: dict, align_corners: bool, aux_head: bool, class_weight: torch.Tensor | None = None):
    """The loss ``train`` (the config's section) asks for: the decode head's cross-entropy, plus
    ``aux_weight`` × the same on the auxiliary head when the network has one (both weighted by
    class with ``class_weight``, ``train.class_weights``), plus ``train.distill``'s term."""
    terms: list = [CrossEntropy(align_corners, class_weight)]
    if aux_head:
        terms.append(CrossEntropy(align_corners, class_weight, train["aux_weight"], head="aux"))
    distill = train["distill"]
    if distill is not None:
        terms.append(Distillation(distill["temperature"], distill["weight"], align_corners))
    return SegmentationLoss(terms)
