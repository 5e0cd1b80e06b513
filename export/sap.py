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
    def forward(ctx, x, weight, bias, stride, padding, groups, encoding, keep, pre, positions=None, shape=None,
                im2col=False):  # fmt: skip
        saved = pre if pre is not None else Compressed.of(x.detach(), encoding, keep)
        dense = weight if positions is None else scatter_weight(weight, positions, shape)
        im2col = im2col and Im2colConv.supports(list(dense.shape), groups)
        ctx.meta = (saved.encoding, saved.shape, stride, padding, groups, bias is not None, shape, im2col)
        packed = () if positions is None else (positions,)
        ctx.save_for_backward(weight, *packed, *saved.tensors)
        if im2col:
            return Im2colConv.forward(x, dense, bias, stride, padding, groups)
        return F.conv2d(x, dense, bias, stride, padding, 1, groups)

    @staticmethod
    def backward(ctx, grad):
        encoding, x_shape, stride, padding, groups, has_bias, shape, im2col = ctx.meta
        weight, *tensors = ctx.saved_tensors
        positions = tensors.pop(0) if shape is not None else None
        dense = weight if positions is None else scatter_weight(weight, positions, shape)
        x_hat = Compressed(encoding, x_shape, tuple(tensors)).dense()
        if im2col:
            args = (stride, padding, groups, ctx.needs_input_grad[0])
            gx, gw = Im2colConv.backward(grad, x_hat, dense, x_shape, *args)
        else:
            gx = input_grad(grad, dense, x_shape, stride, padding, groups) if ctx.needs_input_grad[0] else None
            gw = weight_grad(x_hat, grad, list(dense.shape), stride, padding, groups)
        if positions is not None:
            gw = gw.reshape(-1).gather(0, positions.long())
        gb = grad.sum((0, 2, 3)) if has_bias else None
        return gx, gw, gb, None, None, None, None, None, None, None, None, None


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


def im2col(x: Tensor, k: int, stride: int, padding: int) -> Tensor:
    """(N, C, H, W) -> (N*Ho*Wo, C, k*k): the k*k shifted strided views, by slicing only."""
    n, c, h, w = x.shape
    ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    xp = F.pad(x, (padding, padding, padding, padding))
    views = [xp[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride]
             for i in range(k) for j in range(k)]  # fmt: skip
    return torch.stack(views, dim=-1).permute(0, 2, 3, 1, 4).reshape(n * ho * wo, c, k * k)


def col2im(cols: Tensor, shape: list[int], k: int, stride: int, padding: int, out_hw: tuple[int, int]) -> Tensor:
    """Adjoint of ``im2col``: every view's gradient placed back (strided) and summed."""
    n, c, h, w = shape
    ho, wo = out_hw
    parts = cols.reshape(n, ho, wo, c, k * k).permute(0, 3, 4, 1, 2)  # (N, C, k*k, Ho, Wo)
    hp, wp = h + 2 * padding, w + 2 * padding
    span_h, span_w = stride * (ho - 1) + 1, stride * (wo - 1) + 1
    total = None
    for index in range(k * k):
        i, j = divmod(index, k)
        part = _dilate(parts[:, :, index], stride)[:, :, :span_h, :span_w]
        placed = F.pad(part, (j, wp - j - span_w, i, hp - i - span_h))
        total = placed if total is None else total + placed
    return total[:, :, padding : padding + h, padding : padding + w]


def _dilate(t: Tensor, stride: int) -> Tensor:
    """Insert stride-1 zeros after every row and column."""
    if stride == 1:
        return t
    n, c, ho, wo = t.shape
    zeros = filled(t, [n, c, ho, wo])
    t = torch.stack([t] + [zeros] * (stride - 1), dim=-1).reshape(n, c, ho, wo * stride)
    zeros = filled(t, [n, c, ho, wo * stride])
    return torch.stack([t] + [zeros] * (stride - 1), dim=3).reshape(n, c, ho * stride, wo * stride)


class Im2colConv:
    """conv2d as im2col by slicing + ``mm`` (groups 1) or multiply-sum (depthwise): ExecuTorch runs
    these with optimized kernels, while its portable convolution kernels are very slow."""

    @staticmethod
    def supports(weight_shape: list[int], groups: int) -> bool:
        return groups == 1 or weight_shape[1] == 1

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int, padding: int, groups: int) -> Tensor:
        n, k, cout = x.shape[0], weight.shape[-1], weight.shape[0]
        cols = im2col(x, k, stride, padding)  # (N*Ho*Wo, C, k*k)
        if groups == 1:
            out = torch.mm(cols.reshape(cols.shape[0], -1), weight.reshape(cout, -1).transpose(0, 1))
        else:
            out = (cols * weight.reshape(cout, k * k)).sum(-1)
        out = out + bias if bias is not None else out
        ho = (x.shape[2] + 2 * padding - k) // stride + 1
        return out.reshape(n, ho, -1, cout).permute(0, 3, 1, 2)

    @staticmethod
    def backward(grad: Tensor, x_hat: Tensor, weight: Tensor, x_shape: list[int], stride: int, padding: int,
                 groups: int, need_input: bool) -> tuple[Tensor | None, Tensor]:  # fmt: skip
        cout, k = weight.shape[0], weight.shape[-1]
        g = grad.permute(0, 2, 3, 1).reshape(-1, cout)  # (N*Ho*Wo, Cout)
        cols = im2col(x_hat, k, stride, padding)
        if groups == 1:
            gw = torch.mm(g.transpose(0, 1), cols.reshape(cols.shape[0], -1)).reshape(weight.shape)
            gcols = torch.mm(g, weight.reshape(cout, -1)) if need_input else None
        else:
            gw = (g.unsqueeze(-1) * cols).sum(0).reshape(weight.shape)
            gcols = g.unsqueeze(-1) * weight.reshape(cout, k * k) if need_input else None
        gx = col2im(gcols, x_shape, k, stride, padding, tuple(grad.shape[2:])) if need_input else None
        return gx, gw
