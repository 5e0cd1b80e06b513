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
Graphs for ExecuTorch write convolutions as im2col + ``mm`` (``export.im2col``; ``im2col_matrix``
here scatters packed weights straight into its layouts).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from fedmef.activation_pruning import kept_count

from .im2col import Im2colConv, channels_last, inverse_order, permuted_positions

ENCODINGS = ("dense", "int32", "bits")


@torch.library.custom_op("fedmef_export::after", mutates_args=())
def after(x: Tensor, deps: list[Tensor]) -> Tensor:
    """``x``, read only once every tensor of ``deps`` exists: an ordering edge for exported graphs.

    ONNX Runtime schedules a node just before its first consumer, so a compression whose outputs
    only backward reads would run late, keeping the dense activation alive through the forward
    pass. The ONNX writer lowers this to a zero-copy ``Reshape`` whose shape depends on the deps;
    ExecuTorch runs nodes in trace order and drops it.
    """
    return x.clone()


@after.register_fake
def _(x: Tensor, deps: list[Tensor]) -> Tensor:
    return torch.empty_like(x)


def filled(like: Tensor, shape: list[int] | torch.Size, value: float = 0.0) -> Tensor:
    """A constant tensor computed from one element of ``like`` (``0 * like[0] + value``), expanded.

    Computed, not a literal: exporters would write ``zeros(shape)`` into the file as a dense
    constant, and two literal-derived tensors of one shape are the same expression, which ONNX
    Runtime's common-subexpression pass merges into one buffer alive from first to last use.
    Small ones are literals (fewer kernels).
    """
    if math.prod(shape) <= _LITERAL:
        return torch.full(list(shape), value, dtype=like.dtype, device=like.device)
    one = like.detach().reshape(-1)[:1] * 0
    return (one + value if value else one).expand(math.prod(shape)).reshape(shape)


#: ``filled`` tensors up to this many elements are literals: a few KB in the file, shared harmlessly
_LITERAL = 1024
#: tensors of at most this many bytes take the forms with fewer kernels, larger ones those with fewer bytes
_SMALL = 1 << 20


class Compressed:
    """A saved activation: the tensors autograd keeps plus how to rebuild the dense input.

    ``last``: the compression's final outputs, including ones nothing reads (top-k's magnitudes of
    a signed input, freed once the ordering edge has read them); the edge waits for these.
    """

    def __init__(self, encoding: str, shape: list[int], tensors: tuple[Tensor, ...], last: tuple[Tensor, ...] = ()):
        self.encoding, self.shape, self.tensors, self.last = encoding, shape, tensors, last or tensors
        #: a fused ReLU's copy whose consuming (im2col) convs apply the ReLU's backward mask themselves
        self.relu_in_consumers = False

    @staticmethod
    def of(x: Tensor, encoding: str, keep: float, nonneg: bool = False) -> Compressed:
        """``nonneg``: ``x`` is a ReLU output, so its top-k values are the kept values (no abs, no gather)."""
        shape = list(x.shape)
        if encoding == "dense" or keep >= 1.0:
            return Compressed("dense", shape, (x,))
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}; choose one of {ENCODINGS}")
        flat = x.reshape(shape[0], -1)  # (N, D)
        k = kept_count(flat.shape[1], keep)
        if nonneg:
            values, positions = flat.topk(k, dim=1, sorted=False)  # (N, k), int64
            spent = ()
        else:
            magnitudes, positions = flat.abs().topk(k, dim=1, sorted=False)
            values, spent = flat.gather(1, positions), (magnitudes,)
        saved = (values, _narrow(positions, flat.shape[1])) if encoding == "int32" else _pack_bits(flat, positions)
        # a ReLU output's values come from the top-k that the positions are computed from
        last = saved[1:] if nonneg and encoding == "int32" else (*saved, *spent)
        return Compressed(encoding, shape, saved, last)

    def after(self, x: Tensor) -> Tensor:
        """``x`` for the forward consumers, read only after this compression ran."""
        return x if self.encoding == "dense" else after(x, list(self.last))

    def kept(self) -> tuple[Tensor, Tensor]:
        """The kept values (N, k) and their flat positions in each sample (N, k), int32."""
        if self.encoding == "int32":
            return self.tensors[0], _widen(self.tensors[1])
        return self.tensors[0], _bits_positions(*self.tensors, self.shape)

    def dense(self) -> Tensor:
        """The decompressed input (N, C, H, W)."""
        if self.encoding == "dense":
            return self.tensors[0]
        values, positions = self.kept()
        zeros = filled(values, [self.shape[0], math.prod(self.shape[1:])])
        return zeros.scatter(1, positions.long(), values).reshape(self.shape)

    def channels_last(self) -> Tensor:
        """The decompressed input as rows of channels (N, H*W, C), scattered straight into that layout."""
        n, c = self.shape[:2]
        plane = math.prod(self.shape[2:])
        if self.encoding == "dense":
            return channels_last(self.tensors[0])
        values, positions = self.kept()
        positions = positions.long()  # widened first: ExecuTorch then casts int16 positions once
        channel = torch.div(positions, plane, rounding_mode="trunc")  # p = ch * plane + i  ->  i * c + ch
        index = positions * c - channel * (plane * c - 1)
        zeros = filled(values, [n, c * plane])
        return zeros.scatter(1, index, values).reshape(n, plane, c)

    def dense_transposed(self, like: Tensor) -> Tensor:
        """The decompressed input with batch and channels swapped (C, N, H, W), scattered straight into
        that layout: the weight gradient's operand without a transposed copy. ``like``: a tensor of
        this backward step to derive the zeros from (see ``filled``)."""
        if self.encoding == "dense" or 4 * math.prod(self.shape) <= _SMALL:
            return self.dense().transpose(0, 1)
        n, c = self.shape[:2]
        plane = math.prod(self.shape[2:])
        values, positions = self.kept()
        # sample s, flat position p = ch * plane + i  ->  (ch * n + s) * plane + i
        channel = torch.div(positions, plane, rounding_mode="trunc")
        rows = torch.arange(n, device=values.device, dtype=positions.dtype).unsqueeze(1) * plane
        index = positions + channel * ((n - 1) * plane) + rows
        zeros = filled(like, [n * c * plane])
        return zeros.scatter(0, index.reshape(-1).long(), values.reshape(-1)).reshape(c, n, *self.shape[2:])

    def where_positive(self, grad: Tensor) -> Tensor:
        """``grad`` where the decompressed input is > 0, else 0 (a fused ReLU's backward): gathered at
        the kept positions and scattered back, with no dense mask (and no ``Where``, which ONNX
        Runtime computes through two full-size temporaries)."""
        if self.encoding == "dense" or 4 * math.prod(self.shape) <= _SMALL:
            return grad * torch.sign(self.dense())  # the input is a ReLU output: its sign is the > 0 mask
        values, positions = self.kept()
        n, d = self.shape[0], math.prod(self.shape[1:])
        index = positions.long()
        kept = grad.reshape(n, d).gather(1, index) * (values > 0).to(grad.dtype)
        return filled(grad, [n, d]).scatter(1, index, kept).reshape(self.shape)


_INT16_SPAN = 1 << 16


def _narrow(positions: Tensor, row: int) -> Tensor:
    """Positions within a row of ``row`` elements in the fewest bytes: int16 offsets from the middle
    of the range when the row has at most 2^16 elements (exact, no reliance on wrapping casts), else int32."""
    if row <= _INT16_SPAN:
        return (positions - _INT16_SPAN // 2).to(torch.int16)
    return positions.to(torch.int32)


def _widen(positions: Tensor) -> Tensor:
    """The int32 positions saved by ``_narrow``."""
    if positions.dtype == torch.int16:
        return positions.to(torch.int32) + _INT16_SPAN // 2
    return positions


def _pack_bits(flat: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
    """Values in ascending position order (N, k) and the keep mask packed 8 per byte (N, D/8)."""
    n, d = flat.shape
    ordered = (-positions).topk(positions.shape[1], dim=1).indices  # ascending positions, no sort op
    values = flat.gather(1, positions.gather(1, ordered))
    keep = filled(flat, [n, d]).scatter(1, positions, 1.0)
    pad = (-d) % 8
    keep = (F.pad(keep, (0, pad)) if pad else keep).reshape(n, -1, 8)  # a zero pad would still be a copy
    return values, (keep * _powers_of_two(flat)).sum(-1).to(torch.uint8)


def _powers_of_two(like: Tensor) -> Tensor:
    """1, 2, ..., 128 built from ``arange`` (literal tensor constants do not survive every exporter)."""
    exponents = torch.arange(8, device=like.device).to(like.dtype)
    return torch.pow(torch.full_like(exponents, 2.0), exponents)


def _bits_positions(values: Tensor, packed: Tensor, shape: list[int]) -> Tensor:
    """Kept positions recovered in ascending order by a top-k on ``keep * (D - index)`` (int32)."""
    n, d = shape[0], math.prod(shape[1:])
    weights = _powers_of_two(values).to(torch.uint8)
    keep = torch.bitwise_and(packed.unsqueeze(-1), weights).reshape(n, -1)[:, :d]  # (N, D) uint8, 0 = dropped
    descending = torch.arange(d, 0, -1, device=values.device).to(values.dtype)  # D, D-1, ..., 1
    # keep.bool(): one byte per element (``keep != 0`` compares through a full-size int64 copy)
    return (keep.bool().to(values.dtype) * descending).topk(values.shape[1], dim=1).indices.to(torch.int32)


def weight_grad(x: Tensor, grad: Tensor, weight_shape: list[int], stride: int, padding: int, groups: int,
                transposed: bool = False) -> Tensor:  # fmt: skip
    """d loss / d W of conv2d as one forward conv: batch and channels swapped, dilation = stride.
    ``transposed``: ``x`` is given as (C, N, H, W) (groups 1)."""
    cin_g, kh, kw = weight_shape[1:]
    if transposed:
        xs = x
    else:
        n = x.shape[0]
        xs = x.reshape(n, groups, cin_g, *x.shape[2:]).permute(2, 1, 0, 3, 4).reshape(cin_g, groups * n, *x.shape[2:])
    gw = F.conv2d(xs, grad.transpose(0, 1), None, 1, padding, stride, groups)  # (Cin/g, Cout, >=kh, >=kw)
    return gw[:, :, :kh, :kw].transpose(0, 1)


def packed_weight_grad(x_t: Tensor, grad: Tensor, weight_shape: list[int], positions: Tensor, stride: int,
                       padding: int) -> Tensor:  # fmt: skip
    """``weight_grad`` at flat ``positions`` of a groups-1 weight, from the input given as (C, N, H, W),
    gathered straight from the conv's (Cin, Cout, >=kh, >=kw) output: no cropped, transposed dense
    copy of the weight gradient."""
    cout, cin, kh, kw = weight_shape
    gw = F.conv2d(x_t, grad.transpose(0, 1), None, 1, padding, stride)
    kh2, kw2 = gw.shape[2:]
    # p = ((o * cin + i) * kh + r) * kw + c  ->  q = ((i * cout + o) * kh2 + r) * kw2 + c, linear in
    # p, v = p // kw, u = v // kh and o = u // cin
    v = torch.div(positions, kw, rounding_mode="trunc")
    u = torch.div(v, kh, rounding_mode="trunc")
    o = torch.div(u, cin, rounding_mode="trunc")
    index = positions + u * (cout * kh2 * kw2 - kh * kw2) - o * ((cin * cout - 1) * kh2 * kw2)
    if kw2 != kw:
        index = index + v * (kw2 - kw)
    return gw.reshape(-1).gather(0, index.long())


def input_grad(grad: Tensor, weight: Tensor, input_shape: list[int], stride: int, padding: int, groups: int) -> Tensor:
    """d loss / d x of conv2d: a transposed convolution or, where the column matrix is small, one
    batch-folded GEMM and ``col2im`` (ONNX ``Col2Im``; ONNX Runtime's ConvTranspose is several times
    slower than that on small spatial sizes)."""
    n, cout, ho, wo = grad.shape
    cols = n * ho * wo * weight[0].numel()
    if groups == 1 and 4 * cols <= _SMALL:
        g = grad.permute(0, 2, 3, 1).reshape(n * ho * wo, cout)
        g = torch.mm(g, weight.reshape(cout, -1)).reshape(n, ho * wo, -1).transpose(1, 2)
        return F.fold(g, tuple(input_shape[2:]), tuple(weight.shape[2:]), padding=padding, stride=stride)
    k = weight.shape[2:]
    out = [input_shape[2 + i] - ((grad.shape[2 + i] - 1) * stride - 2 * padding + k[i]) for i in range(2)]
    return F.conv_transpose2d(grad, weight, None, stride, padding, out, groups)


def scatter_weight(values: Tensor, positions: Tensor, shape: list[int], like: Tensor | None = None,
                   backward: bool = False) -> Tensor:  # fmt: skip
    """The dense weight holding packed ``values`` at flat ``positions`` (zeros elsewhere).

    ``like``: the tensor the zeros are derived from. Backward passes the incoming gradient, so the
    rebuild is a different expression from forward's: no common-subexpression pass can merge the
    two and keep the dense weight alive from forward to backward. ``backward``: scattered into a
    (1, numel) tensor instead of (numel,): ONNX Runtime's allocation planner hands a freed buffer
    to a later tensor of the same shape, so a rebuild of forward's shape would hold forward's dense
    weight buffer from forward until backward (measured, ResNet18-NF B=64: 136.3 -> 132.5 MB ORT heap).
    """
    numel, source = math.prod(shape), values if like is None else like
    if backward:  # zeros expanded straight to (1, numel): the Expand's own output has the other shape
        zeros = (source.detach().reshape(-1)[:1] * 0).reshape(1, 1).expand(1, numel)
        return zeros.scatter(1, positions.long().unsqueeze(0), values.unsqueeze(0)).reshape(shape)
    return filled(source, [numel]).scatter(0, positions.long(), values).reshape(shape)


def _channel_sum(x: Tensor, channel: Tensor, channels: int) -> Tensor:
    return filled(x, [channels]).scatter_add(0, channel, x)


class PackedStandardize(torch.autograd.Function):
    """``activation_pruning.standardize`` on packed values (statistics per output channel over the
    active weights) with a hand-written backward that recomputes the centred values: only
    per-channel statistics are kept between forward and backward, no value-sized tensors."""

    @staticmethod
    def forward(ctx, values, positions, gain, per_channel: int, eps: float):
        channels = gain.numel()
        positions = positions.to(torch.int32)  # one expression for every caller: a runtime computes it once
        channel = torch.div(positions, per_channel, rounding_mode="trunc").long()
        fan_in = _channel_sum(filled(values, values.shape, 1.0), channel, channels).clamp(min=1)
        mean = _channel_sum(values, channel, channels) / fan_in
        centred = values - mean.gather(0, channel)
        variance = _channel_sum(centred * centred, channel, channels) / fan_in * fan_in
        rs = torch.rsqrt(torch.clamp(variance, min=eps))
        scale = gain.reshape(channels) * rs
        # d out / d centred = scale - coef * centred * centred^T (the variance term; zero where clamped)
        coef = scale * rs * rs * (variance >= eps).to(values.dtype)
        ctx.save_for_backward(values, positions, fan_in, mean, rs, scale, coef)
        ctx.per_channel, ctx.gain_shape = per_channel, gain.shape
        return centred * scale.gather(0, channel)

    @staticmethod
    def backward(ctx, grad):
        values, positions, fan_in, mean, rs, scale, coef = ctx.saved_tensors
        channels = scale.numel()
        # keyed on grad: recomputed here, not kept from forward by a common-subexpression pass
        channel = torch.div(after(positions, [grad]), ctx.per_channel, rounding_mode="trunc").long()
        centred = values - mean.gather(0, channel)
        projected = _channel_sum(grad * centred, channel, channels)  # sum of grad * centred per channel
        grad_c = grad * scale.gather(0, channel) - (coef * projected).gather(0, channel) * centred
        grad_values = grad_c - (_channel_sum(grad_c, channel, channels) / fan_in).gather(0, channel)
        grad_gain = (projected * rs).reshape(ctx.gain_shape) if ctx.needs_input_grad[2] else None
        return grad_values, None, grad_gain, None, None


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
        x = saved.after(x)
        weight_shape = list(weight.shape) if positions is None else shape
        im2col = im2col and Im2colConv.supports(weight_shape, groups)
        if saved.relu_in_consumers and not im2col:
            raise ValueError("a ReLU left its backward mask to a consumer that is not an im2col convolution")
        ctx.meta = (saved.encoding, saved.shape, stride, padding, groups, bias is not None, shape, im2col,
                    saved.relu_in_consumers)  # fmt: skip
        packed = () if positions is None else (positions,)
        ctx.save_for_backward(weight, *packed, *saved.tensors)
        if im2col:
            matrix = im2col_matrix(weight, positions, weight_shape, groups, x)
            return Im2colConv.forward(x, matrix, bias, weight_shape[-1], stride, padding, groups)
        dense = weight if positions is None else scatter_weight(weight, positions, shape, x)
        return F.conv2d(x, dense, bias, stride, padding, 1, groups)

    @staticmethod
    def backward(ctx, grad):
        encoding, x_shape, stride, padding, groups, has_bias, shape, im2col, relu = ctx.meta
        weight, *tensors = ctx.saved_tensors
        positions = tensors.pop(0) if shape is not None else None
        saved = Compressed(encoding, x_shape, tuple(tensors))
        weight_shape = shape if positions is not None else list(weight.shape)
        if im2col:
            # positions (if packed) in the backward matrix's layout: for the rebuild and the gradient's gather
            order = Im2colConv.order(groups, backward=True)
            moved = None if positions is None else permuted_positions(positions, weight_shape, order)
            # zeros derived from the packed values, not from ``grad``: ``grad`` is read channels-last only
            matrix = im2col_matrix(weight, moved, weight_shape, groups, weight, backward=True, moved=True)
            args = (weight_shape[-1], stride, padding, groups, ctx.needs_input_grad[0], relu)
            gx, gw, gb = Im2colConv.backward(grad, saved.channels_last(), matrix, x_shape, *args)
            if positions is None:
                gw = gw.reshape([weight_shape[d] for d in order]).permute(inverse_order(order))
            else:
                gw = gw.reshape(-1).gather(0, moved.long())
        else:
            # SAP: the weight gradient first, so its (decompressed, transposed) operands are freed before
            # the input gradient exists; a dense saved input is alive anyway, so the runtime's order stays
            if positions is not None:
                gw = packed_weight_grad(saved.dense_transposed(grad), grad, weight_shape, positions, stride, padding)
            elif groups == 1:
                gw = weight_grad(saved.dense_transposed(grad), grad, weight_shape, stride, padding, 1, transposed=True)
            else:
                gw = weight_grad(saved.dense(), grad, weight_shape, stride, padding, groups)
            gx = None
            if ctx.needs_input_grad[0]:
                later = grad if saved.encoding == "dense" else after(grad, [gw])
                dense = weight if positions is None else scatter_weight(weight, positions, shape, later, backward=True)
                gx = input_grad(later, dense, x_shape, stride, padding, groups)
            gb = grad.sum((0, 2, 3))
        return gx, gw, gb if has_bias else None, None, None, None, None, None, None, None, None, None


class SapRelu(torch.autograd.Function):
    """ReLU that saves nothing dense: its backward mask is ``compressed copy > 0``.

    ``in_consumers``: every consumer is an im2col ``SapConv`` of the compressed copy, which applies
    the mask to its input gradient while that is still channels-last (the mask is elementwise, so
    masking each consumer's share is masking their sum); this backward passes the gradient through.
    """

    @staticmethod
    def forward(ctx, z, encoding, keep, holder, in_consumers=False):
        y = torch.relu(z)
        holder.append(Compressed.of(y.detach(), encoding, keep, nonneg=True))
        holder[-1].relu_in_consumers = in_consumers
        ctx.save_for_backward(*(() if in_consumers else holder[-1].tensors))
        ctx.meta = None if in_consumers else (holder[-1].encoding, holder[-1].shape)
        return y

    @staticmethod
    def backward(ctx, grad):
        if ctx.meta is None:
            return grad, None, None, None, None
        return Compressed(*ctx.meta, tuple(ctx.saved_tensors)).where_positive(grad), None, None, None, None


def im2col_matrix(weight: Tensor, positions: Tensor | None, shape: list[int], groups: int, like: Tensor,
                  backward: bool = False, moved: bool = False) -> Tensor:  # fmt: skip
    """The weight as the matrix ``Im2colConv.forward``/``backward`` multiply by: the dense ``weight`` permuted,
    or packed values scattered straight into that layout (``moved``: ``positions`` already are
    positions in it). ``like``, ``backward``: as for ``scatter_weight``."""
    order = Im2colConv.order(groups, backward)
    permuted = [shape[d] for d in order]
    rows = permuted[0] if backward and groups == 1 else math.prod(permuted[:-1])
    if positions is None:
        return weight.permute(order).reshape(rows, -1)
    moved_positions = positions if moved else permuted_positions(positions, shape, order)
    return scatter_weight(weight, moved_positions, [rows, math.prod(shape) // rows], like, backward)
