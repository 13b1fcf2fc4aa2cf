"""Reversible additive coupling (RevNet, Gomez et al. 2017) with activation-free backprop.

A :class:`ReversibleStack` runs its coupling blocks inside one autograd Function that saves only
the stack's output. In backward each block's input is recomputed from its output
(x2 = y2 − G(y1), x1 = y1 − F(x2)) while the same F/G evaluations give the gradients, so the
activations inside F and G are never kept. ``reversible=False`` runs plain autograd for comparison.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn


def halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel halves as views (slicing, not ``chunk``: exports to ONNX Slice at any opset)."""
    c = x.shape[1] // 2
    return x[:, :c], x[:, c:]


class AdditiveCoupling(nn.Module):
    """y1 = x1 + F(x2); y2 = x2 + G(y1) on the two channel halves of x."""

    def __init__(self, f: nn.Module, g: nn.Module):
        super().__init__()
        self.f, self.g = f, g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = halves(x)
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = halves(y)
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2)
        return torch.cat([x1, x2], dim=1)

    def backward_pass(self, y1, y2, dy1, dy2, grads: dict[int, torch.Tensor]):
        """Reconstruct this block's input halves from its output halves and back-propagate.

        Works on halves (no concatenation) and drops each recomputed graph as soon as its
        gradient is taken, so the transient memory is one branch's activations. Parameter
        gradients are accumulated into ``grads`` (keyed by ``id(param)``). Returns (x1, x2, dx1, dx2).
        """
        with torch.enable_grad():
            z1 = y1.detach().requires_grad_(True)
            g_out = self.g(z1)
        dz1 = _grad_into(g_out, z1, self.g, dy2, grads)
        with torch.no_grad():
            x2 = y2 - g_out
            del g_out
            dz1 += dy1
        with torch.enable_grad():
            x2.requires_grad_(True)
            f_out = self.f(x2)
        dx2 = _grad_into(f_out, x2, self.f, dz1, grads)
        with torch.no_grad():
            x1 = y1 - f_out
            dx2 += dy2
        return x1, x2.detach(), dz1, dx2


def _grad_into(out, inp, module, grad_out, grads):
    params = [p for p in module.parameters() if p.requires_grad]
    results = torch.autograd.grad(out, [inp, *params], grad_out, allow_unused=True)
    for p, g in zip(params, results[1:]):
        if g is not None:
            grads[id(p)] = g if id(p) not in grads else grads[id(p)] + g
    return results[0]


@contextlib.contextmanager
def _bn_stats_frozen(module: nn.Module):
    """Recomputation must not update BatchNorm running statistics a second time."""
    saved = [
        (m, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    try:
        yield
    finally:
        for m, mean, var, count in saved:
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(count)


class _ReversibleFunction(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x, stack, *params):
        with torch.no_grad():
            y = x
            for block in stack.blocks:
                y = block(y)
        ctx.stack = stack
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        stack = ctx.stack
        grads: dict[int, torch.Tensor] = {}
        y1, y2 = halves(y)
        dy1, dy2 = halves(dy)
        del y, dy
        with _bn_stats_frozen(stack):
            for block in reversed(stack.blocks):
                y1, y2, dy1, dy2 = block.backward_pass(y1, y2, dy1, dy2, grads)
        param_grads = [grads.get(id(p)) for p in stack.parameters()]
        return (torch.cat([dy1, dy2], dim=1), None, *param_grads)


class ReversibleStack(nn.Module):
    """A sequence of :class:`AdditiveCoupling` blocks trained without storing their activations."""

    def __init__(self, blocks: list[AdditiveCoupling], reversible: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.reversible = reversible

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reversible and len(self.blocks) and torch.is_grad_enabled() and self.training:
            return _ReversibleFunction.apply(x, self, *self.parameters())
        for block in self.blocks:
            x = block(x)
        return x
