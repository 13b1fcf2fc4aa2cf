"""Full-resolution cross-entropy on low-resolution logits without materialising the upsample.

``F.cross_entropy(F.interpolate(logits, size), target)`` keeps N×C×H×W upsampled logits, their
log-softmax and its gradient alive: at 1024×2048 with 19 classes that is ~450 MB per image, more
than a small network's own activations. :func:`upsampled_cross_entropy` computes the same loss in
bands of output rows and accumulates the gradient of the low-resolution logits band by band, so
only one band is ever expanded. The loss and gradient equal the naive form to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = 255


def _source_coords(out_len: int, in_len: int, align_corners: bool, device) -> tuple:
    """Index pairs and weights of torch's bilinear interpolation along one axis."""
    dst = torch.arange(out_len, device=device, dtype=torch.float64)
    if align_corners:
        src = dst * ((in_len - 1) / (out_len - 1)) if out_len > 1 else torch.zeros_like(dst)
    else:
        src = ((dst + 0.5) * (in_len / out_len) - 0.5).clamp_min(0)
    i0 = src.floor().long().clamp_max(in_len - 1)
    i1 = (i0 + 1).clamp_max(in_len - 1)
    return i0, i1, src - i0


def _interpolate_band(low, rows, out_w: int, align_corners: bool):
    """Rows ``rows`` (from _source_coords) of the bilinear upsample of ``low`` to width ``out_w``.

    Vertical blend by hand on the few low-res rows the band reads; the horizontal pass is
    F.interpolate with an identity vertical mapping (R rows → R rows), which uses exactly the
    global horizontal mapping and torch's fast kernels.
    """
    r0, r1, rw = rows
    rw = rw.to(low.dtype).view(1, 1, -1, 1)
    band = low.index_select(2, r0) * (1 - rw) + low.index_select(2, r1) * rw
    return F.interpolate(band, size=(band.shape[2], out_w), mode="bilinear", align_corners=align_corners)


class _UpsampledCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, low, target, align_corners, ignore_index, band_pixels, weight):
        n, c, h, w = low.shape
        out_h, out_w = target.shape[-2:]
        rows = _source_coords(out_h, h, align_corners, low.device)
        band = max(1, band_pixels // max(1, n * out_w))
        grad = torch.zeros_like(low)
        acc_dtype = torch.float64 if low.dtype == torch.float64 else torch.float32  # fp16/bf16 → fp32
        total = low.new_zeros((), dtype=acc_dtype)
        count = low.new_zeros((), dtype=acc_dtype)
        for start in range(0, out_h, band):
            stop = min(out_h, start + band)
            r0, r1, rw = (t[start:stop] for t in rows)
            lo, hi = int(r0.min()), int(r1.max()) + 1  # the low-res rows this band reads
            sub = low[:, :, lo:hi].detach().requires_grad_(True)
            with torch.enable_grad():
                logits = _interpolate_band(sub, (r0 - lo, r1 - lo, rw), out_w, align_corners)
                loss = F.cross_entropy(
                    logits.to(acc_dtype), target[:, start:stop], weight, ignore_index=ignore_index, reduction="sum"
                )
            (g,) = torch.autograd.grad(loss, sub)
            grad[:, :, lo:hi] += g
            total += loss.detach()
            labels = target[:, start:stop]
            labels = labels[labels != ignore_index]
            count += labels.numel() if weight is None else weight[labels].sum()
        count = count.clamp_min(1e-12)  # all-ignored batch: loss 0 and no gradient (PyTorch's mean: nan)
        ctx.save_for_backward(grad / count)
        return total / count

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return grad * grad_out.to(grad.dtype), None, None, None, None, None


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
        weight = weight.to(
            device=low_logits.device, dtype=torch.float64 if low_logits.dtype == torch.float64 else torch.float32
        )
    return _UpsampledCrossEntropy.apply(low_logits, target.long(), align_corners, ignore_index, band_pixels, weight)


@torch.no_grad()
def true_class_probability(
    low_logits: torch.Tensor,
    target: torch.Tensor,
    align_corners: bool,
    ignore_index: int = IGNORE_INDEX,
    band_pixels: int = 1 << 18,
) -> torch.Tensor:
    """Softmax probability of the labelled class at every pixel of ``bilinear_upsample(low_logits)``
    (N, H, W), computed in bands as the loss is; ignored pixels get 1 (never hard)."""
    n, _, h, _ = low_logits.shape
    out_h, out_w = target.shape[-2:]
    rows = _source_coords(out_h, h, align_corners, low_logits.device)
    band = max(1, band_pixels // max(1, n * out_w))
    prob = torch.ones(target.shape, dtype=torch.float32, device=low_logits.device)
    for start in range(0, out_h, band):
        stop = min(out_h, start + band)
        r0, r1, rw = (t[start:stop] for t in rows)
        lo, hi = int(r0.min()), int(r1.max()) + 1
        logits = _interpolate_band(low_logits[:, :, lo:hi], (r0 - lo, r1 - lo, rw), out_w, align_corners)
        labels = target[:, start:stop].long()
        valid = labels != ignore_index
        p = logits.float().softmax(1).gather(1, labels.where(valid, 0)[:, None])[:, 0]
        prob[:, start:stop] = p.where(valid, 1.0)
    return prob


def ohem_target(
    low_logits: torch.Tensor,
    target: torch.Tensor,
    align_corners: bool,
    thresh: float,
    min_kept: int,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Online hard example mining (Shrivastava et al. CVPR 2016, for segmentation as in
    MMSegmentation's OHEMPixelSampler and HRNet's OhemCrossEntropy): ``target`` with the easy
    pixels set to ``ignore_index``.

    A pixel is hard when the probability of its labelled class is below ``max(thresh, p_k)``, where
    ``p_k`` is the probability of the ``min_kept × N``-th hardest labelled pixel, so at least that
    many pixels stay however well the batch is already learned. On a mostly learned scene the loss
    then comes from boundaries and thin objects rather than from road and sky.
    """
    prob = true_class_probability(low_logits, target, align_corners, ignore_index)
    valid = target != ignore_index
    labelled = prob[valid]
    if labelled.numel() == 0:
        return target
    k = min(min_kept * target.shape[0], labelled.numel() - 1)
    threshold = max(float(torch.kthvalue(labelled, k + 1).values), thresh)
    return target.masked_fill(prob >= threshold, ignore_index)


def log_class_weights(frequencies, c: float = 1.10) -> torch.Tensor:
    """ENet/ERFNet class weighting ``1 / ln(c + p_class)`` from pixel frequencies ``p``.

    ENet uses c = 1.02; ERFNet (which VNet's modules come from) 1.10, a milder balance (weights
    between ~3 and ~10.5 instead of ~3 and ~50). Thin classes (poles, signs, lights) cover a
    fraction of a percent of the pixels and are otherwise learned last.
    """
    p = torch.as_tensor(frequencies, dtype=torch.float64)
    p = p / p.sum().clamp_min(1)
    return (1.0 / torch.log(c + p)).float()
