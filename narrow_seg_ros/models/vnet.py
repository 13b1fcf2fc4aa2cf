"""VNet: reversible, asymmetric-conv network for full-resolution training.

Lin et al., "VNet: A Versatile Network for Efficient Real-Time Semantic Segmentation" (paper in
shared/papers; Table 2: α = 1, β = 2, 0.16M params, 63.93 % Cityscapes test mIoU, 37.4 FPS at
1024×2048 on a Titan Xp). No public code exists; this is a first implementation.

From the paper: stage 1 = three 3×3 convs with 8 channels at 1/2; stage 2 = CPP to 1/4 and α V
modules; stage 3 = CPP to 1/8 and β V modules; CPP concatenates a stride-2 point-wise conv with the
sum of pyramid-pooling branches; a V module is a RevNet additive coupling whose F and G are
asymmetric convs (3×1 then 1×3, optionally dilated), trained by recomputing inputs from outputs.

Choices where the paper is silent (each is a constructor option):

* ``widths = (8, 32, 112)``: channels after stage 1, 2 and 3. Like ERFNet's downsampler, the CPP's
  pooled branch keeps the input channels and the 1×1 stride-2 conv adds ``out - in``. With 19
  classes this gives 165K parameters (paper: 0.16M, +3.3 %).
* ``pool_windows = (3, 5, 7)``: average pools at stride 2 with padding k//2 (so all branches have
  the same size) and ``count_include_pad=False`` (borders are not darkened); summed. CPP ends with
  BN + ReLU, as ERFNet's downsampler does.
* F and G = ERFNet's non-bottleneck-1D without its residual (the coupling is the residual):
  3×1 → 1×3 → 3×1 → 1×3, each conv followed by BN and all but the last by ReLU (no final ReLU so
  the additive update can be negative); the second pair is dilated by the module's rate. No
  dropout, so recomputation in backward is exact.
* dilation rates: 1 in stage 2; ``stage3_dilations = (2, 4, 8, 16)`` cycled over the β modules
  (ERFNet's schedule), giving context at 1/8 without more parameters.
* stage-1 convs: the first has stride 2; each is conv → BN → ReLU.
* head: 1×1 conv with bias on stage 3 (output stride 8), bilinear ×8 with ``align_corners=False``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .base import ConvBNAct, SegmentationNet, kaiming_init
from .registry import register_model
from .reversible import AdditiveCoupling, ReversibleStack


class ContextualPyramidPooling(nn.Module):
    """CPP downsampler (paper Fig. 2b): [1×1 conv stride 2 ‖ Σ pyramid pools] → BN → ReLU."""

    def __init__(self, in_ch: int, out_ch: int, pool_windows=(3, 5, 7)):
        super().__init__()
        if out_ch <= in_ch:
            raise ValueError(f"CPP needs out_ch > in_ch (pooled branch keeps {in_ch}), got {out_ch}")
        self.conv = nn.Conv2d(in_ch, out_ch - in_ch, 1, stride=2, bias=False)
        self.pools = nn.ModuleList(
            nn.AvgPool2d(k, stride=2, padding=k // 2, count_include_pad=False) for k in pool_windows
        )
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pools[0](x)
        for pool in self.pools[1:]:
            pooled = pooled + pool(x)
        return self.relu(self.bn(torch.cat([self.conv(x), pooled], dim=1)))


class AsymmetricBranch(nn.Sequential):
    """F or G of a V module, ERFNet's non-bottleneck-1D factorisation.

    3×1 → BN → ReLU → 1×3 → BN → ReLU → 3×1 (dilated) → BN → ReLU → 1×3 (dilated) → BN.
    """

    def __init__(self, channels: int, dilation: int = 1):
        super().__init__(
            ConvBNAct(channels, channels, (3, 1), relu=True),
            ConvBNAct(channels, channels, (1, 3), relu=True),
            ConvBNAct(channels, channels, (3, 1), dilation=(dilation, 1), relu=True),
            ConvBNAct(channels, channels, (1, 3), dilation=(1, dilation), relu=False),
        )


def v_module(channels: int, dilation: int) -> AdditiveCoupling:
    """V module (paper Fig. 4): reversible coupling of two asymmetric branches on channel halves."""
    if channels % 2:
        raise ValueError(f"V module needs an even channel count, got {channels}")
    half = channels // 2
    return AdditiveCoupling(AsymmetricBranch(half, dilation), AsymmetricBranch(half, dilation))


class VNet(SegmentationNet):
    """VNet(α, β). See the module docstring for every choice the paper leaves open."""

    output_stride = 8
    # torch 2.13's CPU kernels corrupt the heap in VNet's backward pass in channels_last (double
    # free / segfault, reversible or not): contiguous on the CPU, channels_last on CUDA only.
    cpu_channels_last = False

    def __init__(
        self,
        num_classes: int = 19,
        alpha: int = 1,
        beta: int = 2,
        widths: tuple[int, int, int] = (8, 32, 112),
        pool_windows: tuple[int, ...] = (3, 5, 7),
        stage2_dilations: tuple[int, ...] = (1,),
        stage3_dilations: tuple[int, ...] = (2, 4, 8, 16),
        reversible: bool = True,
        align_corners: bool = False,
    ):
        super().__init__(num_classes)
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got {alpha}, {beta}")
        c1, c2, c3 = widths
        self.alpha, self.beta, self.align_corners = alpha, beta, align_corners
        self.stage1 = nn.Sequential(ConvBNAct(3, c1, 3, stride=2), ConvBNAct(c1, c1, 3), ConvBNAct(c1, c1, 3))
        self.down2 = ContextualPyramidPooling(c1, c2, pool_windows)
        self.stage2 = ReversibleStack(
            [v_module(c2, stage2_dilations[i % len(stage2_dilations)]) for i in range(alpha)], reversible
        )
        self.down3 = ContextualPyramidPooling(c2, c3, pool_windows)
        self.stage3 = ReversibleStack(
            [v_module(c3, stage3_dilations[i % len(stage3_dilations)]) for i in range(beta)], reversible
        )
        self.out_channels = c3
        self.head = nn.Conv2d(c3, num_classes, 1)
        kaiming_init(self)

    @property
    def reversible(self) -> bool:
        return self.stage2.reversible

    @reversible.setter
    def reversible(self, value: bool) -> None:
        self.stage2.reversible = self.stage3.reversible = bool(value)

    def encode(self, x):
        x = self.stage2(self.down2(self.stage1(x)))
        return self.stage3(self.down3(x)), None


@register_model
def vnet(num_classes: int = 19, **options) -> VNet:
    """VNet (α = 1, β = 2 by default; paper Table 2: 0.16M params)."""
    return VNet(num_classes=num_classes, **options)
