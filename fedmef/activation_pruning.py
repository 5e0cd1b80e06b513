"""Scaled activation pruning, SAP (FedMef §3.3, Eq. 7–9).

Two parts:

* ``sap_conv2d`` — a convolution that saves for backward only the top-k of its input by
  magnitude (per sample; drop fraction gamma = 1 - keep), as values + int32 positions. The
  gradient w.r.t. the input is exact (it needs only the weight); the gradient w.r.t. the weight
  is computed from the decompressed input. Built with ``torch.library.custom_op`` so that it
  survives ``torch.export`` (an ``autograd.Function`` does not).
* ``MaskedConv2d`` / ``MaskedLinear`` — prunable layers holding their mask. With ``scaled=True``
  the conv is an NSConv: BN-free, scaled weight standardisation
  ``W_hat = g (W - mean) / sqrt(max(Var * fan_in, 1e-4))`` per output channel, statistics over
  the active weights only, learnable gain g, and the mask applied after standardisation so
  pruned weights stay exactly zero. Well-scaled activations are what make dropping the small
  ones cheap.

``effective_weight`` is the one definition of what a prunable layer multiplies by; pruning,
marking and the BaE penalty all rank or penalise it (FedMef §3.2), never the raw weight.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def compress(x: Tensor, keep: float) -> tuple[Tensor, Tensor]:
    """Per-sample top-k by magnitude: values (N, k) and int32 flat positions (N, k).

    Ties at the k-th magnitude keep the smaller flat position, as ONNX's TopK does, so the eager
    reference and the exported graphs save the same activations (a stable sort, not ``topk``,
    whose tie order is unspecified).
    """
    flat = x.reshape(x.shape[0], -1)
    k = kept_count(flat.shape[1], keep)
    positions = flat.abs().sort(dim=1, descending=True, stable=True).indices[:, :k]
    return flat.gather(1, positions), positions.to(torch.int32)


def decompress(values: Tensor, positions: Tensor, shape: list[int]) -> Tensor:
    """Scatter the kept values back into a zero tensor of ``shape``."""
    flat = values.new_zeros(shape[0], math.prod(shape[1:]))
    return flat.scatter(1, positions.long(), values).reshape(shape)


def kept_count(numel: int, keep: float) -> int:
    # the epsilon absorbs float noise: keep = 1 - 0.7 gives 0.30000000000000004, and 10 of those is not 4
    return max(1, min(numel, math.ceil(keep * numel - 1e-9)))


@torch.library.custom_op("fedmef::sap_conv2d", mutates_args=())
def sap_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: list[int],
    padding: list[int],
    groups: int,
    keep: float,
) -> Tensor:
    return F.conv2d(x, weight, bias, stride, padding, 1, groups)


@sap_conv2d.register_fake
def _(x, weight, bias, stride, padding, groups, keep):
    return F.conv2d(x, weight, bias, stride, padding, 1, groups)


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias, stride, padding, groups, keep = inputs
    values, positions = compress(x.detach(), keep)
    ctx.save_for_backward(values, positions, weight)
    ctx.input_shape = list(x.shape)
    ctx.conv = (stride, padding, groups)
    ctx.has_bias = bias is not None


def _backward(ctx, grad: Tensor):
    values, positions, weight = ctx.saved_tensors
    stride, padding, groups = ctx.conv
    x_hat = decompress(values, positions, ctx.input_shape)
    mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias]
    bias_sizes = [weight.shape[0]] if ctx.has_bias else None
    gx, gw, gb = torch.ops.aten.convolution_backward(
        grad, x_hat, weight, bias_sizes, stride, padding, [1, 1], False, [0, 0], groups, mask
    )
    return gx, gw, gb, None, None, None, None


sap_conv2d.register_autograd(_backward, setup_context=_setup_context)


def standardize(weight: Tensor, mask: Tensor, gain: Tensor, eps: float = 1e-4) -> Tensor:
    """Scaled weight standardisation over each output channel's active weights, re-masked."""
    dims = list(range(1, weight.dim()))
    fan_in = mask.sum(dim=dims, keepdim=True).clamp(min=1)
    mean = (weight * mask).sum(dim=dims, keepdim=True) / fan_in
    var = (((weight - mean) * mask) ** 2).sum(dim=dims, keepdim=True) / fan_in
    return gain * (weight - mean) * torch.rsqrt(torch.clamp(var * fan_in, min=eps)) * mask


def effective_weight(layer: Prunable, detach_gain: bool = False) -> Tensor:
    """What ``layer``'s forward pass multiplies by: for an NSConv the standardised, masked weight,
    for a plain layer the masked weight.

    ``detach_gain``: the BaE penalty takes the gain as a constant, so it moves weight within a
    channel instead of shrinking the channel's gain (which would scale every weight of it alike).
    """
    gain = getattr(layer, "gain", None)
    if gain is None:
        return layer.weight * layer.mask
    return standardize(layer.weight, layer.mask, gain.detach() if detach_gain else gain)


class Prunable:
    """A layer with a ``weight``, a same-shaped boolean-valued ``mask`` buffer, ``used_weight()``.

    ``used_weight()`` is the tensor the layer actually multiplies with (``effective_weight``); its
    gradient at inactive positions is the growth signal of dynamic sparse training.
    """

    weight: nn.Parameter
    mask: Tensor
    #: set by ``capture_used_weights``: forward keeps the used weight so its gradient can be read
    captured: Tensor | None = None
    capture: bool = False

    def used_weight(self) -> Tensor:
        return effective_weight(self)

    def _weight_for_forward(self) -> Tensor:
        weight = self.used_weight()
        if self.capture:
            self.captured = weight
        return weight


class MaskedConv2d(nn.Conv2d, Prunable):
    """Conv2d with a mask; ``scaled`` makes it an NSConv, ``keep < 1`` makes it a SAP conv."""

    def __init__(self, *args, scaled: bool = False, keep: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"keep fraction must be in (0, 1], got {keep}")
        if self.dilation != (1, 1) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("MaskedConv2d supports integer zero padding and no dilation")
        self.register_buffer("mask", torch.ones_like(self.weight))
        self.scaled = scaled
        self.keep = keep
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1)) if scaled else None

    def forward(self, x: Tensor) -> Tensor:
        weight = self._weight_for_forward()
        if self.keep < 1.0 and self.training:
            return sap_conv2d(x, weight, self.bias, list(self.stride), list(self.padding), self.groups, self.keep)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, 1, self.groups)


class MaskedLinear(nn.Linear, Prunable):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("mask", torch.ones_like(self.weight))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self._weight_for_forward(), self.bias)
