"""Full-resolution cross-entropy on low-resolution logits without materialising the upsample.

``F.cross_entropy(F.interpolate(logits, size), target)`` keeps N×C×H×W upsampled logits, their
log-softmax and its gradient alive: at 1024×2048 with 19 classes that is ~450 MB per image, more
than a small network's own activations. :func:`upsampled_cross_entropy` computes the same loss in
bands of output rows and accumulates the gradient of the low-resolution logits band by band, so
only one band is ever expanded. The loss and gradient equal the naive form to float rounding.
:func:`ohem_target` mines hard pixels on the same banded upsample; :func:`lovasz_softmax` scores
an IoU surrogate on a strided sample of the same upsample.
"""

from __future__ import annotations

import torch

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


def _interpolation_matrix(out_len: int, in_len: int, align_corners: bool, like: torch.Tensor) -> torch.Tensor:
    """torch's bilinear interpolation along one axis as an (out_len, in_len) matrix (two taps a row)."""
    i0, i1, frac = _source_coords(out_len, in_len, align_corners, like.device)
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
    with torch.autocast(low_logits.device.type, enabled=False):
        up = _BandedUpsample(low_logits.to(_acc_dtype(low_logits)), target.shape[-2:], align_corners, band_pixels)
        prob = torch.ones(target.shape, dtype=up.wide.dtype, device=low_logits.device)
        for start, stop, _, logits in up.bands():
            labels = target[:, None, start:stop].long()
            valid = labels != ignore_index
            log_p = logits.gather(1, labels.where(valid, 0)) - logits.logsumexp(1, keepdim=True)
            prob[:, start:stop] = log_p.exp().where(valid, 1.0)[:, 0]
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
    if int((labelled < thresh).sum()) > k:  # the usual case: more than min_kept are hard anyway
        threshold = thresh
    else:  # the k-th hardest; kthvalue is slow on CUDA (pytorch#75599), sort is not
        threshold = float(labelled.sort().values[k] if labelled.is_cuda else labelled.kthvalue(k + 1).values)
    return target.masked_fill(prob >= threshold, ignore_index)


def sampled_upsample(low_logits: torch.Tensor, out_size, align_corners: bool, stride: int) -> torch.Tensor:
    """``bilinear_upsample(low_logits, out_size)[..., o::stride, o::stride]`` with ``o = stride // 2``,
    computed as two matmuls without the full upsample (exact: the same interpolation weights)."""
    offset = stride // 2
    (out_h, out_w), (h, w) = out_size, low_logits.shape[-2:]
    rows = _interpolation_matrix(out_h, h, align_corners, low_logits)[offset::stride]
    cols = _interpolation_matrix(out_w, w, align_corners, low_logits)[offset::stride]
    return rows @ low_logits @ cols.T


def lovasz_softmax(
    low_logits: torch.Tensor,
    target: torch.Tensor,
    align_corners: bool,
    stride: int = 4,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Lovász-softmax loss (Berman et al., CVPR 2018), a surrogate of 1 − mIoU (convex in the class
    probabilities), on the pixels ``[o::stride, o::stride]`` of
    ``bilinear_upsample(low_logits, target.shape[-2:])``.

    As MMSegmentation's ``LovaszLoss`` with ``per_image=False, classes='present'``: averaged over
    the classes labelled among those pixels, the batch pooled as one image; unweighted (the IoU
    already counts every class alike). Cross-entropy trains every pixel alike; this loss weighs a
    class's errors by what they cost its IoU, so small classes count as much as road. ``stride``
    subsamples the pixels because the loss sorts them once per class: on this project's 2-core
    CPU, for a 4×384×768 batch, 0.65 s at stride 2 (295k pixels) and 0.14 s at stride 4 against
    0.17 s for the full-resolution cross-entropy. Autograd keeps ≈ 400 bytes per sampled pixel for
    the backward pass (19 classes present): ≈ 1.6 GB for 16×1024×1024 crops at stride 2.
    """
    offset = stride // 2
    if offset >= min(target.shape[-2:]):
        raise ValueError(f"stride {stride} samples no pixel of a {tuple(target.shape[-2:])} target")
    with torch.autocast(low_logits.device.type, enabled=False):
        logits = sampled_upsample(low_logits.to(_acc_dtype(low_logits)), target.shape[-2:], align_corners, stride)
        labels = target[:, offset::stride, offset::stride].reshape(-1).long()
        probs = logits.softmax(1).permute(1, 0, 2, 3).reshape(logits.shape[1], -1)  # C × pixels
        valid = labels != ignore_index
        return lovasz_softmax_flat(probs[:, valid], labels[valid])


def lovasz_softmax_flat(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovász-softmax of class probabilities ``probs`` (C, P) against ``labels`` (P,) over the
    classes present in ``labels``: for each, the Lovász extension of the Jaccard loss evaluated at
    the pixel errors ``|[label = c] − p_c|`` (sorted, dotted with the Jaccard loss's increments)."""
    if labels.numel() == 0:
        return probs.sum() * 0.0  # keeps the graph: a batch with no labelled pixel adds nothing
    classes = torch.bincount(labels, minlength=probs.shape[0]).nonzero()[:, 0]
    foreground = (labels[None] == classes[:, None]).to(probs.dtype)  # K × P
    errors = (foreground - probs[classes]).abs()
    errors, order = errors.sort(dim=1, descending=True)
    foreground = foreground.gather(1, order)
    labelled = foreground.sum(1, keepdim=True)
    # Jaccard loss of the i largest errors: 1 − |y ∖ errors| / |y ∪ errors|
    jaccard = 1.0 - (labelled - foreground.cumsum(1)) / (labelled + (1.0 - foreground).cumsum(1))
    increments = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)
    return (errors * increments).sum(1).mean()


def log_class_weights(frequencies, c: float = 1.10) -> torch.Tensor:
    """ENet/ERFNet class weighting ``1 / ln(c + p_class)`` from pixel frequencies ``p``.

    ENet uses c = 1.02; ERFNet (which VNet's modules come from) 1.10, a milder balance (weights
    between ~3 and ~10.5 instead of ~3 and ~50). Thin classes (poles, signs, lights) cover a
    fraction of a percent of the pixels and are otherwise learned last.
    """
    p = torch.as_tensor(frequencies, dtype=torch.float64)
    p = p / p.sum().clamp_min(1)
    return (1.0 / torch.log(c + p)).float()
