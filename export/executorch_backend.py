"""ExecuTorch writer: lower a traced step to a ``.pte`` program whose ``forward`` is the step.

The traced graph already contains forward, backward and the SGD update, so the program's plain
``forward`` method is the training step (state in, state out): no training-specific runtime API
is needed on the device. Training graphs are not delegated to XNNPACK (NaNs seen); kernels are
the portable/optimized ones the wheel ships. The planned arena size
(``non_const_buffer_sizes``) is the exact memory plan of one step. Memory is planned by
ExecuTorch's ``greedy`` and by ``best_fit`` (offsets within one arena), keeping the smaller plan.

ExecuTorch's portable ``topk`` breaks ties in no defined order, so SAP's selections are rewritten
to keep, among equal magnitudes, the smaller positions, as the eager reference and ONNX's TopK do
(``positional_topk``); ``col2im`` is rewritten too (``_portable``).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge
from executorch.exir.memory_planning import MemoryAlgoResult, MemoryPlanningAlgorithmSuite, SpecAllocResult, greedy
from executorch.exir.passes import MemoryPlanningPass
from torch import Tensor, fx
from torch.fx.experimental.proxy_tensor import make_fx

from . import im2col

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
    """The k largest of each row of ``x`` (N, D), ties at the k-th value t going to the smaller
    positions, with no sort kernel: a top-k on distinct integer keys that rank everything above t
    first, then the equal-to-t ones by position (D + D - i above t, D - i equal to t, 0 below).

    Indicators are ``sign(relu(a - b))`` on floats, exact (``a - b`` is zero only when ``a == b``):
    ExecuTorch's portable kernels compute them several times faster than a comparison cast to float.
    """
    d = x.shape[1]
    if 2 * d > 1 << 24:
        raise ValueError(f"positional_topk: rows of {d} elements give keys float32 cannot hold exactly")
    threshold = torch.topk(x, k, 1, sorted=False).values.amin(1, keepdim=True)
    above = torch.sign(torch.relu(x - threshold))  # x > t
    at_least = 1.0 - torch.sign(torch.relu(threshold - x))  # x >= t
    descending = torch.arange(d, 0, -1, device=x.device).to(x.dtype)  # D, ..., 1: distinct, exact below 2^24
    keys = (at_least * descending + above * d).to(torch.int32)
    positions = torch.topk(keys, k, 1, sorted=False).indices
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
    for constant in (n for n in sub.graph.nodes if n.op == "get_attr"):  # tensor constants move into ``gm``
        name = next(f"_spliced{i}" for i in range(len(gm.graph.nodes) + 1) if not hasattr(gm, f"_spliced{i}"))
        setattr(gm, name, getattr(sub, constant.target))
        constant.target = name
    with gm.graph.inserting_before(node):
        outputs = gm.graph.graph_copy(sub.graph, dict(zip(placeholders, inputs, strict=True)))
    if isinstance(outputs, tuple | list):
        for user in list(node.users):
            user.replace_all_uses_with(outputs[user.args[1]])
            gm.graph.erase_node(user)
    else:
        node.replace_all_uses_with(outputs)
    gm.graph.erase_node(node)


def _filled(one: Tensor, shape: list[int]) -> Tensor:
    return torch.zeros(shape, dtype=one.dtype) + one


def _numel(node: fx.Node) -> int | None:
    value = node.meta.get("val")
    return None if value is None else value.numel()


def _widened(narrow: Tensor, offset: int) -> Tensor:
    return narrow.to(torch.int64) + offset


def _int_offset(node: fx.Node) -> tuple[fx.Node, int] | None:
    """``(x, c)`` when ``node`` is ``x.to(int32) + c`` for an int16 ``x`` (``sap._widen``)."""
    if node.op != "call_function" or node.target != torch.ops.aten.add.Tensor or len(node.users) != 1:
        return None
    cast, offset = node.args
    if not isinstance(offset, int) or cast.op != "call_function" or cast.target != torch.ops.aten._to_copy.default:
        return None
    value = cast.args[0].meta.get("val")
    return (cast.args[0], offset) if value is not None and value.dtype == torch.int16 else None


def _permuted_back(node: fx.Node) -> tuple[fx.Node, bool] | None:
    """``(a, relu)`` when ``node`` is ``a.permute(p).permute(q)`` or ``relu(a.permute(p)).permute(q)``
    with q undoing p: a channels-last tensor made NCHW and made channels-last again by the next conv
    (its output for the next conv's im2col; an input gradient for the conv before's backward)."""
    first, relu = node.args[0], False
    if first.op == "call_function" and first.target == torch.ops.aten.relu.default:
        first, relu = first.args[0], True
    if first.op != "call_function" or first.target != torch.ops.aten.permute.default:
        return None
    p, q = list(first.args[1]), list(node.args[1])
    return (first.args[0], relu) if [p[d] for d in q] == list(range(len(q))) else None


def _portable(gm: fx.GraphModule) -> fx.GraphModule:
    """Ops rewritten for the portable kernels: every unsorted top-k (SAP's selections; the other
    top-ks are sorted, on distinct keys) as ``positional_topk``; ``col2im`` (whose decomposition
    pads by negative amounts, which ExecuTorch rejects) as ``im2col.col2im``; one-element tensors expanded to
    a full-size one (``sap.filled``) as ``zeros + element`` (the portable ``expand_copy`` copies
    element by element, ``full`` fills and ``add`` broadcasts about 10x faster); int16 positions
    widened to int64 in one cast instead of two; and a permute that undoes the one before it (or
    before a ReLU, which then runs on the unpermuted tensor) dropped: no copy."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function":
            continue
        value = node.meta.get("val")  # absent on nodes a caller added by hand: those are left as they are
        if value is None:
            continue
        if node.target == torch.ops.aten.expand.default and _numel(node.args[0]) == 1:
            if value.dtype.is_floating_point:
                _splice(gm, node, _bind(_filled, list(value.shape)), [node.args[0]])
        elif node.target == torch.ops.aten._to_copy.default and value.dtype == torch.int64:
            widening = _int_offset(node.args[0])
            if widening is not None:
                _splice(gm, node, _bind(_widened, widening[1]), [widening[0]])
        elif node.target == torch.ops.aten.permute.default and (undone := _permuted_back(node)) is not None:
            source, relu = undone
            if relu:
                _splice(gm, node, torch.relu, [source])
            else:
                node.replace_all_uses_with(source)
                gm.graph.erase_node(node)
        elif node.target == torch.ops.aten.topk.default:
            x, k, dim, largest, is_sorted = (list(node.args) + [-1, True, True][len(node.args) - 2:])[:5]
            if not is_sorted and largest and dim in (1, -1) and x.meta["val"].dim() == 2:
                _splice(gm, node, _bind(positional_topk, k), [x])
        elif node.target == torch.ops.aten.col2im.default:
            cols, size, kernel, dilation, padding, stride = node.args
            square = kernel[0] == kernel[1] and padding[0] == padding[1] and stride[0] == stride[1]
            if list(dilation) == [1, 1] and square:
                _splice(gm, node, _bind(_col2im, size, kernel[0], padding[0], stride[0]), [cols])
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


def _col2im(cols: Tensor, size: list[int], k: int, padding: int, stride: int) -> Tensor:
    n, ckk, length = cols.shape
    c = ckk // (k * k)
    entries = cols.reshape(n, c, k * k, length).permute(0, 3, 2, 1)  # (N, L, k*k, C), as ``im2col.im2col`` orders them
    # contiguous, as ``aten.col2im``'s result was when the graph's views after it were traced
    return im2col.col2im(entries, [n, c, *size], k, stride, padding).contiguous()


class _Placed:
    """Tensors already given an offset in one arena: lifetimes (inclusive node indices) and byte spans."""

    def __init__(self, capacity: int):
        self.start, self.end, self.low, self.high = (np.empty(capacity, np.int64) for _ in range(4))
        self.count = 0

    def lowest_fit(self, start: int, end: int, size: int) -> int:
        """The offset of the tightest gap of ``size`` bytes among the tensors alive in [start, end]
        (above them all when none fits)."""
        n = self.count
        live = ~((self.end[:n] < start) | (self.start[:n] > end))
        low, high = self.low[:n][live], self.high[:n][live]
        if low.size == 0:
            return 0
        order = np.argsort(low, kind="stable")
        low, reach = low[order], np.maximum.accumulate(high[order])
        gap_start = np.concatenate(([0], reach[:-1]))
        waste = low - gap_start - size
        fits = np.nonzero(waste >= 0)[0]
        return int(gap_start[fits[np.argmin(waste[fits])]]) if fits.size else int(reach[-1])

    def add(self, start: int, end: int, offset: int, size: int) -> None:
        i = self.count
        self.start[i], self.end[i], self.low[i], self.high[i] = start, end, offset, offset + size
        self.count += 1


def best_fit(alignment, specs, graph_module, graph_signature, extra_padding=0) -> MemoryAlgoResult:
    """Largest tensor first, each at the tightest free gap among the tensors whose lifetimes overlap
    its own. ``greedy`` instead stacks "shared objects" sized by their largest tensor, and a smaller
    tensor goes on top of one only below that size: a plan of the sparse step's many small packing
    tensors wastes megabytes that way."""
    result = MemoryAlgoResult({}, [])
    for spec in specs:
        spec.realign(alignment)
    ordered = sorted(specs, key=lambda s: (-s.allocated_memory, s.lifetime[0], s.lifetime[1]))
    placed: dict[int, _Placed] = defaultdict(lambda: _Placed(len(ordered)))
    views = []
    for index, spec in enumerate(ordered):
        alloc = SpecAllocResult(1 if spec.mem_id is None else spec.mem_id, index, 0)
        result.spec_dict[spec] = alloc
        if spec.storage_base is not None:  # a view planned inside its base
            views.append(spec)
            continue
        start, end = spec.lifetime
        alloc.mem_offset = placed[alloc.mem_id].lowest_fit(start, end, spec.allocated_memory)
        placed[alloc.mem_id].add(start, end, alloc.mem_offset, spec.allocated_memory)
    resolved = {spec for spec in ordered if spec.storage_base is None}
    while views:
        ready = [spec for spec in views if spec.storage_base in resolved]
        if not ready:
            raise RuntimeError("memory planning: a view's storage base is never planned")
        for spec in ready:
            base = result.spec_dict[spec.storage_base]
            alloc = result.spec_dict[spec]
            alloc.mem_id, alloc.mem_offset = base.mem_id, base.mem_offset + spec.storage_base_offset
            resolved.add(spec)
        views = [spec for spec in views if spec not in resolved]
    # inputs planned beforehand (submodules) sit at the start of an arena, as in ``greedy``
    reserved = getattr(graph_module, "input_mem_buffer_sizes", None) or []
    for alloc in result.spec_dict.values():
        alloc.mem_offset += reserved[alloc.mem_id] if alloc.mem_id < len(reserved) else 0
    result.bufsizes = [0] * (max(placed, default=1) + 1)
    for mem_id, arena in placed.items():
        top = int(arena.high[: arena.count].max()) if arena.count else 0
        result.bufsizes[mem_id] = (reserved[mem_id] if mem_id < len(reserved) else 0) + top + extra_padding
    return result


def lower(gm: fx.GraphModule, example: list[Tensor]):
    gm = _portable(_drop_ordering_edges(gm))
    exported = torch.export.export(gm, tuple(example), strict=False)
    edge = to_edge(exported, compile_config=EdgeCompileConfig(_check_ir_validity=False))
    planner = MemoryPlanningPass(MemoryPlanningAlgorithmSuite([greedy, best_fit]))
    return edge.to_executorch(ExecutorchBackendConfig(memory_planning_pass=planner))


def planned_arena_bytes(program) -> int:
    return int(sum(program.executorch_program.execution_plan[0].non_const_buffer_sizes))


def write(gm: fx.GraphModule, example: list[Tensor], inputs: list[str], outputs: list[str], path: Path) -> dict:
    program = lower(gm, example)
    path.write_bytes(program.buffer)
    return {"planned_arena_bytes": planned_arena_bytes(program)}
