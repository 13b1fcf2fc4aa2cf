"""Building blocks shared by the architectures and the common segmentation-network interface."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5


class ConvBNAct(nn.Sequential):
    """k×k convolution (no bias) → BatchNorm → optional ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size=3, stride=1, dilation=1, relu=True):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        layers = [
            nn.Conv2d(in_ch, out_ch, (kh, kw), stride, ((kh // 2) * dh, (kw // 2) * dw), (dh, dw), bias=False),
            nn.BatchNorm2d(out_ch, eps=BN_EPS),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SeparableConv(nn.Sequential):
    """Depthwise 3×3 → pointwise 1×1 → BN → optional ReLU.

    No BN or activation between the depthwise and the pointwise conv (NDNet authors' code).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, relu: bool = True):
        layers = [
            nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch, eps=BN_EPS),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def zero_padded_conv(conv: nn.Conv2d, in_ch: int, out_ch: int) -> nn.Conv2d:
    """A copy of ``conv`` with more input / output channels whose extra weights are zero (and, for
    a depthwise conv, extra groups), so it computes the same outputs plus zero channels."""
    depthwise = conv.groups == conv.in_channels and conv.groups > 1
    padded = nn.Conv2d(
        in_ch, out_ch, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
        groups=out_ch if depthwise else conv.groups, bias=conv.bias is not None,
    )  # fmt: skip
    with torch.no_grad():
        padded.weight.zero_()
        padded.weight[: conv.out_channels, : conv.weight.shape[1]] = conv.weight
        if conv.bias is not None:
            padded.bias.zero_()
            padded.bias[: conv.out_channels] = conv.bias
    return padded


def zero_padded_bn(bn: nn.BatchNorm2d, channels: int) -> nn.BatchNorm2d:
    """A copy of ``bn`` with extra channels that map anything to exactly 0 (weight and bias 0)."""
    padded = nn.BatchNorm2d(channels, eps=bn.eps, momentum=bn.momentum)
    with torch.no_grad():
        padded.weight.zero_()
        padded.bias.zero_()
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(padded, name)[: bn.num_features] = getattr(bn, name)
    padded.num_batches_tracked.copy_(bn.num_batches_tracked)
    return padded.train(bn.training)


def kaiming_init(module: nn.Module) -> None:
    """Kaiming-normal convs, unit BN: the from-scratch initialisation both papers train with."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SegmentationNet(nn.Module):
    """Interface every registered network follows.

    Subclasses set ``self.head`` (low-resolution classifier), optionally ``self.aux_head``
    (training-only), and implement :meth:`encode`; a decoder with more heads (NDNet's FCN8)
    overrides :meth:`decode`, :meth:`head_modules` and :meth:`optional_heads`. ``forward``
    returns logits at the input resolution; :meth:`forward_lowres` returns them at
    1/``output_stride`` so that an inference engine can do its own (cheaper) upsample + argmax
    with the same ``align_corners``. Input sizes are multiples of :attr:`input_multiple`.
    """

    output_stride: int = 32
    align_corners: bool = False
    # Train in channels_last on the CPU too (oneDNN: NDNet45 forward+backward 0.27 s/batch vs 0.38 contiguous).
    cpu_channels_last: bool = True
    head: nn.Module
    aux_head: nn.Module | None

    def __init__(self, num_classes: int):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.aux_head = None  # an instance attribute: a class-level None would shadow the submodule

    @property
    def input_multiple(self) -> int:
        """Input sides must be multiples of this so that every downsampling stage is exact: the
        backbone's total stride (larger than ``output_stride`` when a decoder upsamples)."""
        return self.output_stride

    def encode(self, x: torch.Tensor):
        """Return (features for :meth:`decode`, features for the aux head or None)."""
        raise NotImplementedError

    def head_modules(self) -> dict[str, nn.Module]:
        """The classifier heads by attribute name (those a fine-tuning start may lack are
        :meth:`optional_heads`)."""
        heads = {"head": self.head, "aux_head": self.aux_head}
        return {name: m for name, m in heads.items() if m is not None}

    def classifier_keys(self) -> set[str]:
        """State-dict keys of each head's last convolution: one row per class (what a transfer to
        another class set carries over by class name)."""
        keys = set()
        for name, head in self.head_modules().items():
            sub, conv = [(n, m) for n, m in head.named_modules() if isinstance(m, nn.Conv2d)][-1]
            prefix = f"{name}.{sub}." if sub else f"{name}."
            keys.add(prefix + "weight")
            if conv.bias is not None:
                keys.add(prefix + "bias")
        return keys

    def optional_heads(self) -> set[str]:
        """Heads a weights file may lack when it starts a fine-tuning run (they keep their fresh
        initialisation): the training-only auxiliary head, which deployment weights drop."""
        return {"aux_head"}

    def backbone_parameters(self):
        """Parameters of the feature extractor (everything except the heads)."""
        heads = {id(p) for m in self.head_modules().values() for p in m.parameters()}
        return (p for p in self.parameters() if id(p) not in heads)

    def with_channel_multiple(self, multiple: int) -> SegmentationNet:
        """An equivalent network (same logits) whose narrow layers carry extra all-zero channels up
        to a multiple of ``multiple``, for inference runtimes whose blocked layouts need that (see
        :meth:`NDNet.with_channel_multiple`). The base class has nothing to pad: ``self``."""
        return self

    def upsample(self, logits: torch.Tensor, size) -> torch.Tensor:
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=self.align_corners)

    def decode(self, feats) -> torch.Tensor:
        """Logits at 1/``output_stride`` from :meth:`encode`'s main features."""
        return self.head(feats)

    def forward_lowres(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])

    def forward(self, x: torch.Tensor, return_aux: bool = False, full_resolution: bool = True):
        """Logits at the input resolution, or at 1/``output_stride`` with ``full_resolution=False``
        (training pairs that with :func:`narrow_seg_ros.training.losses.upsampled_cross_entropy`). With
        ``return_aux=True`` returns ``(logits, aux_logits)``; the aux logits are at their own
        stride when not upsampled."""
        feats, aux_feats = self.encode(x)
        out = self.decode(feats)
        aux = None
        if return_aux:
            if self.aux_head is None or aux_feats is None:
                raise ValueError(f"{type(self).__name__} was built without an auxiliary head")
            aux = self.aux_head(aux_feats)
        if full_resolution:
            size = x.shape[-2:]
            out = self.upsample(out, size)
            aux = None if aux is None else self.upsample(aux, size)
        return (out, aux) if return_aux else out
