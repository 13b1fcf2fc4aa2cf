"""NDNet: narrow deep networks cast to FCN32.

Yang et al., "Real time backbone for semantic segmentation" (paper in shared/papers). Table I
gives the three backbones (29, 45, 61 layers, expansion e = 4); Table II adds the narrower e = 2
rows. Structure details the paper leaves out follow the authors' code (zgyang-hnu/NDNet):

* separable unit = depthwise 3×3 → pointwise 1×1 → BN (eps 1e-5) → optional ReLU;
* narrow bottleneck = separable(in → mid, stride s, ReLU) → separable(mid → e·mid, no ReLU),
  plus an identity shortcut, or a separable(in → e·mid, stride s, no ReLU) projection in the first
  layer of each block; output = ReLU(residual + shortcut);
* stem = 3×3 conv stride 2 (3 → 8) + BN + ReLU, then 3×3 max-pool stride 2 (1/4);
* block1/2/3 downsample in their first layer → 1/8, 1/16, 1/32;
* FCN32 head = separable(C → 64, ReLU) → 1×1 conv with bias; bilinear ×32. The optional aux head
  (training only) is the same with 128 channels on block2's output (×16, loss weight 0.4).

``head="fcn8"`` (not in the paper, which presents NDNet as a backbone and casts it to "the simplest
segmentation structure" only): the FCN-8s decoder of Long et al. (CVPR 2015, Sec. 4.2) on top —
the stride-32 logits upsampled ×2 and added to logits scored from block2 (1/16), the sum upsampled
×2 and added to logits scored from block1 (1/8); output stride 8. Each skip is scored by a head
like the main one, whose classifier starts at zero (as FCN-8s initialises its skip scores), so a
network fine-tuned from FCN32 weights starts from their predictions (up to the two intermediate
bilinear steps). An FCN32 logit spans 32×32 input pixels, wider than most poles, lights and
bicycle frames; the 1/8 logits span 8×8. Cost (NDNet45, 19 classes, 1024×2048): 417K parameters
and 2.26 GMAC against FCN32's 400K and 1.98 (+14 %; ``narrow-seg info ndnet45 --option head=fcn8``).

Choice: logits are upsampled with ``align_corners=True`` (the convention of the authors' era of
PyTorch code); the value is stored on the model so engines reproduce it exactly.

Parameter counts with 19 classes (no aux head), measured by ``narrow-seg info``: backbone
380K (NDNet45; paper Table II: 386K), FCN32 totals 521K / 400K / 307K for NDNet29 / 45 / 61.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from .base import ConvBNAct, SegmentationNet, SeparableConv, kaiming_init, zero_padded_bn, zero_padded_conv
from .registry import register_model

# name → (mid channels per block, layers per block), paper Table I.
NDNET_CONFIGS = {
    29: ((24, 48, 96), (3, 8, 3)),
    45: ((16, 32, 64), (4, 12, 6)),
    61: ((12, 24, 48), (6, 16, 8)),
}
STEM_CHANNELS = 8
HEAD_CHANNELS = 64
AUX_HEAD_CHANNELS = 128


class NarrowBottleneck(nn.Module):
    """The paper's Fig. 3(b) residual layer: two separable convs that narrow then restore width."""

    def __init__(self, in_ch: int, mid: int, expansion: int, stride: int = 1):
        super().__init__()
        out_ch = mid * expansion
        self.unit_a = SeparableConv(in_ch, mid, stride, relu=True)
        self.unit_b = SeparableConv(mid, out_ch, 1, relu=False)
        needs_projection = stride != 1 or in_ch != out_ch
        self.shortcut = SeparableConv(in_ch, out_ch, stride, relu=False) if needs_projection else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.unit_b(self.unit_a(x)) + self.shortcut(x))


class FCNHead(nn.Sequential):
    """separable 3×3 (context) → 1×1 classifier with bias (paper Sec. II-C, after DeepLab)."""

    def __init__(self, in_ch: int, mid: int, num_classes: int):
        super().__init__(SeparableConv(in_ch, mid, relu=True), nn.Conv2d(mid, num_classes, 1))


HEADS = ("fcn32", "fcn8")


class NDNet(SegmentationNet):
    """FCN32-NDNet (or FCN8 with ``head="fcn8"``). ``depth`` ∈ {29, 45, 61}; ``expansion`` 4
    (Table I) or 2 (Table II)."""

    output_stride = 32

    def __init__(
        self,
        depth: int = 45,
        expansion: int = 4,
        num_classes: int = 19,
        aux_head: bool = False,
        align_corners: bool = True,
        head: str = "fcn32",
    ):
        super().__init__(num_classes)
        if depth not in NDNET_CONFIGS:
            raise ValueError(f"NDNet depth must be one of {sorted(NDNET_CONFIGS)}, got {depth}")
        if head not in HEADS:
            raise ValueError(f"NDNet head must be one of {HEADS}, got {head!r}")
        if expansion < 1:
            raise ValueError(f"expansion must be >= 1, got {expansion}")
        mids, layers = NDNET_CONFIGS[depth]
        self.depth, self.expansion, self.align_corners = depth, expansion, align_corners
        self.stem = nn.Sequential(ConvBNAct(3, STEM_CHANNELS, 3, stride=2), nn.MaxPool2d(3, stride=2, padding=1))
        in_ch = STEM_CHANNELS
        blocks = []
        for mid, n in zip(mids, layers):
            block = [NarrowBottleneck(in_ch, mid, expansion, stride=2)]
            block += [NarrowBottleneck(mid * expansion, mid, expansion) for _ in range(n - 1)]
            blocks.append(nn.Sequential(*block))
            in_ch = mid * expansion
        self.block1, self.block2, self.block3 = blocks
        self.out_channels = in_ch
        self.head = FCNHead(in_ch, HEAD_CHANNELS, num_classes)
        self.aux_head = FCNHead(mids[1] * expansion, AUX_HEAD_CHANNELS, num_classes) if aux_head else None
        self.head_type = head
        self.skip16 = self.skip8 = None
        if head == "fcn8":
            self.output_stride = 8
            self.skip16 = FCNHead(mids[1] * expansion, HEAD_CHANNELS, num_classes)
            self.skip8 = FCNHead(mids[0] * expansion, HEAD_CHANNELS, num_classes)
        kaiming_init(self)
        for skip in (self.skip16, self.skip8):
            if skip is not None:  # zero skip scores: the decoder starts as FCN32 (FCN-8s' init)
                nn.init.zeros_(skip[-1].weight)
                nn.init.zeros_(skip[-1].bias)

    def encode(self, x):
        low = self.block1(self.stem(x))
        mid = self.block2(low)
        high = self.block3(mid)
        return (high if self.skip8 is None else (high, mid, low)), mid

    def decode(self, feats) -> torch.Tensor:
        if self.skip8 is None:
            return self.head(feats)
        high, mid, low = feats
        logits = self.upsample(self.head(high), mid.shape[-2:]) + self.skip16(mid)
        return self.upsample(logits, low.shape[-2:]) + self.skip8(low)

    def head_modules(self) -> dict[str, nn.Module]:
        heads = super().head_modules()
        if self.skip8 is not None:
            heads.update(skip16=self.skip16, skip8=self.skip8)
        return heads

    def optional_heads(self) -> set[str]:
        """FCN8's skip heads may start fresh too: an FCN8 run can start from FCN32 weights."""
        skips = {"skip16", "skip8"} if self.skip8 is not None else set()
        return super().optional_heads() | skips

    @property
    def input_multiple(self) -> int:
        return 32  # block3's stride, whatever the head

    def extra_repr(self) -> str:
        return f"depth={self.depth}, expansion={self.expansion}, head={self.head_type}"

    def with_channel_multiple(self, multiple: int) -> NDNet:
        """The same network with the 8-channel stem widened by zero channels to ``multiple``.

        In NDNet45 every other width is a multiple of 16; the stem's 8 are not, so on AVX-512 CPUs
        (blocks of 16) onnxruntime converts the stem's output out of its NCHWc layout and back and
        runs the max-pool in plain NCHW: NDNet45 at 1024x2048 took 62 ms instead of 49. (NDNet29
        and 61 have 24- and 12-channel layers too, which this leaves alone.) The extra channels
        are 0 after the stem (BN weight and bias 0, ReLU, max-pool) and enter block1 through zero
        weights, so the logits are unchanged up to float summation order.
        """
        width = -(-STEM_CHANNELS // multiple) * multiple
        if width == STEM_CHANNELS:
            return self
        padded = copy.deepcopy(self)
        stem_conv = padded.stem[0]
        stem_conv[0] = zero_padded_conv(stem_conv[0], stem_conv[0].in_channels, width)
        stem_conv[1] = zero_padded_bn(stem_conv[1], width)
        first = padded.block1[0]
        for unit in (first.unit_a, first.shortcut):  # both read the stem's output
            unit[0] = zero_padded_conv(unit[0], width, width)
            unit[1] = zero_padded_conv(unit[1], width, unit[1].out_channels)
        return padded


def _ndnet(depth: int, expansion: int, num_classes: int, **options) -> NDNet:
    return NDNet(depth=depth, expansion=expansion, num_classes=num_classes, **options)


@register_model
def ndnet29(num_classes: int = 19, **options) -> NDNet:
    """NDNet29 (Table I; 515K backbone params per Table II), e = 4, widths 96/192/384."""
    return _ndnet(29, 4, num_classes, **options)


@register_model
def ndnet45(num_classes: int = 19, **options) -> NDNet:
    """NDNet45 (Table I; 386K backbone params, 60.6 % val mIoU per Table II), widths 64/128/256."""
    return _ndnet(45, 4, num_classes, **options)


@register_model
def ndnet61(num_classes: int = 19, **options) -> NDNet:
    """NDNet61 (Table I; 292K backbone params per Table II), e = 4, widths 48/96/192."""
    return _ndnet(61, 4, num_classes, **options)


@register_model
def ndnet29_e2(num_classes: int = 19, **options) -> NDNet:
    """NDNet29 with e = 2 (Table II, max width 192)."""
    return _ndnet(29, 2, num_classes, **options)


@register_model
def ndnet45_e2(num_classes: int = 19, **options) -> NDNet:
    """NDNet45 with e = 2 (Table II, max width 128)."""
    return _ndnet(45, 2, num_classes, **options)


@register_model
def ndnet61_e2(num_classes: int = 19, **options) -> NDNet:
    """NDNet61 with e = 2 (Table II, max width 96)."""
    return _ndnet(61, 2, num_classes, **options)
