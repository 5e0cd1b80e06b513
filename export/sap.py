"""SAP convolutions for exported training graphs (FedMef §3.3, Eq. 7–9).

The eager model uses ``fedmef::sap_conv2d`` (a custom op whose backward calls
``aten.convolution_backward``). Exported graphs are traced forward + backward with ``make_fx``;
``convolution_backward`` does not export to ONNX, so here the same semantics are written as
``autograd.Function``s whose backward uses only forward convolutions (they are traced, not
exported, so a ``Function`` is fine):

* grad input  = conv_transpose(grad, W)                          (exact, needs no activation)
* grad weight = conv(x, grad) with dilation = stride              (x: the saved, compressed input)

What is saved for backward is an :class:`Encoding` of the input: ``dense`` (plain conv),
``int32`` (per-sample top-k values + int32 positions, as in the eager op) or ``bits`` (values in
position order + a 1-bit-per-element keep mask). ``SapRelu`` fuses a ReLU whose output only feeds
SAP convs: its backward mask is taken from the compressed copy (exact whenever every positive
activation is kept, an approximation otherwise) so the dense ReLU output is not kept alive.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from fedmef.activation_pruning import kept_count

ENCODINGS = ("dense", "int32", "bits")


def filled(like: Tensor, shape: list[int] | torch.Size, value: float = 0.0) -> Tensor:
    """A constant tensor expanded from one element of ``like``: exporters would otherwise write
    ``zeros(shape)`` into the file as a dense constant."""
    one = torch.full_like(like.reshape(-1)[:1], value)
    return one.expand(math.prod(shape)).reshape(shape)


class Compressed:
    """A saved activation: the tensors autograd keeps plus how to rebuild the dense input."""

    def __init__(self, encoding: str, shape: list[int], tensors: tuple[Tensor, ...]):
        self.encoding, self.shape, self.tensors = encoding, shape, tensors

    @staticmethod
    def of(x: Tensor, encoding: str, keep: float) -> Compressed:
        shape = list(x.shape)
        if encoding == "dense" or keep >= 1.0:
            return Compressed("dense", shape, (x,))
        flat = x.reshape(shape[0], -1)  # (N, D)
        k = kept_count(flat.shape[1], keep)
        positions = flat.abs().topk(k, dim=1, sorted=False).indices  # (N, k) int64
        if encoding == "int32":
            return Compressed("int32", shape, (flat.gather(1, positions), positions.to(torch.int32)))
        if encoding == "bits":
            return Compressed("bits", shape, _pack_bits(flat, positions))
        raise ValueError(f"unknown encoding {encoding!r}; choose one of {ENCODINGS}")

    def dense(self) -> Tensor:
        if self.encoding == "dense":
            return self.tensors[0]
        if self.encoding == "int32":
            values, positions = self.tensors
            zeros = filled(values, [self.shape[0], math.prod(self.shape[1:])])
            return zeros.scatter(1, positions.long(), values).reshape(self.shape)
        return _unpack_bits(*self.tensors, self.shape)


def _pack_bits(flat: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
    """Values in ascending position order (N, k) and the keep mask packed 8 per byte (N, D/8)."""
    n, d = flat.shape
    ordered = (-positions).topk(positions.shape[1], dim=1).indices  # ascending positions, no sort op
    values = flat.gather(1, positions.gather(1, ordered))
    keep = filled(flat, [n, d]).scatter(1, positions, 1.0)
    pad = (-d) % 8
    keep = F.pad(keep, (0, pad)).reshape(n, -1, 8)
    return values, (keep * _powers_of_two(flat)).sum(-1).to(torch.uint8)


def _powers_of_two(like: Tensor) -> Tensor:
    """1, 2, ..., 128 built from ``arange`` (literal tensor constants do not survive every exporter)."""
    exponents = torch.arange(8, device=like.device).to(like.dtype)
    return torch.pow(torch.full_like(exponents, 2.0), exponents)


def _unpack_bits(values: Tensor, packed: Tensor, shape: list[int]) -> Tensor:
    """Kept positions recovered in ascending order by a top-k on ``keep * (D - index)``, then scattered."""
    n, d = shape[0], math.prod(shape[1:])
    weights = _powers_of_two(values).to(torch.uint8)
    keep = torch.bitwise_and(packed.unsqueeze(-1), weights).reshape(n, -1)[:, :d]  # (N, D) uint8, 0 = dropped
    descending = torch.arange(d, 0, -1, device=values.device).to(values.dtype)  # D, D-1, ..., 1
    positions = ((keep != 0).to(values.dtype) * descending).topk(values.shape[1], dim=1).indices  # (N, k) ascending
    return filled(values, [n, d]).scatter(1, positions, values).reshape(shape)


def weight_grad(x: Tensor, grad: Tensor, weight_shape: list[int], stride: int, padding: int, groups: int) -> Tensor:
    """d loss / d W of conv2d as one forward conv: batch and channels swapped, dilation = stride."""
    n, cin = x.shape[:2]
    cin_g, kh, kw = weight_shape[1:]
    xs = x.reshape(n, groups, cin_g, *x.shape[2:]).permute(2, 1, 0, 3, 4).reshape(cin_g, groups * n, *x.shape[2:])
    gw = F.conv2d(xs, grad.transpose(0, 1), None, 1, padding, stride, groups)  # (Cin/g, Cout, >=kh, >=kw)
    return gw[:, :, :kh, :kw].transpose(0, 1)


def input_grad(grad: Tensor, weight: Tensor, input_shape: list[int], stride: int, padding: int, groups: int) -> Tensor:
    k = weight.shape[2:]
    out = [input_shape[2 + i] - ((grad.shape[2 + i] - 1) * stride - 2 * padding + k[i]) for i in range(2)]
    return F.conv_transpose2d(grad, weight, None, stride, padding, out, groups)


def scatter_weight(values: Tensor, positions: Tensor, shape: list[int]) -> Tensor:
    """The dense weight holding packed ``values`` at flat ``positions`` (zeros elsewhere)."""
    return filled(values, [math.prod(shape)]).scatter(0, positions.long(), values).reshape(shape)


class SapConv(torch.autograd.Function):
    """conv2d saving ``Compressed.of(x)`` (or a precompressed copy handed over by ``SapRelu``).

    With ``positions`` the weight argument is packed values of a ``shape`` weight: the dense
    weight is built in forward and rebuilt in backward, so only the packed values stay alive
    between them, and the weight gradient comes back packed.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, groups, encoding, keep, pre, positions=None, shape=None):
        saved = pre if pre is not None else Compressed.of(x.detach(), encoding, keep)
        ctx.meta = (saved.encoding, saved.shape, stride, padding, groups, bias is not None, shape)
        packed = () if positions is None else (positions,)
        ctx.save_for_backward(weight, *packed, *saved.tensors)
        dense = weight if positions is None else scatter_weight(weight, positions, shape)
        return F.conv2d(x, dense, bias, stride, padding, 1, groups)

    @staticmethod
    def backward(ctx, grad):
        encoding, x_shape, stride, padding, groups, has_bias, shape = ctx.meta
        weight, *tensors = ctx.saved_tensors
        positions = tensors.pop(0) if shape is not None else None
        dense = weight if positions is None else scatter_weight(weight, positions, shape)
        gx = input_grad(grad, dense, x_shape, stride, padding, groups) if ctx.needs_input_grad[0] else None
        x_hat = Compressed(encoding, x_shape, tuple(tensors)).dense()
        gw = weight_grad(x_hat, grad, list(dense.shape), stride, padding, groups)
        if positions is not None:
            gw = gw.reshape(-1).gather(0, positions.long())
        gb = grad.sum((0, 2, 3)) if has_bias else None
        return gx, gw, gb, None, None, None, None, None, None, None, None


class SapRelu(torch.autograd.Function):
    """ReLU that saves nothing dense: its backward mask is ``compressed copy > 0``."""

    @staticmethod
    def forward(ctx, z, encoding, keep, holder):
        y = torch.relu(z)
        holder.append(Compressed.of(y.detach(), encoding, keep))
        ctx.save_for_backward(*holder[-1].tensors)
        ctx.meta = (holder[-1].encoding, holder[-1].shape)
        return y

    @staticmethod
    def backward(ctx, grad):
        x_hat = Compressed(*ctx.meta, tuple(ctx.saved_tensors)).dense()
        return grad * (x_hat > 0).to(grad.dtype), None, None, None
