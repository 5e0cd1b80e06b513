"""ExecuTorch writer: lower a traced step to a ``.pte`` program whose ``forward`` is the step.

The traced graph already contains forward, backward and the SGD update, so the program's plain
``forward`` method is the training step (state in, state out): no training-specific runtime API
is needed on the device. Training graphs are not delegated to XNNPACK (NaNs seen); kernels are
the portable/optimized ones the wheel ships. The planned arena size
(``non_const_buffer_sizes``) is the exact memory plan of one step.

ExecuTorch's portable ``topk`` breaks ties in no defined order, so SAP's selections are rewritten
to keep, among equal magnitudes, the smaller positions, as the eager reference and ONNX's TopK do
(``positional_topk``); ``col2im`` is rewritten too (``_portable``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge
from torch import Tensor, fx
from torch.fx.experimental.proxy_tensor import make_fx

from . import sap

EXTENSION = ".pte"


def _drop_ordering_edges(gm: fx.GraphModule) -> fx.GraphModule:
    """``sap.after`` only orders ONNX Runtime's schedule; ExecuTorch runs nodes in trace order."""
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target == torch.ops.fedmef_export.after.default:
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
    gm.recompile()
    return gm


def positional_topk(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k largest of each row of ``x`` (N, D), ties at the k-th value going to the smaller
    positions, with no sort kernel: everything above the k-th value t, then the first equal-to-t ones
    by a running count; their positions come back ascending from a top-k on distinct keys."""
    threshold = torch.topk(x, k, 1, sorted=False).values.amin(1, keepdim=True)
    above, ties = x > threshold, x == threshold
    rank = ties.to(torch.int32).cumsum(1)
    keep = above | (ties & (rank <= k - above.to(torch.int32).sum(1, keepdim=True)))
    descending = torch.arange(x.shape[1], 0, -1, device=x.device).to(x.dtype)  # D, ..., 1: distinct keys
    positions = torch.topk(keep.to(x.dtype) * descending, k, 1).indices
    return x.gather(1, positions), positions


def _bind(fn, *constants):
    def body(t: Tensor):
        return fn(t, *constants)

    return body


def _splice(gm: fx.GraphModule, node: fx.Node, fn, inputs: list[fx.Node]) -> None:
    """Replace ``node`` by ``fn`` traced on its inputs' shapes (tuple outputs map to getitem users)."""
    examples = [torch.zeros(i.meta["val"].shape, dtype=i.meta["val"].dtype) for i in inputs]
    sub = make_fx(fn)(*examples)
    placeholders = [n for n in sub.graph.nodes if n.op == "placeholder"]
    with gm.graph.inserting_before(node):
        outputs = gm.graph.graph_copy(sub.graph, dict(zip(placeholders, inputs, strict=True)))
    if isinstance(outputs, tuple | list):
        for user in list(node.users):
            user.replace_all_uses_with(outputs[user.args[1]])
            gm.graph.erase_node(user)
    else:
        node.replace_all_uses_with(outputs)
    gm.graph.erase_node(node)


def _portable(gm: fx.GraphModule) -> fx.GraphModule:
    """Ops rewritten for the portable kernels: every unsorted top-k (SAP's selections; the other
    top-ks are sorted, on distinct keys) as ``positional_topk``, and ``col2im`` (whose decomposition
    pads by negative amounts, which ExecuTorch rejects) by slicing."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function":
            continue
        if node.target == torch.ops.aten.topk.default:
            x, k, dim, largest, is_sorted = (list(node.args) + [-1, True, True][len(node.args) - 2:])[:5]
            if not is_sorted and largest and dim in (1, -1) and x.meta["val"].dim() == 2:
                _splice(gm, node, _bind(positional_topk, k), [x])
        elif node.target == torch.ops.aten.col2im.default:
            cols, size, kernel, dilation, padding, stride = node.args
            square = kernel[0] == kernel[1] and padding[0] == padding[1] and stride[0] == stride[1]
            if list(dilation) == [1, 1] and square:
                _splice(gm, node, _bind(_col2im, size, kernel[0], padding[0], stride[0]), [cols])
    gm.recompile()
    return gm


def _col2im(cols: Tensor, size: list[int], k: int, padding: int, stride: int) -> Tensor:
    n, ckk, length = cols.shape
    ho = (size[0] + 2 * padding - k) // stride + 1
    wo = length // ho
    shape = [n, ckk // (k * k), *size]
    return sap.col2im(cols.transpose(1, 2).reshape(n * length, -1, k * k), shape, k, stride, padding, (ho, wo))


def lower(gm: fx.GraphModule, example: list[Tensor]):
    gm = _portable(_drop_ordering_edges(gm))
    exported = torch.export.export(gm, tuple(example), strict=False)
    edge = to_edge(exported, compile_config=EdgeCompileConfig(_check_ir_validity=False))
    return edge.to_executorch(ExecutorchBackendConfig())


def planned_arena_bytes(program) -> int:
    return int(sum(program.executorch_program.execution_plan[0].non_const_buffer_sizes))


def write(gm: fx.GraphModule, example: list[Tensor], inputs: list[str], outputs: list[str], path: Path) -> dict:
    program = lower(gm, example)
    path.write_bytes(program.buffer)
    return {"planned_arena_bytes": planned_arena_bytes(program)}
