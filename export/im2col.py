"""Convolutions as im2col + ``mm`` for ExecuTorch, whose Python wheel runs ``convolution`` with slow
portable kernels (hundreds of ms per small step) but ``mm`` with an optimized one.

Activations are made channels-last, rows of channels (N, H*W, C), and every patch is gathered by
one ``index_select`` of whole rows (a zero row appended for the padding): the portable kernel copies
a row with ``memcpy``, where slicing, padding, stacking and permuting copy element by element.
col2im is the same gather by the reverse index, summed. Column matrices are built a bounded
number of samples at a time. ``SapConv`` (``export.sap``) uses these when a graph key asks for
``conv="im2col"``, which the server does for ExecuTorch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cache

import numpy as np
import torch
from torch import Tensor


def _output_size(h: int, w: int, k: int, stride: int, padding: int) -> tuple[int, int]:
    return (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1


@cache  # the same few geometries are traced once per conv, chunk and pass; nothing mutates the arrays
def _patch_index(h: int, w: int, k: int, stride: int, padding: int) -> np.ndarray:
    """For every output pixel and kernel offset, (Ho, Wo, k, k) in that order, the input pixel it
    reads (flat, row-major) or ``h * w``, the index of an appended zero row, where it reads padding."""
    ho, wo = _output_size(h, w, k, stride, padding)
    rows = (np.arange(ho) * stride)[:, None, None, None] + np.arange(k)[None, None, :, None] - padding
    cols = (np.arange(wo) * stride)[None, :, None, None] + np.arange(k)[None, None, None, :] - padding
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    return np.where(inside, rows * w + cols, h * w).reshape(-1)


def _with_zero_row(rows: Tensor) -> Tensor:
    """(N, L, C) -> (N, L + 1, C), the last row zero."""
    n, _, c = rows.shape
    return torch.cat([rows, torch.zeros(n, 1, c, dtype=rows.dtype, device=rows.device)], 1)


def channels_last(x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, H*W, C)."""
    n, c, h, w = x.shape
    # transposed before the reshape: ONNX Runtime 1.19's ReshapeFusion breaks a Reshape that reads the
    # ordering edge's (``after``) Reshape
    return x.permute(0, 2, 3, 1).reshape(n, h * w, c)


def im2col(rows: Tensor, size: tuple[int, int], k: int, stride: int, padding: int) -> Tensor:
    """Rows of channels (N, H*W, C) of an H x W input -> (N*Ho*Wo, k*k, C): a zero row appended for
    the padding, and every patch gathered by one ``index_select`` of whole rows (C contiguous values:
    a block copy each in ExecuTorch's kernel, where slicing, padding and stacking copy element by element)."""
    n, _, c = rows.shape
    index = torch.from_numpy(_patch_index(*size, k, stride, padding))
    return _with_zero_row(rows).index_select(1, index).reshape(index.numel() // (k * k) * n, k * k, c)


def col2im_rows(cols: Tensor, shape: list[int], k: int, stride: int, padding: int) -> Tensor:
    """Adjoint of ``im2col``: rows of channels (N, H*W, C) of the (N, C, H, W) input, every input
    pixel the sum of the patch entries that read it (up to k*k, the rest pointing at a zero row),
    gathered by one ``index_select``."""
    n, c, h, w = shape
    reverse = _reverse_index(h, w, k, stride, padding)
    entries = _with_zero_row(cols.reshape(n, _patch_index(h, w, k, stride, padding).size, c))  # (N, Ho*Wo*k*k + 1, C)
    gathered = entries.index_select(1, torch.from_numpy(reverse.reshape(-1))).reshape(n, h * w, reverse.shape[1], c)
    return gathered.sum(2)


@cache
def _reverse_index(h: int, w: int, k: int, stride: int, padding: int) -> np.ndarray:
    """For every input pixel, the ``_patch_index`` entries that read it, (H*W, most readers), padded
    with the index of an appended zero row."""
    forward = _patch_index(h, w, k, stride, padding)
    slots = [[] for _ in range(h * w + 1)]
    for slot, pixel in enumerate(forward.tolist()):
        slots[pixel].append(slot)
    reverse = np.full((h * w, max(len(s) for s in slots[: h * w])), forward.size)
    for pixel in range(h * w):
        reverse[pixel, : len(slots[pixel])] = slots[pixel]
    return reverse


def col2im(cols: Tensor, shape: list[int], k: int, stride: int, padding: int) -> Tensor:
    """``col2im_rows`` as an (N, C, H, W) tensor."""
    n, c, h, w = shape
    return col2im_rows(cols, shape, k, stride, padding).reshape(n, h, w, c).permute(0, 3, 1, 2)


#: im2col column matrices are built for this many bytes of samples at a time (at least one sample):
#: a ResNet's first stage would otherwise hold a k*k-times copy of a whole batch's activations
_CHUNK = 1 << 24


def _column_chunks(rows: Tensor, size: tuple[int, int], k: int, stride: int,
                   padding: int) -> Iterator[tuple[int, int, Tensor]]:  # fmt: skip
    """(first sample, end, ``im2col`` of those samples), ``_CHUNK`` bytes of columns at a time (the
    whole batch in one piece, unsliced, when it fits)."""
    n, _, c = rows.shape
    ho, wo = _output_size(*size, k, stride, padding)
    per = max(1, _CHUNK // (4 * ho * wo * k * k * c))
    for start in range(0, n, per):
        stop = min(start + per, n)
        yield start, stop, im2col(rows if per >= n else rows[start:stop], size, k, stride, padding)


def inverse_order(order: list[int]) -> list[int]:
    return sorted(range(len(order)), key=order.__getitem__)


def permuted_positions(positions: Tensor, shape: list[int], order: list[int]) -> Tensor:
    """Flat positions of elements of a C-order tensor of ``shape`` -> their flat positions in
    ``tensor.permute(order)``: a packed weight is scattered straight into a permuted layout (a few
    integer ops on the active positions instead of a copy of the dense weight)."""
    source = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    permuted = [shape[d] for d in order]
    target = [math.prod(permuted[j + 1:]) for j in range(len(order))]
    out, rest = None, positions
    for d, size in enumerate(shape):
        if size == 1:
            continue
        coord = torch.div(rest, source[d], rounding_mode="trunc") if source[d] > 1 else rest
        if source[d] > 1:
            rest = rest - coord * source[d]
        term = coord * target[order.index(d)] if target[order.index(d)] > 1 else coord
        out = term if out is None else out + term
    return positions * 0 if out is None else out


class Im2colConv:
    """conv2d as im2col by ``index_select`` + ``mm`` (groups 1) or multiply-sum (depthwise):
    ExecuTorch runs these with fast kernels, while its portable convolution kernels are very slow.
    Columns are ordered (kernel offset, channel), so the weight is used as a matrix of the weight
    permuted: (kh, kw, Cin, Cout) in forward, (Cout, kh, kw, Cin) in backward (depthwise: forward's);
    the weight gradient comes back in the backward matrix's layout."""

    @staticmethod
    def supports(weight_shape: list[int], groups: int) -> bool:
        return groups == 1 or weight_shape[1] == 1

    @staticmethod
    def order(groups: int, backward: bool = False) -> list[int]:
        return [0, 2, 3, 1] if backward and groups == 1 else [2, 3, 1, 0]

    @staticmethod
    def forward(x: Tensor, matrix: Tensor, bias: Tensor | None, k: int, stride: int, padding: int,
                groups: int) -> Tensor:  # fmt: skip
        n, _, h, w = x.shape
        cout = matrix.shape[-1]
        ho, wo = _output_size(h, w, k, stride, padding)
        outs = []
        for _, _, cols in _column_chunks(channels_last(x), (h, w), k, stride, padding):
            if groups == 1:
                outs.append(torch.mm(cols.reshape(cols.shape[0], -1), matrix))  # (chunk*Ho*Wo, Cout)
            else:
                outs.append((cols * matrix).sum(1))
        out = outs[0] if len(outs) == 1 else torch.cat(outs, 0)
        out = out + bias if bias is not None else out
        return out.reshape(n, ho, wo, cout).permute(0, 3, 1, 2)

    @staticmethod
    def backward(grad: Tensor, rows: Tensor, matrix: Tensor, x_shape: list[int], k: int, stride: int, padding: int,
                 groups: int, need_input: bool, relu: bool = False) -> tuple[Tensor | None, Tensor, Tensor]:
        """(input gradient, weight gradient in ``matrix``'s layout, bias gradient) from the saved input
        as rows of channels (N, H*W, C). ``relu``: the input is a ReLU output whose backward mask
        (``rows > 0``) is applied here."""
        n, c, h, w = x_shape
        cout, ho, wo = grad.shape[1:]
        g = grad.permute(0, 2, 3, 1).reshape(-1, cout)  # (N*Ho*Wo, Cout)
        gw, parts = None, []
        for start, stop, cols in _column_chunks(rows, (h, w), k, stride, padding):
            gc = g if stop - start == n else g[start * ho * wo : stop * ho * wo]
            if groups == 1:
                part = torch.mm(gc.transpose(0, 1), cols.reshape(cols.shape[0], -1))  # (Cout, k*k*Cin)
                gcols = torch.mm(gc, matrix) if need_input else None
            else:
                part = (gc.unsqueeze(1) * cols).sum(0)  # (k*k, C)
                gcols = gc.unsqueeze(1) * matrix if need_input else None
            gw = part if gw is None else gw + part
            if need_input:
                parts.append(col2im_rows(gcols, [stop - start, c, h, w], k, stride, padding))
        gx = None
        if need_input:
            gx = parts[0] if len(parts) == 1 else torch.cat(parts, 0)  # (N, H*W, C)
            gx = gx * torch.sign(rows) if relu else gx  # a ReLU output's sign is its > 0 mask
            gx = gx.reshape(n, h, w, c).permute(0, 3, 1, 2)
        return gx, gw, g.sum(0)
